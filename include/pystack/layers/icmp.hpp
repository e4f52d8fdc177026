// The ICMP layer (RFC 792, RFC 1122 §3.2.2): answers echo requests and
// counts what else arrives.
//
// Policy points (an `ICMP<Policy>` argument):
//
// | expression                    | type   | meaning |
// | ----------------------------- | ------ | ------- |
// | `p.answer_echo(request, ip)`  | `bool` | reply to this echo request; default yes unless it was sent to a broadcast address (RFC 1122 §3.2.2.6 allows either; not answering avoids smurf amplification) |
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>

#include "pystack/stack/buffer.hpp"
#include "pystack/stack/layer.hpp"
#include "pystack/wire/icmp.hpp"
#include "pystack/wire/ipv4.hpp"

namespace pystack {

struct icmp_default_policy {
  bool answer_echo(const icmp::view&, const ipv4::view& ip) const noexcept {
    return !ip.destination().is_broadcast() && !ip.destination().is_multicast();
  }
};

template <class P>
concept icmp_policy = requires(const P& p, const icmp::view& message, const ipv4::view& ip) {
  { p.answer_echo(message, ip) } -> std::convertible_to<bool>;
};

struct icmp_stats {
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;
  std::uint64_t bad_checksum = 0;
  std::uint64_t echo_requests = 0;
  std::uint64_t echo_replies_sent = 0;
  std::uint64_t errors_received = 0;  // unreachable, time exceeded, ... (RFC 792)
  std::uint64_t other = 0;
};

template <class... Args>
struct ICMP {
  using layer_tag = transport_layer_tag;
  static constexpr std::uint8_t ip_protocol = icmp::ip_protocol;
  using policy = policy_of<icmp_default_policy, Args...>;
  static constexpr bool valid = uppers_of<Args...>::size == 0 && icmp_policy<policy>;

  template <class Lower>
  class bound;
};

template <class... Args>
template <class Lower>
class ICMP<Args...>::bound {
 public:
  static constexpr std::uint8_t ip_protocol = icmp::ip_protocol;
  static constexpr std::size_t max_header_size = icmp::header_size;
  static constexpr std::size_t path_header_size = max_header_size;

  static_assert(uppers_of<Args...>::size == 0, "ICMP<...>: ICMP has no upper layers");
  static_assert(icmp_policy<policy>, "ICMP<...>: its argument must be one ICMP policy (answer_echo)");

  explicit bound(Lower& lower) : lower_(lower) {}
  bound(const bound&) = delete;
  bound& operator=(const bound&) = delete;

  template <class T>
  static constexpr bool contains() {
    return std::is_same_v<T, bound>;
  }
  template <class T>
  T& find() noexcept {
    return *this;
  }
  const icmp_stats& stats() const noexcept { return stats_; }

  // The body is out of line, with the IPv4 view by value, for the reason
  // ARP's is (layers/arp.hpp): inlined into IP's dispatch it slowed the
  // UDP and TCP paths beside it.
  template <class Context>
  void receive(const Context& context, bytes_view bytes) {
    receive_message(context.template get<ipv4::view>(), bytes);
  }

  [[gnu::noinline]] void receive_message(const ipv4::view ip, bytes_view bytes) {
    ++stats_.received;
    const auto message = icmp::view::checked(bytes);
    if (!message) {
      ++stats_.malformed;
      return;
    }
    if (!message->verify_checksum()) {
      ++stats_.bad_checksum;
      return;
    }
    if (message->type() == icmp::type::echo_request) {
      ++stats_.echo_requests;
      if (policy_.answer_echo(*message, ip)) reply_to_echo(*message, ip);
    } else if (message->is_error()) {
      ++stats_.errors_received;
    } else {
      ++stats_.other;
    }
  }

  void start() {}
  void stop() {}
  bool idle() const { return true; }
  std::optional<instant> next_deadline() const { return std::nullopt; }
  void on_timer(instant) {}

 private:
  // RFC 792 "Echo or Echo Reply": the reply carries the request's identifier,
  // sequence number and data, with the addresses swapped.
  void reply_to_echo(const icmp::view& request, const ipv4::view& ip) {
    frame reply = lower_.services().allocate_frame();
    if (!reply) return;
    auto body = reply->append(request.bytes().size());
    if (body.size() != request.bytes().size()) return;
    std::copy(request.bytes().begin(), request.bytes().end(), body.begin());
    auto message = icmp::mutable_view::checked(body);
    message->set_type(icmp::type::echo_reply);
    message->fill_checksum();
    ++stats_.echo_replies_sent;
    lower_.send(std::move(reply), lower_.make_header(ip.source(), icmp::ip_protocol));
  }

  Lower& lower_;
  [[no_unique_address]] policy policy_;
  icmp_stats stats_;
};

}  // namespace pystack

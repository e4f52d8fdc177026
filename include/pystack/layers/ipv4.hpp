// The IPv4 layer (RFC 791, RFC 1122 §3): checks and delivers datagrams to
// ICMP, UDP and TCP by protocol number, and sends theirs with the header its
// policy and the application's hook decide.
//
// Not yet here: fragmentation and reassembly. A fragment received is dropped
// and counted in `stats().fragments_dropped`; a datagram larger than the MTU
// is dropped and counted in `stats().too_big`.
//
// Policy points (an `IP<..., Policy>` argument that is not a layer):
//
// | expression                             | type            | meaning |
// | -------------------------------------- | --------------- | ------- |
// | `p.ttl(destination)`                   | `std::uint8_t`  | TTL of datagrams we send; default 64 (RFC 1700's recommendation, Linux's default) |
// | `p.identification(header)`             | `std::uint16_t` | the ID of a datagram we send (non-const: a policy may count); default a counter from a random start (RFC 6864 §4.2) |
// | `p.accept_destination(address, config)`| `bool`          | take a datagram sent to `address`; default ours, limited and directed broadcast |
// | `p.verify_checksum()`                  | `bool`          | drop datagrams whose header checksum is wrong; default true |
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <random>
#include <tuple>
#include <type_traits>

#include "pystack/layers/hooks.hpp"
#include "pystack/stack/buffer.hpp"
#include "pystack/stack/interface.hpp"
#include "pystack/stack/layer.hpp"
#include "pystack/wire/checksum.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"
#include "pystack/wire/udp.hpp"

namespace pystack {

class ipv4_default_policy {
 public:
  ipv4_default_policy() : next_id_(static_cast<std::uint16_t>(std::random_device{}())) {}
  std::uint8_t ttl(ipv4_address) const noexcept { return 64; }
  std::uint16_t identification(const ipv4::repr&) noexcept { return next_id_++; }
  bool accept_destination(ipv4_address destination, const interface_config& config) const noexcept {
    return destination == config.address || destination.is_broadcast() ||
           destination == config.subnet_broadcast();
  }
  bool verify_checksum() const noexcept { return true; }

 private:
  std::uint16_t next_id_;
};

template <class P>
concept ipv4_policy = requires(P& p, const P& cp, ipv4_address a, const ipv4::repr& header, const interface_config& c) {
  { cp.ttl(a) } -> std::convertible_to<std::uint8_t>;
  { p.identification(header) } -> std::convertible_to<std::uint16_t>;
  { cp.accept_destination(a, c) } -> std::convertible_to<bool>;
  { cp.verify_checksum() } -> std::convertible_to<bool>;
};

struct ipv4_stats {
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;
  std::uint64_t bad_checksum = 0;
  std::uint64_t not_for_us = 0;
  std::uint64_t fragments_dropped = 0;  // reassembly is not implemented yet
  std::uint64_t unknown_protocol = 0;
  std::uint64_t sent = 0;
  std::uint64_t no_route = 0;
  std::uint64_t too_big = 0;
  std::uint64_t no_headroom = 0;
};

template <class... Args>
struct IP {
  using layer_tag = network_layer_tag;
  static constexpr std::uint16_t ethertype = eth::ethertype::ipv4;
  using policy = policy_of<ipv4_default_policy, Args...>;
  // Well formed: one valid IPv4 policy at most; every upper carries an IP
  // protocol number, is valid, and no number is claimed twice.
  static constexpr bool valid = ipv4_policy<policy> && detail::ip_uppers_valid(uppers_of<Args...>{});

  template <class Lower>
  class bound;
};

template <class... Args>
template <class Lower>
class IP<Args...>::bound {
 public:
  using upper_list = uppers_of<Args...>;
  using uppers_type = bound_uppers_t<bound, upper_list>;
  using meta = uppers_meta<uppers_type>;

  static constexpr std::uint16_t ethertype = eth::ethertype::ipv4;
  static constexpr std::size_t max_header_size = ipv4::max_header_size;
  static constexpr std::size_t path_header_size = max_header_size + meta::max_path_header_size;

  static_assert(ipv4_policy<policy>,
                "IP<...>: an argument that is not a layer must be one IPv4 policy (see the table in layers/ipv4.hpp)");

  explicit bound(Lower& lower) : lower_(lower), uppers_(make_uppers<uppers_type>(*this)) {
    static_assert(keys_distinct(static_cast<uppers_type*>(nullptr)),
                  "IP<...>: two upper layers claim the same IP protocol number");
  }
  bound(const bound&) = delete;
  bound& operator=(const bound&) = delete;

  template <class T>
  static constexpr bool contains() {
    return std::is_same_v<T, bound> || meta::template contains<T>;
  }
  template <class T>
  T& find() noexcept {
    if constexpr (std::is_same_v<T, bound>) {
      return *this;
    } else {
      return find_in<T>(uppers_);
    }
  }
  auto& services() noexcept { return lower_.services(); }
  const ipv4_stats& stats() const noexcept { return stats_; }
  policy& current_policy() noexcept { return policy_; }

  template <class Context>
  void receive(const Context& context, bytes_view bytes) {
    ++stats_.received;
    const auto datagram = ipv4::view::checked(bytes);
    // Drops are [[unlikely]] (see Ethernet's receive).
    if (!datagram) [[unlikely]] {
      ++stats_.malformed;
      return;
    }
    if (policy_.verify_checksum() && !datagram->verify_checksum()) [[unlikely]] {
      ++stats_.bad_checksum;
      return;
    }
    if (!policy_.accept_destination(datagram->destination(), services().config())) [[unlikely]] {
      ++stats_.not_for_us;
      return;
    }
    if (datagram->is_fragment()) [[unlikely]] {
      ++stats_.fragments_dropped;
      return;
    }
    const auto up = context.push(*datagram);
    const bool delivered = dispatch_by_key(
        uppers_, datagram->protocol(), [](auto& upper) { return std::remove_reference_t<decltype(upper)>::ip_protocol; },
        [&](auto& upper) { upper.receive(up, datagram->payload()); });
    if (!delivered) [[unlikely]] ++stats_.unknown_protocol;
  }

  // A header for a datagram to `destination`, filled by the policy: our
  // source address, TTL, identification. The caller may change any field.
  // (Inline, like send: see Ethernet's send_ipv4.)
  [[gnu::always_inline]] ipv4::repr make_header(ipv4_address destination, std::uint8_t protocol) {
    ipv4::repr header = make_header_unnumbered(destination, protocol);
    header.identification = policy_.identification(header);
    return header;
  }

  // Sends the transport segment in the frame as one datagram with `header`.
  // The segment's checksum was computed for `header`'s addresses; when the
  // hook changes them, it is corrected incrementally (RFC 1624), so a hook
  // can move a segment to another address without breaking it.
  template <class Hook = no_hook>
  [[gnu::always_inline]] bool send(frame datagram_frame, ipv4::repr header, Hook&& hook = {}) {
    // The lower and the configuration read where they are needed, after
    // the header's stores, as before make_and_send (the facade's way down,
    // runtime/adapters.hpp, calls make_header and send apart).
    return send_through([this]() -> Lower& { return lower_; },
                        [this]() -> decltype(auto) { return services().config(); },
                        [](auto& link) -> auto& { return link.lower(); }, std::move(datagram_frame), header, hook);
  }

  // make_header, then `finish(header)` (the transport emits its own header
  // for it), then send. The way to the link layer and the configuration are
  // read once, before the transport's header byte stores: GCC must assume
  // that those may change any memory, the layers' references to their
  // lowers included, so with make_header and send apart it read the chain
  // (this layer's lower, the link layer's) again after them, and again
  // after this layer's own header stores. layers/tcp.hpp's emit uses this
  // when its lower has it (as runtime/adapters.hpp's direct_lower does).
  template <class Finish, class Hook>
  [[gnu::always_inline]] bool make_and_send(frame& datagram_frame, ipv4_address destination, std::uint8_t protocol,
                                            Finish&& finish, Hook& hook) {
    Lower& lower = lower_;
    const auto& config = lower.services().config();
    // The link layer's own lower (the device's side) read here too, for
    // the same reason, where the link layer has send_ipv4_to (Ethernet).
    const auto link_lower = [&] {
      if constexpr (link_takes_kind<Hook>) {
        return &lower.lower();
      } else {
        return &lower;  // not asked for: the link layer has no send_ipv4_to
      }
    }();
    // The identification asked for after `finish`: taken before, it was
    // kept across the transport's emit (TCP's checksum leaves no register
    // free), stored on the stack and loaded back. The policy sees the header
    // as it will be sent (the transport sets its source).
    ipv4::repr header = make_header_unnumbered(destination, protocol);
    finish(header);
    header.identification = policy_.identification(header);
    return send_through([&lower]() -> Lower& { return lower; }, [&config]() -> const auto& { return config; },
                        [link_lower](auto&) -> auto& { return *link_lower; }, std::move(datagram_frame), header, hook);
  }

 private:
  // Whether the link layer below has Ethernet's send_ipv4_to: the next hop's
  // kind decided here, the configuration and its own lower read here.
  template <class Hook>
  static constexpr bool link_takes_kind =
      requires(Lower& link, frame f, ipv4_address next_hop, const interface_config& config, Hook& hook) {
        link.send_ipv4_to(std::move(f), next_hop, next_hop_kind::host, config, link.lower(), hook);
      };

  // make_header without the identification.
  [[gnu::always_inline]] ipv4::repr make_header_unnumbered(ipv4_address destination, std::uint8_t protocol) {
    ipv4::repr header{.source = services().config().address, .destination = destination};
    header.protocol = protocol;
    header.ttl = policy_.ttl(destination);
    return header;
  }

  // send's body, with the lower and the configuration from `get_lower()`
  // and `get_config()`, called after the header's byte stores, and the link
  // layer's own lower from `get_link_lower(lower)` (for send_ipv4_to). The header
  // by reference: the caller's own copy (by value, the facade's way down
  // copied it once more, in memory).
  template <class GetLower, class GetConfig, class GetLinkLower, class Hook>
  [[gnu::always_inline]] bool send_through(const GetLower& get_lower, const GetConfig& get_config,
                                           const GetLinkLower& get_link_lower, frame datagram_frame,
                                           ipv4::repr& header, Hook& hook) {
    // Only a hook that takes an ipv4::repr can move the addresses; for the
    // others the two final_destination() walks cost 40 instructions a segment.
    if constexpr (std::is_invocable_v<Hook&, ipv4::repr&>) {
      const ipv4_address old_source = header.source;
      const ipv4_address old_final = header.final_destination();
      apply_hook(hook, header);
      if (header.source != old_source || header.final_destination() != old_final) {
        adjust_transport_checksum(datagram_frame->bytes(), header.protocol, old_source, old_final, header.source,
                                  header.final_destination());
      }
    }
    if (datagram_frame->prepend(header.size()).empty()) {
      ++stats_.no_headroom;
      return false;
    }
    // The datagram's bounds taken before the header's byte stores, which
    // GCC must assume may change the frame's own (it would load them again).
    const mutable_bytes datagram = datagram_frame->bytes();
    header.emit(datagram);
    const auto& config = get_config();
    if (datagram.size() > config.mtu) {
      ++stats_.too_big;
      return false;
    }
    // RFC 1122 §3.3.1.1: on-link destinations directly, others via the gateway.
    std::optional<ipv4_address> next_hop;
    if (config.on_link(header.destination) || header.destination.is_broadcast() || header.destination.is_multicast()) {
      next_hop = header.destination;
    } else {
      next_hop = config.gateway;
    }
    if (!next_hop) {
      ++stats_.no_route;
      return false;
    }
    auto& lower = get_lower();
    if constexpr (link_takes_kind<Hook>) {
      // How the link reaches the next hop, decided with the subnet's mask
      // the on-link test computed (before the counter's store: GCC must
      // assume any store may change the prefix length, a byte).
      const next_hop_kind kind = kind_of_next_hop(*next_hop, config);
      ++stats_.sent;
      return lower.send_ipv4_to(std::move(datagram_frame), *next_hop, kind, config, get_link_lower(lower), hook);
    } else {
      ++stats_.sent;
      return lower.send_ipv4(std::move(datagram_frame), *next_hop, hook);
    }
  }

 public:
  void start() { start_all(uppers_); }
  void stop() { stop_all(uppers_); }
  bool idle() const { return all_idle(uppers_); }
  std::optional<instant> next_deadline() const { return earliest_deadline(uppers_); }
  void on_timer(instant now) { fire_due(uppers_, now); }

 private:
  template <class... Ts>
  static constexpr bool keys_distinct(std::tuple<Ts...>*) {
    return static_keys_distinct<Ts...>([](auto t) { return decltype(t)::type::ip_protocol; });
  }

  static void adjust_transport_checksum(mutable_bytes segment, std::uint8_t protocol, ipv4_address old_source,
                                        ipv4_address old_destination, ipv4_address new_source,
                                        ipv4_address new_destination) {
    std::size_t offset;
    if (protocol == ipv4::protocol::tcp) {
      offset = tcp::field::checksum.offset;
    } else if (protocol == ipv4::protocol::udp) {
      offset = udp::field::checksum.offset;
    } else {
      return;  // ICMP's checksum covers no pseudo-header
    }
    if (segment.size() < offset + 2) return;
    std::uint16_t sum = wire::load_be16(segment.data() + offset);
    if (protocol == ipv4::protocol::udp && sum == 0) return;  // none sent (RFC 768)
    sum = checksum::update32(sum, old_source.value, new_source.value);
    sum = checksum::update32(sum, old_destination.value, new_destination.value);
    if (protocol == ipv4::protocol::udp && sum == 0) sum = 0xffff;
    wire::store_be16(segment.data() + offset, sum);
  }

  Lower& lower_;
  [[no_unique_address]] policy policy_;
  ipv4_stats stats_;
  uppers_type uppers_;
};

}  // namespace pystack

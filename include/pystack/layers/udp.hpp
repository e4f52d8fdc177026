// The UDP layer (RFC 768, RFC 1122 §4.1): checks datagrams and delivers them
// by destination port to the applications the stack's type names:
//
//   UDP<Port<7, Echo>, Port<53, DnsServer>>
//
// An application is a class; the stack owns one instance per Port. It is
// called on the loop thread with the typed headers of every layer below:
//
// | expression                                   | meaning |
// | -------------------------------------------- | ------- |
// | `app.on_datagram(headers, payload, socket)`  | required: a datagram for this port; `headers.get<ipv4::view>()`, `headers.get<udp::view>()` ... |
// | `app.on_start(socket)`                       | optional: the stack started |
// | `app.next_deadline()`, `app.on_timer(now, socket)` | optional: the application's own timers |
//
// `socket.send_to(address, port, payload, hook)` sends from the app's port;
// `socket.reply(headers, payload, hook)` answers the datagram `headers`
// describe. The hook (hooks.hpp) may rewrite the UDP, IPv4 and Ethernet
// headers of what it sends.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>

#include "pystack/layers/hooks.hpp"
#include "pystack/stack/buffer.hpp"
#include "pystack/stack/layer.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/udp.hpp"

namespace pystack {

struct udp_stats {
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;
  std::uint64_t bad_checksum = 0;
  std::uint64_t no_listener = 0;  // no application on the destination port
  std::uint64_t sent = 0;
  std::uint64_t too_big = 0;      // the payload does not fit one datagram on this link
};

// What an application uses to send: bound to the UDP layer and its port.
template <class UdpLayer>
class udp_socket {
 public:
  udp_socket(UdpLayer& layer, std::uint16_t port) noexcept : layer_(&layer), port_(port) {}

  std::uint16_t local_port() const noexcept { return port_; }

  template <class Hook = no_hook>
  bool send_to(ipv4_address destination, std::uint16_t destination_port, bytes_view payload, Hook&& hook = {}) {
    return layer_->send(port_, destination, destination_port, payload, hook);
  }

  // Answers the datagram these headers came with: to its source address and port.
  template <class Context, class Hook = no_hook>
  bool reply(const Context& context, bytes_view payload, Hook&& hook = {}) {
    return send_to(context.template get<ipv4::view>().source(), context.template get<udp::view>().source_port(),
                   payload, hook);
  }

 private:
  UdpLayer* layer_;
  std::uint16_t port_;
};

template <class App, class Context, class Socket>
concept udp_application = requires(App& app, const Context& context, bytes_view payload, Socket& socket) {
  app.on_datagram(context, payload, socket);
};

// An application on a UDP port, as a layer description.
template <std::uint16_t Number, class App>
struct Port {
  using layer_tag = application_tag;
  static constexpr std::uint16_t port = Number;
  using application = App;
  static constexpr bool valid = std::is_default_constructible_v<App>;

  template <class Lower>
  class bound {
   public:
    static constexpr std::uint16_t port = Number;
    static constexpr std::size_t max_header_size = 0;
    static constexpr std::size_t path_header_size = 0;

    explicit bound(Lower& lower) : lower_(lower) {}
    bound(const bound&) = delete;
    bound& operator=(const bound&) = delete;

    template <class T>
    static constexpr bool contains() {
      return std::is_same_v<T, bound> || std::is_same_v<T, App>;
    }
    template <class T>
    T& find() noexcept {
      if constexpr (std::is_same_v<T, App>) {
        return app_;
      } else {
        return *this;
      }
    }
    App& application() noexcept { return app_; }
    udp_socket<Lower> socket() noexcept { return {lower_, Number}; }

    template <class Context>
    void receive(const Context& context, bytes_view payload) {
      static_assert(udp_application<App, Context, udp_socket<Lower>>,
                    "Port<N, App>: App must have on_datagram(headers, payload, socket)");
      auto s = socket();
      app_.on_datagram(context, payload, s);
    }

    void start() {
      if constexpr (requires(udp_socket<Lower>& s) { app_.on_start(s); }) {
        auto s = socket();
        app_.on_start(s);
      }
    }
    void stop() {
      if constexpr (requires { app_.on_stop(); }) app_.on_stop();
    }
    bool idle() const { return true; }
    std::optional<instant> next_deadline() const {
      if constexpr (requires { app_.next_deadline(); }) {
        return app_.next_deadline();
      } else {
        return std::nullopt;
      }
    }
    void on_timer(instant now) {
      if constexpr (requires(udp_socket<Lower>& s) { app_.on_timer(now, s); }) {
        auto s = socket();
        app_.on_timer(now, s);
      }
    }

   private:
    Lower& lower_;
    App app_{};
  };
};

namespace detail {
template <class... Ps>
constexpr bool udp_ports_valid(type_list<Ps...>) {
  if constexpr (!((valid_description<Ps> && (requires { Ps::port; } || runtime_keyed_upper<Ps>)) && ...)) {
    return false;
  } else {
    return static_keys_distinct<Ps...>([](auto t) { return decltype(t)::type::port; });
  }
}
}  // namespace detail

template <class... Args>
struct UDP {
  using layer_tag = transport_layer_tag;
  static constexpr std::uint8_t ip_protocol = udp::ip_protocol;
  // Well formed: every argument is a valid Port<N, App>, no port twice.
  static constexpr bool valid = detail::udp_ports_valid(type_list<Args...>{});

  template <class Lower>
  class bound;
};

template <class... Args>
template <class Lower>
class UDP<Args...>::bound {
 public:
  using upper_list = uppers_of<Args...>;
  using uppers_type = bound_uppers_t<bound, upper_list>;
  using meta = uppers_meta<uppers_type>;

  static constexpr std::uint8_t ip_protocol = udp::ip_protocol;
  static constexpr std::size_t max_header_size = udp::header_size;
  static constexpr std::size_t path_header_size = max_header_size;

  static_assert(policies_of<Args...>::size == 0, "UDP<...>: every argument must be a Port<N, App>");

  explicit bound(Lower& lower) : lower_(lower), uppers_(make_uppers<uppers_type>(*this)) {
    static_assert(ports_distinct(static_cast<uppers_type*>(nullptr)), "UDP<...>: two applications on the same port");
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
  const udp_stats& stats() const noexcept { return stats_; }

  // True when an application of the stack's type listens on `port`.
  static constexpr bool port_in_use(std::uint16_t port) noexcept { return port_used(port, static_cast<uppers_type*>(nullptr)); }

  template <class Context>
  void receive(const Context& context, bytes_view bytes) {
    ++stats_.received;
    const auto datagram = udp::view::checked(bytes);
    // Drops are [[unlikely]] (see Ethernet's receive).
    if (!datagram) [[unlikely]] {
      ++stats_.malformed;
      return;
    }
    const auto& ip = context.template get<ipv4::view>();
    if (!datagram->verify_checksum(ip.source(), ip.final_destination())) [[unlikely]] {
      ++stats_.bad_checksum;
      return;
    }
    const auto up = context.push(*datagram);
    const bool delivered = dispatch_by_key(
        uppers_, datagram->destination_port(), [](auto& app) { return std::remove_reference_t<decltype(app)>::port; },
        [&](auto& app) { app.receive(up, datagram->payload()); });
    if (!delivered) [[unlikely]] ++stats_.no_listener;
  }

  // Sends `payload` from `source_port` to `destination`:`destination_port`.
  template <class Hook = no_hook>
  bool send(std::uint16_t source_port, ipv4_address destination, std::uint16_t destination_port, bytes_view payload,
            Hook&& hook = {}) {
    frame datagram = services().allocate_frame();
    if (!datagram) return false;
    auto body = datagram->append(payload.size());
    if (body.size() != payload.size() || payload.size() + udp::header_size > 0xffff) {
      ++stats_.too_big;
      return false;
    }
    std::copy(payload.begin(), payload.end(), body.begin());
    udp::repr header{.source_port = source_port, .destination_port = destination_port};
    apply_hook(hook, header);
    if (datagram->prepend(udp::header_size).empty()) return false;
    ipv4::repr ip = lower_.make_header(destination, udp::ip_protocol);
    header.emit(datagram->bytes(), ip.source, ip.final_destination());
    ++stats_.sent;
    return lower_.send(std::move(datagram), ip, hook);
  }

  void start() { start_all(uppers_); }
  void stop() { stop_all(uppers_); }
  bool idle() const { return all_idle(uppers_); }
  std::optional<instant> next_deadline() const { return earliest_deadline(uppers_); }
  void on_timer(instant now) { fire_due(uppers_, now); }

 private:
  template <class... Ts>
  static constexpr bool ports_distinct(std::tuple<Ts...>*) {
    return static_keys_distinct<Ts...>([](auto t) { return decltype(t)::type::port; });
  }
  template <class... Ts>
  static constexpr bool port_used(std::uint16_t port, std::tuple<Ts...>*) {
    return ([&] {
      if constexpr (runtime_keyed_upper<Ts>) {
        return false;  // its ports are known at run time only: ask its table
      } else {
        return Ts::port == port;
      }
    }() || ...);
  }

  Lower& lower_;
  udp_stats stats_;
  uppers_type uppers_;
};

}  // namespace pystack

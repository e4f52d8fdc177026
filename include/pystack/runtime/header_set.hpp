// The header context of the runtime facade: the static `headers<...>` made
// dynamic at an erased layer boundary.
//
// A static layer passes up `headers<eth::view, ipv4::view, udp::view>`, a
// type that says exactly which headers lie below. Behind the facade's
// virtual boundary the type cannot say it, so `header_set` refers to a
// checked view of each header the library decodes, or to none, and says at
// run time which are there: pystack's `kwargs` dictionary ({"Ether": ...,
// "IP": ...}) with typed values instead of strings. Like the static context
// it refers to the views, which live in the frames of the receive calls
// below and point into the received frame: it is valid only during the call
// that receives it. (Referring rather than copying keeps making one, once
// per packet for an application, to a few stores.)
#pragma once

#include <type_traits>

#include "pystack/stack/clock.hpp"
#include "pystack/stack/headers.hpp"
#include "pystack/wire/arp.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/icmp.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"
#include "pystack/wire/udp.hpp"

namespace pystack::runtime {

class header_set {
 public:
  header_set() noexcept = default;
  explicit header_set(instant received_at) noexcept : received_at_(received_at) {}

  // The context a static layer built, as a header_set.
  template <class... Views>
  static header_set from(const headers<Views...>& context) noexcept {
    header_set set(context.timestamp());
    (set.put(context.template get<Views>()), ...);
    return set;
  }

  // When the device received the frame.
  instant timestamp() const noexcept { return received_at_; }

  // Each header below, or null when it is not there (`if (headers.ip())`,
  // `headers.ip()->source()`).
  const eth::view* ethernet() const noexcept { return ethernet_; }
  const arp::ethernet_ipv4_view* arp() const noexcept { return arp_; }
  const ipv4::view* ip() const noexcept { return ip_; }
  const icmp::view* icmp() const noexcept { return icmp_; }
  const udp::view* udp() const noexcept { return udp_; }
  const tcp::view* tcp() const noexcept { return tcp_; }

  // Adds (or replaces) a header: for a layer that decodes one and passes
  // the set up, and for tests that build a context by hand. The view must
  // outlive the set's use, so a temporary is refused.
  template <class View>
  void put(const View& v) noexcept {
    slot<View>(*this) = &v;
  }
  template <class View>
  void put(const View&& v) = delete;

  // Calls `f(context)` with a static `headers<...>` holding the Ethernet
  // header (when there is one) followed by `Required...`, so that a static
  // layer behind the facade gets the typed context it was written for. Does
  // nothing and returns false when one of `Required...` is absent.
  template <class... Required, class F>
  bool with_static_context(F&& f) const {
    if (!(has<Required>() && ...)) return false;
    if (ethernet_) {
      f(headers<eth::view, Required...>(received_at_, *ethernet_, get<Required>()...));
    } else {
      f(headers<Required...>(received_at_, get<Required>()...));
    }
    return true;
  }

 private:
  template <class View>
  bool has() const noexcept {
    return slot<View>(*this) != nullptr;
  }
  template <class View>
  const View& get() const noexcept {
    return *slot<View>(*this);
  }
  template <class View, class Self>
  static auto& slot(Self& self) noexcept {
    if constexpr (std::is_same_v<View, eth::view>) {
      return self.ethernet_;
    } else if constexpr (std::is_same_v<View, arp::ethernet_ipv4_view>) {
      return self.arp_;
    } else if constexpr (std::is_same_v<View, ipv4::view>) {
      return self.ip_;
    } else if constexpr (std::is_same_v<View, icmp::view>) {
      return self.icmp_;
    } else if constexpr (std::is_same_v<View, udp::view>) {
      return self.udp_;
    } else {
      static_assert(std::is_same_v<View, tcp::view>, "header_set holds Ethernet, ARP, IPv4, ICMP, UDP and TCP views");
      return self.tcp_;
    }
  }

  instant received_at_{};
  const eth::view* ethernet_ = nullptr;
  const arp::ethernet_ipv4_view* arp_ = nullptr;
  const ipv4::view* ip_ = nullptr;
  const icmp::view* icmp_ = nullptr;
  const udp::view* udp_ = nullptr;
  const tcp::view* tcp_ = nullptr;
};

}  // namespace pystack::runtime

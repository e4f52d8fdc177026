// The header context of the runtime facade: the static `headers<...>` made
// dynamic at an erased layer boundary.
//
// A static layer passes up `headers<eth::view, ipv4::view, udp::view>`, a
// type that says exactly which headers lie below. Behind the facade's
// virtual boundary the type cannot say it, so `header_set` holds an optional
// checked view of each header the library decodes and says at run time which
// are there: pystack's `kwargs` dictionary ({"Ether": ..., "IP": ...}) with
// typed values instead of strings. Views point into the received frame and
// are valid only during the call that receives them, like the static ones.
#pragma once

#include <optional>
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

  // Each header below, when it is there.
  const std::optional<eth::view>& ethernet() const noexcept { return ethernet_; }
  const std::optional<arp::ethernet_ipv4_view>& arp() const noexcept { return arp_; }
  const std::optional<ipv4::view>& ip() const noexcept { return ip_; }
  const std::optional<icmp::view>& icmp() const noexcept { return icmp_; }
  const std::optional<udp::view>& udp() const noexcept { return udp_; }
  const std::optional<tcp::view>& tcp() const noexcept { return tcp_; }

  // Adds (or replaces) a header: for a layer that decodes one and passes
  // the set up, and for tests that build a context by hand.
  void put(const eth::view& v) noexcept { ethernet_ = v; }
  void put(const arp::ethernet_ipv4_view& v) noexcept { arp_ = v; }
  void put(const ipv4::view& v) noexcept { ip_ = v; }
  void put(const icmp::view& v) noexcept { icmp_ = v; }
  void put(const udp::view& v) noexcept { udp_ = v; }
  void put(const tcp::view& v) noexcept { tcp_ = v; }

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
    return slot<View>(*this).has_value();
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
  std::optional<eth::view> ethernet_;
  std::optional<arp::ethernet_ipv4_view> arp_;
  std::optional<ipv4::view> ip_;
  std::optional<icmp::view> icmp_;
  std::optional<udp::view> udp_;
  std::optional<tcp::view> tcp_;
};

}  // namespace pystack::runtime

// The Ethernet layer: frames in and out of the device, dispatch by EtherType,
// and next-hop resolution for IPv4 through its ARP sibling.
//
// Policy points (an `Ethernet<..., Policy>` argument that is not a layer):
//
// | expression                                  | type   | meaning |
// | ------------------------------------------- | ------ | ------- |
// | `p.accept_destination(mac, config)`         | `bool` | take a frame sent to `mac`; the default takes our address, broadcast and multicast (IEEE 802.3 address recognition), i.e. not promiscuous |
//
// A stateless policy takes no space ([[no_unique_address]]).
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>

#include "pystack/layers/hooks.hpp"
#include "pystack/stack/buffer.hpp"
#include "pystack/stack/headers.hpp"
#include "pystack/stack/interface.hpp"
#include "pystack/stack/layer.hpp"
#include "pystack/wire/ethernet.hpp"

namespace pystack {

struct ethernet_default_policy {
  template <class Config>
  constexpr bool accept_destination(mac_address destination, const Config& config) const noexcept {
    return destination == config.mac || destination.is_multicast();  // broadcast is a multicast address
  }
};

// Accepts every frame, whoever it was sent to (a sniffer, a MITM).
struct ethernet_promiscuous_policy {
  template <class Config>
  constexpr bool accept_destination(mac_address, const Config&) const noexcept {
    return true;
  }
};

template <class P>
concept ethernet_policy = requires(const P& p, mac_address mac, const interface_config& config) {
  { p.accept_destination(mac, config) } -> std::convertible_to<bool>;
};

struct ethernet_stats {
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;           // not a valid Ethernet II frame
  std::uint64_t not_for_us = 0;          // the policy refused the destination
  std::uint64_t unknown_ethertype = 0;   // no upper layer for it
  std::uint64_t sent = 0;
  std::uint64_t send_failures = 0;       // the device refused the frame
  std::uint64_t no_headroom = 0;         // a hook grew the headers past the headroom
  std::uint64_t unresolved = 0;          // no way to find the next hop's address
};

// RFC 1112 §6.4: an IPv4 multicast group maps to 01:00:5e plus its low 23 bits.
constexpr mac_address multicast_mac(ipv4_address group) noexcept {
  return {{0x01, 0x00, 0x5e, static_cast<byte>((group.value >> 16) & 0x7f), static_cast<byte>(group.value >> 8),
           static_cast<byte>(group.value)}};
}

template <class... Args>
struct Ethernet {
  using layer_tag = link_layer_tag;
  using policy = policy_of<ethernet_default_policy, Args...>;

  // Well formed with these upper layers added (the ones a Stack lists after
  // the link layer): one policy at most, a valid Ethernet policy, and at least
  // one upper, each an EtherType carrier, each valid, no EtherType twice.
  template <class... ExtraUppers>
  static constexpr bool valid_with =
      ethernet_policy<policy> && detail::link_uppers_valid(uppers_of<Args..., ExtraUppers...>{});
  static constexpr bool valid = valid_with<>;

  template <class Lower, class... ExtraUppers>
  class bound;
};

template <class... Args>
template <class Lower, class... ExtraUppers>
class Ethernet<Args...>::bound {
 public:
  using upper_list = uppers_of<Args..., ExtraUppers...>;
  using uppers_type = bound_uppers_t<bound, upper_list>;
  using meta = uppers_meta<uppers_type>;

  static constexpr std::size_t max_header_size = eth::header_size + eth::max_vlan_tags * eth::vlan_tag_size;
  static constexpr std::size_t path_header_size = max_header_size + meta::max_path_header_size;
  // The most header bytes any frame sent through this stack needs in front.
  static constexpr std::size_t send_headroom = path_header_size;

  static_assert(ethernet_policy<policy>,
                "Ethernet<...>: an argument that is not a layer must be one Ethernet policy "
                "(accept_destination(mac, config) -> bool); two policies are ambiguous");
  static_assert(std::tuple_size_v<uppers_type> > 0, "Ethernet<...>: a link layer needs at least one upper layer");

  explicit bound(Lower& lower) : lower_(lower), uppers_(make_uppers<uppers_type>(*this)) {
    static_assert(keys_distinct(static_cast<uppers_type*>(nullptr)),
                  "Ethernet<...>: two upper layers claim the same EtherType");
  }
  bound(const bound&) = delete;
  bound& operator=(const bound&) = delete;

  // ---- composition ----
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
  // The layer below (the device's side), for IP's send_ipv4_to.
  Lower& lower() noexcept { return lower_; }
  const ethernet_stats& stats() const noexcept { return stats_; }

  // ---- receive ----
  template <class Context>
  void receive(const Context& context, bytes_view bytes) {
    ++stats_.received;
    const auto frame = eth::view::checked(bytes);
    // Drops are [[unlikely]]: with GCC's guess that each check fails half the
    // time, the delivery path looked too rare to inline its checksum.
    if (!frame) [[unlikely]] {
      ++stats_.malformed;
      return;
    }
    if (!policy_.accept_destination(frame->destination(), services().config())) [[unlikely]] {
      ++stats_.not_for_us;
      return;
    }
    const auto up = context.push(*frame);
    const bool delivered = dispatch_by_key(
        uppers_, frame->ethertype(), [](auto& upper) { return std::remove_reference_t<decltype(upper)>::ethertype; },
        hand_over<decltype(up)>{up, frame->payload()});
    if (!delivered) [[unlikely]] ++stats_.unknown_ethertype;
  }

  // ---- send ----

  // Prepends the Ethernet header to the frame and transmits it. The hook sees
  // the header first and may rewrite anything, VLAN tags included.
  template <class Hook = no_hook>
  bool send(frame_buffer& frame_to_send, mac_address destination, std::uint16_t ethertype, Hook&& hook = {}) {
    eth::repr header{.destination = destination, .source = services().config().mac, .ethertype = ethertype};
    apply_hook(hook, header);
    if (!prepend_header(frame_to_send, header)) return false;
    return transmit(frame_to_send.bytes());
  }

  // Sends an IPv4 datagram (already in the frame) to `next_hop`: broadcast
  // and multicast map to their link addresses (RFC 1112 §6.4); unicast goes
  // through the ARP sibling, which holds the frame while it asks (RFC 826).
  // Inline, as IP's send and make_header are: a segment's way down is then
  // one function, in which the compiler sees the headers built above and
  // folds what they leave constant (TCP's ACK, layers/tcp.hpp send_ack).
  template <class Hook = no_hook>
  [[gnu::always_inline]] bool send_ipv4(frame frame_to_send, ipv4_address next_hop, Hook&& hook = {}) {
    const auto kind = [next_hop](const auto& config) __attribute__((always_inline)) {
      return kind_of_next_hop(next_hop, config);
    };
    // lower_ read when transmitting, after the resolution, as before.
    return send_ipv4_as(std::move(frame_to_send), next_hop, kind, services().config(),
                        [this]() -> Lower& { return lower_; }, hook);
  }

  // The same with the next hop's kind (`kind_of_next_hop`) decided by the
  // caller: IP's send decides it next to its on-link test (RFC 1122
  // §3.3.1.1), where the subnet's mask is at hand. Taken here, after the
  // stores to the frame (which GCC must assume may change the
  // configuration's prefix length, a byte), the mask was read and computed
  // again for every datagram. `config` is the services' configuration, the
  // same object as this layer's (IP's services are its lower's): IP read it
  // before the frame's byte stores, after which GCC must assume this
  // layer's reference to its lower may have changed and read it again.
  // `lower` is this layer's lower(), read by IP before those stores for the
  // same reason: the frame goes to the device through it (read again after
  // ARP's clock call, through this layer's address kept on the stack, it
  // cost a load more).
  template <class Hook = no_hook>
  [[gnu::always_inline]] bool send_ipv4_to(frame frame_to_send, ipv4_address next_hop, next_hop_kind kind,
                                           const interface_config& config, Lower& lower, Hook&& hook = {}) {
    return send_ipv4_as(std::move(frame_to_send), next_hop, [kind](const auto&) { return kind; }, config,
                        [&lower]() -> Lower& { return lower; }, hook);
  }

 private:
  // Both: `kind(config)` tells the next hop's kind, asked when resolving.
  // `get_lower()` gives the lower to transmit through, asked when transmitting.
  template <class Kind, class GetLower, class Hook>
  [[gnu::always_inline]] bool send_ipv4_as(frame frame_to_send, ipv4_address next_hop, const Kind& kind,
                                           const interface_config& config, const GetLower& get_lower,
                                           Hook&& hook) {
    const auto resolve = [&]() __attribute__((always_inline)) -> std::optional<mac_address> {
      const next_hop_kind how = kind(config);
      if (how == next_hop_kind::broadcast) return mac_address::broadcast();
      if (how == next_hop_kind::multicast) return multicast_mac(next_hop);
      if constexpr (has_resolver) {
        return resolver().lookup(next_hop);
      } else {
        return std::nullopt;
      }
    };
    std::optional<mac_address> resolved;
    bool hook_chose_destination = false;
    if constexpr (std::is_invocable_v<Hook&, eth::repr&>) {
      resolved = resolve();
      // Unresolved, the frame is held with a zero destination (ARP writes it).
      const mac_address destination = resolved ? *resolved : mac_address{};
      eth::repr header{.destination = destination, .source = config.mac, .ethertype = eth::ethertype::ipv4};
      const mac_address before_hook = header.destination;
      apply_hook(hook, header);
      hook_chose_destination = header.destination != before_hook;
      if (!prepend_header(*frame_to_send, header)) return false;
    } else {
      // No hook sees the header: the same 14 bytes written straight into
      // the frame, without the repr (with its VLAN array) made in memory
      // and copied from there (bench/RESULTS.md, "Dispatch"). The frame's
      // bounds are taken before the resolution (the ARP entry's freshness
      // asks the clock, a call that may change any memory, so the bounds
      // IPv4 left known would be loaded and tested again after it) and
      // before the header's byte stores (see IP's send). Resolving has no
      // effect to order against the headroom test.
      if (frame_to_send->prepend(eth::header_size).empty()) {
        ++stats_.no_headroom;
        return false;
      }
      const mutable_bytes whole_frame = frame_to_send->bytes();
      // The source and EtherType before the resolution too: the
      // configuration is then not needed across ARP's clock call (it was
      // kept in memory around it and loaded again).
      eth::repr::emit_untagged_source(whole_frame.data(), config.mac, eth::ethertype::ipv4);
      resolved = resolve();
      // Unresolved, the frame is held with a zero destination (ARP writes it).
      eth::repr::emit_destination(whole_frame.data(), resolved ? *resolved : mac_address{});
      if (resolved) return transmit_through(get_lower(), whole_frame);
    }
    // A destination the hook chose itself needs no resolution.
    if (resolved || hook_chose_destination) return transmit_through(get_lower(), frame_to_send->bytes());
    if constexpr (has_resolver) {
      resolver().hold(next_hop, std::move(frame_to_send));
      return true;
    } else {
      ++stats_.unresolved;
      return false;
    }
  }

  // transmit through `lower`, this layer's lower_ read earlier by the caller.
  [[gnu::always_inline]] bool transmit_through(Lower& lower, bytes_view whole_frame) {
    if (!lower.transmit(whole_frame)) {
      ++stats_.send_failures;
      return false;
    }
    ++stats_.sent;
    return true;
  }

 public:
  // Transmits a complete frame (ARP releasing frames it held).
  [[gnu::always_inline]] bool transmit(bytes_view whole_frame) { return transmit_through(lower_, whole_frame); }

  // ---- lifecycle and time ----
  void start() { start_all(uppers_); }
  void stop() { stop_all(uppers_); }
  bool idle() const { return all_idle(uppers_); }
  std::optional<instant> next_deadline() const { return earliest_deadline(uppers_); }
  void on_timer(instant now) { fire_due(uppers_, now); }

 private:
  template <class... Ts>
  static constexpr bool keys_distinct(std::tuple<Ts...>*) {
    return static_keys_distinct<Ts...>([](auto t) { return decltype(t)::type::ethertype; });
  }

  [[gnu::always_inline]] bool prepend_header(frame_buffer& frame_to_send, const eth::repr& header) {
    if (frame_to_send.prepend(header.size()).empty()) {
      ++stats_.no_headroom;
      return false;
    }
    header.emit(frame_to_send.bytes());
    return true;
  }

  static constexpr bool has_resolver = meta::resolver_index() < std::tuple_size_v<uppers_type>;
  auto& resolver() noexcept { return std::get<meta::resolver_index()>(uppers_); }

  Lower& lower_;
  [[no_unique_address]] policy policy_;
  ethernet_stats stats_;
  uppers_type uppers_;
};

}  // namespace pystack

// The addresses a stack answers to on its interface.
#pragma once

#include <cstdint>
#include <optional>

#include "pystack/wire/address.hpp"

namespace pystack {

// The addresses a stack answers to on its interface.
struct interface_config {
  mac_address mac;
  ipv4_address address;
  std::uint8_t prefix_length = 24;
  std::optional<ipv4_address> gateway;
  std::uint16_t mtu = 1500;

  // The prefix as a mask (0 to 32 bits). Shifted in 64 bits, so that /0
  // needs no branch: every frame computes it a few times.
  constexpr std::uint32_t subnet_mask() const noexcept {
    return static_cast<std::uint32_t>(~std::uint64_t{0} << (32 - prefix_length));
  }
  // True when `a` is on the interface's own subnet (no gateway needed).
  constexpr bool on_link(ipv4_address a) const noexcept {
    return ((a.value ^ address.value) & subnet_mask()) == 0;
  }
  // The directed broadcast address of the subnet.
  constexpr ipv4_address subnet_broadcast() const noexcept { return {address.value | ~subnet_mask()}; }
};

// How the link reaches an IPv4 next hop: one host, whose link address is
// resolved (ARP, RFC 826); every host, the limited or the subnet's directed
// broadcast (RFC 919, RFC 922); a group (RFC 1112 §6.4).
enum class next_hop_kind : std::uint8_t { host, broadcast, multicast };

constexpr next_hop_kind kind_of_next_hop(ipv4_address next_hop, const interface_config& config) noexcept {
  if (next_hop.is_broadcast() || next_hop == config.subnet_broadcast()) return next_hop_kind::broadcast;
  if (next_hop.is_multicast()) return next_hop_kind::multicast;
  return next_hop_kind::host;
}

}  // namespace pystack

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

  // True when `a` is on the interface's own subnet (no gateway needed).
  constexpr bool on_link(ipv4_address a) const noexcept {
    const std::uint32_t mask = prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_length);
    return (a.value & mask) == (address.value & mask);
  }
  // The directed broadcast address of the subnet.
  constexpr ipv4_address subnet_broadcast() const noexcept {
    const std::uint32_t mask = prefix_length == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_length);
    return {address.value | ~mask};
  }
};

}  // namespace pystack

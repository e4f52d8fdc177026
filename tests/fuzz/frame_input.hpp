// How the whole-frame fuzz target reads its input, shared with the seed tool
// that writes inputs of that shape: one byte choosing the link type, then the
// frame.
#pragma once

#include <array>
#include <cstdint>

#include "pystack/pcap/file.hpp"

namespace pystack::fuzz {

inline constexpr std::array<pcap::link_type, 3> frame_link_types = {
    pcap::link_type::ethernet, pcap::link_type::raw, pcap::link_type::ipv4};

inline pcap::link_type link_from_byte(std::uint8_t b) noexcept { return frame_link_types[b % frame_link_types.size()]; }

inline std::uint8_t byte_from_link(pcap::link_type t) noexcept {
  for (std::uint8_t i = 0; i < frame_link_types.size(); ++i) {
    if (frame_link_types[i] == t) return i;
  }
  return 0;
}

}  // namespace pystack::fuzz

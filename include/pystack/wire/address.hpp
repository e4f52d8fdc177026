// Link and network addresses: value types with text forms.
#pragma once

#include <array>
#include <charconv>
#include <cstring>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "pystack/wire/bytes.hpp"

namespace pystack {

// An IEEE 802 MAC address, six octets in wire order.
struct mac_address {
  std::array<byte, 6> octets{};

  static constexpr mac_address broadcast() noexcept {
    return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  }
  static constexpr mac_address from_bytes(const byte* p) noexcept {
    return {{p[0], p[1], p[2], p[3], p[4], p[5]}};
  }
  // One 6-byte copy (a mac_address is never inside the bytes it is written
  // to): the byte loop made GCC test at run time whether the two overlap.
  constexpr void to_bytes(byte* p) const noexcept {
    if (std::is_constant_evaluated()) {
      for (std::size_t i = 0; i < 6; ++i) p[i] = octets[i];
    } else {
      std::memcpy(p, octets.data(), octets.size());
    }
  }
  constexpr bool is_broadcast() const noexcept { return *this == broadcast(); }
  // The I/G bit (IEEE 802-2014 §8.2.2): group addresses include broadcast.
  constexpr bool is_multicast() const noexcept { return (octets[0] & 0x01) != 0; }

  friend constexpr bool operator==(const mac_address&, const mac_address&) = default;
  friend constexpr auto operator<=>(const mac_address&, const mac_address&) = default;

  // "aa:bb:cc:dd:ee:ff", lowercase.
  std::string to_string() const {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s(17, ':');
    for (std::size_t i = 0; i < 6; ++i) {
      s[i * 3] = hex[octets[i] >> 4];
      s[i * 3 + 1] = hex[octets[i] & 0xf];
    }
    return s;
  }

  // Accepts six hex pairs separated by ':' or '-'.
  static std::optional<mac_address> parse(std::string_view text) {
    if (text.size() != 17) return std::nullopt;
    mac_address m;
    for (std::size_t i = 0; i < 6; ++i) {
      if (i > 0 && text[i * 3 - 1] != ':' && text[i * 3 - 1] != '-') return std::nullopt;
      unsigned v = 0;
      auto first = text.data() + i * 3;
      auto [end, ec] = std::from_chars(first, first + 2, v, 16);
      if (ec != std::errc{} || end != first + 2) return std::nullopt;
      m.octets[i] = static_cast<byte>(v);
    }
    return m;
  }
};

// An IPv4 address held as a host-order integer, so that masks and
// comparisons are plain arithmetic; `from_bytes` / `to_bytes` convert at the
// wire boundary.
struct ipv4_address {
  std::uint32_t value = 0;

  static constexpr ipv4_address from_octets(byte a, byte b, byte c, byte d) noexcept {
    return {(std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d};
  }
  static constexpr ipv4_address from_bytes(const byte* p) noexcept { return {wire::load_be32(p)}; }
  constexpr void to_bytes(byte* p) const noexcept { wire::store_be32(p, value); }
  static constexpr ipv4_address any() noexcept { return {0}; }
  static constexpr ipv4_address broadcast() noexcept { return {0xffffffffu}; }

  constexpr bool is_unspecified() const noexcept { return value == 0; }
  constexpr bool is_broadcast() const noexcept { return value == 0xffffffffu; }
  constexpr bool is_multicast() const noexcept { return (value >> 28) == 0xe; }
  constexpr bool is_loopback() const noexcept { return (value >> 24) == 127; }

  friend constexpr bool operator==(const ipv4_address&, const ipv4_address&) = default;
  friend constexpr auto operator<=>(const ipv4_address&, const ipv4_address&) = default;

  // Dotted quad.
  std::string to_string() const {
    std::string s;
    s.reserve(15);
    for (int shift = 24; shift >= 0; shift -= 8) {
      s += std::to_string((value >> shift) & 0xff);
      if (shift) s += '.';
    }
    return s;
  }

  // Strict dotted quad: four decimal octets, no leading '+', no empty parts.
  static std::optional<ipv4_address> parse(std::string_view text) {
    std::uint32_t v = 0;
    const char* p = text.data();
    const char* end = text.data() + text.size();
    for (int i = 0; i < 4; ++i) {
      if (i > 0) {
        if (p == end || *p != '.') return std::nullopt;
        ++p;
      }
      unsigned octet = 0;
      auto [next, ec] = std::from_chars(p, end, octet, 10);
      if (ec != std::errc{} || next == p || next - p > 3 || octet > 255) return std::nullopt;
      v = (v << 8) | octet;
      p = next;
    }
    if (p != end) return std::nullopt;
    return ipv4_address{v};
  }
};

}  // namespace pystack

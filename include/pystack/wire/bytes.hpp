// Big-endian field access over byte spans.
//
// Every wire header reads and writes its fields through these helpers, never
// by casting a packed struct: the bytes of a captured frame have no alignment
// guarantee, and a cast would be undefined behaviour (the same rule smoltcp's
// `NetworkEndian` and Seastar's `read/write` follow).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace pystack {

using byte = std::uint8_t;
using bytes_view = std::span<const byte>;
using mutable_bytes = std::span<byte>;

// A byte type a view can be made over: `const byte` for reading, `byte` for
// reading and writing.
template <class T>
concept byte_type = std::is_same_v<std::remove_const_t<T>, byte>;

namespace wire {

inline constexpr std::uint16_t load_be16(const byte* p) noexcept {
  return static_cast<std::uint16_t>((std::uint16_t{p[0]} << 8) | p[1]);
}

inline constexpr std::uint32_t load_be32(const byte* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
         (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// The stores write one swapped word at run time: written byte by byte, GCC
// merges the stores of a header's adjacent fields into 64-bit stores that it
// assembles with a shift and an or per byte (about 16 instructions for 8
// bytes where a byte swap and a move do).
inline constexpr void store_be16(byte* p, std::uint16_t v) noexcept {
  if (std::is_constant_evaluated() || std::endian::native != std::endian::little) {
    p[0] = static_cast<byte>(v >> 8);
    p[1] = static_cast<byte>(v);
  } else {
    const std::uint16_t swapped = __builtin_bswap16(v);
    std::memcpy(p, &swapped, sizeof swapped);
  }
}

inline constexpr void store_be32(byte* p, std::uint32_t v) noexcept {
  if (std::is_constant_evaluated() || std::endian::native != std::endian::little) {
    p[0] = static_cast<byte>(v >> 24);
    p[1] = static_cast<byte>(v >> 16);
    p[2] = static_cast<byte>(v >> 8);
    p[3] = static_cast<byte>(v);
  } else {
    const std::uint32_t swapped = __builtin_bswap32(v);
    std::memcpy(p, &swapped, sizeof swapped);
  }
}

// A field's place in a header: bytes [offset, offset + size). Each protocol
// lists its layout once as a table of these, as smoltcp's `field` modules do.
struct field {
  std::size_t offset;
  std::size_t size;
  constexpr std::size_t end() const noexcept { return offset + size; }
};

}  // namespace wire
}  // namespace pystack

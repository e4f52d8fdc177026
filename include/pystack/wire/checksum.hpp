// The internet checksum (RFC 1071), the IPv4 pseudo-header (RFC 793 §3.1,
// RFC 768) and incremental update (RFC 1624).
//
// Speed: the sum is taken over native-order 32-bit loads into a 64-bit
// accumulator and folded once at the end. RFC 1071 §2(B) shows the one's
// complement sum is independent of byte order, so the only conversion is a
// byte swap of the final 16 bits; §2(A)'s deferred carries are why a 64-bit
// accumulator needs no carry handling until the fold.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"

namespace pystack::checksum {

namespace detail {

inline constexpr std::uint16_t to_network16(std::uint16_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    return static_cast<std::uint16_t>((v >> 8) | (v << 8));
  } else {
    return v;
  }
}

inline constexpr std::uint16_t fold(std::uint64_t sum) noexcept {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

// Sum of the bytes as native-order 16-bit words, a trailing odd byte padded
// with zero as RFC 1071 requires. Not yet folded.
inline std::uint64_t sum_native(const byte* p, std::size_t n) noexcept {
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  while (n >= 32) {
    std::uint64_t w[4];
    std::memcpy(w, p, 32);
    a += (w[0] & 0xffffffffu) + (w[0] >> 32);
    b += (w[1] & 0xffffffffu) + (w[1] >> 32);
    c += (w[2] & 0xffffffffu) + (w[2] >> 32);
    d += (w[3] & 0xffffffffu) + (w[3] >> 32);
    p += 32;
    n -= 32;
  }
  std::uint64_t sum = a + b + c + d;  // each < 2^39 per MiB: no overflow for any frame
  while (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    sum += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
    p += 2;
    n -= 2;
  }
  if (n) {
    byte last[2] = {p[0], 0};
    std::uint16_t w;
    std::memcpy(&w, last, 2);
    sum += w;
  }
  return sum;
}

}  // namespace detail

// Accumulates the one's complement sum over any number of pieces, in order.
// A piece may have odd length: the next piece is then summed byte-swapped, as
// if it continued at an odd offset (RFC 1071 §2(B)).
class accumulator {
 public:
  accumulator& add(bytes_view bytes) noexcept {
    const std::uint16_t piece = detail::fold(detail::sum_native(bytes.data(), bytes.size()));
    sum_ += odd_ ? static_cast<std::uint16_t>((piece >> 8) | (piece << 8)) : piece;
    odd_ ^= (bytes.size() & 1) != 0;
    return *this;
  }

  // Adds a 16-bit field given in host order, as it appears big-endian on the
  // wire. Must come at an even offset of the summed data.
  accumulator& add16(std::uint16_t host_value) noexcept {
    sum_ += detail::to_network16(host_value);
    return *this;
  }
  accumulator& add32(std::uint32_t host_value) noexcept {
    add16(static_cast<std::uint16_t>(host_value >> 16));
    return add16(static_cast<std::uint16_t>(host_value));
  }

  // The IPv4 pseudo-header that TCP (RFC 793 §3.1) and UDP (RFC 768) cover.
  accumulator& add_pseudo_header(ipv4_address source, ipv4_address destination,
                                 std::uint8_t protocol, std::uint16_t length) noexcept {
    add32(source.value);
    add32(destination.value);
    add16(protocol);
    return add16(length);
  }

  // The folded sum without the final complement, in host order.
  std::uint16_t sum() const noexcept { return detail::to_network16(detail::fold(sum_)); }

  // The value to store in a checksum field, in host order. Summing data that
  // already holds a correct checksum gives 0 here.
  std::uint16_t finish() const noexcept { return static_cast<std::uint16_t>(~sum()); }

 private:
  std::uint64_t sum_ = 0;
  bool odd_ = false;
};

// The checksum of one contiguous piece of data.
inline std::uint16_t compute(bytes_view bytes) noexcept { return accumulator{}.add(bytes).finish(); }

// True when data that includes its checksum field sums to all ones.
inline bool verify(bytes_view bytes) noexcept { return compute(bytes) == 0; }

// RFC 1624 eqn. 3: the new checksum after one 16-bit field changed from
// `old_field` to `new_field`, without summing the data again:
//   HC' = ~(~HC + ~m + m')
inline constexpr std::uint16_t update(std::uint16_t old_checksum, std::uint16_t old_field,
                                      std::uint16_t new_field) noexcept {
  std::uint32_t sum = static_cast<std::uint16_t>(~old_checksum);
  sum += static_cast<std::uint16_t>(~old_field);
  sum += new_field;
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// The same for a 32-bit field (a sequence number, an address).
inline constexpr std::uint16_t update32(std::uint16_t old_checksum, std::uint32_t old_field,
                                        std::uint32_t new_field) noexcept {
  const auto high = update(old_checksum, static_cast<std::uint16_t>(old_field >> 16),
                           static_cast<std::uint16_t>(new_field >> 16));
  return update(high, static_cast<std::uint16_t>(old_field), static_cast<std::uint16_t>(new_field));
}

}  // namespace pystack::checksum

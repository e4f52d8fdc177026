// The internet checksum (RFC 1071), the IPv4 pseudo-header (RFC 793 §3.1,
// RFC 768) and incremental update (RFC 1624).
//
// Speed: the sum is taken over native-order 64-bit loads, each added with an
// end-around carry (RFC 1071 §2(C): one's complement addition at any word
// width, folded to 16 bits at the end, gives the 16-bit sum), four chains at
// a time so that one addition's carry does not wait for the previous one.
// GCC 12 and Clang turn each addition into an add and an add-with-carry: two
// instructions per 8 bytes. RFC 1071 §2(B) shows the one's complement sum is
// independent of byte order, so the only conversion is a byte swap of the
// final 16 bits.
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

// One's complement addition of two 64-bit words: the carry out of the top
// bit wraps around into the bottom one (RFC 1071 §2(C)), so no carry is lost
// however many words are added.
inline constexpr std::uint64_t add_end_around(std::uint64_t a, std::uint64_t b) noexcept {
  a += b;
  return a + (a < b);
}

inline std::uint64_t load_native64(const byte* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// Sum of the bytes as native-order 16-bit words, a trailing odd byte padded
// with zero as RFC 1071 requires. Not yet folded. A 64-bit native word holds
// four native 16-bit words, and where a 16-bit word sits among the lanes does
// not change their sum, so the tail can be added as 4-, 2- and 1-byte pieces
// in whichever lane they land.
inline std::uint64_t sum_native(const byte* p, std::size_t n) noexcept {
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  while (n >= 32) {
    a = add_end_around(a, load_native64(p));
    b = add_end_around(b, load_native64(p + 8));
    c = add_end_around(c, load_native64(p + 16));
    d = add_end_around(d, load_native64(p + 24));
    p += 32;
    n -= 32;
  }
  std::uint64_t sum = add_end_around(add_end_around(a, b), add_end_around(c, d));
  if (n & 16) {
    sum = add_end_around(sum, load_native64(p));
    sum = add_end_around(sum, load_native64(p + 8));
    p += 16;
  }
  if (n & 8) {
    sum = add_end_around(sum, load_native64(p));
    p += 8;
  }
  if (n & 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    sum = add_end_around(sum, w);
    p += 4;
  }
  if (n & 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    sum = add_end_around(sum, w);
    p += 2;
  }
  if (n & 1) {
    const byte last[2] = {p[0], 0};
    std::uint16_t w;
    std::memcpy(&w, last, 2);
    sum = add_end_around(sum, w);
  }
  return sum;
}

}  // namespace detail

// Accumulates the one's complement sum over any number of pieces, in order.
// A piece may have odd length: the next piece is then summed byte-swapped, as
// if it continued at an odd offset (RFC 1071 §2(B)).
class accumulator {
 public:
  accumulator& add(bytes_view bytes) noexcept { return add_inline(bytes); }
  // add() always inline, for a caller on every packet's way whose copy GCC
  // might otherwise share out of line (TCP's receive checksum, which the
  // static stack and the facade compile in different units).
  [[gnu::always_inline]] accumulator& add_inline(bytes_view bytes) noexcept {
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
  // Adds a sum of fields taken in host order, 16- or 32-bit, each as it
  // appears big-endian on the wire at an even offset (RFC 1071 §2(B): the
  // sum of the byte-swapped words is the byte-swapped sum, so one swap serves
  // them all; a 32-bit word is its two 16-bit words once folded).
  // For a header summed from the values just written rather than read back:
  // a load that spans several narrow stores still in flight waits for them
  // (store-to-load forwarding fails), which cost every ACK more time than
  // its instructions.
  accumulator& add_host_words(std::uint64_t host_sum) noexcept {
    sum_ += detail::to_network16(detail::fold(host_sum));
    return *this;
  }
  // add() for what follows a header summed by add_host_words: often
  // nothing (an ACK, a header without options), so only a test inline; the
  // summing out of line, so that each emit does not carry a copy of add().
  accumulator& add_rest(bytes_view bytes) noexcept {
    if (!bytes.empty()) add_out_of_line(bytes);
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
  [[gnu::noinline]] void add_out_of_line(bytes_view bytes) noexcept { add(bytes); }

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

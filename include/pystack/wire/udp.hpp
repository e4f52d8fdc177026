// UDP (RFC 768).
//
// The pattern every header in pystack/wire follows:
// - `basic_view<B>` is a zero-copy view over bytes (`view` reads, `mutable_view`
//   also writes). It is made only by `checked()`, which validates every length
//   the accessors rely on; after that no accessor can fail or read outside
//   the bytes.
// - `repr` is the parsed value: `repr::parse(view)`, `size()` (the bytes its
//   header takes) and `emit(...)`, which writes into the caller's buffer and
//   never allocates. Lengths and checksums are not fields of a repr: `emit`
//   derives them, so a repr cannot disagree with the bytes it makes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>

#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/checksum.hpp"
#include "pystack/wire/error.hpp"

namespace pystack::udp {

inline constexpr std::uint8_t ip_protocol = 17;
inline constexpr std::size_t header_size = 8;

// RFC 768, "Format".
// The checksum to store for `datagram` (header with a zero checksum field,
// then payload). A sum of zero is sent as all ones (RFC 768), since zero
// means "none sent".
inline std::uint16_t compute_checksum(bytes_view datagram, ipv4_address source,
                                      ipv4_address destination) noexcept {
  const std::uint16_t sum =
      checksum::accumulator{}
          .add_pseudo_header(source, destination, ip_protocol, static_cast<std::uint16_t>(datagram.size()))
          .add(datagram)
          .finish();
  return sum == 0 ? 0xffff : sum;
}

namespace field {
inline constexpr wire::field source_port{0, 2};
inline constexpr wire::field destination_port{2, 2};
inline constexpr wire::field length{4, 2};
inline constexpr wire::field checksum{6, 2};
}  // namespace field

template <byte_type B>
class basic_view {
 public:
  // Checks that the header is present, that the length field covers at least
  // the header and that the bytes hold as many as it claims. Bytes beyond the
  // length field (link padding) are not part of the view.
  static expected<basic_view> checked(std::span<B> bytes) noexcept { return check(bytes, false); }

  // The same, except that the bytes may stop short of the length field: for
  // a datagram that was cut (an ICMP error's quote, RFC 792; a first IPv4
  // fragment; a capture's snapshot length). `bytes()` and `payload()` then
  // hold only the bytes present, and the checksum cannot be verified.
  static expected<basic_view> checked_quoted(std::span<B> bytes) noexcept { return check(bytes, true); }

 private:
  static expected<basic_view> check(std::span<B> bytes, bool quoted) noexcept {
    if (bytes.size() < header_size) {
      return parse_error{"udp", errc::truncated, "header", 0, bytes.size(), header_size};
    }
    const std::uint16_t length = wire::load_be16(bytes.data() + field::length.offset);
    if (length < header_size) {
      return parse_error{"udp", errc::below_minimum, "length", field::length.offset, length,
                         header_size};
    }
    if (length > bytes.size() && !quoted) {
      return parse_error{"udp", errc::truncated, "datagram", 0, bytes.size(), length};
    }
    return basic_view(bytes.first(std::min<std::size_t>(length, bytes.size())));
  }

 public:

  std::uint16_t source_port() const noexcept { return load16(field::source_port); }
  std::uint16_t destination_port() const noexcept { return load16(field::destination_port); }
  std::uint16_t length() const noexcept { return load16(field::length); }
  std::uint16_t checksum() const noexcept { return load16(field::checksum); }

  std::span<B> header() const noexcept { return bytes_.first(header_size); }
  std::span<B> payload() const noexcept { return bytes_.subspan(header_size); }
  // The whole datagram, header and payload, as the length field delimits it.
  std::span<B> bytes() const noexcept { return bytes_; }

  // RFC 768: a zero checksum field means the sender computed none.
  bool checksum_present() const noexcept { return checksum() != 0; }

  // True when no checksum was sent or the one sent is right.
  bool verify_checksum(ipv4_address source, ipv4_address destination) const noexcept {
    if (!checksum_present()) return true;
    return checksum::accumulator{}
               .add_pseudo_header(source, destination, ip_protocol, length())
               .add(bytes_)
               .finish() == 0;
  }

  void set_source_port(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::source_port, v);
  }
  void set_destination_port(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::destination_port, v);
  }
  void set_checksum(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::checksum, v);
  }

  // Computes the checksum over the pseudo-header, header and payload.
  void fill_checksum(ipv4_address source, ipv4_address destination) noexcept
    requires(!std::is_const_v<B>)
  {
    set_checksum(0);
    set_checksum(compute_checksum(bytes_, source, destination));
  }

 private:
  explicit basic_view(std::span<B> bytes) noexcept : bytes_(bytes) {}
  std::uint16_t load16(wire::field f) const noexcept { return wire::load_be16(bytes_.data() + f.offset); }
  void store16(wire::field f, std::uint16_t v) const noexcept
    requires(!std::is_const_v<B>)
  {
    wire::store_be16(bytes_.data() + f.offset, v);
  }

  std::span<B> bytes_;
};

using view = basic_view<const byte>;
using mutable_view = basic_view<byte>;

struct repr {
  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;

  static expected<repr> parse(view v) noexcept { return repr{v.source_port(), v.destination_port()}; }

  // Bytes the header takes.
  static constexpr std::size_t size() noexcept { return header_size; }

  // Writes the header at the front of `datagram`, whose payload is already in
  // place after it, sets the length to `datagram.size()` and fills the
  // checksum. `datagram` must hold at least `size()` bytes and at most 65535.
  void emit(mutable_bytes datagram, ipv4_address source, ipv4_address destination) const noexcept {
    emit_without_checksum(datagram);
    wire::store_be16(datagram.data() + field::checksum.offset,
                     compute_checksum(datagram, source, destination));
  }

  // The same with the checksum field left zero ("none sent", RFC 768), for a
  // hook that rewrites fields before the checksum is taken, or for offload.
  void emit_without_checksum(mutable_bytes datagram) const noexcept {
    byte* p = datagram.data();
    wire::store_be16(p + field::source_port.offset, source_port);
    wire::store_be16(p + field::destination_port.offset, destination_port);
    wire::store_be16(p + field::length.offset, static_cast<std::uint16_t>(datagram.size()));
    wire::store_be16(p + field::checksum.offset, 0);
  }

  friend bool operator==(const repr&, const repr&) = default;
};

}  // namespace pystack::udp

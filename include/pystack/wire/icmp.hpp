// ICMP for IPv4 (RFC 792).
//
// Every ICMP message starts with the same 8 bytes: type, code, checksum and
// four bytes whose meaning depends on the type ("rest of header"). The view
// checks only those 8: ICMP has no length field of its own, its message is
// the whole IPv4 payload. What the rest of header holds is read through named
// accessors (identifier and sequence number for echo, gateway for redirect,
// ...), each meaningful only for the types it names; they are all in bounds
// for any message, so none can fail.
//
// For the error messages (destination unreachable, source quench, redirect,
// time exceeded, parameter problem) `payload()` is the quoted original
// datagram: its IPv4 header and at least 64 bits of its data (RFC 792),
// usually with a total length that counts bytes not quoted. Read it with
// `ipv4::view::checked_quoted`.
//
// Timestamp and timestamp reply carry 12 more bytes; `timestamps::parse`
// checks that they are there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/checksum.hpp"
#include "pystack/wire/error.hpp"

namespace pystack::icmp {

inline constexpr std::uint8_t ip_protocol = 1;
inline constexpr std::size_t header_size = 8;

// Message types (RFC 792).
namespace type {
inline constexpr std::uint8_t echo_reply = 0;
inline constexpr std::uint8_t destination_unreachable = 3;
inline constexpr std::uint8_t source_quench = 4;
inline constexpr std::uint8_t redirect = 5;
inline constexpr std::uint8_t echo_request = 8;
inline constexpr std::uint8_t time_exceeded = 11;
inline constexpr std::uint8_t parameter_problem = 12;
inline constexpr std::uint8_t timestamp = 13;
inline constexpr std::uint8_t timestamp_reply = 14;
}  // namespace type

// Destination unreachable codes: 0-5 from RFC 792; RFC 1122 §3.2.2.1 and
// RFC 1812 §5.2.7.1 add more (13 is the one firewalls send).
namespace unreachable_code {
inline constexpr std::uint8_t network = 0;
inline constexpr std::uint8_t host = 1;
inline constexpr std::uint8_t protocol = 2;
inline constexpr std::uint8_t port = 3;
// "Fragmentation needed and DF set": RFC 1191 puts the next-hop MTU in the
// low 16 bits of the rest of header (path MTU discovery).
inline constexpr std::uint8_t fragmentation_needed = 4;
inline constexpr std::uint8_t source_route_failed = 5;
inline constexpr std::uint8_t administratively_prohibited = 13;
}  // namespace unreachable_code

namespace time_exceeded_code {
inline constexpr std::uint8_t ttl_exceeded = 0;
inline constexpr std::uint8_t reassembly_time_exceeded = 1;
}  // namespace time_exceeded_code

namespace redirect_code {
inline constexpr std::uint8_t network = 0;
inline constexpr std::uint8_t host = 1;
inline constexpr std::uint8_t type_of_service_and_network = 2;
inline constexpr std::uint8_t type_of_service_and_host = 3;
}  // namespace redirect_code

namespace field {
inline constexpr wire::field type{0, 1};
inline constexpr wire::field code{1, 1};
inline constexpr wire::field checksum{2, 2};
inline constexpr wire::field rest_of_header{4, 4};
// The rest of header as the types that use it lay it out.
inline constexpr wire::field identifier{4, 2};        // echo, timestamp
inline constexpr wire::field sequence_number{6, 2};   // echo, timestamp
inline constexpr wire::field gateway{4, 4};           // redirect
inline constexpr wire::field pointer{4, 1};           // parameter problem
inline constexpr wire::field next_hop_mtu{6, 2};      // fragmentation needed (RFC 1191)
// After the header, in timestamp and timestamp reply.
inline constexpr wire::field originate_timestamp{8, 4};
inline constexpr wire::field receive_timestamp{12, 4};
inline constexpr wire::field transmit_timestamp{16, 4};
}  // namespace field

// RFC 792: "the 16-bit one's complement of the one's complement sum of the
// ICMP message starting with the ICMP Type", payload included; unlike TCP
// and UDP there is no pseudo-header.
inline std::uint16_t compute_checksum(bytes_view message) noexcept { return checksum::compute(message); }

// The types that report a problem with a datagram and quote it. RFC 1122
// §3.2.2 forbids sending an error about one of these.
constexpr bool is_error(std::uint8_t message_type) noexcept {
  switch (message_type) {
    case type::destination_unreachable:
    case type::source_quench:
    case type::redirect:
    case type::time_exceeded:
    case type::parameter_problem:
      return true;
    default:
      return false;
  }
}

template <byte_type B>
class basic_view {
 public:
  // Checks that the 8-byte header is present. The message is all of
  // `bytes`: pass exactly the IPv4 payload.
  static expected<basic_view> checked(std::span<B> bytes) noexcept {
    if (bytes.size() < header_size) {
      return parse_error{"icmp", errc::truncated, "header", 0, bytes.size(), header_size};
    }
    return basic_view(bytes);
  }

  std::uint8_t type() const noexcept { return bytes_[field::type.offset]; }
  std::uint8_t code() const noexcept { return bytes_[field::code.offset]; }
  std::uint16_t checksum() const noexcept { return load16(field::checksum); }
  std::uint32_t rest_of_header() const noexcept { return wire::load_be32(bytes_.data() + field::rest_of_header.offset); }

  // Echo request and reply, timestamp and timestamp reply (RFC 792).
  std::uint16_t identifier() const noexcept { return load16(field::identifier); }
  std::uint16_t sequence_number() const noexcept { return load16(field::sequence_number); }
  // Redirect: the router to send to instead (RFC 792).
  ipv4_address gateway() const noexcept { return ipv4_address::from_bytes(bytes_.data() + field::gateway.offset); }
  // Parameter problem: the offset of the offending octet in the quoted
  // datagram's header (RFC 792).
  std::uint8_t pointer() const noexcept { return bytes_[field::pointer.offset]; }
  // Destination unreachable, fragmentation needed: RFC 1191 §4. Zero from a
  // router that predates RFC 1191.
  std::uint16_t next_hop_mtu() const noexcept { return load16(field::next_hop_mtu); }

  bool is_echo() const noexcept { return type() == type::echo_request || type() == type::echo_reply; }
  bool is_error() const noexcept { return icmp::is_error(type()); }

  std::span<B> header() const noexcept { return bytes_.first(header_size); }
  // For echo: the data to send back. For an error: the quoted datagram.
  std::span<B> payload() const noexcept { return bytes_.subspan(header_size); }
  std::span<B> bytes() const noexcept { return bytes_; }

  bool verify_checksum() const noexcept { return checksum::verify(bytes_); }

  void set_type(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    bytes_[field::type.offset] = v;
  }
  void set_code(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    bytes_[field::code.offset] = v;
  }
  void set_checksum(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::checksum, v);
  }
  void set_rest_of_header(std::uint32_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    wire::store_be32(bytes_.data() + field::rest_of_header.offset, v);
  }
  void set_identifier(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::identifier, v);
  }
  void set_sequence_number(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::sequence_number, v);
  }
  void set_gateway(ipv4_address v) noexcept
    requires(!std::is_const_v<B>)
  {
    v.to_bytes(bytes_.data() + field::gateway.offset);
  }
  void set_pointer(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    bytes_[field::pointer.offset] = v;
  }
  void set_next_hop_mtu(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::next_hop_mtu, v);
  }

  // Computes the checksum over the whole message.
  void fill_checksum() noexcept
    requires(!std::is_const_v<B>)
  {
    set_checksum(0);
    set_checksum(compute_checksum(bytes_));
  }

  // Turns an echo request into its reply in place: RFC 792 keeps the
  // identifier, sequence number and data, and the only 16-bit word that
  // changes is type/code, so the checksum is updated, not recomputed
  // (RFC 1624), and a wrong one stays wrong.
  void make_echo_reply() noexcept
    requires(!std::is_const_v<B>)
  {
    const std::uint16_t old_word = load16({0, 2});
    set_type(type::echo_reply);
    set_code(0);
    const std::uint16_t updated = checksum::update(checksum(), old_word, load16({0, 2}));
    // RFC 1624 §3: eqn. 3 yields 0x0000 (+0) only when the rest of the message
    // sums to 0 or to 0xffff; 0xffff (-0) verifies in both cases, while +0
    // fails the first (an all-zero echo reply). Only an update of a right
    // checksum can reach 0, so this never turns a wrong checksum right.
    set_checksum(updated == 0 ? 0xffff : updated);
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

// The three times a timestamp or timestamp reply carries after its header
// (RFC 792): milliseconds since midnight UT, or any value with the high bit
// set when the sender has no such clock.
struct timestamps {
  std::uint32_t originate = 0;
  std::uint32_t receive = 0;
  std::uint32_t transmit = 0;

  // Bytes they take after the header.
  static constexpr std::size_t size() noexcept { return 12; }

  // Checks that `v` is a timestamp or timestamp reply and holds all 20 bytes.
  static expected<timestamps> parse(view v) noexcept {
    if (v.type() != type::timestamp && v.type() != type::timestamp_reply) {
      return parse_error{"icmp", errc::mismatch, "type", field::type.offset, v.type(), type::timestamp};
    }
    const auto bytes = v.bytes();
    if (bytes.size() < header_size + size()) {
      return parse_error{"icmp", errc::truncated, "timestamps", header_size, bytes.size(), header_size + size()};
    }
    return timestamps{wire::load_be32(bytes.data() + field::originate_timestamp.offset),
                      wire::load_be32(bytes.data() + field::receive_timestamp.offset),
                      wire::load_be32(bytes.data() + field::transmit_timestamp.offset)};
  }

  // Writes the times after the header of `message`, which must hold at
  // least header_size + size() bytes. Call before `repr::emit`, whose
  // checksum covers them.
  void emit(mutable_bytes message) const noexcept {
    wire::store_be32(message.data() + field::originate_timestamp.offset, originate);
    wire::store_be32(message.data() + field::receive_timestamp.offset, receive);
    wire::store_be32(message.data() + field::transmit_timestamp.offset, transmit);
  }

  friend bool operator==(const timestamps&, const timestamps&) = default;
};

// The header of any ICMP message as type, code and the raw 32-bit rest of
// header; the named makers and accessors lay out that word for the types
// that give it meaning. The payload is the caller's: it is in place when
// `emit` runs.
struct repr {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint32_t rest_of_header = 0;

  static expected<repr> parse(view v) noexcept { return repr{v.type(), v.code(), v.rest_of_header()}; }

  static constexpr repr echo_request(std::uint16_t identifier, std::uint16_t sequence_number) noexcept {
    return {icmp::type::echo_request, 0, echo_word(identifier, sequence_number)};
  }
  static constexpr repr echo_reply(std::uint16_t identifier, std::uint16_t sequence_number) noexcept {
    return {icmp::type::echo_reply, 0, echo_word(identifier, sequence_number)};
  }
  // `next_hop_mtu` only for fragmentation needed (RFC 1191); otherwise the
  // word is unused and zero (RFC 792).
  static constexpr repr destination_unreachable(std::uint8_t code, std::uint16_t next_hop_mtu = 0) noexcept {
    return {icmp::type::destination_unreachable, code, next_hop_mtu};
  }
  static constexpr repr time_exceeded(std::uint8_t code) noexcept { return {icmp::type::time_exceeded, code, 0}; }
  static constexpr repr parameter_problem(std::uint8_t pointer) noexcept {
    return {icmp::type::parameter_problem, 0, std::uint32_t{pointer} << 24};
  }
  static constexpr repr redirect(std::uint8_t code, ipv4_address gateway) noexcept {
    return {icmp::type::redirect, code, gateway.value};
  }

  constexpr std::uint16_t identifier() const noexcept { return static_cast<std::uint16_t>(rest_of_header >> 16); }
  constexpr std::uint16_t sequence_number() const noexcept { return static_cast<std::uint16_t>(rest_of_header); }

  // Bytes the header takes.
  static constexpr std::size_t size() noexcept { return header_size; }

  // Writes the header at the front of `message`, whose payload is already in
  // place after it, and fills the checksum over the whole message.
  // `message` must hold at least `size()` bytes.
  void emit(mutable_bytes message) const noexcept {
    byte* p = message.data();
    p[field::type.offset] = type;
    p[field::code.offset] = code;
    wire::store_be16(p + field::checksum.offset, 0);
    wire::store_be32(p + field::rest_of_header.offset, rest_of_header);
    wire::store_be16(p + field::checksum.offset, compute_checksum(message));
  }

  friend bool operator==(const repr&, const repr&) = default;

 private:
  static constexpr std::uint32_t echo_word(std::uint16_t identifier, std::uint16_t sequence_number) noexcept {
    return (std::uint32_t{identifier} << 16) | sequence_number;
  }
};

}  // namespace pystack::icmp

// ARP (RFC 826), and its Ethernet/IPv4 form in particular.
//
// The ARP header is generic: 8 fixed bytes say which hardware and protocol
// the addresses belong to and how long they are, then come sender hardware
// (hlen), sender protocol (plen), target hardware (hlen) and target protocol
// (plen) addresses. Reading it takes two steps:
// - `view::checked` accepts any hardware type and address lengths as long as
//   all the bytes the lengths announce are present, so the generic header and
//   the raw addresses of any ARP packet can be shown (as tcpdump does).
// - `view::ethernet_ipv4()` (or `ethernet_ipv4_view::checked` in one go)
//   additionally requires Ethernet/IPv4 and gives a view whose addresses are
//   typed `mac_address` / `ipv4_address`. Typed accessors exist only there,
//   so none can read a 6-byte MAC out of a packet whose hlen is 2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"
#include "pystack/wire/ethernet.hpp"

namespace pystack::arp {

// ar$op (RFC 826). Other values (RARP, InARP, ...) are read but not named.
namespace operation {
inline constexpr std::uint16_t request = 1;
inline constexpr std::uint16_t reply = 2;
}  // namespace operation

// ar$hrd values (IANA "Hardware Types"). The protocol type ar$pro takes
// EtherType values (RFC 826), e.g. `eth::ethertype::ipv4`.
namespace hardware_type {
inline constexpr std::uint16_t ethernet = 1;
}  // namespace hardware_type

// The fixed part before the addresses.
inline constexpr std::size_t header_size = 8;
// An Ethernet/IPv4 packet: the fixed part, two 6-byte MACs, two IPv4 addresses.
inline constexpr std::size_t ethernet_ipv4_size = 28;
inline constexpr std::uint8_t ethernet_address_length = 6;
inline constexpr std::uint8_t ipv4_address_length = 4;

namespace field {
inline constexpr wire::field hardware_type{0, 2};
inline constexpr wire::field protocol_type{2, 2};
inline constexpr wire::field hardware_length{4, 1};
inline constexpr wire::field protocol_length{5, 1};
inline constexpr wire::field operation{6, 2};
// The addresses start here; their offsets depend on the two lengths, so only
// the Ethernet/IPv4 layout has fixed fields.
inline constexpr std::size_t addresses = 8;
inline constexpr wire::field ethernet_ipv4_sender_hardware{8, 6};
inline constexpr wire::field ethernet_ipv4_sender_protocol{14, 4};
inline constexpr wire::field ethernet_ipv4_target_hardware{18, 6};
inline constexpr wire::field ethernet_ipv4_target_protocol{24, 4};
}  // namespace field

template <byte_type B>
class basic_ethernet_ipv4_view;

template <byte_type B>
class basic_view {
 public:
  // Checks that the fixed header is present and that the bytes hold the four
  // addresses its length fields announce. Bytes after them (Ethernet padding
  // up to the 60-byte minimum frame) are not part of the view.
  static expected<basic_view> checked(std::span<B> bytes) noexcept {
    if (bytes.size() < header_size) {
      return parse_error{"arp", errc::truncated, "header", 0, bytes.size(), header_size};
    }
    const std::size_t hlen = bytes[field::hardware_length.offset];
    const std::size_t plen = bytes[field::protocol_length.offset];
    const std::size_t length = header_size + 2 * (hlen + plen);
    if (bytes.size() < length) {
      return parse_error{"arp", errc::truncated, "addresses", field::addresses, bytes.size(), length};
    }
    return basic_view(bytes.first(length));
  }

  std::uint16_t hardware_type() const noexcept { return load16(field::hardware_type); }
  std::uint16_t protocol_type() const noexcept { return load16(field::protocol_type); }
  std::uint8_t hardware_length() const noexcept { return bytes_[field::hardware_length.offset]; }
  std::uint8_t protocol_length() const noexcept { return bytes_[field::protocol_length.offset]; }
  std::uint16_t operation() const noexcept { return load16(field::operation); }

  // The raw addresses, as long as the length fields say.
  std::span<B> sender_hardware_bytes() const noexcept {
    return bytes_.subspan(field::addresses, hardware_length());
  }
  std::span<B> sender_protocol_bytes() const noexcept {
    return bytes_.subspan(field::addresses + hardware_length(), protocol_length());
  }
  std::span<B> target_hardware_bytes() const noexcept {
    return bytes_.subspan(field::addresses + hardware_length() + protocol_length(), hardware_length());
  }
  std::span<B> target_protocol_bytes() const noexcept {
    return bytes_.subspan(field::addresses + 2u * hardware_length() + protocol_length(), protocol_length());
  }

  std::span<B> header() const noexcept { return bytes_.first(header_size); }
  // The packet as its length fields delimit it, without trailing padding.
  std::span<B> bytes() const noexcept { return bytes_; }
  // 8 + 2 * (hlen + plen): 28 for Ethernet/IPv4.
  std::size_t packet_length() const noexcept { return bytes_.size(); }

  bool is_ethernet_ipv4() const noexcept {
    return hardware_type() == hardware_type::ethernet && protocol_type() == eth::ethertype::ipv4 &&
           hardware_length() == ethernet_address_length && protocol_length() == ipv4_address_length;
  }

  // The same packet with typed Ethernet/IPv4 addresses, or `unsupported`
  // naming the first field that says it is something else.
  expected<basic_ethernet_ipv4_view<B>> ethernet_ipv4() const noexcept {
    if (hardware_type() != hardware_type::ethernet) {
      return parse_error{"arp", errc::unsupported, "hardware type", field::hardware_type.offset,
                         hardware_type(), hardware_type::ethernet};
    }
    if (protocol_type() != eth::ethertype::ipv4) {
      return parse_error{"arp", errc::unsupported, "protocol type", field::protocol_type.offset,
                         protocol_type(), eth::ethertype::ipv4};
    }
    // With the types fixed, RFC 826's lengths are too: anything else is a
    // malformed packet rather than an unknown kind.
    if (hardware_length() != ethernet_address_length) {
      return parse_error{"arp", errc::mismatch, "hardware length", field::hardware_length.offset,
                         hardware_length(), ethernet_address_length};
    }
    if (protocol_length() != ipv4_address_length) {
      return parse_error{"arp", errc::mismatch, "protocol length", field::protocol_length.offset,
                         protocol_length(), ipv4_address_length};
    }
    return basic_ethernet_ipv4_view<B>(bytes_);
  }

  // The type and operation fields do not move any address, so they can be
  // rewritten without invalidating the view; the lengths cannot.
  void set_hardware_type(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::hardware_type, v);
  }
  void set_protocol_type(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::protocol_type, v);
  }
  void set_operation(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::operation, v);
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

// An ARP packet known to be Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6,
// plen 4): exactly 28 bytes, with typed addresses.
template <byte_type B>
class basic_ethernet_ipv4_view {
 public:
  // `basic_view<B>::checked`, then `ethernet_ipv4()`.
  static expected<basic_ethernet_ipv4_view> checked(std::span<B> bytes) noexcept {
    auto generic = basic_view<B>::checked(bytes);
    if (!generic) return generic.error();
    return generic->ethernet_ipv4();
  }

  std::uint16_t operation() const noexcept { return wire::load_be16(bytes_.data() + field::operation.offset); }
  mac_address sender_hardware_address() const noexcept { return mac(field::ethernet_ipv4_sender_hardware); }
  ipv4_address sender_protocol_address() const noexcept { return ip(field::ethernet_ipv4_sender_protocol); }
  mac_address target_hardware_address() const noexcept { return mac(field::ethernet_ipv4_target_hardware); }
  ipv4_address target_protocol_address() const noexcept { return ip(field::ethernet_ipv4_target_protocol); }

  // The 28 bytes of the packet.
  std::span<B> bytes() const noexcept { return bytes_; }

  void set_operation(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    wire::store_be16(bytes_.data() + field::operation.offset, v);
  }
  void set_sender_hardware_address(mac_address a) noexcept
    requires(!std::is_const_v<B>)
  {
    a.to_bytes(bytes_.data() + field::ethernet_ipv4_sender_hardware.offset);
  }
  void set_sender_protocol_address(ipv4_address a) noexcept
    requires(!std::is_const_v<B>)
  {
    a.to_bytes(bytes_.data() + field::ethernet_ipv4_sender_protocol.offset);
  }
  void set_target_hardware_address(mac_address a) noexcept
    requires(!std::is_const_v<B>)
  {
    a.to_bytes(bytes_.data() + field::ethernet_ipv4_target_hardware.offset);
  }
  void set_target_protocol_address(ipv4_address a) noexcept
    requires(!std::is_const_v<B>)
  {
    a.to_bytes(bytes_.data() + field::ethernet_ipv4_target_protocol.offset);
  }

 private:
  friend class basic_view<B>;
  explicit basic_ethernet_ipv4_view(std::span<B> bytes) noexcept : bytes_(bytes) {}
  mac_address mac(wire::field f) const noexcept { return mac_address::from_bytes(bytes_.data() + f.offset); }
  ipv4_address ip(wire::field f) const noexcept { return ipv4_address::from_bytes(bytes_.data() + f.offset); }

  std::span<B> bytes_;
};

using ethernet_ipv4_view = basic_ethernet_ipv4_view<const byte>;
using mutable_ethernet_ipv4_view = basic_ethernet_ipv4_view<byte>;

// An Ethernet/IPv4 ARP packet.
struct repr {
  std::uint16_t operation = operation::request;
  mac_address sender_hardware_address;
  ipv4_address sender_protocol_address;
  mac_address target_hardware_address;
  ipv4_address target_protocol_address;

  // Fails with `unsupported` / `mismatch` for any other kind of ARP.
  static expected<repr> parse(view v) noexcept {
    auto e = v.ethernet_ipv4();
    if (!e) return e.error();
    return repr{e->operation(), e->sender_hardware_address(), e->sender_protocol_address(),
                e->target_hardware_address(), e->target_protocol_address()};
  }

  static constexpr std::size_t size() noexcept { return ethernet_ipv4_size; }

  // Writes the 28-byte packet at the front of `packet`, which must hold at
  // least `size()` bytes; the type and length fields are those of
  // Ethernet/IPv4.
  void emit(mutable_bytes packet) const noexcept {
    byte* p = packet.data();
    wire::store_be16(p + field::hardware_type.offset, hardware_type::ethernet);
    wire::store_be16(p + field::protocol_type.offset, eth::ethertype::ipv4);
    p[field::hardware_length.offset] = ethernet_address_length;
    p[field::protocol_length.offset] = ipv4_address_length;
    wire::store_be16(p + field::operation.offset, operation);
    sender_hardware_address.to_bytes(p + field::ethernet_ipv4_sender_hardware.offset);
    sender_protocol_address.to_bytes(p + field::ethernet_ipv4_sender_protocol.offset);
    target_hardware_address.to_bytes(p + field::ethernet_ipv4_target_hardware.offset);
    target_protocol_address.to_bytes(p + field::ethernet_ipv4_target_protocol.offset);
  }

  friend bool operator==(const repr&, const repr&) = default;
};

}  // namespace pystack::arp

// IPv4 (RFC 791), with options (RFC 791 §3.1).
//
// Follows the pattern udp.hpp sets out: `basic_view` made only by a checking
// factory, after which no accessor can fail; `repr` with parse / size / emit.
//
// What `checked()` does not do, on purpose:
// - It does not verify the header checksum. Captures taken on the sending
//   host often hold a wrong one (checksum offload), and a forwarding or
//   dissecting caller still wants the fields; `verify_checksum()` says.
// - It does not reassemble fragments or look at the payload.
//
// It does validate option framing (every option's length byte stays inside
// the header and is at least 2), so that the option walker `option_list()`
// is infallible too.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <type_traits>

#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/checksum.hpp"
#include "pystack/wire/error.hpp"

namespace pystack::ipv4 {

inline constexpr std::uint8_t version_number = 4;
// The header without options; IHL is at least 5 words (RFC 791 §3.1).
inline constexpr std::size_t header_size = 20;
// IHL is a 4-bit count of 32-bit words: at most 15 * 4 bytes of header,
// which leaves 40 bytes for options.
inline constexpr std::size_t max_header_size = 60;
inline constexpr std::size_t max_options_size = max_header_size - header_size;

// Protocol numbers for the protocol field (IANA "Assigned Internet Protocol
// Numbers"; the values RFC 790 first listed).
namespace protocol {
inline constexpr std::uint8_t icmp = 1;
inline constexpr std::uint8_t tcp = 6;
inline constexpr std::uint8_t udp = 17;
}  // namespace protocol

namespace field {
inline constexpr wire::field version_and_header_length{0, 1};  // version << 4 | IHL
inline constexpr wire::field tos{1, 1};                        // DSCP << 2 | ECN (RFC 2474, RFC 3168)
inline constexpr wire::field total_length{2, 2};
inline constexpr wire::field identification{4, 2};
inline constexpr wire::field flags_and_fragment_offset{6, 2};  // flags in the top 3 bits
inline constexpr wire::field ttl{8, 1};
inline constexpr wire::field protocol{9, 1};
inline constexpr wire::field checksum{10, 2};
inline constexpr wire::field source{12, 4};
inline constexpr wire::field destination{16, 4};
inline constexpr wire::field options{20, max_options_size};  // as many as IHL says
}  // namespace field

// RFC 791 §3.1 "Flags": bit 0 reserved (must be zero), bit 1 DF, bit 2 MF,
// as bits of the 16-bit word they share with the fragment offset.
namespace flag {
inline constexpr std::uint16_t reserved = 0x8000;
inline constexpr std::uint16_t dont_fragment = 0x4000;
inline constexpr std::uint16_t more_fragments = 0x2000;
inline constexpr std::uint16_t fragment_offset_mask = 0x1fff;
}  // namespace flag

// Option types (RFC 791 §3.1; Router Alert is RFC 2113). The type octet
// packs a copied flag, a class and a number; these are whole octets.
namespace option_type {
inline constexpr std::uint8_t end_of_list = 0;
inline constexpr std::uint8_t no_operation = 1;
inline constexpr std::uint8_t record_route = 7;
inline constexpr std::uint8_t timestamp = 68;
inline constexpr std::uint8_t loose_source_route = 131;
inline constexpr std::uint8_t strict_source_route = 137;
inline constexpr std::uint8_t router_alert = 148;
}  // namespace option_type

// One option as it sits in the header. `data` is what follows the type and
// length octets (empty for End of Option List and No Operation, the two
// single-octet options).
struct option {
  std::uint8_t type = 0;
  bytes_view data;

  // RFC 791 §3.1: the copied flag says whether a fragmenter must copy the
  // option into every fragment, or only into the first.
  constexpr bool copied() const noexcept { return (type & 0x80) != 0; }
  // 0 control, 2 debugging and measurement; 1 and 3 reserved.
  constexpr std::uint8_t option_class() const noexcept { return static_cast<std::uint8_t>((type >> 5) & 0x3); }
  constexpr std::uint8_t number() const noexcept { return static_cast<std::uint8_t>(type & 0x1f); }
  constexpr bool is_single_octet() const noexcept {
    return type == option_type::end_of_list || type == option_type::no_operation;
  }
  // Bytes the option takes in the header, type and length octets included.
  constexpr std::size_t size() const noexcept { return is_single_octet() ? 1 : 2 + data.size(); }
};

// The options of one header, in wire order, up to and including the first
// End of Option List: what follows it is padding (RFC 791 §3.1, "used at the
// end of all options, not the end of each option"), not options.
//
// Only `checked()` and a checked view make one, so walking it cannot fail.
class option_range {
 public:
  class iterator {
   public:
    using value_type = option;
    using difference_type = std::ptrdiff_t;
    // Options are decoded on the fly and returned by value, which C++20
    // ranges accept as forward but the older iterator requirements only as
    // input.
    using reference = option;
    using pointer = void;
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;

    iterator() = default;

    option operator*() const noexcept {
      const byte type = *position_;
      if (type == option_type::end_of_list || type == option_type::no_operation) return {type, {}};
      return {type, bytes_view(position_ + 2, position_[1] - 2u)};
    }
    iterator& operator++() noexcept {
      // End of Option List ends the walk even when padding follows it.
      position_ = *position_ == option_type::end_of_list ? end_ : position_ + (**this).size();
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator before = *this;
      ++*this;
      return before;
    }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.position_ == b.position_; }

   private:
    friend option_range;
    iterator(const byte* position, const byte* end) noexcept : position_(position), end_(end) {}
    const byte* position_ = nullptr;
    const byte* end_ = nullptr;
  };

  // Checks option framing (RFC 791 §3.1): each option other than End of
  // Option List and No Operation has a length octet, at least 2 (it counts
  // the type and length octets), that keeps the option inside `options`.
  // Offsets in errors count from the start of the IPv4 header, so from 20 for
  // the first option byte.
  static expected<option_range> checked(bytes_view options) noexcept {
    std::size_t i = 0;
    while (i < options.size()) {
      const byte type = options[i];
      if (type == option_type::end_of_list) break;
      if (type == option_type::no_operation) {
        ++i;
        continue;
      }
      const std::size_t left = options.size() - i;
      if (left < 2) return parse_error{"ipv4", errc::truncated, "option", header_size + i, left, 2};
      const byte length = options[i + 1];
      if (length < 2) {
        return parse_error{"ipv4", errc::below_minimum, "option length", header_size + i + 1, length, 2};
      }
      if (length > left) return parse_error{"ipv4", errc::truncated, "option", header_size + i, left, length};
      i += length;
    }
    return option_range(options);
  }

  iterator begin() const noexcept { return {bytes_.data(), bytes_.data() + bytes_.size()}; }
  iterator end() const noexcept { return {bytes_.data() + bytes_.size(), bytes_.data() + bytes_.size()}; }
  bool empty() const noexcept { return bytes_.empty(); }
  // The raw option bytes, padding included.
  bytes_view bytes() const noexcept { return bytes_; }

 private:
  template <byte_type>
  friend class basic_view;
  explicit option_range(bytes_view bytes) noexcept : bytes_(bytes) {}
  bytes_view bytes_;
};

static_assert(std::forward_iterator<option_range::iterator>);

// The header checksum: RFC 791 §3.1, the one's complement sum over the header
// only (options included, payload not).
inline std::uint16_t compute_checksum(bytes_view header) noexcept { return checksum::compute(header); }

// The destination TCP and UDP put in their pseudo-header: the final
// destination of the datagram (RFC 9293 §3.1, RFC 768). For a datagram with a
// loose or strict source route that is still being followed, that is the
// last address of the route, not the next hop in the header (RFC 791 §3.1:
// each hop moves the next route entry into the destination field). Once the
// route is used up (its pointer is past its end) the header's destination is
// the final one. Only the first source route counts: RFC 791 allows one.
inline ipv4_address final_destination(const option_range& options, ipv4_address header_destination) noexcept {
  for (const option o : options) {
    if (o.type != option_type::loose_source_route && o.type != option_type::strict_source_route) continue;
    // data = pointer octet, then whole addresses; the pointer counts from the
    // option's type octet, so it starts at 4 and is past the end when it
    // exceeds the option's length (data + 2).
    if (o.data.size() < 5) return header_destination;
    const std::size_t pointer = o.data[0];
    const std::size_t option_length = o.data.size() + 2;
    if (pointer > option_length) return header_destination;
    const std::size_t route_bytes = (o.data.size() - 1) / 4 * 4;
    return ipv4_address::from_bytes(o.data.data() + 1 + route_bytes - 4);
  }
  return header_destination;
}

template <byte_type B>
class basic_view {
 public:
  // Checks, in this order: the fixed header is present, the version is 4,
  // IHL covers at least the fixed header, the bytes hold the whole header,
  // the total length covers at least the header, the bytes hold as many as
  // the total length claims, and the options are well framed. Bytes beyond
  // the total length (link padding, e.g. Ethernet's 46-byte minimum) are not
  // part of the view.
  static expected<basic_view> checked(std::span<B> bytes) noexcept { return check(bytes, false); }

  // The same, except that the bytes may stop short of the total length: for
  // the datagram an ICMP error quotes (RFC 792: its header and at least the
  // first 64 bits of its data; RFC 1812 §4.3.2.3: as much as fits in 576
  // bytes), whose total length still counts the bytes that were cut off.
  // `bytes()` and `payload()` then hold only the bytes present; the header
  // is whole and every accessor works as for `checked()`.
  static expected<basic_view> checked_quoted(std::span<B> bytes) noexcept { return check(bytes, true); }

  std::uint8_t version() const noexcept { return bytes_[0] >> 4; }
  // In bytes: IHL times 4.
  std::size_t header_length() const noexcept { return std::size_t{bytes_[0] & 0x0fu} * 4; }
  std::uint8_t tos() const noexcept { return bytes_[field::tos.offset]; }
  // RFC 2474 §3: the top six bits of the old TOS octet.
  std::uint8_t dscp() const noexcept { return tos() >> 2; }
  // RFC 3168 §5: the low two bits.
  std::uint8_t ecn() const noexcept { return tos() & 0x3; }
  std::uint16_t total_length() const noexcept { return load16(field::total_length); }
  std::uint16_t identification() const noexcept { return load16(field::identification); }
  // The reserved flag (RFC 791 says it must be zero), for a dissector to show.
  bool reserved_flag() const noexcept { return (flags_word() & flag::reserved) != 0; }
  bool dont_fragment() const noexcept { return (flags_word() & flag::dont_fragment) != 0; }
  bool more_fragments() const noexcept { return (flags_word() & flag::more_fragments) != 0; }
  // In 8-byte units, as on the wire (RFC 791 §3.1).
  std::uint16_t fragment_offset() const noexcept { return flags_word() & flag::fragment_offset_mask; }
  std::uint8_t ttl() const noexcept { return bytes_[field::ttl.offset]; }
  std::uint8_t protocol() const noexcept { return bytes_[field::protocol.offset]; }
  std::uint16_t checksum() const noexcept { return load16(field::checksum); }
  ipv4_address source() const noexcept { return ipv4_address::from_bytes(bytes_.data() + field::source.offset); }
  ipv4_address destination() const noexcept {
    return ipv4_address::from_bytes(bytes_.data() + field::destination.offset);
  }

  // A fragment is any part of a datagram but the whole: a non-zero offset or
  // more to come (RFC 791 §2.3 "Fragmentation").
  bool is_fragment() const noexcept { return more_fragments() || fragment_offset() != 0; }

  // The raw option bytes, padding included (header_length() - 20 bytes).
  std::span<B> options() const noexcept { return bytes_.subspan(header_size, header_length() - header_size); }
  // The options one by one; framing was checked by `checked()`.
  option_range option_list() const noexcept { return option_range(bytes_view(options())); }

  std::span<B> header() const noexcept { return bytes_.first(header_length()); }
  std::span<B> payload() const noexcept { return bytes_.subspan(header_length()); }
  // The datagram as the total length delimits it (for a quoted datagram, as
  // much of it as is present).
  std::span<B> bytes() const noexcept { return bytes_; }

  bool verify_checksum() const noexcept { return checksum::verify(header()); }

  // The destination the transport's pseudo-header uses: see the free
  // function `final_destination`.
  ipv4_address final_destination() const noexcept { return ipv4::final_destination(option_list(), destination()); }

  // The pseudo-header sum TCP (RFC 793 §3.1) and UDP (RFC 768) put before
  // their own bytes, with the payload's length as the upper-layer length.
  // Only meaningful for a whole datagram, not a fragment.
  checksum::accumulator pseudo_header() const noexcept {
    return checksum::accumulator{}.add_pseudo_header(source(), final_destination(), protocol(),
                                                     static_cast<std::uint16_t>(payload().size()));
  }

  // Setters write the field only; call `fill_checksum()` afterwards, or use
  // the `*_and_update_checksum` forms below. There is no setter for the
  // version, IHL or total length: they are what `checked()` validated, and
  // changing them under a view would break its guarantees. Build a new
  // header with `repr::emit` instead.
  void set_tos(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    bytes_[field::tos.offset] = v;
  }
  void set_dscp(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_tos(static_cast<std::uint8_t>((v << 2) | ecn()));
  }
  void set_ecn(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_tos(static_cast<std::uint8_t>((tos() & ~0x3u) | (v & 0x3u)));
  }
  void set_identification(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::identification, v);
  }
  void set_reserved_flag(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_flag(flag::reserved, v);
  }
  void set_dont_fragment(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_flag(flag::dont_fragment, v);
  }
  void set_more_fragments(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_flag(flag::more_fragments, v);
  }
  // In 8-byte units; only the low 13 bits are kept.
  void set_fragment_offset(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::flags_and_fragment_offset,
            static_cast<std::uint16_t>((flags_word() & ~flag::fragment_offset_mask) | (v & flag::fragment_offset_mask)));
  }
  void set_ttl(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    bytes_[field::ttl.offset] = v;
  }
  void set_protocol(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    bytes_[field::protocol.offset] = v;
  }
  void set_checksum(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::checksum, v);
  }
  void set_source(ipv4_address v) noexcept
    requires(!std::is_const_v<B>)
  {
    v.to_bytes(bytes_.data() + field::source.offset);
  }
  void set_destination(ipv4_address v) noexcept
    requires(!std::is_const_v<B>)
  {
    v.to_bytes(bytes_.data() + field::destination.offset);
  }

  // Recomputes the header checksum from scratch.
  void fill_checksum() noexcept
    requires(!std::is_const_v<B>)
  {
    set_checksum(0);
    set_checksum(compute_checksum(header()));
  }

  // Header rewrites that keep the checksum right without summing the header
  // again (RFC 1624 eqn. 3), as a router does when it lowers the TTL
  // (RFC 1812 §5.3.1) or a NAT when it rewrites an address. A checksum that
  // was wrong before stays wrong by the same amount: the update does not
  // repair it, it only accounts for the change. A NAT rewriting an address
  // must also update the TCP or UDP checksum, whose pseudo-header covers it
  // (checksum::update32 on that field).
  void set_ttl_and_update_checksum(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    // TTL shares its 16-bit checksum word with the protocol.
    replace_word(field::ttl.offset, static_cast<std::uint16_t>((v << 8) | protocol()));
  }
  void set_tos_and_update_checksum(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    // TOS shares its word with version and IHL.
    replace_word(0, static_cast<std::uint16_t>((bytes_[0] << 8) | v));
  }
  void set_identification_and_update_checksum(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    replace_word(field::identification.offset, v);
  }
  void set_source_and_update_checksum(ipv4_address v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_checksum(checksum::update32(checksum(), source().value, v.value));
    set_source(v);
  }
  void set_destination_and_update_checksum(ipv4_address v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_checksum(checksum::update32(checksum(), destination().value, v.value));
    set_destination(v);
  }

 private:
  explicit basic_view(std::span<B> bytes) noexcept : bytes_(bytes) {}

  static expected<basic_view> check(std::span<B> bytes, bool quoted) noexcept {
    if (bytes.size() < header_size) {
      return parse_error{"ipv4", errc::truncated, "header", 0, bytes.size(), header_size};
    }
    const std::uint8_t version = bytes[0] >> 4;
    if (version != version_number) {
      return parse_error{"ipv4", errc::mismatch, "version", 0, version, version_number};
    }
    // Reported in bytes, as tcpdump does ("header length 16 < 20").
    const std::size_t header_length = std::size_t{bytes[0] & 0x0fu} * 4;
    if (header_length < header_size) {
      return parse_error{"ipv4", errc::below_minimum, "header length", 0, header_length, header_size};
    }
    if (header_length > bytes.size()) {
      return parse_error{"ipv4", errc::truncated, "header", 0, bytes.size(), header_length};
    }
    const std::uint16_t total_length = wire::load_be16(bytes.data() + field::total_length.offset);
    if (total_length < header_length) {
      return parse_error{"ipv4", errc::below_minimum, "total length", field::total_length.offset, total_length,
                         header_length};
    }
    if (total_length > bytes.size() && !quoted) {
      return parse_error{"ipv4", errc::truncated, "datagram", 0, bytes.size(), total_length};
    }
    const auto options = option_range::checked(bytes_view(bytes.subspan(header_size, header_length - header_size)));
    if (!options) return options.error();
    return basic_view(bytes.first(std::min<std::size_t>(total_length, bytes.size())));
  }

  std::uint16_t flags_word() const noexcept { return load16(field::flags_and_fragment_offset); }
  void set_flag(std::uint16_t bit, bool on) noexcept
    requires(!std::is_const_v<B>)
  {
    const std::uint16_t word = flags_word();
    store16(field::flags_and_fragment_offset, static_cast<std::uint16_t>(on ? word | bit : word & ~bit));
  }
  // Writes the 16-bit word at even `offset` and updates the checksum for it.
  void replace_word(std::size_t offset, std::uint16_t new_word) noexcept
    requires(!std::is_const_v<B>)
  {
    const std::uint16_t old_word = wire::load_be16(bytes_.data() + offset);
    wire::store_be16(bytes_.data() + offset, new_word);
    set_checksum(checksum::update(checksum(), old_word, new_word));
  }
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
  std::uint8_t dscp = 0;  // 6 bits
  std::uint8_t ecn = 0;   // 2 bits
  std::uint16_t identification = 0;
  // RFC 791 says send zero; kept so that a covert channel or a test of how
  // peers treat it (RFC 3514's "evil bit") can set it, and parse/emit stay exact.
  bool reserved_flag = false;
  bool dont_fragment = false;
  bool more_fragments = false;
  std::uint16_t fragment_offset = 0;  // in 8-byte units, 13 bits
  // 64 is the default RFC 1700 recommends; a stack's TTL policy may set another.
  std::uint8_t ttl = 64;
  std::uint8_t protocol = 0;
  ipv4_address source;
  ipv4_address destination;
  // Raw option bytes, the first `options_length` of `options`; emit pads
  // them with End of Option List to a multiple of 4. Bytes past
  // `options_length` stay zero (`set_options` keeps them so), so that the
  // defaulted `==` compares only what is emitted.
  std::array<byte, max_options_size> options{};
  std::uint8_t options_length = 0;

  // Copies the header's fields. The options are kept as they were on the
  // wire, padding included, so that emit gives back the same header.
  static expected<repr> parse(view v) noexcept {
    repr r;
    r.dscp = v.dscp();
    r.ecn = v.ecn();
    r.identification = v.identification();
    r.reserved_flag = v.reserved_flag();
    r.dont_fragment = v.dont_fragment();
    r.more_fragments = v.more_fragments();
    r.fragment_offset = v.fragment_offset();
    r.ttl = v.ttl();
    r.protocol = v.protocol();
    r.source = v.source();
    r.destination = v.destination();
    const auto options = v.options();
    std::copy(options.begin(), options.end(), r.options.begin());
    r.options_length = static_cast<std::uint8_t>(options.size());
    return r;
  }

  // Sets the options from raw bytes after checking their framing as
  // `view::checked` would, so that what emit writes parses back.
  expected<void> set_options(bytes_view raw) noexcept {
    if (raw.size() > max_options_size) {
      return parse_error{"ipv4", errc::above_maximum, "options length", header_size, raw.size(), max_options_size};
    }
    const auto framed = option_range::checked(raw);
    if (!framed) return framed.error();
    options.fill(0);
    std::copy(raw.begin(), raw.end(), options.begin());
    options_length = static_cast<std::uint8_t>(raw.size());
    return {};
  }
  bytes_view option_bytes() const noexcept { return bytes_view(options.data(), options_length); }

  // The destination the transport's pseudo-header uses (see the free
  // function). The options were framed by `parse` or `set_options`.
  ipv4_address final_destination() const noexcept {
    // Without options there is no source route: the usual case, every
    // segment sent, costs no walk.
    if (options_length == 0) return destination;
    const auto framed = option_range::checked(option_bytes());
    return framed ? ipv4::final_destination(*framed, destination) : destination;
  }

  // Bytes the header takes: options rounded up to whole 32-bit words.
  constexpr std::size_t size() const noexcept { return header_size + ((options_length + 3u) & ~std::size_t{3}); }

  // Writes the header at the front of `datagram`, whose payload is already in
  // place after it, sets the total length to `datagram.size()` and fills the
  // header checksum. `datagram` must hold at least `size()` bytes and at most
  // 65535.
  void emit(mutable_bytes datagram) const noexcept {
    emit_without_checksum(datagram);
    // RFC 791 §3.1: the fixed header summed from the values written
    // (checksum::accumulator::add_host_words says why), the options as bytes.
    const std::uint16_t sum =
        checksum::accumulator{}
            .add_host_words(fixed_header_words(static_cast<std::uint16_t>(datagram.size())))
            .add_rest(datagram.subspan(header_size, size() - header_size))
            .finish();
    wire::store_be16(datagram.data() + field::checksum.offset, sum);
  }

  // The same with the checksum field left zero, for a device that computes
  // it (checksum offload).
  void emit_without_checksum(mutable_bytes datagram) const noexcept {
    byte* p = datagram.data();
    const std::size_t length = size();
    p[0] = static_cast<byte>(version_and_length());
    p[field::tos.offset] = tos_byte();
    wire::store_be16(p + field::total_length.offset, static_cast<std::uint16_t>(datagram.size()));
    wire::store_be16(p + field::identification.offset, identification);
    wire::store_be16(p + field::flags_and_fragment_offset.offset, flags_word());
    p[field::ttl.offset] = ttl;
    p[field::protocol.offset] = protocol;
    wire::store_be16(p + field::checksum.offset, 0);
    source.to_bytes(p + field::source.offset);
    destination.to_bytes(p + field::destination.offset);
    std::copy_n(options.begin(), options_length, p + header_size);
    // RFC 791 §3.1 "Padding": zeros to the 32-bit boundary, which read as
    // End of Option List.
    std::fill(p + header_size + options_length, p + length, byte{option_type::end_of_list});
  }

  friend bool operator==(const repr&, const repr&) = default;

 private:
  std::uint8_t version_and_length() const noexcept {
    return static_cast<std::uint8_t>((version_number << 4) | (size() / 4));
  }
  std::uint8_t tos_byte() const noexcept { return static_cast<std::uint8_t>((dscp << 2) | (ecn & 0x3)); }
  std::uint16_t flags_word() const noexcept {
    std::uint16_t word = fragment_offset & flag::fragment_offset_mask;
    if (reserved_flag) word |= flag::reserved;
    if (dont_fragment) word |= flag::dont_fragment;
    if (more_fragments) word |= flag::more_fragments;
    return word;
  }
  // The 20-byte fixed header's words, checksum zero, summed in host order
  // (for accumulator::add_host_words). An address is added whole: its two
  // 16-bit halves are what it is modulo 0xffff, which the fold reduces by.
  std::uint64_t fixed_header_words(std::uint16_t total_length) const noexcept {
    return std::uint64_t{static_cast<std::uint16_t>((version_and_length() << 8) | tos_byte())} + total_length +
           identification + flags_word() + static_cast<std::uint16_t>((ttl << 8) | protocol) + source.value +
           destination.value;
  }
};

}  // namespace pystack::ipv4

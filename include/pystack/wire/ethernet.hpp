// Ethernet II framing (IEEE 802.3 clause 3 with an EtherType, RFC 894) and
// IEEE 802.1Q VLAN tags, stacked at most twice for 802.1ad provider bridging
// ("QinQ").
//
// A frame is destination, source, then zero to two 4-byte tags (TPID, TCI),
// then the EtherType of the payload. The frame check sequence is not part of
// what captures and user-space devices hand over, so it is not part of a view.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"

namespace pystack::eth {

// EtherType values (IEEE Registration Authority), and the tag protocol
// identifiers that share the same field.
namespace ethertype {
inline constexpr std::uint16_t ipv4 = 0x0800;
inline constexpr std::uint16_t arp = 0x0806;
inline constexpr std::uint16_t vlan = 0x8100;  // 802.1Q customer tag (C-TAG)
inline constexpr std::uint16_t qinq = 0x88a8;  // 802.1ad service tag (S-TAG)
// The S-TAG TPID some switches used before 802.1ad assigned 0x88a8; still
// seen in captures, so it is read as an outer tag too.
inline constexpr std::uint16_t qinq_legacy = 0x9100;
inline constexpr std::uint16_t ipv6 = 0x86dd;
}  // namespace ethertype

// IEEE 802.3 §3.2.6: a Length/Type value below 0x0600 is the length of an
// 802.3 (LLC) frame, not an EtherType; such frames are not decoded here.
inline constexpr std::uint16_t minimum_ethertype = 0x0600;

// Bytes of an untagged header, of each VLAN tag, and how many tags a view
// decodes (one S-TAG and one C-TAG, 802.1ad).
inline constexpr std::size_t header_size = 14;
inline constexpr std::size_t vlan_tag_size = 4;
inline constexpr std::size_t max_vlan_tags = 2;

// IEEE 802.3 §4.2.3.3: the smallest frame on the wire is 64 bytes with the
// 4-byte FCS, so 60 without it. Neither `checked` nor `emit` applies it:
// captures often hold shorter frames (the capturing host's own, before the
// NIC padded them), and padding an outgoing frame is the device's job, as it
// is the device that adds the FCS.
inline constexpr std::size_t minimum_frame_size = 60;

namespace field {
inline constexpr wire::field destination{0, 6};
inline constexpr wire::field source{6, 6};
// The Length/Type field of an untagged frame; in a tagged frame the first
// tag's TPID, with each tag shifting the EtherType 4 bytes further.
inline constexpr wire::field ethertype{12, 2};
// Within a tag that starts at `ethertype.offset + i * vlan_tag_size`.
inline constexpr wire::field tag_protocol_identifier{0, 2};
inline constexpr wire::field tag_control_information{2, 2};
}  // namespace field

// True for the values that announce a VLAN tag in the outermost position.
inline constexpr bool is_outer_tpid(std::uint16_t v) noexcept {
  return v == ethertype::vlan || v == ethertype::qinq || v == ethertype::qinq_legacy;
}

// One 802.1Q tag: the TPID that introduced it and the three parts of its Tag
// Control Information (IEEE 802.1Q-2018 §9.6).
struct vlan_tag {
  std::uint16_t tpid = ethertype::vlan;
  std::uint8_t pcp = 0;   // priority code point, 3 bits (802.1Q §6.9.3)
  bool dei = false;       // drop eligible indicator
  std::uint16_t vid = 0;  // VLAN identifier, 12 bits; 0 means priority-tagged only

  // The 16-bit TCI; bits beyond each field's width are dropped.
  constexpr std::uint16_t tci() const noexcept {
    return static_cast<std::uint16_t>(((pcp & 0x7u) << 13) | (dei ? 0x1000u : 0u) | (vid & 0x0fffu));
  }
  static constexpr vlan_tag from_tci(std::uint16_t tpid, std::uint16_t tci) noexcept {
    return {tpid, static_cast<std::uint8_t>(tci >> 13), (tci & 0x1000) != 0,
            static_cast<std::uint16_t>(tci & 0x0fff)};
  }

  friend constexpr bool operator==(const vlan_tag&, const vlan_tag&) = default;
};

template <byte_type B>
class basic_view {
 public:
  // Checks that the addresses, every tag and the final EtherType are present,
  // that there are at most two tags (the outer one 0x8100, 0x88a8 or 0x9100,
  // an inner one 0x8100), and that the EtherType is one (not an 802.3 length). The minimum frame
  // size is not enforced (see `minimum_frame_size`).
  static expected<basic_view> checked(std::span<B> bytes) noexcept {
    if (bytes.size() < eth::header_size) {
      return parse_error{"eth", errc::truncated, "header", 0, bytes.size(), eth::header_size};
    }
    std::uint8_t tags = 0;
    std::size_t at = field::ethertype.offset;  // where the current Length/Type sits
    std::uint16_t type = wire::load_be16(bytes.data() + at);
    while (is_outer_tpid(type)) {
      if (tags == max_vlan_tags) {
        return parse_error{"eth", errc::above_maximum, "vlan tags", at, max_vlan_tags + 1,
                           max_vlan_tags};
      }
      // 802.1ad puts the S-TAG outside the C-TAG; an S-TAG TPID inside a
      // tag is a stack this parser does not know how to read.
      if (tags > 0 && type != ethertype::vlan) {
        return parse_error{"eth", errc::mismatch, "inner vlan tpid", at, type, ethertype::vlan};
      }
      const std::size_t needed = eth::header_size + (tags + 1u) * vlan_tag_size;
      if (bytes.size() < needed) {
        return parse_error{"eth", errc::truncated, "vlan tag", at, bytes.size(), needed};
      }
      ++tags;
      at += vlan_tag_size;
      type = wire::load_be16(bytes.data() + at);
    }
    if (type < minimum_ethertype) {
      return parse_error{"eth", errc::unsupported, "ethertype", at, type, minimum_ethertype};
    }
    return basic_view(bytes, tags);
  }

  mac_address destination() const noexcept { return mac_address::from_bytes(bytes_.data() + field::destination.offset); }
  mac_address source() const noexcept { return mac_address::from_bytes(bytes_.data() + field::source.offset); }
  // The EtherType of the payload, after all tags.
  std::uint16_t ethertype() const noexcept { return wire::load_be16(bytes_.data() + ethertype_offset()); }

  std::size_t vlan_count() const noexcept { return vlan_count_; }
  // Tag `i`, outermost first. An index at or past `vlan_count()` gives a
  // default tag rather than reading payload bytes as one.
  vlan_tag vlan(std::size_t i) const noexcept {
    if (i >= vlan_count_) return {};
    const byte* p = bytes_.data() + tag_offset(i);
    return vlan_tag::from_tci(wire::load_be16(p + field::tag_protocol_identifier.offset),
                              wire::load_be16(p + field::tag_control_information.offset));
  }

  // 14 bytes plus 4 per tag.
  std::size_t header_size() const noexcept { return eth::header_size + vlan_count_ * vlan_tag_size; }
  std::span<B> header() const noexcept { return bytes_.first(header_size()); }
  std::span<B> payload() const noexcept { return bytes_.subspan(header_size()); }
  // The whole frame as given, header and payload (and any padding).
  std::span<B> bytes() const noexcept { return bytes_; }

  void set_destination(mac_address a) noexcept
    requires(!std::is_const_v<B>)
  {
    a.to_bytes(bytes_.data() + field::destination.offset);
  }
  void set_source(mac_address a) noexcept
    requires(!std::is_const_v<B>)
  {
    a.to_bytes(bytes_.data() + field::source.offset);
  }
  // Writes the EtherType after the tags. The view keeps its tag count, so a
  // TPID or an 802.3 length written here only shows when the frame is checked
  // again.
  void set_ethertype(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    wire::store_be16(bytes_.data() + ethertype_offset(), v);
  }

  // Rewrite tag `i` whole (TPID and TCI) or one part of its TCI. An index at
  // or past `vlan_count()` is ignored: a view never grows or shrinks a frame.
  void set_vlan(std::size_t i, vlan_tag t) noexcept
    requires(!std::is_const_v<B>)
  {
    if (i >= vlan_count_) return;
    byte* p = bytes_.data() + tag_offset(i);
    wire::store_be16(p + field::tag_protocol_identifier.offset, t.tpid);
    wire::store_be16(p + field::tag_control_information.offset, t.tci());
  }
  void set_vlan_pcp(std::size_t i, std::uint8_t pcp) noexcept
    requires(!std::is_const_v<B>)
  {
    vlan_tag t = vlan(i);
    t.pcp = pcp;
    set_vlan(i, t);
  }
  void set_vlan_dei(std::size_t i, bool dei) noexcept
    requires(!std::is_const_v<B>)
  {
    vlan_tag t = vlan(i);
    t.dei = dei;
    set_vlan(i, t);
  }
  void set_vlan_vid(std::size_t i, std::uint16_t vid) noexcept
    requires(!std::is_const_v<B>)
  {
    vlan_tag t = vlan(i);
    t.vid = vid;
    set_vlan(i, t);
  }

 private:
  basic_view(std::span<B> bytes, std::uint8_t vlan_count) noexcept : bytes_(bytes), vlan_count_(vlan_count) {}
  static constexpr std::size_t tag_offset(std::size_t i) noexcept {
    return field::ethertype.offset + i * vlan_tag_size;
  }
  std::size_t ethertype_offset() const noexcept { return tag_offset(vlan_count_); }

  std::span<B> bytes_;
  std::uint8_t vlan_count_ = 0;
};

using view = basic_view<const byte>;
using mutable_view = basic_view<byte>;

struct repr {
  mac_address destination;
  mac_address source;
  std::uint16_t ethertype = 0;  // of the payload, after the tags
  // Outermost first; entries at or past `vlan_count` are not emitted. Leave
  // them default (as `parse` does) so that `==` compares what matters.
  std::array<vlan_tag, max_vlan_tags> vlans{};
  std::uint8_t vlan_count = 0;

  static expected<repr> parse(view v) noexcept {
    repr r{v.destination(), v.source(), v.ethertype(), {}, static_cast<std::uint8_t>(v.vlan_count())};
    for (std::size_t i = 0; i < v.vlan_count(); ++i) r.vlans[i] = v.vlan(i);
    return r;
  }

  // Bytes the header takes: 14 plus 4 per tag.
  constexpr std::size_t size() const noexcept { return header_size + tags() * vlan_tag_size; }

  // Writes the header at the front of `frame`, whose payload is already in
  // place after it. `frame` must hold at least `size()` bytes. Short frames
  // are not padded to `minimum_frame_size`; the device does that.
  void emit(mutable_bytes frame) const noexcept {
    byte* p = frame.data();
    destination.to_bytes(p + field::destination.offset);
    source.to_bytes(p + field::source.offset);
    std::size_t at = field::ethertype.offset;
    for (std::size_t i = 0; i < tags(); ++i, at += vlan_tag_size) {
      wire::store_be16(p + at + field::tag_protocol_identifier.offset, vlans[i].tpid);
      wire::store_be16(p + at + field::tag_control_information.offset, vlans[i].tci());
    }
    wire::store_be16(p + at, ethertype);
  }

  // The untagged header emit() writes, without a repr, in two steps: for a
  // sender that no hook shows the header to (so that it is not built in
  // memory first) and that knows the destination last. The source and
  // EtherType first (`header_size` bytes at `p`), then the destination;
  // once both ran, the bytes are emit()'s for {destination, source,
  // ethertype} without tags.
  static void emit_untagged_source(byte* p, const mac_address& source, std::uint16_t ethertype) noexcept {
    source.to_bytes(p + field::source.offset);
    wire::store_be16(p + field::ethertype.offset, ethertype);
  }
  static void emit_destination(byte* p, const mac_address& destination) noexcept {
    destination.to_bytes(p + field::destination.offset);
  }

  friend bool operator==(const repr&, const repr&) = default;

 private:
  // A count past the array is clamped, so `size` and `emit` agree and stay
  // inside `vlans`.
  constexpr std::size_t tags() const noexcept { return std::min<std::size_t>(vlan_count, max_vlan_tags); }
};

}  // namespace pystack::eth

// TCP header (RFC 9293 §3.1) and its options.
//
// Same pattern as udp.hpp: `basic_view` is made only by `checked()`, `repr`
// is the parsed value with `parse` / `size` / `emit`.
//
// `checked()` validates the whole option area, not just the fixed header, so
// the option walker (`view::options()`) never has to report an error:
// - End of Option List (kind 0) ends the list; the bytes after it are padding
//   (RFC 9293 §3.1 asks for zeros, but they are not checked: tcpdump and the
//   Linux receiver ignore them, and Wireshark only flags them).
// - No-Operation (kind 1) is a single byte.
// - Every other kind has a length byte counting kind and length (RFC 9293
//   §3.1, "Options"). A length below 2 or one running past the header is an
//   error: nothing after it can be framed (RFC 9293 §3.1, MUST-7).
// - A known kind whose length is not its fixed length (MSS 4, window scale 3,
//   SACK-permitted 2, timestamps 10, SACK 2 + 8n for n = 1..4) is an error too
//   (`errc::mismatch`). Wireshark and tcpdump print such an option with a note
//   ("option length should be 4", "mss 1281[len 3]") and go on by its length
//   byte, and Linux's tcp_parse_options skips it. Here it is an error: the
//   typed value (an MSS, a shift, SACK blocks) cannot be decoded from it, a
//   length its kind does not allow is an illegal option length in the sense of
//   RFC 9293 MUST-7, and skipping it silently would lose what the peer meant
//   to announce. `dissect` reports it as its `error`; a TCP layer that wants
//   Linux's leniency can match on `errc::mismatch`.
// Options of other kinds (MPTCP 30, TFO 34, the experimental 253 and 254, ...)
// are kept as opaque bytes: RFC 9293 §3.1 (MUST-5) has a receiver ignore them.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>

#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/checksum.hpp"
#include "pystack/wire/error.hpp"
#include "pystack/wire/seq.hpp"

namespace pystack::tcp {

inline constexpr std::uint8_t ip_protocol = 6;
inline constexpr std::size_t header_size = 20;
// Data offset is 4 bits of 32-bit words: at most 60 header bytes, so at most
// 40 bytes of options.
inline constexpr std::size_t max_header_size = 60;
inline constexpr std::size_t max_options_size = max_header_size - header_size;

namespace field {
inline constexpr wire::field source_port{0, 2};
inline constexpr wire::field destination_port{2, 2};
inline constexpr wire::field sequence_number{4, 4};
inline constexpr wire::field ack_number{8, 4};
// Data offset is the high nibble of byte 12; the low 12 bits of bytes 12-13
// are the reserved bits and the control bits (see `tcp::flags`).
inline constexpr wire::field data_offset{12, 1};
inline constexpr wire::field flags{12, 2};
inline constexpr wire::field window{14, 2};
inline constexpr wire::field checksum{16, 2};
inline constexpr wire::field urgent_pointer{18, 2};
inline constexpr wire::field options{20, max_options_size};
}  // namespace field

// The checksum to store for `segment` (header with a zero checksum field, then
// payload): RFC 9293 §3.1, over the IPv4 pseudo-header and the whole segment.
// Unlike UDP there is no "none sent" value, so a zero sum is stored as is.
inline std::uint16_t compute_checksum(bytes_view segment, ipv4_address source,
                                      ipv4_address destination) noexcept {
  return checksum::accumulator{}
      .add_pseudo_header(source, destination, ip_protocol, static_cast<std::uint16_t>(segment.size()))
      .add(segment)
      .finish();
}

// ---------------------------------------------------------------------------
// Control bits.

// The 12 bits after the data offset: the eight control bits of RFC 9293 §3.1
// (CWR and ECE from RFC 3168 §6.1), the AE bit (Accurate ECN,
// draft-ietf-tcpm-accurate-ecn; the NS bit of the historic RFC 3540) and three
// reserved bits that RFC 9293 says to send as zero and ignore on receipt. They
// are all kept so that a segment is re-emitted exactly as it came.
class flags {
 public:
  static const flags fin;
  static const flags syn;
  static const flags rst;
  static const flags psh;
  static const flags ack;
  static const flags urg;
  static const flags ece;
  static const flags cwr;
  static const flags ae;

  static constexpr std::uint16_t mask = 0x0fff;
  static constexpr std::uint16_t reserved_mask = 0x0e00;

  constexpr flags() noexcept = default;
  // Bits above the low 12 are the data offset's and are dropped.
  constexpr explicit flags(std::uint16_t bits) noexcept : bits_(static_cast<std::uint16_t>(bits & mask)) {}

  // All 12 bits, as they sit in the low bits of header bytes 12-13.
  constexpr std::uint16_t bits() const noexcept { return bits_; }
  // The three reserved bits, 0..7 (RFC 9293 §3.1 "Rsrvd" less the AE bit).
  constexpr std::uint8_t reserved() const noexcept { return static_cast<std::uint8_t>(bits_ >> 9); }

  // True when every bit of `f` is set.
  constexpr bool has(flags f) const noexcept { return (bits_ & f.bits_) == f.bits_; }
  // True when any bit of `f` is set.
  constexpr bool any(flags f) const noexcept { return (bits_ & f.bits_) != 0; }
  constexpr bool empty() const noexcept { return bits_ == 0; }

  friend constexpr flags operator|(flags a, flags b) noexcept { return flags(a.bits_ | b.bits_); }
  friend constexpr flags operator&(flags a, flags b) noexcept { return flags(a.bits_ & b.bits_); }
  friend constexpr flags operator^(flags a, flags b) noexcept { return flags(a.bits_ ^ b.bits_); }
  constexpr flags operator~() const noexcept { return flags(static_cast<std::uint16_t>(~bits_)); }
  constexpr flags& operator|=(flags f) noexcept { return *this = *this | f; }
  constexpr flags& operator&=(flags f) noexcept { return *this = *this & f; }
  constexpr flags& operator^=(flags f) noexcept { return *this = *this ^ f; }
  friend constexpr bool operator==(flags, flags) = default;

  // The set control bits as letters in the order "FSRPAUEC" (FIN SYN RST PSH
  // ACK URG ECE CWR), as `dissect` prints them and Scapy spells them: "SA",
  // "FPA", "" for none. AE and the reserved bits are not letters here.
  std::string to_string() const {
    static constexpr char letters[] = "FSRPAUEC";
    std::string s;
    for (int i = 0; i < 8; ++i) {
      if (bits_ & (1u << i)) s += letters[i];
    }
    return s;
  }

 private:
  std::uint16_t bits_ = 0;
};

inline constexpr flags flags::fin{0x001};
inline constexpr flags flags::syn{0x002};
inline constexpr flags flags::rst{0x004};
inline constexpr flags flags::psh{0x008};
inline constexpr flags flags::ack{0x010};
inline constexpr flags flags::urg{0x020};
inline constexpr flags flags::ece{0x040};
inline constexpr flags flags::cwr{0x080};
inline constexpr flags flags::ae{0x100};

// ---------------------------------------------------------------------------
// Options.

// Option kind bytes (IANA "TCP Option Kind Numbers").
namespace option_code {
inline constexpr std::uint8_t eol = 0;             // RFC 9293 §3.1
inline constexpr std::uint8_t nop = 1;             // RFC 9293 §3.1
inline constexpr std::uint8_t mss = 2;             // RFC 9293 §3.7.1
inline constexpr std::uint8_t window_scale = 3;    // RFC 7323 §2.2
inline constexpr std::uint8_t sack_permitted = 4;  // RFC 2018 §2
inline constexpr std::uint8_t sack = 5;            // RFC 2018 §3
inline constexpr std::uint8_t timestamp = 8;       // RFC 7323 §3.2
}  // namespace option_code

enum class option_kind : std::uint8_t { eol, nop, mss, window_scale, sack_permitted, sack, timestamp, unknown };

// One SACK block (RFC 2018 §3): the first sequence number of a block received
// and the one just after its end.
struct sack_block {
  seq_number left{};
  seq_number right{};
  friend constexpr bool operator==(const sack_block&, const sack_block&) = default;
};

// The blocks of one SACK option: 1 to 4 of them, since four (34 bytes) are all
// that fit in the 40-byte option area. A fixed array and a count, so that it
// is a plain value.
struct sack_blocks {
  static constexpr std::size_t capacity = 4;
  std::array<sack_block, capacity> blocks{};
  std::size_t count = 0;

  constexpr const sack_block* begin() const noexcept { return blocks.data(); }
  constexpr const sack_block* end() const noexcept { return blocks.data() + count; }
  constexpr std::size_t size() const noexcept { return count; }
  constexpr bool empty() const noexcept { return count == 0; }
  constexpr const sack_block& operator[](std::size_t i) const noexcept { return blocks[i]; }
  friend constexpr bool operator==(const sack_blocks&, const sack_blocks&) = default;
};

// The two values of a timestamps option (RFC 7323 §3.2): TSval, the sender's
// clock, and TSecr, the TSval echoed back. Compare them as `tcp_timestamp`
// (seq.hpp) when doing PAWS: they wrap.
struct timestamps {
  std::uint32_t tsval = 0;
  std::uint32_t tsecr = 0;
  friend constexpr bool operator==(const timestamps&, const timestamps&) = default;
};

namespace detail {

// The length a known kind must have, 0 for a kind without a fixed one (EOL and
// NOP have no length byte; SACK and unknown kinds vary).
constexpr std::uint8_t fixed_option_length(std::uint8_t code) noexcept {
  switch (code) {
    case option_code::mss: return 4;
    case option_code::window_scale: return 3;
    case option_code::sack_permitted: return 2;
    case option_code::timestamp: return 10;
    default: return 0;
  }
}

// Names for errors: "<name>" and "<name> length".
constexpr const char* option_name(std::uint8_t code) noexcept {
  switch (code) {
    case option_code::eol: return "eol option";
    case option_code::nop: return "nop option";
    case option_code::mss: return "mss option";
    case option_code::window_scale: return "window scale option";
    case option_code::sack_permitted: return "sack permitted option";
    case option_code::sack: return "sack option";
    case option_code::timestamp: return "timestamp option";
    default: return "option";
  }
}
constexpr const char* option_length_name(std::uint8_t code) noexcept {
  switch (code) {
    case option_code::eol: return "eol option length";
    case option_code::nop: return "nop option length";
    case option_code::mss: return "mss option length";
    case option_code::window_scale: return "window scale option length";
    case option_code::sack_permitted: return "sack permitted option length";
    case option_code::sack: return "sack option length";
    case option_code::timestamp: return "timestamp option length";
    default: return "option length";
  }
}

// Checks the option starting at `area[at]` and returns how many bytes it
// takes. `base` is the area's offset in the TCP header, for error offsets.
// The one place the framing rules live: `checked()`, `option_list` and
// `option::make` all come here.
inline expected<std::size_t> check_option(bytes_view area, std::size_t at, std::size_t base) noexcept {
  const std::uint8_t code = area[at];
  if (code == option_code::eol || code == option_code::nop) return std::size_t{1};
  const std::size_t remaining = area.size() - at;
  if (remaining < 2) {
    return parse_error{"tcp", errc::truncated, option_length_name(code), base + at + 1, 0, 1};
  }
  const std::uint8_t length = area[at + 1];
  if (length < 2) {
    return parse_error{"tcp", errc::below_minimum, option_length_name(code), base + at + 1, length, 2};
  }
  if (length > remaining) {
    return parse_error{"tcp", errc::truncated, option_name(code), base + at, remaining, length};
  }
  if (const std::uint8_t fixed = fixed_option_length(code); fixed != 0 && length != fixed) {
    return parse_error{"tcp", errc::mismatch, option_length_name(code), base + at + 1, length, fixed};
  }
  if (code == option_code::sack) {
    // RFC 2018 §3: 2 + 8n bytes; n >= 1, and n <= 4 follows from the 40-byte
    // option area.
    if (length < 10) {
      return parse_error{"tcp", errc::below_minimum, option_length_name(code), base + at + 1, length, 10};
    }
    if ((length - 2) % 8 != 0) {
      // The length the whole blocks it holds would have.
      return parse_error{"tcp", errc::mismatch, option_length_name(code), base + at + 1, length,
                         2u + 8u * ((length - 2u) / 8u)};
    }
  }
  return std::size_t{length};
}

// Checks every option up to the first End of Option List.
inline expected<void> check_options(bytes_view area, std::size_t base) noexcept {
  std::size_t at = 0;
  while (at < area.size()) {
    const auto size = check_option(area, at, base);
    if (!size) return size.error();
    if (area[at] == option_code::eol) break;
    at += *size;
  }
  return {};
}

// The bytes the option at `p` takes, or 0 when it cannot be framed (then the
// walk ends). After `checked()` the 0 never happens; it keeps the walker
// within bounds even if someone rewrote option bytes through a mutable span.
constexpr std::size_t framed_size(const byte* p, const byte* end) noexcept {
  if (p >= end) return 0;
  if (*p == option_code::eol || *p == option_code::nop) return 1;
  if (end - p < 2) return 0;
  const std::size_t length = p[1];
  if (length < 2 || length > static_cast<std::size_t>(end - p)) return 0;
  return length;
}

constexpr option_kind kind_of(std::uint8_t code) noexcept {
  switch (code) {
    case option_code::eol: return option_kind::eol;
    case option_code::nop: return option_kind::nop;
    case option_code::mss: return option_kind::mss;
    case option_code::window_scale: return option_kind::window_scale;
    case option_code::sack_permitted: return option_kind::sack_permitted;
    case option_code::sack: return option_kind::sack;
    case option_code::timestamp: return option_kind::timestamp;
    default: return option_kind::unknown;
  }
}

// What a default `option_ref` looks at: End of Option List.
inline constexpr byte eol_wire[1] = {option_code::eol};

}  // namespace detail

// One option where it lies: a pointer to its kind byte and its size, no copy.
// This is what iterating a view's options (or an option_list) yields, so the
// receive path decodes each option straight from the segment. It is valid as
// long as the bytes it points into; convert it to `tcp::option` to keep it
// longer. The getters are those of `tcp::option`: a getter for another kind
// returns zero or empty. A default-constructed one is End of Option List.
//
// Every getter reads within [bytes().data(), bytes().data() + size()): the
// typed ones check the size as well as the kind, because the bytes may have
// been rewritten through a mutable span after `checked()` framed them.
class option_ref {
 public:
  constexpr option_ref() noexcept = default;

  // The kind byte.
  constexpr std::uint8_t code() const noexcept { return p_[0]; }
  constexpr option_kind kind() const noexcept { return detail::kind_of(code()); }
  // Bytes on the wire: 1 for EOL and NOP, else the length byte.
  constexpr std::size_t size() const noexcept { return size_; }
  // The whole option as sent.
  constexpr bytes_view bytes() const noexcept { return bytes_view(p_, size_); }
  // What follows kind and length (an unknown option's opaque payload). Empty
  // for EOL and NOP.
  constexpr bytes_view data() const noexcept {
    return size_ < 2 ? bytes_view{} : bytes_view(p_ + 2, size_ - 2u);
  }

  constexpr std::uint16_t mss() const noexcept {
    return code() == option_code::mss && size_ >= 4 ? wire::load_be16(p_ + 2) : 0;
  }
  constexpr std::uint8_t window_scale() const noexcept {
    return code() == option_code::window_scale && size_ >= 3 ? p_[2] : 0;
  }
  constexpr tcp::timestamps timestamp() const noexcept {
    if (code() != option_code::timestamp || size_ < 10) return {};
    return {wire::load_be32(p_ + 2), wire::load_be32(p_ + 6)};
  }
  constexpr tcp::sack_blocks sack() const noexcept {
    tcp::sack_blocks s;
    if (code() != option_code::sack || size_ < 2) return s;
    s.count = std::min<std::size_t>((size_ - 2u) / 8, sack_blocks::capacity);
    for (std::size_t i = 0; i < s.count; ++i) {
      s.blocks[i] = {seq_number(wire::load_be32(p_ + 2 + 8 * i)), seq_number(wire::load_be32(p_ + 6 + 8 * i))};
    }
    return s;
  }

  // Same bytes, wherever they lie.
  friend constexpr bool operator==(option_ref a, option_ref b) noexcept {
    return a.size_ == b.size_ && std::equal(a.p_, a.p_ + a.size_, b.p_);
  }

 private:
  friend class option;
  friend class option_iterator;

  constexpr option_ref(const byte* p, std::size_t size) noexcept : p_(p), size_(static_cast<std::uint8_t>(size)) {}

  const byte* p_ = detail::eol_wire;
  std::uint8_t size_ = 1;
};

// One option, as a self-contained value: it holds its own wire bytes (kind,
// length, data; at most 40), so it outlives the segment it came from and the
// typed getters decode from them. A getter for another kind returns zero or
// empty. A default-constructed option is End of Option List.
class option {
 public:
  static constexpr std::size_t max_size = max_options_size;
  static constexpr std::size_t max_data_size = max_size - 2;

  constexpr option() noexcept = default;
  // A copy of the option `r` points at (implicit: storing what the iterator
  // yields is the point of this class).
  constexpr option(option_ref r) noexcept : size_(static_cast<std::uint8_t>(std::min(r.size(), max_size))) {
    std::copy_n(r.bytes().data(), size_, wire_.begin());
  }

  static constexpr option make_eol() noexcept { return option(option_code::eol, 1); }
  static constexpr option make_nop() noexcept { return option(option_code::nop, 1); }
  static constexpr option make_mss(std::uint16_t mss) noexcept {
    option o(option_code::mss, 4);
    wire::store_be16(o.wire_.data() + 2, mss);
    return o;
  }
  // RFC 7323 §2.3 caps the shift at 14; a larger one is still sent as given,
  // and the receiver's TCP layer clamps it.
  static constexpr option make_window_scale(std::uint8_t shift) noexcept {
    option o(option_code::window_scale, 3);
    o.wire_[2] = shift;
    return o;
  }
  static constexpr option make_sack_permitted() noexcept { return option(option_code::sack_permitted, 2); }
  static constexpr option make_timestamp(std::uint32_t tsval, std::uint32_t tsecr) noexcept {
    option o(option_code::timestamp, 10);
    wire::store_be32(o.wire_.data() + 2, tsval);
    wire::store_be32(o.wire_.data() + 6, tsecr);
    return o;
  }
  // 1 to 4 blocks.
  static expected<option> make_sack(std::span<const sack_block> blocks) noexcept {
    if (blocks.empty()) return parse_error{"tcp", errc::below_minimum, "sack blocks", 0, 0, 1};
    if (blocks.size() > sack_blocks::capacity) {
      return parse_error{"tcp", errc::above_maximum, "sack blocks", 0, blocks.size(), sack_blocks::capacity};
    }
    option o(option_code::sack, static_cast<std::uint8_t>(2 + 8 * blocks.size()));
    write_sack_blocks(o.wire_.data() + 2, blocks);
    return o;
  }
  // Any option from its kind byte and the data after the length byte: how an
  // unknown kind (MPTCP 30, TFO 34, experimental 253/254) is built. A known
  // kind is checked as `checked()` checks it; EOL and NOP take no data.
  static expected<option> make(std::uint8_t code, bytes_view data) noexcept {
    if (code == option_code::eol || code == option_code::nop) {
      if (!data.empty()) {
        return parse_error{"tcp", errc::mismatch, detail::option_length_name(code), 0, 2 + data.size(), 1};
      }
      return option(code, 1);
    }
    if (data.size() > max_data_size) {
      return parse_error{"tcp", errc::above_maximum, detail::option_length_name(code), 1, 2 + data.size(),
                         max_size};
    }
    option o(code, static_cast<std::uint8_t>(2 + data.size()));
    std::copy(data.begin(), data.end(), o.wire_.begin() + 2);
    if (auto ok = detail::check_option(o.bytes(), 0, 0); !ok) return ok.error();
    return o;
  }

  // The same option where this one holds it, valid while this one lives.
  constexpr option_ref ref() const noexcept { return option_ref(wire_.data(), size_); }

  // The getters of `option_ref`.
  constexpr std::uint8_t code() const noexcept { return wire_[0]; }
  constexpr option_kind kind() const noexcept { return detail::kind_of(code()); }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr bytes_view bytes() const noexcept { return bytes_view(wire_.data(), size_); }
  constexpr bytes_view data() const noexcept { return ref().data(); }
  constexpr std::uint16_t mss() const noexcept { return ref().mss(); }
  constexpr std::uint8_t window_scale() const noexcept { return ref().window_scale(); }
  constexpr tcp::timestamps timestamp() const noexcept { return ref().timestamp(); }
  constexpr tcp::sack_blocks sack() const noexcept { return ref().sack(); }

  friend constexpr bool operator==(const option&, const option&) = default;

 private:
  friend class option_list;

  // Kind and, past one byte, the length byte; the data is zero until the
  // maker fills it.
  constexpr option(std::uint8_t code, std::uint8_t size) noexcept : size_(size) {
    wire_[0] = code;
    if (size >= 2) wire_[1] = size;
  }
  // 8 bytes per block, as RFC 2018 §3 lays them out.
  static constexpr void write_sack_blocks(byte* p, std::span<const sack_block> blocks) noexcept {
    for (const sack_block& b : blocks) {
      wire::store_be32(p, b.left.raw());
      wire::store_be32(p + 4, b.right.raw());
      p += 8;
    }
  }

  // Bytes past `size_` stay zero, so that equality can compare the whole
  // array.
  std::array<byte, max_size> wire_{};
  std::uint8_t size_ = 1;
};

// Walks options in wire order, ending after the first End of Option List (it
// is yielded once, as `dissect` lists it) or at the end of the option area.
// Yields `option_ref`s into the area, so walking copies nothing.
class option_iterator {
 public:
  using value_type = option_ref;
  using difference_type = std::ptrdiff_t;
  using iterator_concept = std::forward_iterator_tag;
  using iterator_category = std::input_iterator_tag;  // yields values, not references

  constexpr option_iterator() noexcept = default;

  constexpr option_ref operator*() const noexcept { return option_ref(position_, size_); }
  constexpr option_iterator& operator++() noexcept {
    position_ = *position_ == option_code::eol ? end_ : position_ + size_;
    settle();
    return *this;
  }
  constexpr option_iterator operator++(int) noexcept {
    option_iterator before = *this;
    ++*this;
    return before;
  }
  friend constexpr bool operator==(const option_iterator& a, const option_iterator& b) noexcept {
    return a.position_ == b.position_;
  }

 private:
  friend class option_range;
  friend class option_list;

  constexpr option_iterator(const byte* position, const byte* end) noexcept : position_(position), end_(end) {
    settle();
  }
  // Frames the option at `position_`; one that cannot be framed ends the walk.
  constexpr void settle() noexcept {
    size_ = detail::framed_size(position_, end_);
    if (size_ == 0) position_ = end_;
  }

  const byte* position_ = nullptr;
  const byte* end_ = nullptr;
  std::size_t size_ = 0;
};

namespace detail {

// Look-ups shared by a view's options and a repr's: the first option of a
// kind wins when a sender repeats one.
template <class Derived>
class option_lookup {
 public:
  // A copy, so that it may outlive the segment or list it came from.
  std::optional<option> find(option_kind kind) const noexcept {
    if (const auto o = first(kind)) return option(*o);
    return std::nullopt;
  }
  std::optional<std::uint16_t> mss() const noexcept {
    if (const auto o = first(option_kind::mss)) return o->mss();
    return std::nullopt;
  }
  std::optional<std::uint8_t> window_scale() const noexcept {
    if (const auto o = first(option_kind::window_scale)) return o->window_scale();
    return std::nullopt;
  }
  bool sack_permitted() const noexcept { return first(option_kind::sack_permitted).has_value(); }
  std::optional<tcp::timestamps> timestamp() const noexcept {
    if (const auto o = first(option_kind::timestamp)) return o->timestamp();
    return std::nullopt;
  }
  // Empty when there is no SACK option.
  tcp::sack_blocks sack() const noexcept {
    if (const auto o = first(option_kind::sack)) return o->sack();
    return {};
  }

 private:
  std::optional<option_ref> first(option_kind kind) const noexcept {
    for (const option_ref o : static_cast<const Derived&>(*this)) {
      if (o.kind() == kind) return o;
    }
    return std::nullopt;
  }
};

}  // namespace detail

// A view's options: a range over the option area of a checked header. (A
// std::ranges view through `view_base`, not `view_interface`, which clang 14
// cannot instantiate with libstdc++ 12.)
class option_range : public std::ranges::view_base, public detail::option_lookup<option_range> {
 public:
  constexpr option_range() noexcept = default;
  constexpr explicit option_range(bytes_view area) noexcept : area_(area) {}
  constexpr option_iterator begin() const noexcept { return {area_.data(), area_.data() + area_.size()}; }
  constexpr option_iterator end() const noexcept {
    return {area_.data() + area_.size(), area_.data() + area_.size()};
  }
  constexpr bool empty() const noexcept { return begin() == end(); }
  // The option area, padding included.
  constexpr bytes_view bytes() const noexcept { return area_; }

 private:
  bytes_view area_;
};

// A repr's options: their wire bytes, in order, in a fixed 40-byte buffer.
// Keeping the bytes rather than decoded fields is what lets a captured or
// Scapy-built segment be re-emitted byte for byte: option order, NOP runs,
// unknown kinds and the padding after End of Option List all survive.
//
// `emit` pads with zeros (each an End of Option List) to a 4-byte multiple.
// Two lists are equal when they emit the same bytes, so a built list without
// a final EOL equals the one parsed back, whose padding starts with one.
//
// Iterating yields `option_ref`s into the list: they are valid while the list
// lives and is not changed.
class option_list : public detail::option_lookup<option_list> {
 public:
  static constexpr std::size_t capacity = max_options_size;

  constexpr option_list() noexcept = default;

  // A list from option bytes, checked as `checked()` checks a header's.
  static expected<option_list> from_bytes(bytes_view area) noexcept {
    if (area.size() > capacity) {
      return parse_error{"tcp", errc::above_maximum, "options length", field::options.offset, area.size(),
                         capacity};
    }
    if (auto ok = detail::check_options(area, field::options.offset); !ok) return ok.error();
    return unchecked(area);
  }

  constexpr option_iterator begin() const noexcept { return {bytes_.data(), bytes_.data() + size_}; }
  constexpr option_iterator end() const noexcept { return {bytes_.data() + size_, bytes_.data() + size_}; }

  // The stored bytes, without the padding `emit` adds.
  constexpr bytes_view bytes() const noexcept { return bytes_view(bytes_.data(), size_); }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  // Bytes they take in a header: rounded up to whole 32-bit words.
  constexpr std::size_t padded_size() const noexcept { return (size_ + 3u) & ~std::size_t{3}; }

  constexpr void clear() noexcept { *this = option_list{}; }

  // Appends an option; false, leaving the list as it was, when it would not
  // fit in 40 bytes. An End of Option List already present is dropped first,
  // with whatever padding followed it: an option after it would never be
  // read. Each push writes its bytes in place at the end of the list.
  [[nodiscard]] bool push(option_ref o) noexcept {
    byte* const p = append(o.size());
    if (p == nullptr) return false;
    std::copy_n(o.bytes().data(), o.size(), p);
    if (o.code() == option_code::eol) end_ = static_cast<std::uint8_t>(p - bytes_.data());
    return true;
  }
  [[nodiscard]] bool push(const option& o) noexcept { return push(o.ref()); }
  [[nodiscard]] bool push_eol() noexcept {
    byte* const p = append(1);
    if (p == nullptr) return false;
    p[0] = option_code::eol;
    // The next push replaces it.
    end_ = static_cast<std::uint8_t>(p - bytes_.data());
    return true;
  }
  [[nodiscard]] bool push_nop() noexcept {
    byte* const p = append(1);
    if (p == nullptr) return false;
    p[0] = option_code::nop;
    return true;
  }
  [[nodiscard]] bool push_mss(std::uint16_t mss) noexcept {
    byte* const p = append(4);
    if (p == nullptr) return false;
    p[0] = option_code::mss;
    p[1] = 4;
    wire::store_be16(p + 2, mss);
    return true;
  }
  // RFC 7323 §2.3 caps the shift at 14; a larger one is still sent as given.
  [[nodiscard]] bool push_window_scale(std::uint8_t shift) noexcept {
    byte* const p = append(3);
    if (p == nullptr) return false;
    p[0] = option_code::window_scale;
    p[1] = 3;
    p[2] = shift;
    return true;
  }
  [[nodiscard]] bool push_sack_permitted() noexcept {
    byte* const p = append(2);
    if (p == nullptr) return false;
    p[0] = option_code::sack_permitted;
    p[1] = 2;
    return true;
  }
  [[nodiscard]] bool push_timestamp(std::uint32_t tsval, std::uint32_t tsecr) noexcept {
    byte* const p = append(10);
    if (p == nullptr) return false;
    p[0] = option_code::timestamp;
    p[1] = 10;
    wire::store_be32(p + 2, tsval);
    wire::store_be32(p + 6, tsecr);
    return true;
  }
  // False also for 0 or more than 4 blocks.
  [[nodiscard]] bool push_sack(std::span<const sack_block> blocks) noexcept {
    if (blocks.empty() || blocks.size() > sack_blocks::capacity) return false;
    const std::size_t size = 2 + 8 * blocks.size();
    byte* const p = append(size);
    if (p == nullptr) return false;
    p[0] = option_code::sack;
    p[1] = static_cast<byte>(size);
    option::write_sack_blocks(p + 2, blocks);
    return true;
  }

  // Writes the options and their zero padding: `padded_size()` bytes.
  void emit(byte* p) const noexcept {
    // Most segments carry none; a copy of unknown length is a library call.
    if (size_ != 0) std::memcpy(p, bytes_.data(), padded_size());
  }

  friend bool operator==(const option_list& a, const option_list& b) noexcept {
    // Bytes past `size_` are kept zero, so the padded images are the arrays'
    // first `padded_size()` bytes.
    return a.padded_size() == b.padded_size() &&
           std::equal(a.bytes_.begin(), a.bytes_.begin() + static_cast<std::ptrdiff_t>(a.padded_size()),
                      b.bytes_.begin());
  }

 private:
  friend struct repr;

  // `end_` before anyone looked for the first End of Option List: a parsed
  // list finds it on its first push, so that parsing does not walk.
  static constexpr std::uint8_t end_unknown = 0xff;

  // For bytes already checked (a view's option area).
  static option_list unchecked(bytes_view area) noexcept {
    option_list l;
    std::copy(area.begin(), area.end(), l.bytes_.begin());
    l.size_ = static_cast<std::uint8_t>(area.size());
    l.end_ = area.empty() ? std::uint8_t{0} : end_unknown;
    return l;
  }

  // Offset of the first End of Option List, or `size_` when there is none.
  std::size_t end_of_options() const noexcept {
    std::size_t at = 0;
    while (at < size_ && bytes_[at] != option_code::eol) {
      const std::size_t n = detail::framed_size(bytes_.data() + at, bytes_.data() + size_);
      if (n == 0) break;
      at += n;
    }
    return at;
  }

  // Makes room for `n` bytes after the last option, dropping an End of
  // Option List and what follows it, and returns where they go; nullptr,
  // changing nothing, when they would not fit. The caller writes all `n`.
  byte* append(std::size_t n) noexcept {
    if (end_ == end_unknown) end_ = static_cast<std::uint8_t>(end_of_options());
    const std::size_t at = end_;
    if (at + n > capacity) return nullptr;
    // Only after a dropped EOL are there bytes to clear: past `size_` they
    // are zero already, and equality relies on that.
    if (size_ > at) std::fill(bytes_.begin() + static_cast<std::ptrdiff_t>(at), bytes_.begin() + size_, byte{0});
    size_ = static_cast<std::uint8_t>(at + n);
    end_ = size_;
    return bytes_.data() + at;
  }

  std::array<byte, capacity> bytes_{};
  std::uint8_t size_ = 0;
  // Where the next option goes: the offset of the first End of Option List,
  // `size_` when there is none, or `end_unknown`.
  std::uint8_t end_ = 0;
};

// ---------------------------------------------------------------------------
// The header.

template <byte_type B>
class basic_view {
 public:
  // Checks that the fixed header is present, that the data offset is at
  // least 5 words and covers no more than the bytes given, and that every
  // option up to End of Option List is well framed (see the top of this
  // file). The view covers all of `bytes`: TCP has no length field, so the
  // caller passes exactly the IP payload.
  static expected<basic_view> checked(std::span<B> bytes) noexcept {
    if (bytes.size() < header_size) {
      return parse_error{"tcp", errc::truncated, "header", 0, bytes.size(), header_size};
    }
    const std::uint8_t words = bytes[field::data_offset.offset] >> 4;
    if (words < header_size / 4) {
      return parse_error{"tcp", errc::below_minimum, "data offset", field::data_offset.offset, words,
                         header_size / 4};
    }
    const std::size_t length = std::size_t{words} * 4;
    if (length > bytes.size()) {
      return parse_error{"tcp", errc::truncated, "header", 0, bytes.size(), length};
    }
    const bytes_view area = bytes_view(bytes).subspan(header_size, length - header_size);
    if (auto ok = detail::check_options(area, header_size); !ok) return ok.error();
    return basic_view(bytes);
  }

  std::uint16_t source_port() const noexcept { return load16(field::source_port); }
  std::uint16_t destination_port() const noexcept { return load16(field::destination_port); }
  seq_number sequence_number() const noexcept { return seq_number(load32(field::sequence_number)); }
  seq_number ack_number() const noexcept { return seq_number(load32(field::ack_number)); }
  // In 32-bit words, 5..15.
  std::uint8_t data_offset() const noexcept { return bytes_[field::data_offset.offset] >> 4; }
  // In bytes, 20..60.
  std::size_t header_length() const noexcept { return std::size_t{data_offset()} * 4; }
  tcp::flags flags() const noexcept { return tcp::flags(load16(field::flags)); }
  std::uint16_t window() const noexcept { return load16(field::window); }
  std::uint16_t checksum() const noexcept { return load16(field::checksum); }
  std::uint16_t urgent_pointer() const noexcept { return load16(field::urgent_pointer); }

  // Options in wire order, up to and including the first End of Option List.
  option_range options() const noexcept { return option_range(bytes_view(options_bytes())); }
  // The option area, padding included (header_length() - 20 bytes).
  std::span<B> options_bytes() const noexcept {
    return bytes_.subspan(header_size, header_end() - header_size);
  }

  std::span<B> header() const noexcept { return bytes_.first(header_end()); }
  std::span<B> payload() const noexcept { return bytes_.subspan(header_end()); }
  // The whole segment, header and payload.
  std::span<B> bytes() const noexcept { return bytes_; }

  // RFC 9293 §3.1: the checksum covers the pseudo-header and the whole
  // segment, and is mandatory.
  bool verify_checksum(ipv4_address source, ipv4_address destination) const noexcept {
    return checksum::accumulator{}
               .add_pseudo_header(source, destination, ip_protocol, static_cast<std::uint16_t>(bytes_.size()))
               .add_inline(bytes_)
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
  void set_sequence_number(seq_number v) noexcept
    requires(!std::is_const_v<B>)
  {
    wire::store_be32(bytes_.data() + field::sequence_number.offset, v.raw());
  }
  void set_ack_number(seq_number v) noexcept
    requires(!std::is_const_v<B>)
  {
    wire::store_be32(bytes_.data() + field::ack_number.offset, v.raw());
  }
  // Writes all 12 bits after the data offset (the offset is left alone: the
  // view's checks depend on it).
  void set_flags(tcp::flags v) noexcept
    requires(!std::is_const_v<B>)
  {
    const auto offset_bits = static_cast<std::uint16_t>(load16(field::flags) & 0xf000);
    store16(field::flags, static_cast<std::uint16_t>(offset_bits | v.bits()));
  }
  void set_window(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::window, v);
  }
  void set_checksum(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::checksum, v);
  }
  void set_urgent_pointer(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::urgent_pointer, v);
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
  // header_length() as checked; the min only matters if the data offset was
  // rewritten through a raw span, and keeps the spans in bounds then too.
  std::size_t header_end() const noexcept { return std::min(header_length(), bytes_.size()); }
  std::uint16_t load16(wire::field f) const noexcept { return wire::load_be16(bytes_.data() + f.offset); }
  std::uint32_t load32(wire::field f) const noexcept { return wire::load_be32(bytes_.data() + f.offset); }
  void store16(wire::field f, std::uint16_t v) const noexcept
    requires(!std::is_const_v<B>)
  {
    wire::store_be16(bytes_.data() + f.offset, v);
  }

  std::span<B> bytes_;
};

using view = basic_view<const byte>;
using mutable_view = basic_view<byte>;

// The header as values. The data offset and checksum are derived by `emit`.
struct repr {
  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;
  seq_number sequence_number{};
  seq_number ack_number{};
  tcp::flags flags{};
  std::uint16_t window = 0;
  std::uint16_t urgent_pointer = 0;
  option_list options{};

  // Keeps the option area as it was, padding included, so that emitting the
  // result gives back the same bytes: `emit(parse(v))` equals `v.header()`
  // whenever `v`'s checksum was right (a wrong one is recomputed).
  static expected<repr> parse(view v) noexcept {
    return repr{.source_port = v.source_port(),
                .destination_port = v.destination_port(),
                .sequence_number = v.sequence_number(),
                .ack_number = v.ack_number(),
                .flags = v.flags(),
                .window = v.window(),
                .urgent_pointer = v.urgent_pointer(),
                .options = option_list::unchecked(v.options_bytes())};
  }

  // Bytes the header takes: 20 plus the options rounded up to whole words.
  constexpr std::size_t size() const noexcept { return header_size + options.padded_size(); }

  // Writes the header at the front of `segment`, whose payload is already in
  // place after it, sets the data offset and fills the checksum. `segment`
  // must hold at least `size()` bytes and at most 65535. (Forcing it inline
  // saved nothing on the stack's ACK path and cost wire_bench's build 55
  // instructions a frame: bench/RESULTS.md.)
  void emit(mutable_bytes segment, ipv4_address source, ipv4_address destination) const noexcept {
    emit_without_checksum(segment);
    // RFC 9293 §3.1 over the pseudo-header, the fixed header summed from the
    // values written (checksum::accumulator::add_host_words says why), then
    // the options and payload as bytes.
    const std::uint16_t sum =
        checksum::accumulator{}
            .add_pseudo_header(source, destination, ip_protocol, static_cast<std::uint16_t>(segment.size()))
            .add_host_words(fixed_header_words())
            .add_rest(segment.subspan(header_size))
            .finish();
    wire::store_be16(segment.data() + field::checksum.offset, sum);
  }

  // The same with a zero checksum, for a hook that rewrites fields before the
  // checksum is taken, or for checksum offload.
  [[gnu::always_inline]] void emit_without_checksum(mutable_bytes segment) const noexcept {
    byte* p = segment.data();
    wire::store_be16(p + field::source_port.offset, source_port);
    wire::store_be16(p + field::destination_port.offset, destination_port);
    wire::store_be32(p + field::sequence_number.offset, sequence_number.raw());
    wire::store_be32(p + field::ack_number.offset, ack_number.raw());
    wire::store_be16(p + field::flags.offset, offset_and_flags());
    wire::store_be16(p + field::window.offset, window);
    wire::store_be16(p + field::checksum.offset, 0);
    wire::store_be16(p + field::urgent_pointer.offset, urgent_pointer);
    options.emit(p + field::options.offset);
  }

  friend bool operator==(const repr&, const repr&) = default;

 private:
  // The data offset (in 32-bit words) and the control bits: one 16-bit word.
  std::uint16_t offset_and_flags() const noexcept {
    return static_cast<std::uint16_t>(((size() / 4) << 12) | flags.bits());
  }
  // The 20-byte fixed header's words, checksum zero, summed in host order
  // (for accumulator::add_host_words). A 32-bit field is added whole: its
  // two 16-bit halves are what it is modulo 0xffff, which the fold reduces by.
  std::uint64_t fixed_header_words() const noexcept {
    return std::uint64_t{source_port} + destination_port + sequence_number.raw() + ack_number.raw() +
           offset_and_flags() + window + urgent_pointer;
  }
};

}  // namespace pystack::tcp

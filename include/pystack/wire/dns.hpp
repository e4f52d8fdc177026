// DNS messages (RFC 1035 §4): header, questions, resource records, name
// compression, typed RDATA for the common types, and a writer that
// compresses names.
//
// Reading. `dns::view::checked()` walks the whole message once: the header,
// then every question and record the four counts announce, every owner name
// and every name inside the RDATA of a type decoded here. Afterwards the
// sections iterate without failing, and `record::data()` decodes RDATA
// without failing. Errors are typed `parse_error`s whose offsets are message
// offsets. The readers rely on those checks rather than repeat them: they
// follow names for their length and label count without checking them again
// (so the section ranges are for checked messages only), and if the bytes
// change after the check they still read nothing outside the message.
//
// Names. A `name_view` is an offset into the message plus the message; its
// labels are read through compression pointers. The rules a name must pass
// (RFC 1035 §2.3.4, §3.1, §4.1.4):
// - a label is 1..63 bytes; the label types 0b01 and 0b10 (RFC 6891 §5
//   deprecated the extended labels) are `unsupported`;
// - the whole name, uncompressed, with its length octets and the final root
//   octet, is at most 255 bytes;
// - loop protection: every pointer must go strictly backwards, to an offset
//   before the start of the run of labels that contains it (the name's own
//   start, or the previous pointer's target). The starts then decrease with
//   every jump, so no walk can revisit a byte. This is what RFC 1035 §4.1.4
//   means by "a prior occurrence"; a pointer to itself, into its own run or
//   forward is `pointer_loop`. A pointer at or past the end of the message is
//   `pointer_out_of_range`. On top of that a name may follow at most 128
//   pointers (a 255-byte name has at most 127 labels), which bounds the work
//   per name even for long chains of pointers to pointers.
// Names compare without regard to ASCII case (RFC 4343 §3) and keep the case
// they were sent in. Text forms are the labels joined by '.', with no
// trailing dot, and "." for the root; label bytes are copied as they are,
// without master-file escapes, so a label that itself holds a '.' cannot be
// told apart in text (iterate `labels()` for the exact form).
//
// Writing. `dns::writer` builds a message in the caller's buffer: header,
// then questions, answers, authorities and additionals in that order, patching
// the counts as it goes. It compresses every name it writes (owners and the
// names inside CNAME, NS, PTR, MX and SOA RDATA, the types RFC 1035 defined,
// which RFC 3597 §4 says are the only ones that may be compressed).
//
// DNS over TCP prefixes each message with a two-byte length (RFC 1035 §4.2.2,
// RFC 7766 §8); taking it off, and putting it on, is the caller's job.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"

namespace pystack::dns {

inline constexpr std::uint16_t port = 53;
inline constexpr std::size_t header_size = 12;
// RFC 1035 §2.3.4: a UDP message without EDNS (RFC 6891) carries at most 512
// bytes; a longer answer is cut and sets TC.
inline constexpr std::size_t max_udp_size = 512;
// The largest message either transport can carry: the TCP length prefix is
// 16 bits.
inline constexpr std::size_t max_message_size = 65535;
inline constexpr std::size_t max_label_length = 63;
inline constexpr std::size_t max_name_length = 255;
inline constexpr std::size_t max_pointer_jumps = 128;
// Pointers hold 14 bits of offset (RFC 1035 §4.1.4).
inline constexpr std::size_t max_pointer_offset = 0x3fff;
// Longest RFC 5952 text of an IPv6 address: eight groups of four digits.
inline constexpr std::size_t max_ipv6_text = 39;

// RR TYPEs and QTYPEs (RFC 1035 §3.2.2, §3.2.3; IANA "DNS Parameters").
namespace type {
inline constexpr std::uint16_t a = 1;
inline constexpr std::uint16_t ns = 2;
inline constexpr std::uint16_t cname = 5;
inline constexpr std::uint16_t soa = 6;
inline constexpr std::uint16_t ptr = 12;
inline constexpr std::uint16_t hinfo = 13;
inline constexpr std::uint16_t mx = 15;
inline constexpr std::uint16_t txt = 16;
inline constexpr std::uint16_t aaaa = 28;  // RFC 3596
inline constexpr std::uint16_t srv = 33;   // RFC 2782
inline constexpr std::uint16_t naptr = 35;  // RFC 3403
inline constexpr std::uint16_t opt = 41;   // RFC 6891, the EDNS pseudo-record
inline constexpr std::uint16_t ds = 43;    // RFC 4034
inline constexpr std::uint16_t rrsig = 46;
inline constexpr std::uint16_t nsec = 47;
inline constexpr std::uint16_t dnskey = 48;
inline constexpr std::uint16_t svcb = 64;   // RFC 9460
inline constexpr std::uint16_t https = 65;  // RFC 9460
inline constexpr std::uint16_t ixfr = 251;  // RFC 1995
inline constexpr std::uint16_t axfr = 252;
inline constexpr std::uint16_t any = 255;  // QTYPE "*"
inline constexpr std::uint16_t caa = 257;  // RFC 8659
}  // namespace type

// CLASSes and QCLASSes (RFC 1035 §3.2.4, §3.2.5; RFC 2136 §1.3 for NONE).
namespace class_code {
inline constexpr std::uint16_t in = 1;
inline constexpr std::uint16_t ch = 3;
inline constexpr std::uint16_t hs = 4;
inline constexpr std::uint16_t none = 254;
inline constexpr std::uint16_t any = 255;
}  // namespace class_code

// OPCODEs (RFC 1035 §4.1.1, RFC 1996, RFC 2136).
namespace opcode {
inline constexpr std::uint8_t query = 0;
inline constexpr std::uint8_t inverse_query = 1;  // IQUERY, obsoleted by RFC 3425
inline constexpr std::uint8_t status = 2;
inline constexpr std::uint8_t notify = 4;
inline constexpr std::uint8_t update = 5;
}  // namespace opcode

// RCODEs that fit the header's four bits (RFC 1035 §4.1.1, RFC 2136 §2.2).
// Larger ones are split with the OPT record (RFC 6891 §6.1.3).
namespace rcode {
inline constexpr std::uint8_t no_error = 0;         // NOERROR
inline constexpr std::uint8_t format_error = 1;     // FORMERR
inline constexpr std::uint8_t server_failure = 2;   // SERVFAIL
inline constexpr std::uint8_t name_error = 3;       // NXDOMAIN
inline constexpr std::uint8_t not_implemented = 4;  // NOTIMP
inline constexpr std::uint8_t refused = 5;          // REFUSED
inline constexpr std::uint8_t yx_domain = 6;        // YXDOMAIN
inline constexpr std::uint8_t yx_rrset = 7;         // YXRRSET
inline constexpr std::uint8_t nx_rrset = 8;         // NXRRSET
inline constexpr std::uint8_t not_auth = 9;         // NOTAUTH
inline constexpr std::uint8_t not_zone = 10;        // NOTZONE
}  // namespace rcode

// Header layout (RFC 1035 §4.1.1).
namespace field {
inline constexpr wire::field id{0, 2};
inline constexpr wire::field flags{2, 2};
inline constexpr wire::field question_count{4, 2};    // QDCOUNT
inline constexpr wire::field answer_count{6, 2};      // ANCOUNT
inline constexpr wire::field authority_count{8, 2};   // NSCOUNT
inline constexpr wire::field additional_count{10, 2}; // ARCOUNT
}  // namespace field

// The fixed fields after a question's name (RFC 1035 §4.1.2), relative to
// the end of the name.
namespace question_field {
inline constexpr wire::field type{0, 2};
inline constexpr wire::field class_code{2, 2};
inline constexpr std::size_t size = 4;
}  // namespace question_field

// The fixed fields after a record's owner name (RFC 1035 §4.1.3), relative
// to the end of the name; RDATA follows.
namespace record_field {
inline constexpr wire::field type{0, 2};
inline constexpr wire::field class_code{2, 2};
inline constexpr wire::field ttl{4, 4};
inline constexpr wire::field rdata_length{8, 2};
inline constexpr std::size_t size = 10;
}  // namespace record_field

// Bits of the flags word (RFC 1035 §4.1.1; AD and CD from RFC 4035 §3.2,
// which took them from the Z field).
namespace flag {
inline constexpr std::uint16_t qr = 0x8000;  // a response
inline constexpr std::uint16_t opcode_mask = 0x7800;
inline constexpr unsigned opcode_shift = 11;
inline constexpr std::uint16_t aa = 0x0400;  // authoritative answer
inline constexpr std::uint16_t tc = 0x0200;  // truncated
inline constexpr std::uint16_t rd = 0x0100;  // recursion desired
inline constexpr std::uint16_t ra = 0x0080;  // recursion available
inline constexpr std::uint16_t z = 0x0040;   // reserved, must be zero
inline constexpr std::uint16_t ad = 0x0020;  // authentic data
inline constexpr std::uint16_t cd = 0x0010;  // checking disabled
inline constexpr std::uint16_t rcode_mask = 0x000f;
}  // namespace flag

namespace detail {

inline constexpr char fold_case(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// RFC 4343 §3: only the ASCII letters fold; every other byte compares as is.
inline constexpr bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (fold_case(a[i]) != fold_case(b[i])) return false;
  }
  return true;
}

inline std::string_view as_chars(const byte* p, std::size_t n) noexcept {
  return {reinterpret_cast<const char*>(p), n};
}

// The root name on the wire: what a default `name_view` looks at.
inline constexpr byte root_wire[1] = {0};

inline constexpr byte label_type_mask = 0xc0;
inline constexpr byte pointer_label = 0xc0;

struct name_walk {
  std::size_t encoded_size = 0;  // bytes at the name's offset, up to the first pointer or root
  std::size_t wire_length = 0;   // uncompressed length, root octet included
  std::size_t label_count = 0;
};

// Checks the name at `offset` by the rules at the top of this file. The
// name's own bytes (before it follows a pointer) must end by `in_place_end`,
// which is the message size for owner names and the RDATA's end for names
// inside RDATA; after a pointer the labels may lie anywhere in the message.
inline expected<name_walk> walk_name(bytes_view message, std::size_t offset,
                                     std::size_t in_place_end) noexcept {
  if (in_place_end > message.size()) in_place_end = message.size();
  name_walk walk;
  std::size_t pos = offset;
  std::size_t end = in_place_end;
  std::size_t run_start = offset;
  std::size_t jumps = 0;
  bool jumped = false;
  for (;;) {
    if (pos >= end) {
      return parse_error{"dns", errc::truncated, "name", pos, 0, 1};
    }
    const byte b = message[pos];
    // Most bytes here are label lengths, so they are tested first.
    if (b != 0 && (b & label_type_mask) == 0) {
      if (end - pos < std::size_t{1} + b) {
        return parse_error{"dns", errc::truncated, "label", pos, end - pos, std::size_t{1} + b};
      }
      walk.wire_length += std::size_t{1} + b;
      walk.label_count += 1;
      // The root octet still has to come, hence the + 1.
      if (walk.wire_length + 1 > max_name_length) {
        return parse_error{"dns", errc::above_maximum, "name length", pos, walk.wire_length + 1,
                           max_name_length};
      }
      pos += std::size_t{1} + b;
      continue;
    }
    if (b == 0) {
      walk.wire_length += 1;
      if (!jumped) walk.encoded_size = pos + 1 - offset;
      return walk;
    }
    if ((b & label_type_mask) != pointer_label) {
      // 0b01 (extended labels, RFC 6891 §5) and 0b10 are reserved: a length
      // octet of 64..191 is not a label this parser can follow.
      return parse_error{"dns", errc::unsupported, "label type", pos,
                         static_cast<std::uint64_t>(b & label_type_mask), 0};
    }
    if (end - pos < 2) {
      return parse_error{"dns", errc::truncated, "name pointer", pos, end - pos, 2};
    }
    const std::size_t target = wire::load_be16(message.data() + pos) & max_pointer_offset;
    if (!jumped) walk.encoded_size = pos + 2 - offset;
    jumped = true;
    if (target >= message.size()) {
      return parse_error{"dns", errc::pointer_out_of_range, "name pointer", pos, target, message.size()};
    }
    if (target >= run_start) {
      return parse_error{"dns", errc::pointer_loop, "name pointer", pos, target, run_start};
    }
    if (++jumps > max_pointer_jumps) {
      return parse_error{"dns", errc::above_maximum, "name pointers", pos, jumps, max_pointer_jumps};
    }
    pos = run_start = target;
    end = message.size();
  }
}

// The walk of a name that `walk_name` has accepted, without its checks, for
// the readers of a checked message: on the bytes `checked()` saw it takes the
// same path and computes the same values. On bytes changed since then it
// stays inside the message and stops (at most `max_pointer_jumps` pointers,
// labels up to 255 bytes); `encoded_size` 0, which no real name has, says
// that it stopped.
inline name_walk measure_name(bytes_view message, std::size_t offset) noexcept {
  name_walk walk;
  std::size_t pos = offset;
  std::size_t jumps = 0;
  bool jumped = false;
  const std::size_t size = message.size();
  while (pos < size) {
    const byte b = message[pos];
    if (b != 0 && (b & label_type_mask) == 0) {
      if (size - pos < std::size_t{1} + b || walk.wire_length + 1 + b + 1 > max_name_length) break;
      walk.wire_length += std::size_t{1} + b;
      walk.label_count += 1;
      pos += std::size_t{1} + b;
      continue;
    }
    if (b == 0) {
      walk.wire_length += 1;
      if (!jumped) walk.encoded_size = pos + 1 - offset;
      return walk;
    }
    if ((b & label_type_mask) != pointer_label || size - pos < 2 || ++jumps > max_pointer_jumps) break;
    if (!jumped) walk.encoded_size = pos + 2 - offset;
    jumped = true;
    pos = wire::load_be16(message.data() + pos) & max_pointer_offset;
  }
  return name_walk{0, 1, 0};
}

// The bytes the name at `offset` takes there (its labels up to the root
// octet or its first pointer), without following pointers: what the section
// iterators step over. Equals `walk_name`'s `encoded_size` on checked bytes;
// on bytes changed since, it never reaches past the end of the message.
inline std::size_t encoded_name_size(bytes_view message, std::size_t offset) noexcept {
  std::size_t pos = offset;
  while (pos < message.size()) {
    const byte b = message[pos];
    if ((b & label_type_mask) == pointer_label) return std::min(pos + 2, message.size()) - offset;
    if (b == 0) return pos + 1 - offset;
    pos += std::size_t{1} + b;
  }
  return offset < message.size() ? message.size() - offset : 0;
}

}  // namespace detail

// A name as dotted text in fixed storage: the target `name_view::to_name()`
// decodes into. A name that passed the checks takes at most 253 characters
// ("." for the root), so 255 always suffice.
class name {
 public:
  static constexpr std::size_t capacity = max_name_length;

  // The root, ".".
  constexpr name() noexcept { chars_[0] = '.'; }

  std::string_view text() const noexcept { return {chars_.data(), size_}; }
  const char* data() const noexcept { return chars_.data(); }
  std::size_t size() const noexcept { return size_; }
  std::string to_string() const { return std::string(text()); }

  // DNS equality: ASCII case does not matter (RFC 4343 §3). Compare `text()`
  // for an exact match.
  friend bool operator==(const name& a, const name& b) noexcept {
    return detail::equal_ignoring_case(a.text(), b.text());
  }

 private:
  friend class name_view;
  // Only the first `size_` characters are ever read, so the rest is left
  // uninitialised: clearing 255 bytes per decoded name cost more than the
  // decoding itself.
  std::array<char, capacity> chars_;
  std::size_t size_ = 1;
};

// A name inside a message: the message and the offset the name starts at.
// Made by `checked()` (or by the section iterators of a checked message), so
// its labels can be read without failing.
class name_view {
 public:
  // Iterates the labels, following pointers; yields each label's bytes
  // (without the length octet) as characters. The root yields none.
  class label_iterator {
   public:
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;

    label_iterator() noexcept = default;

    std::string_view operator*() const noexcept {
      const std::size_t length = message_[pos_];
      return detail::as_chars(message_.data() + pos_ + 1, length);
    }
    label_iterator& operator++() noexcept {
      pos_ += std::size_t{1} + message_[pos_];
      --remaining_;
      settle();
      return *this;
    }
    label_iterator operator++(int) noexcept {
      auto old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const label_iterator& a, const label_iterator& b) noexcept {
      return a.remaining_ == b.remaining_;
    }

   private:
    friend class name_view;
    label_iterator(bytes_view message, std::size_t pos, std::size_t remaining) noexcept
        : message_(message), pos_(pos), remaining_(remaining) {
      settle();
    }
    // Moves to the next label's length octet through any pointers. The name
    // was checked, so this only guards against bytes changed since then:
    // anything out of place ends the walk instead of reading outside.
    void settle() noexcept {
      std::size_t jumps = 0;
      while (remaining_ > 0) {
        if (pos_ >= message_.size()) {
          remaining_ = 0;
          return;
        }
        const byte b = message_[pos_];
        if ((b & detail::label_type_mask) == detail::pointer_label) {
          if (pos_ + 1 >= message_.size() || ++jumps > max_pointer_jumps) {
            remaining_ = 0;
            return;
          }
          pos_ = wire::load_be16(message_.data() + pos_) & max_pointer_offset;
          continue;
        }
        if ((b & detail::label_type_mask) != 0 || b == 0 || pos_ + 1 + b > message_.size()) {
          remaining_ = 0;
        }
        return;
      }
    }

    bytes_view message_{};
    std::size_t pos_ = 0;
    std::size_t remaining_ = 0;
  };

  class label_range {
   public:
    label_iterator begin() const noexcept { return begin_; }
    label_iterator end() const noexcept { return {}; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

   private:
    friend class name_view;
    label_range(label_iterator begin, std::size_t size) noexcept : begin_(begin), size_(size) {}
    label_iterator begin_;
    std::size_t size_;
  };

  // The root name, on its own one-byte message.
  name_view() noexcept = default;

  // Checks the name at `offset` of `message` (see the rules at the top of
  // this file).
  static expected<name_view> checked(bytes_view message, std::size_t offset) noexcept {
    return checked(message, offset, message.size());
  }

  // The same, requiring the name's own bytes (up to its first pointer or its
  // root octet) to end by `in_place_end`, as for a name inside RDATA.
  static expected<name_view> checked(bytes_view message, std::size_t offset,
                                     std::size_t in_place_end) noexcept {
    auto walk = detail::walk_name(message, offset, in_place_end);
    if (!walk) return walk.error();
    return name_view(message, offset, *walk);
  }

  // The whole message the name lives in; pointers resolve against it.
  bytes_view message() const noexcept { return message_; }
  // Where the name starts in the message.
  std::size_t offset() const noexcept { return offset_; }
  // The bytes the name takes at `offset()`: its labels up to and including
  // the root octet or the first pointer.
  std::size_t encoded_size() const noexcept { return walk_.encoded_size; }
  // The length of the name uncompressed, length octets and root included
  // (1..255, RFC 1035 §3.1).
  std::size_t wire_length() const noexcept { return walk_.wire_length; }
  std::size_t label_count() const noexcept { return walk_.label_count; }
  bool is_root() const noexcept { return walk_.label_count == 0; }

  label_range labels() const noexcept {
    return label_range(label_iterator(message_, offset_, walk_.label_count), walk_.label_count);
  }

  // Dotted text, no trailing dot, "." for the root; case kept.
  dns::name to_name() const noexcept {
    dns::name out;
    if (is_root()) return out;
    char* const first = out.chars_.data();
    char* const last = first + out.chars_.size();
    char* p = first;
    // A checked name has at most 253 characters; the clamps only matter for
    // bytes changed since the check.
    for (std::string_view label : labels()) {
      if (p != first) {
        if (p == last) break;
        *p++ = '.';
      }
      const std::size_t n = std::min(label.size(), static_cast<std::size_t>(last - p));
      std::memcpy(p, label.data(), n);
      p += n;
    }
    out.size_ = static_cast<std::size_t>(p - first);
    return out;
  }
  std::string to_string() const { return to_name().to_string(); }

  // Compares with dotted text without regard to ASCII case (RFC 4343 §3).
  // One trailing dot in `text` is allowed; "." is the root.
  bool equals(std::string_view text) const noexcept {
    if (text.size() > 1 && text.back() == '.') text.remove_suffix(1);
    return detail::equal_ignoring_case(to_name().text(), text);
  }

  // Label by label, without regard to ASCII case (RFC 4343 §3); the two
  // names may live in different messages.
  friend bool operator==(const name_view& a, const name_view& b) noexcept {
    if (a.label_count() != b.label_count()) return false;
    auto j = b.labels().begin();
    for (std::string_view label : a.labels()) {
      if (!detail::equal_ignoring_case(label, *j)) return false;
      ++j;
    }
    return true;
  }

 private:
  friend class question;
  friend class record;

  name_view(bytes_view message, std::size_t offset, detail::name_walk walk) noexcept
      : message_(message), offset_(offset), walk_(walk) {}

  // The name at `offset` of a message that `checked()` accepted, without
  // checking it again (see `detail::measure_name`). Bytes changed since the
  // check give the root name, as a failed check would.
  static name_view of_checked(bytes_view message, std::size_t offset) noexcept {
    const detail::name_walk walk = detail::measure_name(message, offset);
    if (walk.encoded_size == 0) return name_view{};
    return name_view(message, offset, walk);
  }

  bytes_view message_{detail::root_wire};
  std::size_t offset_ = 0;
  detail::name_walk walk_{1, 1, 0};
};

// RFC 5952 text of an IPv6 address, in fixed storage.
struct ipv6_text {
  std::array<char, max_ipv6_text> chars{};
  std::size_t size = 0;

  std::string_view view() const noexcept { return {chars.data(), size}; }
  std::string to_string() const { return std::string(view()); }
};

// RFC 5952 §4: lowercase hex without leading zeros (§4.1, §4.3); the longest
// run of two or more zero groups, the first of equal runs, becomes "::"
// (§4.2). §5: an IPv4-mapped address (::ffff:0:0/96) ends in dotted quad.
inline ipv6_text format_ipv6(std::span<const byte, 16> address) noexcept {
  static constexpr char hex[] = "0123456789abcdef";
  ipv6_text out;
  auto put = [&out](char c) noexcept {
    if (out.size < out.chars.size()) out.chars[out.size++] = c;
  };
  auto put_decimal = [&put](unsigned v) noexcept {
    if (v >= 100) put(static_cast<char>('0' + v / 100));
    if (v >= 10) put(static_cast<char>('0' + v / 10 % 10));
    put(static_cast<char>('0' + v % 10));
  };

  bool mapped = address[10] == 0xff && address[11] == 0xff;
  for (std::size_t i = 0; i < 10; ++i) mapped = mapped && address[i] == 0;
  if (mapped) {
    for (char c : std::string_view("::ffff:")) put(c);
    for (std::size_t i = 12; i < 16; ++i) {
      if (i > 12) put('.');
      put_decimal(address[i]);
    }
    return out;
  }

  std::array<std::uint16_t, 8> groups{};
  for (std::size_t i = 0; i < 8; ++i) groups[i] = wire::load_be16(address.data() + 2 * i);
  std::size_t best_start = 8, best_length = 0;
  for (std::size_t i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > best_length) {
      best_start = i;
      best_length = j - i;
    }
    i = j;
  }
  if (best_length < 2) best_start = 8;  // §4.2.2: one zero group stays "0"

  for (std::size_t i = 0; i < 8;) {
    if (i == best_start) {
      put(':');
      put(':');
      i += best_length;
      continue;
    }
    if (i > 0 && i != best_start + best_length) put(':');
    const std::uint16_t g = groups[i];
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned digit = (g >> shift) & 0xf;
      if (digit != 0 || started || shift == 0) {
        put(hex[digit]);
        started = true;
      }
    }
    ++i;
  }
  return out;
}

// Typed RDATA (RFC 1035 §3.3, §3.4; RFC 3596 for AAAA). Names inside RDATA
// resolve against the whole message.
struct opaque_rdata {
  bytes_view bytes;
};
struct a_rdata {
  ipv4_address address;
};
struct aaaa_rdata {
  std::array<byte, 16> address{};
  ipv6_text text() const noexcept { return format_ipv6(address); }
};
struct cname_rdata {
  name_view name;  // the canonical name
};
struct ns_rdata {
  name_view name;  // an authoritative name server
};
struct ptr_rdata {
  name_view name;  // the domain name pointed to
};
struct mx_rdata {
  std::uint16_t preference = 0;
  name_view exchange;
};

// TXT RDATA: one or more <character-string>s, each a length octet and that
// many bytes (RFC 1035 §3.3.14, §3.3).
struct txt_rdata {
  class string_iterator {
   public:
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;

    string_iterator() noexcept = default;
    string_iterator(bytes_view bytes, std::size_t pos) noexcept : bytes_(bytes), pos_(pos) {}

    // Clamped to the bytes, which the check made exact.
    std::string_view operator*() const noexcept {
      const std::size_t length = std::min<std::size_t>(bytes_[pos_], bytes_.size() - pos_ - 1);
      return detail::as_chars(bytes_.data() + pos_ + 1, length);
    }
    string_iterator& operator++() noexcept {
      pos_ = std::min(bytes_.size(), pos_ + 1 + bytes_[pos_]);
      return *this;
    }
    string_iterator operator++(int) noexcept {
      auto old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const string_iterator& a, const string_iterator& b) noexcept {
      return a.pos_ == b.pos_;
    }

   private:
    bytes_view bytes_{};
    std::size_t pos_ = 0;
  };
  struct string_range {
    bytes_view bytes;
    string_iterator begin() const noexcept { return {bytes, 0}; }
    string_iterator end() const noexcept { return {bytes, bytes.size()}; }
  };

  bytes_view bytes;
  string_range strings() const noexcept { return {bytes}; }
};

struct soa_rdata {
  name_view mname;  // the zone's primary name server
  name_view rname;  // the mailbox of the person responsible, '@' as the first '.'
  std::uint32_t serial = 0;
  std::uint32_t refresh = 0;
  std::uint32_t retry = 0;
  std::uint32_t expire = 0;
  std::uint32_t minimum = 0;  // the negative-caching TTL (RFC 2308 §4)
};

using typed_rdata = std::variant<opaque_rdata, a_rdata, aaaa_rdata, cname_rdata, ns_rdata,
                                 ptr_rdata, mx_rdata, txt_rdata, soa_rdata>;

namespace detail {

// The body of `parse_rdata`, which see. How a name inside the RDATA is read
// is the caller's: `name_at(offset, end)` returns the `expected<name_view>`
// at `offset`, whose own bytes must end by `end`. `parse_rdata` checks it;
// `record::data()`, on a message `checked()` accepted, only measures it.
template <class NameAt>
expected<typed_rdata> decode_rdata(bytes_view message, std::uint16_t rr_type, std::uint16_t rr_class,
                                   std::size_t rdata_offset, std::size_t rdata_length,
                                   const NameAt& read_name) noexcept {
  if (rdata_offset > message.size() || message.size() - rdata_offset < rdata_length) {
    return parse_error{"dns", errc::truncated, "rdata", rdata_offset,
                       rdata_offset > message.size() ? 0 : message.size() - rdata_offset,
                       rdata_length};
  }
  const bytes_view rdata = message.subspan(rdata_offset, rdata_length);
  const std::size_t end = rdata_offset + rdata_length;
  if (rr_class != class_code::in) return typed_rdata{opaque_rdata{rdata}};

  auto exact_length = [&](std::size_t needed) -> expected<void> {
    if (rdata_length != needed) {
      return parse_error{"dns", errc::mismatch, "rdata length", rdata_offset, rdata_length, needed};
    }
    return {};
  };
  auto name_at = [&](std::size_t offset) { return read_name(offset, end); };

  switch (rr_type) {
    case type::a: {
      if (auto ok = exact_length(4); !ok) return ok.error();
      return typed_rdata{a_rdata{ipv4_address::from_bytes(rdata.data())}};
    }
    case type::aaaa: {
      if (auto ok = exact_length(16); !ok) return ok.error();
      aaaa_rdata r;
      for (std::size_t i = 0; i < 16; ++i) r.address[i] = rdata[i];
      return typed_rdata{r};
    }
    case type::cname:
    case type::ns:
    case type::ptr: {
      auto n = name_at(rdata_offset);
      if (!n) return n.error();
      if (auto ok = exact_length(n->encoded_size()); !ok) return ok.error();
      if (rr_type == type::cname) return typed_rdata{cname_rdata{*n}};
      if (rr_type == type::ns) return typed_rdata{ns_rdata{*n}};
      return typed_rdata{ptr_rdata{*n}};
    }
    case type::mx: {
      if (rdata_length < 2) {
        return parse_error{"dns", errc::truncated, "mx preference", rdata_offset, rdata_length, 2};
      }
      auto n = name_at(rdata_offset + 2);
      if (!n) return n.error();
      if (auto ok = exact_length(2 + n->encoded_size()); !ok) return ok.error();
      return typed_rdata{mx_rdata{wire::load_be16(rdata.data()), *n}};
    }
    case type::txt: {
      for (std::size_t pos = 0; pos < rdata_length;) {
        const std::size_t needed = std::size_t{1} + rdata[pos];
        if (rdata_length - pos < needed) {
          return parse_error{"dns", errc::truncated, "character-string", rdata_offset + pos,
                             rdata_length - pos, needed};
        }
        pos += needed;
      }
      return typed_rdata{txt_rdata{rdata}};
    }
    case type::soa: {
      auto mname = name_at(rdata_offset);
      if (!mname) return mname.error();
      auto rname = name_at(rdata_offset + mname->encoded_size());
      if (!rname) return rname.error();
      const std::size_t names = mname->encoded_size() + rname->encoded_size();
      const std::size_t left = rdata_length - names;
      if (left < 20) {
        return parse_error{"dns", errc::truncated, "soa fields", rdata_offset + names, left, 20};
      }
      if (auto ok = exact_length(names + 20); !ok) return ok.error();
      const byte* p = rdata.data() + names;
      return typed_rdata{soa_rdata{*mname,
                       *rname,
                       wire::load_be32(p),
                       wire::load_be32(p + 4),
                       wire::load_be32(p + 8),
                       wire::load_be32(p + 12),
                       wire::load_be32(p + 16)}};
    }
    default:
      return typed_rdata{opaque_rdata{rdata}};
  }
}

}  // namespace detail

// Decodes the RDATA at [rdata_offset, rdata_offset + rdata_length) of
// `message`. The types above are decoded in class IN only: A has another
// layout in class CH (RFC 1035 §3.4.1), and UPDATE (RFC 2136 §2.4, §2.5)
// sends empty RDATA in classes ANY and NONE. Everything else is opaque.
// A decoded type must fill its RDATA exactly, and names inside it pass
// every check an owner name does.
inline expected<typed_rdata> parse_rdata(bytes_view message, std::uint16_t rr_type,
                                         std::uint16_t rr_class, std::size_t rdata_offset,
                                         std::size_t rdata_length) noexcept {
  return detail::decode_rdata(message, rr_type, rr_class, rdata_offset, rdata_length,
                              [message](std::size_t offset, std::size_t end) noexcept {
                                return name_view::checked(message, offset, end);
                              });
}

template <class Item>
class section_iterator;
template <byte_type B>
class basic_view;

// One entry of the question section (RFC 1035 §4.1.2).
class question {
 public:
  question() noexcept = default;

  name_view name() const noexcept { return name_; }
  std::uint16_t type() const noexcept { return type_; }
  std::uint16_t class_code() const noexcept { return class_; }
  // Where the question starts in the message, and the bytes it takes there.
  std::size_t offset() const noexcept { return offset_; }
  std::size_t size() const noexcept { return name_.encoded_size() + question_field::size; }

 private:
  template <class Item>
  friend class section_iterator;
  template <byte_type B>
  friend class basic_view;

  // Checks the question at `offset`; returns where the next entry starts.
  static expected<std::size_t> check(bytes_view message, std::size_t offset) noexcept {
    auto n = name_view::checked(message, offset);
    if (!n) return n.error();
    const std::size_t pos = offset + n->encoded_size();
    if (message.size() - pos < question_field::size) {
      return parse_error{"dns", errc::truncated, "question", pos, message.size() - pos,
                         question_field::size};
    }
    return pos + question_field::size;
  }

  // Reads a checked question. Bytes changed since the check give a root
  // name or zero fields, never a read outside the message.
  static question at(bytes_view message, std::size_t offset) noexcept {
    question q;
    q.offset_ = offset;
    const detail::name_walk walk = detail::measure_name(message, offset);
    if (walk.encoded_size == 0) return q;
    q.name_ = name_view(message, offset, walk);
    const std::size_t pos = offset + walk.encoded_size;
    if (message.size() - pos >= question_field::size) {
      q.type_ = wire::load_be16(message.data() + pos + question_field::type.offset);
      q.class_ = wire::load_be16(message.data() + pos + question_field::class_code.offset);
    }
    return q;
  }

  // `at(message, offset).size()` without reading the name through its
  // pointers: how the iterator steps to the next entry. Never past the end.
  static std::size_t size_at(bytes_view message, std::size_t offset) noexcept {
    const std::size_t name = detail::encoded_name_size(message, offset);
    return std::min(name + question_field::size, message.size() - std::min(offset, message.size()));
  }

  name_view name_;
  std::uint16_t type_ = 0;
  std::uint16_t class_ = 0;
  std::size_t offset_ = 0;
};

// A resource record (RFC 1035 §4.1.3) of the answer, authority or
// additional section.
class record {
 public:
  record() noexcept = default;

  name_view name() const noexcept { return name_; }
  std::uint16_t type() const noexcept { return type_; }
  std::uint16_t class_code() const noexcept { return class_; }
  // As sent. RFC 2181 §8 says to treat a value with the top bit set as zero.
  std::uint32_t ttl() const noexcept { return ttl_; }
  std::uint16_t rdata_length() const noexcept { return static_cast<std::uint16_t>(rdata_.size()); }
  bytes_view rdata() const noexcept { return rdata_; }
  // Where the record and its RDATA start in the message.
  std::size_t offset() const noexcept { return offset_; }
  std::size_t rdata_offset() const noexcept { return rdata_offset_; }
  // The bytes the record takes at `offset()`.
  std::size_t size() const noexcept { return rdata_offset_ + rdata_.size() - offset_; }

  // The RDATA decoded by type (see `parse_rdata`); opaque for other types
  // and classes.
  //
  // A record comes from a message that `checked()` accepted, and that ran
  // `parse_rdata` on it: the names inside are measured here, not checked
  // again. The lengths are still compared, so bytes changed since the check
  // give opaque RDATA rather than a read outside the message.
  typed_rdata data() const noexcept {
    const bytes_view message = message_;
    auto d = detail::decode_rdata(message, type_, class_, rdata_offset_, rdata_.size(),
                                  [message](std::size_t offset, std::size_t) noexcept -> expected<name_view> {
                                    return name_view::of_checked(message, offset);
                                  });
    if (!d) return opaque_rdata{rdata_};
    return *d;
  }

 private:
  template <class Item>
  friend class section_iterator;
  template <byte_type B>
  friend class basic_view;

  // Checks the record at `offset`, its RDATA included; returns where the
  // next entry starts. `section` names the entry in errors.
  static expected<std::size_t> check(bytes_view message, std::size_t offset,
                                     const char* section) noexcept {
    auto n = name_view::checked(message, offset);
    if (!n) return n.error();
    const std::size_t pos = offset + n->encoded_size();
    if (message.size() - pos < record_field::size) {
      return parse_error{"dns", errc::truncated, section, pos, message.size() - pos,
                         record_field::size};
    }
    const byte* p = message.data() + pos;
    const std::size_t length = wire::load_be16(p + record_field::rdata_length.offset);
    const std::size_t rdata_offset = pos + record_field::size;
    if (message.size() - rdata_offset < length) {
      return parse_error{"dns", errc::truncated, "rdata", rdata_offset,
                         message.size() - rdata_offset, length};
    }
    auto d = parse_rdata(message, wire::load_be16(p + record_field::type.offset),
                         wire::load_be16(p + record_field::class_code.offset), rdata_offset, length);
    if (!d) return d.error();
    return rdata_offset + length;
  }

  // Reads a checked record; like `question::at`, it never reads outside.
  static record at(bytes_view message, std::size_t offset) noexcept {
    record r;
    r.message_ = message;
    r.offset_ = r.rdata_offset_ = offset;
    const detail::name_walk walk = detail::measure_name(message, offset);
    if (walk.encoded_size == 0) return r;
    r.name_ = name_view(message, offset, walk);
    const std::size_t pos = offset + walk.encoded_size;
    r.rdata_offset_ = pos;
    if (message.size() - pos < record_field::size) return r;
    const byte* p = message.data() + pos;
    r.type_ = wire::load_be16(p + record_field::type.offset);
    r.class_ = wire::load_be16(p + record_field::class_code.offset);
    r.ttl_ = wire::load_be32(p + record_field::ttl.offset);
    const std::size_t length = wire::load_be16(p + record_field::rdata_length.offset);
    r.rdata_offset_ = pos + record_field::size;
    r.rdata_ = message.subspan(r.rdata_offset_,
                               std::min(length, message.size() - r.rdata_offset_));
    return r;
  }

  // `at(message, offset).size()` without reading the name through its
  // pointers: how the iterator steps to the next entry. Never past the end.
  static std::size_t size_at(bytes_view message, std::size_t offset) noexcept {
    const std::size_t left = message.size() - std::min(offset, message.size());
    const std::size_t name = detail::encoded_name_size(message, offset);
    if (left - name < record_field::size) return left;
    const std::size_t length =
        wire::load_be16(message.data() + offset + name + record_field::rdata_length.offset);
    return std::min(name + record_field::size + length, left);
  }

  bytes_view message_{};
  name_view name_;
  std::uint16_t type_ = 0;
  std::uint16_t class_ = 0;
  std::uint32_t ttl_ = 0;
  bytes_view rdata_{};
  std::size_t offset_ = 0;
  std::size_t rdata_offset_ = 0;
};

// Walks the entries of one section of a checked message.
template <class Item>
class section_iterator {
 public:
  using value_type = Item;
  using difference_type = std::ptrdiff_t;
  using iterator_concept = std::forward_iterator_tag;
  using iterator_category = std::input_iterator_tag;

  section_iterator() noexcept = default;
  section_iterator(bytes_view message, std::size_t offset, std::size_t remaining) noexcept
      : message_(message), offset_(offset), remaining_(remaining) {}

  // Entries are read on demand, so `->` hands out a temporary.
  struct arrow {
    Item item;
    const Item* operator->() const noexcept { return &item; }
  };

  Item operator*() const noexcept { return Item::at(message_, offset_); }
  arrow operator->() const noexcept { return {**this}; }
  section_iterator& operator++() noexcept {
    offset_ += Item::size_at(message_, offset_);
    --remaining_;
    return *this;
  }
  section_iterator operator++(int) noexcept {
    auto old = *this;
    ++*this;
    return old;
  }
  friend bool operator==(const section_iterator& a, const section_iterator& b) noexcept {
    return a.remaining_ == b.remaining_;
  }

 private:
  bytes_view message_{};
  std::size_t offset_ = 0;
  std::size_t remaining_ = 0;
};

template <class Item>
class section_range {
 public:
  section_range() noexcept = default;
  section_range(bytes_view message, std::size_t offset, std::size_t count) noexcept
      : message_(message), offset_(offset), count_(count) {}

  section_iterator<Item> begin() const noexcept { return {message_, offset_, count_}; }
  section_iterator<Item> end() const noexcept { return {message_, offset_, 0}; }
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  // Where the section starts in the message.
  std::size_t offset() const noexcept { return offset_; }

 private:
  bytes_view message_{};
  std::size_t offset_ = 0;
  std::size_t count_ = 0;
};

using question_range = section_range<question>;
using record_range = section_range<record>;

template <byte_type B>
class basic_view {
 public:
  // Checks the header, then every question and record the counts announce
  // (names, fixed fields, RDATA bounds and the RDATA of decoded types).
  // Bytes after the last record are allowed and left out of the sections
  // (see `trailing()`).
  static expected<basic_view> checked(std::span<B> bytes) noexcept {
    if (bytes.size() < header_size) {
      return parse_error{"dns", errc::truncated, "header", 0, bytes.size(), header_size};
    }
    const bytes_view message = bytes;
    basic_view v(bytes);
    std::size_t pos = header_size;
    for (std::size_t i = 0, n = v.question_count(); i < n; ++i) {
      auto next = question::check(message, pos);
      if (!next) return next.error();
      pos = *next;
    }
    const std::size_t counts[3] = {v.answer_count(), v.authority_count(), v.additional_count()};
    static constexpr const char* names[3] = {"answer", "authority", "additional"};
    for (std::size_t s = 0; s < 3; ++s) {
      v.starts_[s] = pos;
      for (std::size_t i = 0; i < counts[s]; ++i) {
        auto next = record::check(message, pos, names[s]);
        if (!next) return next.error();
        pos = *next;
      }
    }
    v.end_ = pos;
    return v;
  }

  std::uint16_t id() const noexcept { return load16(field::id); }
  std::uint16_t flags() const noexcept { return load16(field::flags); }
  // QR: the message is a response.
  bool qr() const noexcept { return (flags() & flag::qr) != 0; }
  std::uint8_t opcode() const noexcept {
    return static_cast<std::uint8_t>((flags() & flag::opcode_mask) >> flag::opcode_shift);
  }
  // AA: authoritative answer.
  bool aa() const noexcept { return (flags() & flag::aa) != 0; }
  // TC: truncated to fit the transport (RFC 2181 §9).
  bool tc() const noexcept { return (flags() & flag::tc) != 0; }
  // RD: recursion desired.
  bool rd() const noexcept { return (flags() & flag::rd) != 0; }
  // RA: recursion available.
  bool ra() const noexcept { return (flags() & flag::ra) != 0; }
  // Z: reserved, zero in every message sent (RFC 1035 §4.1.1).
  bool z() const noexcept { return (flags() & flag::z) != 0; }
  // AD: authentic data (RFC 4035 §3.2.3).
  bool ad() const noexcept { return (flags() & flag::ad) != 0; }
  // CD: checking disabled (RFC 4035 §3.2.2).
  bool cd() const noexcept { return (flags() & flag::cd) != 0; }
  std::uint8_t rcode() const noexcept { return static_cast<std::uint8_t>(flags() & flag::rcode_mask); }
  std::uint16_t question_count() const noexcept { return load16(field::question_count); }
  std::uint16_t answer_count() const noexcept { return load16(field::answer_count); }
  std::uint16_t authority_count() const noexcept { return load16(field::authority_count); }
  std::uint16_t additional_count() const noexcept { return load16(field::additional_count); }

  question_range questions() const noexcept {
    return {bytes_, header_size, question_count()};
  }
  record_range answers() const noexcept { return {bytes_, starts_[0], answer_count()}; }
  record_range authorities() const noexcept { return {bytes_, starts_[1], authority_count()}; }
  record_range additionals() const noexcept { return {bytes_, starts_[2], additional_count()}; }

  std::span<B> header() const noexcept { return bytes_.first(header_size); }
  // Everything given to `checked()`.
  std::span<B> bytes() const noexcept { return bytes_; }
  // The header and the sections: up to the end of the last record.
  std::span<B> message() const noexcept { return bytes_.first(end_); }
  // Bytes after the last record, which no count accounts for.
  std::span<B> trailing() const noexcept { return bytes_.subspan(end_); }

  // Header setters. The counts have none: they shape the sections that
  // `checked()` walked.
  void set_id(std::uint16_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::id, v);
  }
  void set_qr(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_bits(flag::qr, v ? flag::qr : 0);
  }
  void set_opcode(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_bits(flag::opcode_mask, static_cast<std::uint16_t>((v & 0xf) << flag::opcode_shift));
  }
  void set_aa(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_bits(flag::aa, v ? flag::aa : 0);
  }
  void set_tc(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_bits(flag::tc, v ? flag::tc : 0);
  }
  void set_rd(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_bits(flag::rd, v ? flag::rd : 0);
  }
  void set_ra(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_bits(flag::ra, v ? flag::ra : 0);
  }
  void set_z(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_bits(flag::z, v ? flag::z : 0);
  }
  void set_ad(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_bits(flag::ad, v ? flag::ad : 0);
  }
  void set_cd(bool v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_bits(flag::cd, v ? flag::cd : 0);
  }
  void set_rcode(std::uint8_t v) noexcept
    requires(!std::is_const_v<B>)
  {
    set_bits(flag::rcode_mask, static_cast<std::uint16_t>(v & flag::rcode_mask));
  }

 private:
  explicit basic_view(std::span<B> bytes) noexcept : bytes_(bytes) {}
  std::uint16_t load16(wire::field f) const noexcept { return wire::load_be16(bytes_.data() + f.offset); }
  void store16(wire::field f, std::uint16_t v) const noexcept
    requires(!std::is_const_v<B>)
  {
    wire::store_be16(bytes_.data() + f.offset, v);
  }
  void set_bits(std::uint16_t mask, std::uint16_t bits) const noexcept
    requires(!std::is_const_v<B>)
  {
    store16(field::flags, static_cast<std::uint16_t>((flags() & ~mask) | (bits & mask)));
  }

  std::span<B> bytes_;
  std::size_t starts_[3] = {header_size, header_size, header_size};  // answer, authority, additional
  std::size_t end_ = header_size;
};

using view = basic_view<const byte>;
using mutable_view = basic_view<byte>;

// The header as values (RFC 1035 §4.1.1). OPCODE and RCODE keep their low
// four bits on the wire.
struct header_repr {
  std::uint16_t id = 0;
  bool qr = false;
  std::uint8_t opcode = opcode::query;
  bool aa = false;
  bool tc = false;
  bool rd = false;
  bool ra = false;
  bool z = false;
  bool ad = false;
  bool cd = false;
  std::uint8_t rcode = rcode::no_error;
  std::uint16_t question_count = 0;
  std::uint16_t answer_count = 0;
  std::uint16_t authority_count = 0;
  std::uint16_t additional_count = 0;

  static expected<header_repr> parse(view v) noexcept {
    return header_repr{v.id(),     v.qr(), v.opcode(), v.aa(), v.tc(),
                       v.rd(),     v.ra(), v.z(),      v.ad(), v.cd(),
                       v.rcode(),  v.question_count(),  v.answer_count(),
                       v.authority_count(), v.additional_count()};
  }

  // Reads only the 12 header bytes, without walking the sections: for
  // reporting the header of a message that `view::checked()` refuses.
  static expected<header_repr> parse(bytes_view message) noexcept {
    if (message.size() < header_size) {
      return parse_error{"dns", errc::truncated, "header", 0, message.size(), header_size};
    }
    const byte* p = message.data();
    const std::uint16_t f = wire::load_be16(p + field::flags.offset);
    return header_repr{wire::load_be16(p + field::id.offset),
                       (f & flag::qr) != 0,
                       static_cast<std::uint8_t>((f & flag::opcode_mask) >> flag::opcode_shift),
                       (f & flag::aa) != 0,
                       (f & flag::tc) != 0,
                       (f & flag::rd) != 0,
                       (f & flag::ra) != 0,
                       (f & flag::z) != 0,
                       (f & flag::ad) != 0,
                       (f & flag::cd) != 0,
                       static_cast<std::uint8_t>(f & flag::rcode_mask),
                       wire::load_be16(p + field::question_count.offset),
                       wire::load_be16(p + field::answer_count.offset),
                       wire::load_be16(p + field::authority_count.offset),
                       wire::load_be16(p + field::additional_count.offset)};
  }

  // Bytes the header takes.
  static constexpr std::size_t size() noexcept { return header_size; }

  std::uint16_t flags() const noexcept {
    std::uint16_t f = static_cast<std::uint16_t>((opcode & 0xf) << flag::opcode_shift);
    f |= rcode & flag::rcode_mask;
    if (qr) f |= flag::qr;
    if (aa) f |= flag::aa;
    if (tc) f |= flag::tc;
    if (rd) f |= flag::rd;
    if (ra) f |= flag::ra;
    if (z) f |= flag::z;
    if (ad) f |= flag::ad;
    if (cd) f |= flag::cd;
    return f;
  }

  // Writes the header at the front of `message`, which must hold at least
  // `size()` bytes.
  void emit(mutable_bytes message) const noexcept {
    byte* p = message.data();
    wire::store_be16(p + field::id.offset, id);
    wire::store_be16(p + field::flags.offset, flags());
    wire::store_be16(p + field::question_count.offset, question_count);
    wire::store_be16(p + field::answer_count.offset, answer_count);
    wire::store_be16(p + field::authority_count.offset, authority_count);
    wire::store_be16(p + field::additional_count.offset, additional_count);
  }

  friend bool operator==(const header_repr&, const header_repr&) = default;
};

// The section a record is written to.
enum class section : std::uint8_t { answer = 1, authority = 2, additional = 3 };

// A name to write: dotted text ("www.example.com", one trailing dot allowed,
// "." for the root; no escapes, labels 1..63 bytes, 255 bytes in all on the
// wire), or a name read from a message, copied label by label.
class name_ref {
 public:
  name_ref() noexcept : text_(".") {}
  name_ref(std::string_view text) noexcept : text_(text) {}
  name_ref(const char* text) noexcept : text_(text) {}
  name_ref(const std::string& text) noexcept : text_(text) {}
  name_ref(const name& n) noexcept : text_(n.text()) {}
  name_ref(const name_view& n) noexcept : view_(n), is_view_(true) {}

 private:
  friend class writer;
  std::string_view text_;
  name_view view_;
  bool is_view_ = false;
};

// SOA RDATA to write (RFC 1035 §3.3.13).
struct soa_repr {
  name_ref mname;
  name_ref rname;
  std::uint32_t serial = 0;
  std::uint32_t refresh = 0;
  std::uint32_t retry = 0;
  std::uint32_t expire = 0;
  std::uint32_t minimum = 0;
};

// Builds a message in a caller's buffer, without allocating. Entries go in
// section order (questions, answers, authorities, additionals); each `add_*`
// writes one and bumps its count in the header. A failed `add_*` leaves the
// message as it was, so a caller can stop at the first record that does not
// fit and set TC (RFC 2181 §9) if the answer is incomplete.
//
// Compression (RFC 1035 §4.1.4): every label the writer puts in the message
// starts a suffix it remembers (the first `max_suffixes`, at offsets a
// pointer can hold). Each name is written as its labels up to the longest
// remembered suffix it ends with, then a pointer to it. Suffixes match
// without regard to ASCII case (RFC 4343 §4.1), so a later name takes the
// case of the earlier one it points to.
class writer {
 public:
  static constexpr std::size_t max_suffixes = 64;

  // Writes `header` at the front of `buffer`, with zero counts: the writer
  // counts what it adds. Uses at most 65535 bytes of the buffer.
  static expected<writer> start(mutable_bytes buffer, const header_repr& header) noexcept {
    if (buffer.size() > max_message_size) buffer = buffer.first(max_message_size);
    if (buffer.size() < header_size) {
      return parse_error{"dns", errc::above_maximum, "message length", 0, header_size,
                         buffer.size()};
    }
    header_repr h = header;
    h.question_count = h.answer_count = h.authority_count = h.additional_count = 0;
    h.emit(buffer);
    return writer(buffer);
  }

  expected<void> add_question(name_ref qname, std::uint16_t qtype,
                              std::uint16_t qclass = class_code::in) noexcept {
    const auto saved = save();
    if (stage_ > 0) return fail(saved, order_error());
    if (auto ok = check_count(field::question_count, "question count"); !ok) return ok;
    if (auto ok = put_name(qname); !ok) return fail(saved, ok.error());
    if (auto ok = reserve(question_field::size); !ok) return fail(saved, ok.error());
    put16(qtype);
    put16(qclass);
    bump(field::question_count);
    return {};
  }

  // A record with RDATA as given, not looked into (names in it stay as they
  // are).
  expected<void> add_record(section s, name_ref owner, std::uint16_t rr_type,
                            std::uint16_t rr_class, std::uint32_t ttl, bytes_view rdata) noexcept {
    return add(s, owner, rr_type, rr_class, ttl, [&]() -> expected<void> {
      if (auto ok = reserve(rdata.size()); !ok) return ok;
      for (byte b : rdata) buffer_[size_++] = b;
      return {};
    });
  }

  expected<void> add_a(section s, name_ref owner, std::uint32_t ttl, ipv4_address address) noexcept {
    return add(s, owner, type::a, class_code::in, ttl, [&]() -> expected<void> {
      if (auto ok = reserve(4); !ok) return ok;
      address.to_bytes(buffer_.data() + size_);
      size_ += 4;
      return {};
    });
  }

  expected<void> add_aaaa(section s, name_ref owner, std::uint32_t ttl,
                          std::span<const byte, 16> address) noexcept {
    return add(s, owner, type::aaaa, class_code::in, ttl, [&]() -> expected<void> {
      if (auto ok = reserve(16); !ok) return ok;
      for (byte b : address) buffer_[size_++] = b;
      return {};
    });
  }

  expected<void> add_cname(section s, name_ref owner, std::uint32_t ttl, name_ref target) noexcept {
    return add(s, owner, type::cname, class_code::in, ttl, [&] { return put_name(target); });
  }
  expected<void> add_ns(section s, name_ref owner, std::uint32_t ttl, name_ref server) noexcept {
    return add(s, owner, type::ns, class_code::in, ttl, [&] { return put_name(server); });
  }
  expected<void> add_ptr(section s, name_ref owner, std::uint32_t ttl, name_ref target) noexcept {
    return add(s, owner, type::ptr, class_code::in, ttl, [&] { return put_name(target); });
  }

  expected<void> add_mx(section s, name_ref owner, std::uint32_t ttl, std::uint16_t preference,
                        name_ref exchange) noexcept {
    return add(s, owner, type::mx, class_code::in, ttl, [&]() -> expected<void> {
      if (auto ok = reserve(2); !ok) return ok;
      put16(preference);
      return put_name(exchange);
    });
  }

  // Each string becomes one <character-string> of at most 255 bytes.
  expected<void> add_txt(section s, name_ref owner, std::uint32_t ttl,
                         std::span<const std::string_view> strings) noexcept {
    return add(s, owner, type::txt, class_code::in, ttl, [&]() -> expected<void> {
      for (std::string_view text : strings) {
        if (text.size() > 255) {
          return parse_error{"dns", errc::above_maximum, "character-string length", size_,
                             text.size(), 255};
        }
        if (auto ok = reserve(1 + text.size()); !ok) return ok;
        buffer_[size_++] = static_cast<byte>(text.size());
        for (char c : text) buffer_[size_++] = static_cast<byte>(c);
      }
      return {};
    });
  }

  expected<void> add_soa(section s, name_ref owner, std::uint32_t ttl, const soa_repr& soa) noexcept {
    return add(s, owner, type::soa, class_code::in, ttl, [&]() -> expected<void> {
      if (auto ok = put_name(soa.mname); !ok) return ok;
      if (auto ok = put_name(soa.rname); !ok) return ok;
      if (auto ok = reserve(20); !ok) return ok;
      for (std::uint32_t v : {soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum}) {
        wire::store_be32(buffer_.data() + size_, v);
        size_ += 4;
      }
      return {};
    });
  }

  // Bytes written so far.
  std::size_t size() const noexcept { return size_; }
  // The message written so far.
  mutable_bytes message() const noexcept { return buffer_.first(size_); }

 private:
  struct saved_state {
    std::size_t size;
    std::size_t suffix_count;
  };
  struct label_list {
    std::array<std::string_view, max_name_length / 2> items;
    std::size_t count = 0;
  };

  explicit writer(mutable_bytes buffer) noexcept : buffer_(buffer), size_(header_size) {}

  saved_state save() const noexcept { return {size_, suffix_count_}; }
  parse_error fail(saved_state s, const parse_error& e) noexcept {
    size_ = s.size;
    suffix_count_ = s.suffix_count;
    return e;
  }
  parse_error order_error() const noexcept {
    return parse_error{"dns", errc::malformed, "section order", size_, 0, 0};
  }

  expected<void> reserve(std::size_t n) const noexcept {
    if (buffer_.size() - size_ < n) {
      return parse_error{"dns", errc::above_maximum, "message length", size_, size_ + n,
                         buffer_.size()};
    }
    return {};
  }
  void put16(std::uint16_t v) noexcept {
    wire::store_be16(buffer_.data() + size_, v);
    size_ += 2;
  }
  std::uint16_t count(wire::field f) const noexcept { return wire::load_be16(buffer_.data() + f.offset); }
  expected<void> check_count(wire::field f, const char* what) const noexcept {
    if (count(f) == 0xffff) return parse_error{"dns", errc::above_maximum, what, f.offset, 0x10000, 0xffff};
    return {};
  }
  void bump(wire::field f) noexcept {
    wire::store_be16(buffer_.data() + f.offset, static_cast<std::uint16_t>(count(f) + 1));
  }

  template <class WriteRdata>
  expected<void> add(section s, name_ref owner, std::uint16_t rr_type, std::uint16_t rr_class,
                     std::uint32_t ttl, WriteRdata&& write_rdata) noexcept {
    static constexpr wire::field count_fields[4] = {field::question_count, field::answer_count,
                                                    field::authority_count, field::additional_count};
    static constexpr const char* count_names[4] = {"question count", "answer count",
                                                   "authority count", "additional count"};
    const auto stage = static_cast<std::size_t>(s);
    if (stage < 1 || stage > 3) return order_error();
    const auto saved = save();
    if (stage < stage_) return fail(saved, order_error());
    if (auto ok = check_count(count_fields[stage], count_names[stage]); !ok) return ok;
    if (auto ok = put_name(owner); !ok) return fail(saved, ok.error());
    if (auto ok = reserve(record_field::size); !ok) return fail(saved, ok.error());
    put16(rr_type);
    put16(rr_class);
    wire::store_be32(buffer_.data() + size_, ttl);
    size_ += 4;
    const std::size_t length_at = size_;
    size_ += 2;
    if (auto ok = write_rdata(); !ok) return fail(saved, ok.error());
    // The buffer holds at most 65535 bytes, so the RDATA length fits.
    wire::store_be16(buffer_.data() + length_at, static_cast<std::uint16_t>(size_ - length_at - 2));
    stage_ = stage;
    bump(count_fields[stage]);
    return {};
  }

  // Splits and checks a name to write (RFC 1035 §2.3.4, §3.1).
  expected<void> labels_of(const name_ref& n, label_list& out) const noexcept {
    out.count = 0;
    if (n.is_view_) {
      for (std::string_view label : n.view_.labels()) out.items[out.count++] = label;
      return {};
    }
    std::string_view text = n.text_;
    if (text == ".") return {};
    if (text.empty()) {
      return parse_error{"dns", errc::below_minimum, "name length", size_, 0, 1};
    }
    if (text.back() == '.') text.remove_suffix(1);
    std::size_t wire_length = 1;  // the root octet
    for (;;) {
      const std::size_t dot = text.find('.');
      const std::string_view label = text.substr(0, dot);
      if (label.empty()) {
        return parse_error{"dns", errc::below_minimum, "label length", size_, 0, 1};
      }
      if (label.size() > max_label_length) {
        return parse_error{"dns", errc::above_maximum, "label length", size_, label.size(),
                           max_label_length};
      }
      wire_length += 1 + label.size();
      if (wire_length > max_name_length) {
        return parse_error{"dns", errc::above_maximum, "name length", size_, wire_length,
                           max_name_length};
      }
      out.items[out.count++] = label;
      if (dot == std::string_view::npos) return {};
      text.remove_prefix(dot + 1);
    }
  }

  // True when the name written at `offset` is exactly labels[first..count).
  bool suffix_matches(std::size_t offset, const label_list& labels, std::size_t first) const noexcept {
    std::size_t pos = offset;
    std::size_t k = first;
    // Names in the buffer are this writer's own, with backward pointers
    // only; the step bound is a guard, not a rule.
    for (std::size_t steps = 0; steps < 2 * max_name_length && pos < size_; ++steps) {
      const byte b = buffer_[pos];
      if ((b & detail::label_type_mask) == detail::pointer_label) {
        if (pos + 1 >= size_) return false;
        pos = wire::load_be16(buffer_.data() + pos) & max_pointer_offset;
        continue;
      }
      if (b == 0) return k == labels.count;
      if (k == labels.count || pos + 1 + b > size_) return false;
      const std::string_view label = detail::as_chars(buffer_.data() + pos + 1, b);
      if (!detail::equal_ignoring_case(label, labels.items[k])) return false;
      ++k;
      pos += std::size_t{1} + b;
    }
    return false;
  }

  expected<void> put_name(const name_ref& n) noexcept {
    label_list labels;
    if (auto ok = labels_of(n, labels); !ok) return ok;

    // The longest remembered suffix: the first label it can start at.
    std::size_t first = labels.count;
    std::size_t target = 0;
    for (std::size_t i = 0; i < labels.count && first == labels.count; ++i) {
      for (std::size_t e = 0; e < suffix_count_; ++e) {
        if (suffix_matches(suffixes_[e], labels, i)) {
          first = i;
          target = suffixes_[e];
          break;
        }
      }
    }
    const bool compressed = first < labels.count;

    std::size_t needed = compressed ? 2 : 1;
    for (std::size_t i = 0; i < first; ++i) needed += 1 + labels.items[i].size();
    if (auto ok = reserve(needed); !ok) return ok;

    for (std::size_t i = 0; i < first; ++i) {
      if (size_ <= max_pointer_offset && suffix_count_ < max_suffixes) {
        suffixes_[suffix_count_++] = static_cast<std::uint16_t>(size_);
      }
      const std::string_view label = labels.items[i];
      buffer_[size_++] = static_cast<byte>(label.size());
      for (char c : label) buffer_[size_++] = static_cast<byte>(c);
    }
    if (compressed) {
      put16(static_cast<std::uint16_t>(0xc000 | target));
    } else {
      buffer_[size_++] = 0;
    }
    return {};
  }

  mutable_bytes buffer_;
  std::size_t size_ = header_size;
  std::size_t stage_ = 0;  // 0 questions, then the `section` values
  std::array<std::uint16_t, max_suffixes> suffixes_{};
  std::size_t suffix_count_ = 0;
};

}  // namespace pystack::dns

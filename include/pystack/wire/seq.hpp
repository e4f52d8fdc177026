// Modular 32-bit sequence numbers (RFC 793 §3.3, RFC 1982 serial arithmetic).
//
// TCP sequence numbers wrap, so `a < b` means "b is less than 2^31 ahead of
// a", decided by the sign of the 32-bit difference. A bare uint32_t compare
// is the classic TCP bug at the wrap; this type makes it impossible to write.
// The same arithmetic serves TCP timestamps (RFC 7323 §5.2, PAWS).
#pragma once

#include <cstdint>

namespace pystack {

template <class Tag>
class basic_serial {
 public:
  constexpr basic_serial() = default;
  constexpr explicit basic_serial(std::uint32_t raw) noexcept : raw_(raw) {}

  constexpr std::uint32_t raw() const noexcept { return raw_; }

  constexpr basic_serial operator+(std::int64_t n) const noexcept {
    return basic_serial(static_cast<std::uint32_t>(raw_ + static_cast<std::uint32_t>(n)));
  }
  constexpr basic_serial operator-(std::int64_t n) const noexcept {
    return basic_serial(static_cast<std::uint32_t>(raw_ - static_cast<std::uint32_t>(n)));
  }
  constexpr basic_serial& operator+=(std::int64_t n) noexcept { return *this = *this + n; }
  constexpr basic_serial& operator-=(std::int64_t n) noexcept { return *this = *this - n; }

  // Signed distance from `other` to this: positive when this is ahead.
  constexpr std::int32_t operator-(basic_serial other) const noexcept {
    return static_cast<std::int32_t>(raw_ - other.raw_);
  }

  friend constexpr bool operator==(basic_serial, basic_serial) = default;
  friend constexpr bool operator<(basic_serial a, basic_serial b) noexcept { return (a - b) < 0; }
  friend constexpr bool operator>(basic_serial a, basic_serial b) noexcept { return (a - b) > 0; }
  friend constexpr bool operator<=(basic_serial a, basic_serial b) noexcept { return (a - b) <= 0; }
  friend constexpr bool operator>=(basic_serial a, basic_serial b) noexcept { return (a - b) >= 0; }

  // True when lower <= *this < upper in sequence space (RFC 793 §3.3's
  // acceptability tests are written with these half-open windows).
  constexpr bool in_window(basic_serial lower, basic_serial upper) const noexcept {
    return *this >= lower && *this < upper;
  }

 private:
  std::uint32_t raw_ = 0;
};

struct sequence_tag;
struct timestamp_tag;

// A TCP sequence or acknowledgement number.
using seq_number = basic_serial<sequence_tag>;
// A TCP timestamp value (RFC 7323).
using tcp_timestamp = basic_serial<timestamp_tag>;

}  // namespace pystack

// Typed parse errors and the `expected` type every checking factory returns.
//
// Parsing never throws: a factory returns the view or a `parse_error` saying
// which protocol, which field, at which offset and why. The error is a small
// trivially copyable value (no allocation on the error path); `message()`
// renders it for people, e.g. "tcp: data offset 3 is below 5".
//
// g++ 12 has no std::expected in C++20 mode, so `pystack::expected` is a
// minimal stand-in with the same spelling for the parts used here; it can be
// swapped for the standard one when the toolchain allows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace pystack {

enum class errc : std::uint8_t {
  truncated,             // fewer bytes than the field or header needs
  below_minimum,         // a length or count under what the format allows
  above_maximum,         // a length or count over what the format or buffer allows
  mismatch,              // a field that must hold one value holds another
  unsupported,           // well-formed but not something this parser decodes
  pointer_loop,          // DNS name compression that never ends
  pointer_out_of_range,  // DNS compression pointer outside the message
  malformed,             // anything else that cannot be decoded
};

struct parse_error {
  const char* protocol = "";  // "tcp", "ipv4", ...
  errc code = errc::malformed;
  const char* field = "";  // "data offset", "option length", ...
  std::size_t offset = 0;  // byte offset within the protocol's own bytes
  std::uint64_t value = 0;  // what was found
  std::uint64_t limit = 0;  // what was needed, allowed or expected

  friend bool operator==(const parse_error&, const parse_error&) = default;

  std::string message() const {
    std::string m = std::string(protocol) + ": ";
    const std::string f = field;
    const std::string v = std::to_string(value);
    const std::string l = std::to_string(limit);
    const std::string at = " at offset " + std::to_string(offset);
    switch (code) {
      case errc::truncated:
        return m + f + " truncated" + at + ": needs " + l + " bytes, " + v + " present";
      case errc::below_minimum:
        return m + f + " " + v + " is below " + l;
      case errc::above_maximum:
        return m + f + " " + v + " exceeds " + l;
      case errc::mismatch:
        return m + f + " " + v + " is not " + l;
      case errc::unsupported:
        return m + f + " " + v + " is not supported";
      case errc::pointer_loop:
        return m + f + ": compression pointers loop" + at;
      case errc::pointer_out_of_range:
        return m + f + ": compression pointer " + v + at + " points outside the message";
      case errc::malformed:
        break;
    }
    return m + f + " malformed" + at;
  }
};

template <class E>
struct unexpected {
  E error;
};
template <class E>
unexpected(E) -> unexpected<E>;

template <class E>
class bad_expected_access : public std::exception {
 public:
  explicit bad_expected_access(E e) : error_(std::move(e)) {}
  const char* what() const noexcept override { return "bad expected access"; }
  const E& error() const noexcept { return error_; }

 private:
  E error_;
};

// Holds a T or an error E. Converts implicitly from either, so a factory can
// `return view{...};` or `return parse_error{...};`.
template <class T, class E = parse_error>
class [[nodiscard]] expected {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, E>, "expected<E, E> is ambiguous");

 public:
  using value_type = T;
  using error_type = E;

  constexpr expected(const T& v) : state_(std::in_place_index<0>, v) {}
  constexpr expected(T&& v) : state_(std::in_place_index<0>, std::move(v)) {}
  constexpr expected(const E& e) : state_(std::in_place_index<1>, e) {}
  constexpr expected(unexpected<E> e) : state_(std::in_place_index<1>, std::move(e.error)) {}

  constexpr bool has_value() const noexcept { return state_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }

  constexpr T& operator*() & noexcept { return *std::get_if<0>(&state_); }
  constexpr const T& operator*() const& noexcept { return *std::get_if<0>(&state_); }
  constexpr T* operator->() noexcept { return std::get_if<0>(&state_); }
  constexpr const T* operator->() const noexcept { return std::get_if<0>(&state_); }

  constexpr T& value() & {
    if (!has_value()) throw bad_expected_access<E>(error());
    return **this;
  }
  constexpr const T& value() const& {
    if (!has_value()) throw bad_expected_access<E>(error());
    return **this;
  }
  constexpr T&& value() && {
    if (!has_value()) throw bad_expected_access<E>(error());
    return std::move(**this);
  }

  constexpr const E& error() const& noexcept { return *std::get_if<1>(&state_); }

  template <class U>
  constexpr T value_or(U&& fallback) const& {
    return has_value() ? **this : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, E> state_;
};

// expected<void>: success or an error.
template <class E>
class [[nodiscard]] expected<void, E> {
 public:
  constexpr expected() = default;
  constexpr expected(const E& e) : error_(e), failed_(true) {}
  constexpr expected(unexpected<E> e) : error_(std::move(e.error)), failed_(true) {}

  constexpr bool has_value() const noexcept { return !failed_; }
  constexpr explicit operator bool() const noexcept { return has_value(); }
  constexpr void value() const {
    if (failed_) throw bad_expected_access<E>(error_);
  }
  constexpr const E& error() const& noexcept { return error_; }

 private:
  E error_{};
  bool failed_ = false;
};

}  // namespace pystack

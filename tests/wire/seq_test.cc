// Sequence numbers compare modulo 2^32 (RFC 1982 serial arithmetic).
#include "pystack/wire/seq.hpp"

#include <catch2/catch.hpp>

using pystack::seq_number;

TEST_CASE("sequence numbers compare across the wrap") {
  const seq_number before_wrap(0xfffffff0u);
  const seq_number after_wrap(0x10u);
  CHECK(before_wrap < after_wrap);
  CHECK(after_wrap > before_wrap);
  CHECK(after_wrap - before_wrap == 0x20);
  CHECK(before_wrap - after_wrap == -0x20);
  CHECK(before_wrap + 0x20 == after_wrap);
  CHECK(after_wrap - 0x20 == before_wrap);
}

TEST_CASE("sequence numbers half the space apart flip at 2^31") {
  const seq_number zero(0);
  CHECK(seq_number(0x7fffffffu) > zero);
  CHECK(seq_number(0x80000001u) < zero);
}

TEST_CASE("window membership is half-open and wraps") {
  const seq_number left(0xffffff00u);
  const seq_number right = left + 0x200;
  CHECK(left.in_window(left, right));
  CHECK(seq_number(0x50).in_window(left, right));
  CHECK_FALSE(right.in_window(left, right));
  CHECK_FALSE((left - 1).in_window(left, right));
}

TEST_CASE("sequence arithmetic is usable at compile time") {
  static_assert(seq_number(5) + 10 == seq_number(15));
  static_assert(seq_number(0) - 1 == seq_number(0xffffffffu));
  static_assert(seq_number(1) > seq_number(0xffffffffu));
}

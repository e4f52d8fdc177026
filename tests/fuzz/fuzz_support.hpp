// What every fuzz target shares: how it reports a broken invariant, how it
// keeps the optimiser from dropping the reads it makes on purpose, and the
// small input reader the targets use to draw extra values (addresses, field
// values for setters) from the fuzzer's bytes.
//
// A broken invariant prints what failed and then traps: libFuzzer treats the
// trap like any crash, so it saves the input as a reproducer. An accessor's
// result is passed to `consume`, because a read whose result is unused can be
// optimised away, and then AddressSanitizer never sees it go out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"

namespace pystack::fuzz {

[[noreturn]] inline void fail(const char* file, int line, const char* condition) {
  std::fprintf(stderr, "\nfuzz invariant broken at %s:%d: %s\n", file, line, condition);
  std::fflush(stderr);
  __builtin_trap();
}

#define PYSTACK_FUZZ_REQUIRE(condition) \
  ((condition) ? static_cast<void>(0) : ::pystack::fuzz::fail(__FILE__, __LINE__, #condition))

// For two numbers (or flags): prints both values before it traps.
template <class A, class B>
inline void require_equal(const A& a, const B& b, const char* file, int line, const char* text) {
  if (a == b) return;
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B>) {
    std::fprintf(stderr, "\nvalues: %llu (0x%llx) and %llu (0x%llx)", static_cast<unsigned long long>(a),
                 static_cast<unsigned long long>(a), static_cast<unsigned long long>(b),
                 static_cast<unsigned long long>(b));
  }
  fail(file, line, text);
}
#define PYSTACK_FUZZ_REQUIRE_EQ(a, b) ::pystack::fuzz::require_equal((a), (b), __FILE__, __LINE__, #a " == " #b)

// The value escapes to an empty asm block that claims to read memory, so the
// computation that made it cannot be removed (the technique of Google
// Benchmark's DoNotOptimize).
template <class T>
inline void consume(const T& value) noexcept {
  asm volatile("" : : "r,m"(value) : "memory");
}

// Reads every byte: a span that reaches past its buffer is an ASan report.
inline void consume_bytes(std::span<const byte> bytes) noexcept {
  std::uint32_t sum = 0;
  for (byte b : bytes) sum = sum * 31 + b;
  consume(sum);
}
inline void consume_text(std::string_view text) noexcept {
  consume_bytes(std::span<const byte>(reinterpret_cast<const byte*>(text.data()), text.size()));
}

inline bool same_bytes(std::span<const byte> a, std::span<const byte> b) noexcept {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// A failed parse must still describe itself: the message renders, names the
// protocol that failed, and points inside (or just past) the bytes given.
inline void check_error(const parse_error& e, std::string_view protocol, std::size_t input_size) {
  const std::string message = e.message();
  consume_text(message);
  PYSTACK_FUZZ_REQUIRE(std::string_view(e.protocol) == protocol);
  PYSTACK_FUZZ_REQUIRE(message.starts_with(protocol));
  PYSTACK_FUZZ_REQUIRE(e.offset <= input_size);
}

// Draws values from the end of the input, so the front stays the packet and
// seeds from captures keep their meaning. Past the end it gives zeros.
class tail_reader {
 public:
  explicit tail_reader(std::span<const byte> input) noexcept : input_(input) {}
  std::uint8_t u8() noexcept {
    if (used_ >= input_.size()) return 0;
    return input_[input_.size() - ++used_];
  }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>((u8() << 8) | u8()); }
  std::uint32_t u32() noexcept { return (std::uint32_t{u16()} << 16) | u16(); }
  ipv4_address address() noexcept { return ipv4_address{u32()}; }
  mac_address mac() noexcept { return {{u8(), u8(), u8(), u8(), u8(), u8()}}; }

 private:
  std::span<const byte> input_;
  std::size_t used_ = 0;
};

// A heap buffer of exactly `size` bytes, so a write or read one past the end
// is an ASan report (a std::array or a larger vector would hide it).
inline std::vector<byte> exact_buffer(std::size_t size, byte fill = 0xa5) { return std::vector<byte>(size, fill); }

}  // namespace pystack::fuzz

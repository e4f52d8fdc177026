// Initial sequence numbers as RFC 6528 §3 computes them:
//
//   ISN = M + F(localip, localport, remoteip, remoteport, secretkey)
//
// M is a clock ticking every 4 microseconds (RFC 9293 §3.4.1), so that a new
// incarnation of a connection starts ahead of the old one's numbers; F is a
// keyed hash, so that an off-path attacker cannot guess the ISN of a
// connection from its own. F here is SipHash-2-4 (Aumasson and Bernstein,
// 2012), a PRF built for short inputs, with a 128-bit key.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>

#include "pystack/layers/tcp/types.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/seq.hpp"

namespace pystack {

namespace detail {

constexpr std::uint64_t rotl64(std::uint64_t x, int b) noexcept { return (x << b) | (x >> (64 - b)); }

// SipHash-2-4 of `data` under the key (k0, k1), as the reference
// implementation defines it (little-endian words, length in the last byte).
constexpr std::uint64_t siphash24(std::uint64_t k0, std::uint64_t k1, const byte* data, std::size_t size) noexcept {
  std::uint64_t v0 = 0x736f6d6570736575ull ^ k0;
  std::uint64_t v1 = 0x646f72616e646f6dull ^ k1;
  std::uint64_t v2 = 0x6c7967656e657261ull ^ k0;
  std::uint64_t v3 = 0x7465646279746573ull ^ k1;
  auto round = [&] {
    v0 += v1;
    v1 = rotl64(v1, 13);
    v1 ^= v0;
    v0 = rotl64(v0, 32);
    v2 += v3;
    v3 = rotl64(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl64(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl64(v1, 17);
    v1 ^= v2;
    v2 = rotl64(v2, 32);
  };
  const std::size_t whole = size - size % 8;
  for (std::size_t at = 0; at < whole; at += 8) {
    std::uint64_t m = 0;
    for (int i = 0; i < 8; ++i) m |= std::uint64_t{data[at + static_cast<std::size_t>(i)]} << (8 * i);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  std::uint64_t last = std::uint64_t{size & 0xff} << 56;
  for (std::size_t i = 0; i < size % 8; ++i) last |= std::uint64_t{data[whole + i]} << (8 * i);
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace detail

// RFC 6528's generator. Default-constructed, its key comes from the system's
// random source; constructed from a key, it is reproducible (tests, replay).
class rfc6528_isn {
 public:
  // The clock M advances once per 4 µs (RFC 9293 §3.4.1).
  static constexpr duration tick = std::chrono::microseconds(4);

  rfc6528_isn() {
    std::random_device random;
    k0_ = (std::uint64_t{random()} << 32) ^ random();
    k1_ = (std::uint64_t{random()} << 32) ^ random();
  }
  constexpr rfc6528_isn(std::uint64_t k0, std::uint64_t k1) noexcept : k0_(k0), k1_(k1) {}

  // Replaces the key, e.g. to replay a run.
  constexpr void seed(std::uint64_t k0, std::uint64_t k1) noexcept {
    k0_ = k0;
    k1_ = k1;
  }

  constexpr seq_number operator()(const four_tuple& t, instant now) const noexcept {
    std::array<byte, 12> input{};
    wire::store_be32(input.data(), t.local.address.value);
    wire::store_be16(input.data() + 4, t.local.port);
    wire::store_be32(input.data() + 6, t.remote.address.value);
    wire::store_be16(input.data() + 10, t.remote.port);
    const auto f = static_cast<std::uint32_t>(detail::siphash24(k0_, k1_, input.data(), input.size()));
    const auto m = static_cast<std::uint32_t>(now.since_epoch / tick);
    return seq_number(m) + f;
  }

 private:
  std::uint64_t k0_ = 0;
  std::uint64_t k1_ = 0;
};

}  // namespace pystack

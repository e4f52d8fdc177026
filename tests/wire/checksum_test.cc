// The internet checksum against the RFCs' own worked examples, against a
// word-at-a-time reference over random data split into random pieces, and the
// incremental update against full recomputation.
#include "pystack/wire/checksum.hpp"

#include <catch2/catch.hpp>
#include <random>
#include <vector>

namespace {
using namespace pystack;

// RFC 1071 §1 written out literally: 16-bit big-endian words, end-around carry.
std::uint16_t reference_checksum(const std::vector<byte>& data) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 2) {
    const std::uint16_t word = static_cast<std::uint16_t>(data[i] << 8 | (i + 1 < data.size() ? data[i + 1] : 0));
    sum += word;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum);
}
}  // namespace

TEST_CASE("checksum matches RFC 1071 section 3's numerical example") {
  // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
  const std::vector<byte> data = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  checksum::accumulator acc;
  acc.add(data);
  CHECK(acc.sum() == 0xddf2);
  CHECK(acc.finish() == 0x220d);
}

TEST_CASE("checksum of a known IPv4 header verifies to zero") {
  // Wikipedia's / RFC 791 style example header, checksum 0xb861 in place.
  const std::vector<byte> header = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                    0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  CHECK(checksum::verify(header));
  auto zeroed = header;
  zeroed[10] = zeroed[11] = 0;
  CHECK(checksum::compute(zeroed) == 0xb861);
}

TEST_CASE("checksum agrees with the reference for every length and any split") {
  std::mt19937 rng(Catch::rngSeed());
  for (std::size_t length = 0; length < 300; ++length) {
    std::vector<byte> data(length);
    for (auto& b : data) b = static_cast<byte>(rng());
    INFO("length " << length << ", seed " << Catch::rngSeed());
    CHECK(checksum::compute(data) == reference_checksum(data));

    // The same data in up to four pieces of arbitrary (often odd) lengths.
    checksum::accumulator pieces;
    std::size_t at = 0;
    for (int i = 0; i < 3 && at < length; ++i) {
      const std::size_t n = rng() % (length - at + 1);
      pieces.add(bytes_view(data).subspan(at, n));
      at += n;
    }
    pieces.add(bytes_view(data).subspan(at));
    CHECK(pieces.finish() == reference_checksum(data));
  }
}

TEST_CASE("checksum handles long buffers without losing carries") {
  std::vector<byte> data(1 << 20, 0xff);
  CHECK(checksum::compute(data) == reference_checksum(data));
}

TEST_CASE("incremental update follows RFC 1624 section 4's example") {
  // m = 0x5555 becomes m' = 0x3285 in a header whose checksum was 0xdd2f;
  // eqn. 3 gives 0x0000, the value full recomputation gives (RFC 1624 §4).
  CHECK(checksum::update(0xdd2f, 0x5555, 0x3285) == 0x0000);
}

TEST_CASE("incremental update equals recomputation for random field changes") {
  std::mt19937 rng(Catch::rngSeed());
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<byte> data(20 + 2 * (rng() % 20));
    for (auto& b : data) b = static_cast<byte>(rng());
    data[10] = data[11] = 0;
    const std::uint16_t old_checksum = checksum::compute(data);
    const std::size_t at = 2 * (rng() % (data.size() / 2));
    if (at == 10) continue;
    const std::uint16_t old_field = static_cast<std::uint16_t>(data[at] << 8 | data[at + 1]);
    const std::uint16_t new_field = static_cast<std::uint16_t>(rng());
    data[at] = static_cast<byte>(new_field >> 8);
    data[at + 1] = static_cast<byte>(new_field);
    const std::uint16_t updated = checksum::update(old_checksum, old_field, new_field);
    // Both 0x0000 and 0xffff mean "sums to all ones"; the data must verify.
    data[10] = static_cast<byte>(updated >> 8);
    data[11] = static_cast<byte>(updated);
    INFO("trial " << trial << ", seed " << Catch::rngSeed());
    CHECK(checksum::verify(data));
  }
}

TEST_CASE("incremental 32-bit update equals recomputation") {
  std::vector<byte> data = {0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x9a, 0xbc, 0xde, 0xf0};
  const std::uint16_t before = checksum::compute(data);
  data[0] = 0xca; data[1] = 0xfe; data[2] = 0xba; data[3] = 0xbe;
  const std::uint16_t after = checksum::update32(before, 0x12345678, 0xcafebabe);
  data[4] = static_cast<byte>(after >> 8);
  data[5] = static_cast<byte>(after);
  CHECK(checksum::verify(data));
}

TEST_CASE("pseudo-header sum equals summing the pseudo-header bytes") {
  const auto source = *ipv4_address::parse("192.168.1.10");
  const auto destination = *ipv4_address::parse("10.1.2.3");
  const std::vector<byte> bytes = {192, 168, 1, 10, 10, 1, 2, 3, 0, 6, 0x05, 0xdc};
  checksum::accumulator a, b;
  a.add_pseudo_header(source, destination, 6, 1500);
  b.add(bytes);
  CHECK(a.finish() == b.finish());
}

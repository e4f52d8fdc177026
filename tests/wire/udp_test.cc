// UDP wire format: fixed bytes both ways, a junk-filled build buffer, and
// every truncation length. The reference datagram and its checksum were
// produced by Scapy: UDP(sport=1234, dport=53)/b"hello" between 10.0.0.1 and
// 10.0.0.2.
#include "pystack/wire/udp.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <vector>

namespace {
using namespace pystack;

const auto source = *ipv4_address::parse("10.0.0.1");
const auto destination = *ipv4_address::parse("10.0.0.2");

constexpr std::array<byte, 13> datagram = {
    0x04, 0xd2, 0x00, 0x35, 0x00, 0x0d, 0xa2, 0xf8,  // ports 1234 -> 53, length 13, checksum
    'h',  'e',  'l',  'l',  'o'};
}  // namespace

TEST_CASE("udp view reads every field of a known datagram") {
  auto v = udp::view::checked(datagram);
  REQUIRE(v);
  CHECK(v->source_port() == 1234);
  CHECK(v->destination_port() == 53);
  CHECK(v->length() == 13);
  CHECK(v->checksum() == 0xa2f8);
  CHECK(v->payload().size() == 5);
  CHECK(v->payload()[0] == 'h');
  CHECK(v->verify_checksum(source, destination));
  CHECK_FALSE(v->verify_checksum(source, *ipv4_address::parse("10.0.0.3")));
}

TEST_CASE("udp repr emits the same bytes into a junk-filled buffer") {
  std::vector<byte> out(datagram.size(), 0xa5);
  std::copy(datagram.begin() + 8, datagram.end(), out.begin() + 8);  // payload in place
  const udp::repr r{.source_port = 1234, .destination_port = 53};
  r.emit(out, source, destination);
  CHECK(std::equal(out.begin(), out.end(), datagram.begin(), datagram.end()));

  auto parsed = udp::repr::parse(*udp::view::checked(datagram));
  REQUIRE(parsed);
  CHECK(*parsed == r);
}

TEST_CASE("udp checksum that sums to zero is sent as all ones") {
  // Find a source port whose checksum computes to zero; RFC 768 says send 0xffff.
  std::array<byte, 8> header{};
  for (std::uint32_t port = 0; port <= 0xffff; ++port) {
    udp::repr{.source_port = static_cast<std::uint16_t>(port), .destination_port = 7}.emit_without_checksum(header);
    if (checksum::accumulator{}.add_pseudo_header(source, destination, udp::ip_protocol, 8).add(header).finish() == 0) {
      udp::repr{.source_port = static_cast<std::uint16_t>(port), .destination_port = 7}.emit(header, source, destination);
      auto v = udp::view::checked(header);
      REQUIRE(v);
      CHECK(v->checksum() == 0xffff);
      CHECK(v->verify_checksum(source, destination));
      return;
    }
  }
  FAIL("no port gives a zero checksum");
}

TEST_CASE("udp rejects every truncation with a typed error") {
  const auto cut = GENERATE(range<std::size_t>(0, datagram.size()));
  auto v = udp::view::checked(std::span(datagram).first(cut));
  REQUIRE_FALSE(v);
  CHECK(v.error().protocol == std::string_view("udp"));
  CHECK(v.error().code == errc::truncated);
}

TEST_CASE("udp rejects a length field below the header size") {
  auto bytes = datagram;
  bytes[5] = 7;
  auto v = udp::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::below_minimum);
  CHECK(v.error().message() == "udp: length 7 is below 8");
}

TEST_CASE("udp ignores link padding beyond the length field") {
  std::array<byte, 20> padded{};
  std::copy(datagram.begin(), datagram.end(), padded.begin());
  auto v = udp::view::checked(padded);
  REQUIRE(v);
  CHECK(v->bytes().size() == 13);
  CHECK(v->payload().size() == 5);
}

TEST_CASE("udp mutable view rewrites ports and refills the checksum") {
  auto bytes = datagram;
  auto v = udp::mutable_view::checked(bytes);
  REQUIRE(v);
  v->set_source_port(4321);
  CHECK_FALSE(v->verify_checksum(source, destination));
  v->fill_checksum(source, destination);
  CHECK(v->verify_checksum(source, destination));
  CHECK(udp::view::checked(bytes)->source_port() == 4321);
}

// Both views must instantiate in full: a setter that a read-only view cannot
// have must be constrained away, not fail to compile.
template class pystack::udp::basic_view<const pystack::byte>;
template class pystack::udp::basic_view<pystack::byte>;

TEST_CASE("udp quoted view accepts a datagram cut short of its length") {
  // The first 10 bytes of the datagram, as an ICMP error or a first fragment
  // would carry them: the strict factory refuses, the quoted one reads the header.
  const auto cut = std::span(datagram).first(10);
  REQUIRE_FALSE(udp::view::checked(cut));
  auto v = udp::view::checked_quoted(cut);
  REQUIRE(v);
  CHECK(v->length() == 13);
  CHECK(v->payload().size() == 2);
  // Below the header it is still an error, and so is a length under 8.
  CHECK_FALSE(udp::view::checked_quoted(std::span(datagram).first(7)));
  auto bad = datagram;
  bad[5] = 3;
  CHECK(udp::view::checked_quoted(bad).error().code == errc::below_minimum);
}

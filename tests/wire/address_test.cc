// Text forms of MAC and IPv4 addresses, and the bad inputs they refuse.
#include "pystack/wire/address.hpp"

#include <catch2/catch.hpp>

using namespace pystack;

TEST_CASE("ipv4 addresses parse and print dotted quads") {
  auto a = ipv4_address::parse("192.168.0.1");
  REQUIRE(a);
  CHECK(a->value == 0xc0a80001u);
  CHECK(a->to_string() == "192.168.0.1");
  CHECK(ipv4_address::parse("0.0.0.0")->is_unspecified());
  CHECK(ipv4_address::parse("255.255.255.255")->is_broadcast());
  CHECK(ipv4_address::parse("224.0.0.1")->is_multicast());
  CHECK(ipv4_address::parse("127.0.0.1")->is_loopback());
}

TEST_CASE("ipv4 parse refuses anything but four decimal octets") {
  const char* bad = GENERATE("", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "1.2.3.4 ", " 1.2.3.4",
                             "a.b.c.d", "1.2.3.-4", "1.2.3.0004", "1.2.3.4/24", ".1.2.3");
  INFO(bad);
  CHECK_FALSE(ipv4_address::parse(bad));
}

TEST_CASE("ipv4 addresses round-trip through wire bytes") {
  const byte wire[4] = {10, 20, 30, 40};
  const auto a = ipv4_address::from_bytes(wire);
  CHECK(a == ipv4_address::from_octets(10, 20, 30, 40));
  byte out[4] = {};
  a.to_bytes(out);
  CHECK(std::equal(out, out + 4, wire));
}

TEST_CASE("mac addresses parse and print lowercase") {
  auto m = mac_address::parse("00:1A:2b:3c:4D:5e");
  REQUIRE(m);
  CHECK(m->to_string() == "00:1a:2b:3c:4d:5e");
  CHECK(mac_address::parse("00-1a-2b-3c-4d-5e") == m);
  CHECK(mac_address::broadcast().is_broadcast());
  CHECK(mac_address::broadcast().is_multicast());
  CHECK(mac_address::parse("01:00:5e:00:00:01")->is_multicast());
  CHECK_FALSE(m->is_multicast());
}

TEST_CASE("mac parse refuses malformed text") {
  const char* bad = GENERATE("", "00:1a:2b:3c:4d", "00:1a:2b:3c:4d:5e:6f", "00:1a:2b:3c:4d:5g",
                             "001a2b3c4d5e00000", "00:1a:2b:3c:4d:+e");
  INFO(bad);
  CHECK_FALSE(mac_address::parse(bad));
}

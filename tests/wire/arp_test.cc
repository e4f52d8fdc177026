// ARP wire format: the generic header of any ARP packet, the typed
// Ethernet/IPv4 step, emit into a junk-filled buffer, every truncation and
// lengths that claim more than is present. Reference bytes come from Scapy
// (the expression is above each array) or from a tcpdump test capture.
#include "pystack/wire/arp.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <string_view>
#include <vector>

namespace {
using namespace pystack;

const mac_address host = *mac_address::parse("66:77:88:99:aa:bb");
const mac_address router = *mac_address::parse("00:11:22:33:44:55");
const ipv4_address host_ip = *ipv4_address::parse("192.168.1.10");
const ipv4_address router_ip = *ipv4_address::parse("192.168.1.1");

// ARP(op=2, hwsrc="00:11:22:33:44:55", psrc="192.168.1.1",
//     hwdst="66:77:88:99:aa:bb", pdst="192.168.1.10")
constexpr std::array<byte, 28> reply = {
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,  // Ethernet, IPv4, 6, 4, reply
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0xc0, 0xa8, 0x01, 0x01,  // sender
    0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xc0, 0xa8, 0x01, 0x0a};  // target

// Ether(dst="00:11:22:33:44:55", src="66:77:88:99:aa:bb")/
//   ARP(op=1, hwsrc="66:77:88:99:aa:bb", psrc="192.168.1.10",
//       hwdst="00:00:00:00:00:00", pdst="192.168.1.1")/Padding(load=b"\0" * 18)
// A request padded to the 60-byte minimum frame.
constexpr std::array<byte, 60> padded_request_frame = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
    0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xc0, 0xa8, 0x01, 0x0a,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00};

// The one frame of ../shared/testdata/tcpdump/arp-too-long-tha.pcap: an
// 0x88a8-tagged ARP with hardware type 12336 and hlen 14. tcpdump prints
// "ARP, Unknown Hardware (12336) (len 14), IPv4 (len 4), Request who-has
// 48.48.48.48 (30:30:30:30:30:30:30:30:30:30:30:30:30:30) tell 48.48.48.48".
constexpr std::array<byte, 64> unknown_hardware_frame = {
    0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x88, 0xa8, 0x30, 0x30,
    0x08, 0x06, 0x30, 0x30, 0x08, 0x00, 0x0e, 0x04, 0x00, 0x01, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
    0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
    0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30};

// ARP(hwtype=6, hwlen=8, op=2, hwsrc=b"\x01\x02\x03\x04\x05\x06\x07\x08",
//     psrc="10.0.0.1", hwdst=b"\x11\x12\x13\x14\x15\x16\x17\x18", pdst="10.0.0.2")
constexpr std::array<byte, 32> ieee802_hardware = {
    0x00, 0x06, 0x08, 0x00, 0x08, 0x04, 0x00, 0x02,
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0a, 0x00, 0x00, 0x01,
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x0a, 0x00, 0x00, 0x02};

// ARP(op=1, ptype=0x86dd, hwsrc="66:77:88:99:aa:bb", psrc="fe80::1",
//     hwdst="00:00:00:00:00:00", pdst="fe80::2")
constexpr std::array<byte, 52> ipv6_protocol = {
    0x00, 0x01, 0x86, 0xdd, 0x06, 0x10, 0x00, 0x01,
    0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02};

bool all_of(std::span<const byte> s, byte b) {
  return std::all_of(s.begin(), s.end(), [b](byte x) { return x == b; });
}
}  // namespace

TEST_CASE("arp view reads every field of a known reply") {
  auto v = arp::view::checked(reply);
  REQUIRE(v);
  CHECK(v->hardware_type() == arp::hardware_type::ethernet);
  CHECK(v->protocol_type() == eth::ethertype::ipv4);
  CHECK(v->hardware_length() == 6);
  CHECK(v->protocol_length() == 4);
  CHECK(v->operation() == arp::operation::reply);
  CHECK(v->packet_length() == 28);
  CHECK(v->header().size() == 8);
  CHECK(v->is_ethernet_ipv4());
  CHECK(v->sender_hardware_bytes().size() == 6);
  CHECK(v->sender_hardware_bytes()[0] == 0x00);
  CHECK(v->sender_protocol_bytes()[0] == 0xc0);
  CHECK(v->target_hardware_bytes()[0] == 0x66);
  CHECK(v->target_protocol_bytes()[3] == 0x0a);

  auto e = v->ethernet_ipv4();
  REQUIRE(e);
  CHECK(e->operation() == arp::operation::reply);
  CHECK(e->sender_hardware_address() == router);
  CHECK(e->sender_protocol_address() == router_ip);
  CHECK(e->target_hardware_address() == host);
  CHECK(e->target_protocol_address() == host_ip);
  CHECK(e->bytes().size() == 28);
}

TEST_CASE("arp inside a padded Ethernet frame ignores the padding") {
  auto frame = eth::view::checked(padded_request_frame);
  REQUIRE(frame);
  CHECK(frame->ethertype() == eth::ethertype::arp);
  CHECK(frame->payload().size() == 46);

  auto v = arp::view::checked(frame->payload());
  REQUIRE(v);
  CHECK(v->packet_length() == 28);
  CHECK(v->bytes().size() == 28);
  auto e = arp::ethernet_ipv4_view::checked(frame->payload());
  REQUIRE(e);
  CHECK(e->operation() == arp::operation::request);
  CHECK(e->sender_hardware_address() == host);
  CHECK(e->sender_protocol_address() == host_ip);
  CHECK(e->target_hardware_address() == mac_address{});
  CHECK(e->target_protocol_address() == router_ip);
}

TEST_CASE("arp reads the generic header of an unknown hardware type") {
  auto frame = eth::view::checked(unknown_hardware_frame);
  REQUIRE(frame);
  REQUIRE(frame->vlan_count() == 1);
  CHECK(frame->vlan(0) == eth::vlan_tag{.tpid = eth::ethertype::qinq, .pcp = 1, .dei = true, .vid = 0x030});
  CHECK(frame->ethertype() == eth::ethertype::arp);

  auto v = arp::view::checked(frame->payload());
  REQUIRE(v);
  CHECK(v->hardware_type() == 12336);
  CHECK(v->protocol_type() == eth::ethertype::ipv4);
  CHECK(v->hardware_length() == 14);
  CHECK(v->protocol_length() == 4);
  CHECK(v->operation() == arp::operation::request);
  CHECK(v->packet_length() == 44);  // of 46 payload bytes
  CHECK(v->sender_hardware_bytes().size() == 14);
  CHECK(v->target_hardware_bytes().size() == 14);
  CHECK(all_of(v->target_hardware_bytes(), 0x30));
  REQUIRE(v->sender_protocol_bytes().size() == 4);
  CHECK(ipv4_address::from_bytes(v->sender_protocol_bytes().data()).to_string() == "48.48.48.48");
  CHECK(ipv4_address::from_bytes(v->target_protocol_bytes().data()).to_string() == "48.48.48.48");
  CHECK_FALSE(v->is_ethernet_ipv4());

  auto e = v->ethernet_ipv4();
  REQUIRE_FALSE(e);
  CHECK(e.error() == parse_error{"arp", errc::unsupported, "hardware type", 0, 12336, 1});
  CHECK(e.error().message() == "arp: hardware type 12336 is not supported");
  CHECK_FALSE(arp::repr::parse(*v));
}

TEST_CASE("arp generic view places addresses by the length fields") {
  SECTION("8-byte hardware addresses") {
    auto v = arp::view::checked(ieee802_hardware);
    REQUIRE(v);
    CHECK(v->hardware_type() == 6);
    CHECK(v->hardware_length() == 8);
    CHECK(v->operation() == arp::operation::reply);
    CHECK(v->sender_hardware_bytes()[7] == 0x08);
    CHECK(ipv4_address::from_bytes(v->sender_protocol_bytes().data()).to_string() == "10.0.0.1");
    CHECK(v->target_hardware_bytes()[0] == 0x11);
    CHECK(ipv4_address::from_bytes(v->target_protocol_bytes().data()).to_string() == "10.0.0.2");
    CHECK(v->ethernet_ipv4().error() == parse_error{"arp", errc::unsupported, "hardware type", 0, 6, 1});
  }
  SECTION("16-byte protocol addresses") {
    auto v = arp::view::checked(ipv6_protocol);
    REQUIRE(v);
    CHECK(v->protocol_type() == eth::ethertype::ipv6);
    CHECK(v->protocol_length() == 16);
    CHECK(v->packet_length() == 52);
    CHECK(v->sender_protocol_bytes()[15] == 0x01);
    CHECK(v->target_hardware_bytes().size() == 6);
    CHECK(all_of(v->target_hardware_bytes(), 0x00));
    CHECK(v->target_protocol_bytes()[15] == 0x02);
    auto e = v->ethernet_ipv4();
    REQUIRE_FALSE(e);
    CHECK(e.error() == parse_error{"arp", errc::unsupported, "protocol type", 2, 0x86dd, 0x0800});
  }
}

TEST_CASE("arp Ethernet/IPv4 with wrong address lengths is a mismatch") {
  auto bytes = reply;
  bytes[4] = 4;  // hlen 4: 24 bytes, still present
  auto v = arp::view::checked(bytes);
  REQUIRE(v);
  CHECK(v->packet_length() == 24);
  auto e = v->ethernet_ipv4();
  REQUIRE_FALSE(e);
  CHECK(e.error() == parse_error{"arp", errc::mismatch, "hardware length", 4, 4, 6});
  CHECK(e.error().message() == "arp: hardware length 4 is not 6");

  bytes = reply;
  bytes[5] = 0;  // plen 0
  auto p = arp::ethernet_ipv4_view::checked(bytes);
  REQUIRE_FALSE(p);
  CHECK(p.error() == parse_error{"arp", errc::mismatch, "protocol length", 5, 0, 4});

  // Zero lengths: only the fixed header, all addresses empty.
  bytes = reply;
  bytes[4] = 0;
  bytes[5] = 0;
  auto z = arp::view::checked(std::span(bytes).first(8));
  REQUIRE(z);
  CHECK(z->packet_length() == 8);
  CHECK(z->sender_hardware_bytes().empty());
  CHECK(z->target_protocol_bytes().empty());
}

TEST_CASE("arp repr emits the same bytes into a junk-filled buffer") {
  const arp::repr r{.operation = arp::operation::reply,
                    .sender_hardware_address = router,
                    .sender_protocol_address = router_ip,
                    .target_hardware_address = host,
                    .target_protocol_address = host_ip};
  CHECK(arp::repr::size() == 28);
  std::vector<byte> out(28, 0xa5);
  r.emit(out);
  CHECK(std::equal(out.begin(), out.end(), reply.begin(), reply.end()));

  auto parsed = arp::repr::parse(*arp::view::checked(reply));
  REQUIRE(parsed);
  CHECK(*parsed == r);
}

TEST_CASE("arp repr emits a request that Ethernet frames and pads") {
  // The frame's padding is the device's; here it is written by hand to
  // compare with Scapy's padded frame.
  std::array<byte, 60> out;
  out.fill(0xa5);
  std::fill(out.begin() + 42, out.end(), 0);
  const arp::repr request{.operation = arp::operation::request,
                          .sender_hardware_address = host,
                          .sender_protocol_address = host_ip,
                          .target_hardware_address = mac_address{},
                          .target_protocol_address = router_ip};
  request.emit(std::span(out).subspan(14));
  eth::repr{.destination = router, .source = host, .ethertype = eth::ethertype::arp}.emit(out);
  CHECK(out == padded_request_frame);
}

TEST_CASE("arp rejects every truncation with a typed error") {
  const auto cut = GENERATE(range<std::size_t>(0, 28));
  auto v = arp::view::checked(std::span(reply).first(cut));
  REQUIRE_FALSE(v);
  if (cut < 8) {
    CHECK(v.error() == parse_error{"arp", errc::truncated, "header", 0, cut, 8});
  } else {
    CHECK(v.error() == parse_error{"arp", errc::truncated, "addresses", 8, cut, 28});
  }
  auto e = arp::ethernet_ipv4_view::checked(std::span(reply).first(cut));
  REQUIRE_FALSE(e);
  CHECK(e.error().code == errc::truncated);
}

TEST_CASE("arp rejects every truncation of a long-address packet") {
  const auto cut = GENERATE(range<std::size_t>(8, 44));
  auto frame = *eth::view::checked(unknown_hardware_frame);
  auto v = arp::view::checked(frame.payload().first(cut));
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"arp", errc::truncated, "addresses", 8, cut, 44});
}

TEST_CASE("arp length fields that claim more than present") {
  auto bytes = reply;
  bytes[4] = 255;
  bytes[5] = 255;
  auto v = arp::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"arp", errc::truncated, "addresses", 8, 28, 8 + 2 * 510});
  CHECK(v.error().message() == "arp: addresses truncated at offset 8: needs 1028 bytes, 28 present");

  bytes = reply;
  bytes[4] = 7;  // one more hardware byte each: 30 needed
  CHECK(arp::view::checked(bytes).error() == parse_error{"arp", errc::truncated, "addresses", 8, 28, 30});
}

TEST_CASE("arp mutable views rewrite fields in place") {
  auto bytes = reply;
  auto v = arp::mutable_view::checked(bytes);
  REQUIRE(v);
  v->set_operation(arp::operation::request);
  v->set_hardware_type(6);
  v->set_protocol_type(eth::ethertype::ipv6);
  CHECK(arp::view::checked(bytes)->hardware_type() == 6);
  CHECK(arp::view::checked(bytes)->protocol_type() == eth::ethertype::ipv6);
  CHECK(arp::view::checked(bytes)->operation() == arp::operation::request);
  CHECK_FALSE(v->ethernet_ipv4());
  v->set_hardware_type(arp::hardware_type::ethernet);
  v->set_protocol_type(eth::ethertype::ipv4);

  auto e = v->ethernet_ipv4();
  REQUIRE(e);
  const auto other_mac = *mac_address::parse("02:00:00:00:00:01");
  const auto other_ip = *ipv4_address::parse("10.1.2.3");
  e->set_operation(arp::operation::reply);
  e->set_sender_hardware_address(other_mac);
  e->set_sender_protocol_address(other_ip);
  e->set_target_hardware_address(mac_address::broadcast());
  e->set_target_protocol_address(ipv4_address::broadcast());

  auto r = arp::repr::parse(*arp::view::checked(bytes));
  REQUIRE(r);
  CHECK(*r == arp::repr{.operation = arp::operation::reply,
                        .sender_hardware_address = other_mac,
                        .sender_protocol_address = other_ip,
                        .target_hardware_address = mac_address::broadcast(),
                        .target_protocol_address = ipv4_address::broadcast()});
  CHECK(std::equal(bytes.begin(), bytes.begin() + 8, reply.begin()));
}

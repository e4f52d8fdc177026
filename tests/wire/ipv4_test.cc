// IPv4 wire format: fixed bytes both ways, a junk-filled build buffer, every
// truncation length, impossible lengths, option framing and header rewrites.
// The reference datagrams and their checksums were produced by Scapy; each
// array names the expression that made it.
#include "pystack/wire/ipv4.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <random>
#include <string_view>
#include <vector>

namespace {
using namespace pystack;

// IP(src='192.168.1.1', dst='10.0.0.2', id=0x1234, ttl=63, tos=0xb9,
//    flags='DF', proto=17,
//    options=[IPOption_NOP(), IPOption_RR(routers=['1.2.3.4', '5.6.7.8']),
//             IPOption_Router_Alert()]) / b'payload!'
constexpr std::array<byte, 44> with_options = {
    0x49, 0xb9, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00,  // IHL 9, TOS, length 44, id, DF
    0x3f, 0x11, 0xa9, 0x05,                          // ttl 63, udp, checksum
    0xc0, 0xa8, 0x01, 0x01, 0x0a, 0x00, 0x00, 0x02,  // 192.168.1.1 -> 10.0.0.2
    0x01,                                            // NOP
    0x07, 0x0b, 0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // RR, pointer 4
    0x94, 0x04, 0x00, 0x00,                          // Router Alert 0
    'p',  'a',  'y',  'l',  'o',  'a',  'd',  '!'};

// IP(src='10.1.2.3', dst='10.3.2.1', id=54321, ttl=5, tos=0x02, flags='MF',
//    frag=185, proto=6, options=[IPOption_RR(routers=['1.2.3.4'])]) / b'abcd'
// The 7-byte option is padded with one End of Option List octet.
constexpr std::array<byte, 32> fragment = {
    0x47, 0x02, 0x00, 0x20, 0xd4, 0x31, 0x20, 0xb9, 0x05, 0x06, 0x95, 0xd9, 0x0a, 0x01, 0x02, 0x03,
    0x0a, 0x03, 0x02, 0x01, 0x07, 0x07, 0x04, 0x01, 0x02, 0x03, 0x04, 0x00, 'a',  'b',  'c',  'd'};

// IP(src='10.0.0.1', dst='10.0.0.2', id=1, ttl=64) / UDP(sport=1234, dport=53) / b'hello'
constexpr std::array<byte, 33> udp_datagram = {
    0x45, 0x00, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x66, 0xc9, 0x0a, 0x00, 0x00, 0x01, 0x0a,
    0x00, 0x00, 0x02, 0x04, 0xd2, 0x00, 0x35, 0x00, 0x0d, 0xa2, 0xf8, 'h',  'e',  'l',  'l',  'o'};

// IP(src='10.0.0.1', dst='10.0.0.2', id=1, ttl=64,
//    options=[IPOption_Timestamp(flg=0, length=8, pointer=5, oflw=0, timestamp=[0x11223344])])
constexpr std::array<byte, 28> with_timestamp = {
    0x47, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00, 0xd7, 0x70, 0x0a, 0x00,
    0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x44, 0x08, 0x05, 0x00, 0x11, 0x22, 0x33, 0x44};

// The first 28 bytes of
// IP(src='10.0.0.1', dst='10.0.0.2', id=77, ttl=64) / UDP(sport=40000, dport=33434) / (b'x' * 100)
// as an ICMP error quotes it: the total length still says 128.
constexpr std::array<byte, 28> quoted = {0x45, 0x00, 0x00, 0x80, 0x00, 0x4d, 0x00, 0x00, 0x40, 0x11,
                                         0x66, 0x1e, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
                                         0x9c, 0x40, 0x82, 0x9a, 0x00, 0x6c, 0x44, 0xb1};

template <std::size_t N>
std::vector<byte> copy_of(const std::array<byte, N>& a) {
  return {a.begin(), a.end()};
}

bool same(std::span<const byte> a, std::span<const byte> b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

std::vector<ipv4::option> collect(ipv4::option_range range) { return {range.begin(), range.end()}; }
}  // namespace

TEST_CASE("ipv4 view reads every field of a datagram with options") {
  auto v = ipv4::view::checked(with_options);
  REQUIRE(v);
  CHECK(v->version() == 4);
  CHECK(v->header_length() == 36);
  CHECK(v->tos() == 0xb9);
  CHECK(v->dscp() == 0x2e);  // 0xb9 >> 2: Expedited Forwarding
  CHECK(v->ecn() == 1);
  CHECK(v->total_length() == 44);
  CHECK(v->identification() == 0x1234);
  CHECK_FALSE(v->reserved_flag());
  CHECK(v->dont_fragment());
  CHECK_FALSE(v->more_fragments());
  CHECK(v->fragment_offset() == 0);
  CHECK_FALSE(v->is_fragment());
  CHECK(v->ttl() == 63);
  CHECK(v->protocol() == ipv4::protocol::udp);
  CHECK(v->checksum() == 0xa905);
  CHECK(v->source() == ipv4_address::from_octets(192, 168, 1, 1));
  CHECK(v->destination() == ipv4_address::from_octets(10, 0, 0, 2));
  CHECK(v->verify_checksum());
  CHECK(v->header().size() == 36);
  CHECK(v->options().size() == 16);
  CHECK(v->options().data() == with_options.data() + 20);
  CHECK(v->payload().size() == 8);
  CHECK(v->payload()[0] == 'p');
  CHECK(v->bytes().size() == 44);
}

TEST_CASE("ipv4 option walker yields each option with its data") {
  auto v = ipv4::view::checked(with_options);
  REQUIRE(v);
  const auto options = collect(v->option_list());
  REQUIRE(options.size() == 3);

  CHECK(options[0].type == ipv4::option_type::no_operation);
  CHECK(options[0].data.empty());
  CHECK(options[0].size() == 1);

  CHECK(options[1].type == ipv4::option_type::record_route);
  CHECK(options[1].size() == 11);
  const std::array<byte, 9> route = {0x04, 1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(same(options[1].data, route));
  CHECK_FALSE(options[1].copied());
  CHECK(options[1].option_class() == 0);
  CHECK(options[1].number() == 7);

  // RFC 2113: Router Alert is copied into every fragment, class 0, number 20.
  CHECK(options[2].type == ipv4::option_type::router_alert);
  CHECK(options[2].copied());
  CHECK(options[2].option_class() == 0);
  CHECK(options[2].number() == 20);
  CHECK(options[2].data.size() == 2);

  CHECK(std::ranges::distance(v->option_list()) == 3);
}

TEST_CASE("ipv4 option type bits of the well-known options") {
  // RFC 791 §3.1: type = copied (1 bit) | class (2 bits) | number (5 bits).
  const auto bits = [](std::uint8_t type) {
    const ipv4::option o{type, {}};
    return std::array<int, 3>{o.copied(), o.option_class(), o.number()};
  };
  CHECK(bits(ipv4::option_type::end_of_list) == std::array<int, 3>{0, 0, 0});
  CHECK(bits(ipv4::option_type::no_operation) == std::array<int, 3>{0, 0, 1});
  CHECK(bits(ipv4::option_type::record_route) == std::array<int, 3>{0, 0, 7});
  CHECK(bits(ipv4::option_type::timestamp) == std::array<int, 3>{0, 2, 4});
  CHECK(bits(ipv4::option_type::loose_source_route) == std::array<int, 3>{1, 0, 3});
  CHECK(bits(ipv4::option_type::strict_source_route) == std::array<int, 3>{1, 0, 9});
  CHECK(bits(ipv4::option_type::router_alert) == std::array<int, 3>{1, 0, 20});

  auto v = ipv4::view::checked(with_timestamp);
  REQUIRE(v);
  const auto options = collect(v->option_list());
  REQUIRE(options.size() == 1);
  CHECK(options[0].type == ipv4::option_type::timestamp);
  CHECK(v->verify_checksum());
  CHECK(options[0].option_class() == 2);  // debugging and measurement
  const std::array<byte, 6> data = {0x05, 0x00, 0x11, 0x22, 0x33, 0x44};
  CHECK(same(options[0].data, data));
}

TEST_CASE("ipv4 view reads a fragment with padded options") {
  auto v = ipv4::view::checked(fragment);
  REQUIRE(v);
  CHECK(v->header_length() == 28);
  CHECK(v->dscp() == 0);
  CHECK(v->ecn() == 2);  // ECT(0)
  CHECK(v->identification() == 54321);
  CHECK_FALSE(v->dont_fragment());
  CHECK(v->more_fragments());
  CHECK(v->fragment_offset() == 185);
  CHECK(v->is_fragment());
  CHECK(v->ttl() == 5);
  CHECK(v->protocol() == ipv4::protocol::tcp);
  CHECK(v->checksum() == 0x95d9);
  CHECK(v->verify_checksum());
  CHECK(v->payload().size() == 4);

  // The walk ends with the End of Option List octet that pads the header.
  const auto options = collect(v->option_list());
  REQUIRE(options.size() == 2);
  CHECK(options[0].type == ipv4::option_type::record_route);
  CHECK(options[0].data.size() == 5);
  CHECK(options[1].type == ipv4::option_type::end_of_list);
  CHECK(options[1].size() == 1);
}

TEST_CASE("ipv4 datagram without options has an empty option list") {
  auto v = ipv4::view::checked(udp_datagram);
  REQUIRE(v);
  CHECK(v->options().empty());
  CHECK(v->option_list().empty());
  CHECK(v->option_list().begin() == v->option_list().end());
}

TEST_CASE("ipv4 option walk stops at End of Option List, whatever padding follows") {
  // Padding after EOL need not be zero and is not parsed (RFC 791 §3.1):
  // here it would read as an option whose length runs past the header.
  auto bytes = copy_of(fragment);
  bytes[20] = ipv4::option_type::end_of_list;
  bytes[21] = ipv4::option_type::record_route;
  bytes[22] = 0xff;
  auto v = ipv4::view::checked(bytes);
  REQUIRE(v);
  const auto options = collect(v->option_list());
  REQUIRE(options.size() == 1);
  CHECK(options[0].type == ipv4::option_type::end_of_list);
}

TEST_CASE("ipv4 repr emits the same bytes into a junk-filled buffer") {
  SECTION("options filling whole words") {
    std::vector<byte> out(with_options.size(), 0xa5);
    std::copy(with_options.begin() + 36, with_options.end(), out.begin() + 36);  // payload in place
    ipv4::repr r{.dscp = 0x2e,
                 .ecn = 1,
                 .identification = 0x1234,
                 .dont_fragment = true,
                 .ttl = 63,
                 .protocol = ipv4::protocol::udp,
                 .source = ipv4_address::from_octets(192, 168, 1, 1),
                 .destination = ipv4_address::from_octets(10, 0, 0, 2)};
    REQUIRE(r.set_options(std::span(with_options).subspan(20, 16)));
    CHECK(r.size() == 36);
    r.emit(out);
    CHECK(same(out, with_options));

    auto parsed = ipv4::repr::parse(*ipv4::view::checked(with_options));
    REQUIRE(parsed);
    CHECK(*parsed == r);
  }
  SECTION("options padded to a word with End of Option List") {
    std::vector<byte> out(fragment.size(), 0xa5);
    std::copy(fragment.begin() + 28, fragment.end(), out.begin() + 28);
    ipv4::repr r{.ecn = 2,
                 .identification = 54321,
                 .more_fragments = true,
                 .fragment_offset = 185,
                 .ttl = 5,
                 .protocol = ipv4::protocol::tcp,
                 .source = ipv4_address::from_octets(10, 1, 2, 3),
                 .destination = ipv4_address::from_octets(10, 3, 2, 1)};
    REQUIRE(r.set_options(std::span(fragment).subspan(20, 7)));  // without the padding
    CHECK(r.option_bytes().size() == 7);
    CHECK(r.size() == 28);
    r.emit(out);
    CHECK(same(out, fragment));

    // Parsing keeps the padding octet, and emitting that gives the same bytes.
    auto parsed = ipv4::repr::parse(*ipv4::view::checked(fragment));
    REQUIRE(parsed);
    CHECK(parsed->options_length == 8);
    std::vector<byte> again(fragment.size(), 0xa5);
    std::copy(fragment.begin() + 28, fragment.end(), again.begin() + 28);
    parsed->emit(again);
    CHECK(same(again, fragment));
  }
  SECTION("no options") {
    std::vector<byte> out(udp_datagram.size(), 0xa5);
    std::copy(udp_datagram.begin() + 20, udp_datagram.end(), out.begin() + 20);
    const ipv4::repr r{.identification = 1,
                       .ttl = 64,
                       .protocol = ipv4::protocol::udp,
                       .source = ipv4_address::from_octets(10, 0, 0, 1),
                       .destination = ipv4_address::from_octets(10, 0, 0, 2)};
    CHECK(r.size() == 20);
    r.emit(out);
    CHECK(same(out, udp_datagram));
  }
}

TEST_CASE("ipv4 repr emit without checksum leaves the field zero") {
  std::vector<byte> out(udp_datagram.size(), 0xa5);
  std::copy(udp_datagram.begin() + 20, udp_datagram.end(), out.begin() + 20);
  auto r = *ipv4::repr::parse(*ipv4::view::checked(udp_datagram));
  r.emit_without_checksum(out);
  CHECK(out[10] == 0);
  CHECK(out[11] == 0);
  auto v = ipv4::mutable_view::checked(out);
  REQUIRE(v);
  v->fill_checksum();
  CHECK(same(out, udp_datagram));
}

TEST_CASE("ipv4 repr rejects options it could not emit") {
  ipv4::repr r;
  const std::array<byte, 41> too_long{};
  auto e = r.set_options(too_long);
  REQUIRE_FALSE(e);
  CHECK(e.error().code == errc::above_maximum);
  CHECK(e.error().message() == "ipv4: options length 41 exceeds 40");

  const std::array<byte, 4> bad_length = {0x07, 0x01, 0x00, 0x00};
  e = r.set_options(bad_length);
  REQUIRE_FALSE(e);
  CHECK(e.error().message() == "ipv4: option length 1 is below 2");
  CHECK(r.options_length == 0);

  const std::array<byte, 3> fine = {0x01, 0x01, 0x00};
  REQUIRE(r.set_options(fine));
  CHECK(r.size() == 24);
}

TEST_CASE("ipv4 rejects every truncation with a typed error") {
  const auto cut = GENERATE(range<std::size_t>(0, with_options.size()));
  // A heap copy of exactly `cut` bytes, so a sanitizer sees any read past it.
  const std::vector<byte> bytes(with_options.begin(), with_options.begin() + static_cast<std::ptrdiff_t>(cut));
  auto v = ipv4::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error().protocol == std::string_view("ipv4"));
  CHECK(v.error().code == errc::truncated);
  CHECK(v.error().value == cut);
  if (cut < 36) {
    CHECK(v.error().field == std::string_view("header"));
    CHECK(v.error().limit == (cut < 20 ? 20 : 36));
  } else {
    CHECK(v.error().field == std::string_view("datagram"));
    CHECK(v.error().limit == 44);
  }
}

TEST_CASE("ipv4 rejects a version other than 4") {
  auto bytes = copy_of(udp_datagram);
  bytes[0] = 0x65;
  auto v = ipv4::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::mismatch);
  CHECK(v.error().message() == "ipv4: version 6 is not 4");
}

TEST_CASE("ipv4 rejects a header length below 20 bytes") {
  const auto ihl = GENERATE(range(0, 5));
  auto bytes = copy_of(udp_datagram);
  bytes[0] = static_cast<byte>(0x40 | ihl);
  auto v = ipv4::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::below_minimum);
  CHECK(v.error().field == std::string_view("header length"));
  CHECK(v.error().value == std::uint64_t(ihl) * 4);
  if (ihl == 4) CHECK(v.error().message() == "ipv4: header length 16 is below 20");  // tcpdump: "header length 16 < 20"
}

TEST_CASE("ipv4 rejects a header length beyond the bytes present") {
  auto bytes = copy_of(udp_datagram);
  bytes[0] = 0x4f;  // 60 bytes of header, 33 present
  auto v = ipv4::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::truncated);
  CHECK(v.error().message() == "ipv4: header truncated at offset 0: needs 60 bytes, 33 present");
}

TEST_CASE("ipv4 rejects a total length below the header length") {
  SECTION("no options") {
    auto bytes = copy_of(udp_datagram);
    bytes[3] = 19;
    auto v = ipv4::view::checked(bytes);
    REQUIRE_FALSE(v);
    CHECK(v.error().code == errc::below_minimum);
    CHECK(v.error().offset == 2);
    // tcpdump: "total length 19 < header length 20"
    CHECK(v.error().message() == "ipv4: total length 19 is below 20");
  }
  SECTION("with options") {
    auto bytes = copy_of(with_options);
    bytes[3] = 35;
    auto v = ipv4::view::checked(bytes);
    REQUIRE_FALSE(v);
    CHECK(v.error().message() == "ipv4: total length 35 is below 36");
  }
  SECTION("a header and nothing else is a whole datagram") {
    auto bytes = copy_of(udp_datagram);
    bytes[3] = 20;
    auto v = ipv4::view::checked(bytes);
    REQUIRE(v);
    CHECK(v->payload().empty());
  }
}

TEST_CASE("ipv4 rejects a total length beyond the bytes present") {
  auto bytes = copy_of(udp_datagram);
  bytes[3] = 34;
  auto v = ipv4::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::truncated);
  CHECK(v.error().field == std::string_view("datagram"));
  // tcpdump: "total length 34 > length 33"
  CHECK(v.error().message() == "ipv4: datagram truncated at offset 0: needs 34 bytes, 33 present");
}

TEST_CASE("ipv4 ignores link padding beyond the total length") {
  std::array<byte, 46> padded{};  // Ethernet's minimum payload
  std::copy(udp_datagram.begin(), udp_datagram.end(), padded.begin());
  auto v = ipv4::view::checked(padded);
  REQUIRE(v);
  CHECK(v->bytes().size() == 33);
  CHECK(v->payload().size() == 13);
}

TEST_CASE("ipv4 rejects badly framed options") {
  auto bytes = copy_of(with_timestamp);  // one 8-byte timestamp option at 20
  SECTION("length below 2") {
    const auto length = GENERATE(0, 1);
    bytes[21] = static_cast<byte>(length);
    auto v = ipv4::view::checked(bytes);
    REQUIRE_FALSE(v);
    CHECK(v.error().code == errc::below_minimum);
    CHECK(v.error().field == std::string_view("option length"));
    CHECK(v.error().offset == 21);
    CHECK(v.error().value == std::uint64_t(length));
  }
  SECTION("length running past the header") {
    bytes[21] = 9;
    auto v = ipv4::view::checked(bytes);
    REQUIRE_FALSE(v);
    CHECK(v.error().code == errc::truncated);
    CHECK(v.error().message() == "ipv4: option truncated at offset 20: needs 9 bytes, 8 present");
  }
  SECTION("type octet with no room for a length") {
    // NOP x7, then a Record Route type in the last header byte.
    std::fill(bytes.begin() + 20, bytes.begin() + 27, byte{ipv4::option_type::no_operation});
    bytes[27] = ipv4::option_type::record_route;
    auto v = ipv4::view::checked(bytes);
    REQUIRE_FALSE(v);
    CHECK(v.error().code == errc::truncated);
    CHECK(v.error().message() == "ipv4: option truncated at offset 27: needs 2 bytes, 1 present");
  }
  SECTION("a later option running past the header") {
    // NOP, then a 7-byte option at 21 that claims 8.
    bytes[20] = ipv4::option_type::no_operation;
    bytes[21] = ipv4::option_type::record_route;
    bytes[22] = 8;
    auto v = ipv4::view::checked(bytes);
    REQUIRE_FALSE(v);
    CHECK(v.error().offset == 21);
    CHECK(v.error().value == 7);
    CHECK(v.error().limit == 8);
  }
}

TEST_CASE("ipv4 checked does not verify the header checksum") {
  // Captures with checksum offload hold wrong ones; the fields still read.
  auto bytes = copy_of(udp_datagram);
  bytes[11] ^= 0x01;
  auto v = ipv4::view::checked(bytes);
  REQUIRE(v);
  CHECK_FALSE(v->verify_checksum());
  CHECK(v->ttl() == 64);
}

TEST_CASE("ipv4 quoted datagram may stop short of its total length") {
  auto strict = ipv4::view::checked(quoted);
  REQUIRE_FALSE(strict);
  CHECK(strict.error().code == errc::truncated);

  auto v = ipv4::view::checked_quoted(quoted);
  REQUIRE(v);
  CHECK(v->total_length() == 128);
  CHECK(v->identification() == 77);
  CHECK(v->protocol() == ipv4::protocol::udp);
  CHECK(v->verify_checksum());
  CHECK(v->bytes().size() == 28);
  CHECK(v->payload().size() == 8);  // the UDP header, RFC 792's 64 bits

  // Everything else is still checked: the header must be whole.
  auto cut = ipv4::view::checked_quoted(std::span(quoted).first(19));
  REQUIRE_FALSE(cut);
  CHECK(cut.error().field == std::string_view("header"));
  auto bad = copy_of(quoted);
  bad[3] = 10;
  CHECK(ipv4::view::checked_quoted(bad).error().code == errc::below_minimum);

  // A quoted datagram that is whole, with link padding after, is cut to its length.
  std::array<byte, 40> padded{};
  std::copy(udp_datagram.begin(), udp_datagram.end(), padded.begin());
  CHECK(ipv4::view::checked_quoted(padded)->bytes().size() == 33);
}

TEST_CASE("ipv4 pseudo-header checks the upper-layer checksum") {
  auto v = ipv4::view::checked(udp_datagram);
  REQUIRE(v);
  CHECK(v->pseudo_header().add(v->payload()).finish() == 0);
  CHECK(v->pseudo_header().add(v->payload().first(12)).finish() != 0);
}

TEST_CASE("ipv4 mutable view setters write only their field") {
  auto bytes = copy_of(with_options);
  auto v = ipv4::mutable_view::checked(bytes);
  REQUIRE(v);

  v->set_dscp(0x0a);
  CHECK(v->dscp() == 0x0a);
  CHECK(v->ecn() == 1);
  v->set_ecn(3);
  CHECK(v->dscp() == 0x0a);
  CHECK(v->ecn() == 3);
  v->set_tos(0x10);
  CHECK(v->tos() == 0x10);
  v->set_identification(0xbeef);
  CHECK(v->identification() == 0xbeef);

  v->set_more_fragments(true);
  v->set_fragment_offset(0x1fff);
  CHECK(v->dont_fragment());
  CHECK(v->more_fragments());
  CHECK(v->fragment_offset() == 0x1fff);
  v->set_dont_fragment(false);
  v->set_reserved_flag(true);
  CHECK(v->reserved_flag());
  CHECK_FALSE(v->dont_fragment());
  CHECK(v->more_fragments());
  CHECK(v->fragment_offset() == 0x1fff);
  v->set_fragment_offset(0xffff);  // only 13 bits fit
  CHECK(v->fragment_offset() == 0x1fff);
  CHECK(v->reserved_flag());
  v->set_reserved_flag(false);
  v->set_more_fragments(false);
  v->set_fragment_offset(0);
  CHECK_FALSE(v->is_fragment());

  v->set_ttl(1);
  v->set_protocol(ipv4::protocol::icmp);
  CHECK(v->ttl() == 1);
  CHECK(v->protocol() == ipv4::protocol::icmp);
  v->set_source(ipv4_address::from_octets(1, 1, 1, 1));
  v->set_destination(ipv4_address::from_octets(2, 2, 2, 2));
  CHECK(v->source() == ipv4_address::from_octets(1, 1, 1, 1));
  CHECK(v->destination() == ipv4_address::from_octets(2, 2, 2, 2));
  v->set_checksum(0x1234);
  CHECK(v->checksum() == 0x1234);

  CHECK_FALSE(v->verify_checksum());
  v->fill_checksum();
  CHECK(v->verify_checksum());

  // Lengths, options and payload are untouched.
  CHECK(v->header_length() == 36);
  CHECK(v->total_length() == 44);
  CHECK(same(v->options(), std::span(with_options).subspan(20, 16)));
  CHECK(same(v->payload(), std::span(with_options).subspan(36)));

  // Read back through a fresh const view.
  auto r = ipv4::view::checked(bytes);
  REQUIRE(r);
  CHECK(r->tos() == 0x10);
  CHECK(r->identification() == 0xbeef);
}

TEST_CASE("ipv4 incremental rewrites match a full recomputation") {
  auto bytes = copy_of(with_options);
  auto v = ipv4::mutable_view::checked(bytes);
  REQUIRE(v);
  auto reference = copy_of(with_options);
  auto full = ipv4::mutable_view::checked(reference);
  REQUIRE(full);

  const auto agree = [&] {
    full->fill_checksum();
    CHECK(v->verify_checksum());
    CHECK(v->checksum() == full->checksum());
  };
  for (int ttl = 255; ttl >= 0; --ttl) {
    v->set_ttl_and_update_checksum(static_cast<std::uint8_t>(ttl));
    full->set_ttl(static_cast<std::uint8_t>(ttl));
    agree();
  }
  for (int tos = 0; tos < 256; tos += 7) {
    v->set_tos_and_update_checksum(static_cast<std::uint8_t>(tos));
    full->set_tos(static_cast<std::uint8_t>(tos));
    agree();
  }
  for (std::uint32_t id = 0; id <= 0xffff; id += 257) {
    v->set_identification_and_update_checksum(static_cast<std::uint16_t>(id));
    full->set_identification(static_cast<std::uint16_t>(id));
    agree();
  }
  const std::array<ipv4_address, 4> addresses = {ipv4_address::any(), ipv4_address::broadcast(),
                                                  ipv4_address::from_octets(203, 0, 113, 9),
                                                  ipv4_address::from_octets(10, 255, 0, 1)};
  for (const auto a : addresses) {
    v->set_source_and_update_checksum(a);
    full->set_source(a);
    agree();
    v->set_destination_and_update_checksum(a);
    full->set_destination(a);
    agree();
  }
  CHECK(same(bytes, reference));
}

TEST_CASE("ipv4 forwarding: lowering the TTL keeps the known checksum valid") {
  // RFC 1812 §5.3.1: decrement the TTL and update the checksum.
  auto bytes = copy_of(udp_datagram);
  auto v = ipv4::mutable_view::checked(bytes);
  REQUIRE(v);
  v->set_ttl_and_update_checksum(static_cast<std::uint8_t>(v->ttl() - 1));
  CHECK(v->ttl() == 63);
  CHECK(v->checksum() == 0x67c9);  // Scapy: the same datagram built with ttl=63
  CHECK(v->verify_checksum());
}

TEST_CASE("ipv4 repr keeps the reserved flag through parse and emit") {
  // Scapy: raw(IP(src="10.0.0.1", dst="10.0.0.2", flags="evil+DF", id=7, ttl=9, proto=17))
  const std::array<byte, 20> reference = {0x45, 0x00, 0x00, 0x14, 0x00, 0x07, 0xc0, 0x00, 0x09, 0x11,
                                          0xdd, 0xcf, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02};
  const auto v = ipv4::view::checked(reference);
  REQUIRE(v);
  const auto r = ipv4::repr::parse(*v);
  REQUIRE(r);
  CHECK(r->reserved_flag);
  CHECK(r->dont_fragment);
  std::array<byte, 20> out;
  out.fill(0xa5);
  r->emit(out);
  CHECK(out == reference);
}

TEST_CASE("ipv4 final destination follows a source route that is still being followed") {
  // Scapy: raw(IP(src="10.0.0.1", dst="10.0.0.9",
  //   options=[IPOption_LSRR(routers=["10.0.0.8", "10.0.0.2"])])
  //   / TCP(sport=1, dport=2, seq=3, flags="S", window=100))
  // Scapy (like tcpdump) sums the TCP pseudo-header with the route's last
  // address, the final destination (RFC 9293 §3.1).
  const std::array<byte, 52> datagram = {
      0x48, 0x00, 0x00, 0x34, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06, 0xd2, 0x9a, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00,
      0x00, 0x09, 0x83, 0x0b, 0x04, 0x0a, 0x00, 0x00, 0x08, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x00, 0x01, 0x00, 0x02,
      0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0x00, 0x64, 0x9b, 0x76, 0x00, 0x00};
  const auto v = ipv4::view::checked(datagram);
  REQUIRE(v);
  CHECK(v->destination() == *ipv4_address::parse("10.0.0.9"));
  CHECK(v->final_destination() == *ipv4_address::parse("10.0.0.2"));
  CHECK(v->pseudo_header().add(v->payload()).finish() == 0);
  CHECK(ipv4::repr::parse(*v)->final_destination() == *ipv4_address::parse("10.0.0.2"));
}

TEST_CASE("ipv4 final destination is the header's once the route is used up") {
  // An SSRR whose pointer (12) is past its length (11): every hop was
  // visited, each one recording itself in the route (RFC 791 §3.1), so the
  // destination field already holds the final destination.
  const std::array<byte, 28> header = {0x47, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11,
                                       0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
                                       0x89, 0x07, 0x08, 0x0a, 0x00, 0x00, 0x08, 0x00};
  const auto v = ipv4::view::checked(header);
  REQUIRE(v);
  CHECK(v->final_destination() == *ipv4_address::parse("10.0.0.2"));
}

TEST_CASE("ipv4 final destination without a source route is the header's") {
  const auto r = ipv4::repr{.source = *ipv4_address::parse("10.0.0.1"), .destination = *ipv4_address::parse("10.0.0.3")};
  CHECK(r.final_destination() == r.destination);
}

// emit sums the fixed header from the repr's values instead of reading the
// bytes back (checksum::accumulator::add_host_words). Checked against RFC
// 1071's sum written out here byte pair by byte pair, over random headers
// (every flag, fragment offsets, TOS, TTL and addresses with high bits set)
// with options of every length from 0 to 11 (padded by emit).
TEST_CASE("ipv4 repr emit's header checksum is RFC 1071's over the bytes it wrote") {
  std::mt19937 random(791);
  auto rfc1071 = [](const byte* header, std::size_t size) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < size; i += 2) sum += static_cast<std::uint32_t>(header[i] << 8) + header[i + 1];
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
  };
  for (int round = 0; round < 3000; ++round) {
    ipv4::repr r{.dscp = static_cast<std::uint8_t>(random() % 64),
                 .ecn = static_cast<std::uint8_t>(random() % 4),
                 .identification = static_cast<std::uint16_t>(random()),
                 .reserved_flag = random() % 2 == 0,
                 .dont_fragment = random() % 2 == 0,
                 .more_fragments = random() % 2 == 0,
                 .fragment_offset = static_cast<std::uint16_t>(random() % 8192),
                 .ttl = static_cast<std::uint8_t>(random()),
                 .protocol = static_cast<std::uint8_t>(random()),
                 .source = ipv4_address{static_cast<std::uint32_t>(random())},
                 .destination = ipv4_address{static_cast<std::uint32_t>(random())}};
    const std::vector<byte> options(random() % 12, ipv4::option_type::no_operation);
    REQUIRE(r.set_options(options));
    std::vector<byte> datagram(r.size() + random() % 30, 0xa5);
    r.emit(datagram);
    const std::uint16_t stored = wire::load_be16(datagram.data() + 10);
    datagram[10] = datagram[11] = 0;
    INFO("round " << round << ", " << options.size() << " option bytes");
    CHECK(stored == rfc1071(datagram.data(), r.size()));
    CHECK(ipv4::view::checked(datagram).has_value());
  }
}

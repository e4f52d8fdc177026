// ICMPv4 wire format: fixed bytes both ways for each message layout, a
// junk-filled build buffer, every truncation length and the setters. The
// reference messages and their checksums were produced by Scapy; each array
// names the expression that made it.
#include "pystack/wire/icmp.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <string_view>
#include <vector>

#include "pystack/wire/ipv4.hpp"

namespace {
using namespace pystack;

// ICMP(type=8, id=0x04d2, seq=9) / b'ping-data'
constexpr std::array<byte, 17> echo_request = {0x08, 0x00, 0x24, 0x7b, 0x04, 0xd2, 0x00, 0x09, 'p',
                                               'i',  'n',  'g',  '-',  'd',  'a',  't',  'a'};
// ICMP(type=0, id=0x04d2, seq=9) / b'ping-data'
constexpr std::array<byte, 17> echo_reply = {0x00, 0x00, 0x2c, 0x7b, 0x04, 0xd2, 0x00, 0x09, 'p',
                                             'i',  'n',  'g',  '-',  'd',  'a',  't',  'a'};

// The quoted datagram in the error messages below: the first 28 bytes of
// IP(src='10.0.0.1', dst='10.0.0.2', id=77, ttl=64) / UDP(sport=40000, dport=33434) / (b'x' * 100)
constexpr std::array<byte, 28> quoted = {0x45, 0x00, 0x00, 0x80, 0x00, 0x4d, 0x00, 0x00, 0x40, 0x11,
                                         0x66, 0x1e, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
                                         0x9c, 0x40, 0x82, 0x9a, 0x00, 0x6c, 0x44, 0xb1};

constexpr std::array<byte, 36> quoting(std::array<byte, 8> header) {
  std::array<byte, 36> message{};
  std::copy(header.begin(), header.end(), message.begin());
  std::copy(quoted.begin(), quoted.end(), message.begin() + 8);
  return message;
}

// ICMP(type=3, code=3) / Raw(quoted)
constexpr auto port_unreachable = quoting({0x03, 0x03, 0x99, 0x04, 0x00, 0x00, 0x00, 0x00});
// ICMP(type=3, code=4, nexthopmtu=1400) / Raw(quoted)
constexpr auto fragmentation_needed = quoting({0x03, 0x04, 0x93, 0x8b, 0x00, 0x00, 0x05, 0x78});
// ICMP(type=5, code=1, gw='10.0.0.254') / Raw(quoted)
constexpr auto redirect = quoting({0x05, 0x01, 0x8c, 0x08, 0x0a, 0x00, 0x00, 0xfe});
// ICMP(type=11, code=0) / Raw(quoted)
constexpr auto time_exceeded = quoting({0x0b, 0x00, 0x91, 0x07, 0x00, 0x00, 0x00, 0x00});
// ICMP(type=12, code=0, ptr=9) / Raw(quoted)
constexpr auto parameter_problem = quoting({0x0c, 0x00, 0x87, 0x07, 0x09, 0x00, 0x00, 0x00});

// ICMP(type=13, id=0x3930, seq=1, ts_ori=0x01020304, ts_rx=0, ts_tx=0)
constexpr std::array<byte, 20> timestamp = {0x0d, 0x00, 0xb5, 0xc8, 0x39, 0x30, 0x00, 0x01, 0x01, 0x02,
                                            0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
// ICMP(type=14, id=0x3930, seq=1, ts_ori=0x01020304, ts_rx=0x05060708, ts_tx=0x090a0b0c)
constexpr std::array<byte, 20> timestamp_reply = {0x0e, 0x00, 0x94, 0xa4, 0x39, 0x30, 0x00, 0x01, 0x01, 0x02,
                                                  0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c};

template <std::size_t N>
std::vector<byte> copy_of(const std::array<byte, N>& a) {
  return {a.begin(), a.end()};
}

bool same(std::span<const byte> a, std::span<const byte> b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

// Emits `r` into a 0xa5-filled buffer the size of `reference` whose payload
// is already in place, as the caller of emit arranges.
template <std::size_t N>
std::vector<byte> emitted(const icmp::repr& r, const std::array<byte, N>& reference) {
  std::vector<byte> out(N, 0xa5);
  std::copy(reference.begin() + icmp::header_size, reference.end(), out.begin() + icmp::header_size);
  r.emit(out);
  return out;
}
}  // namespace

TEST_CASE("icmp view reads an echo request and reply") {
  auto v = icmp::view::checked(echo_request);
  REQUIRE(v);
  CHECK(v->type() == icmp::type::echo_request);
  CHECK(v->code() == 0);
  CHECK(v->checksum() == 0x247b);
  CHECK(v->rest_of_header() == 0x04d20009);
  CHECK(v->identifier() == 0x04d2);
  CHECK(v->sequence_number() == 9);
  CHECK(v->is_echo());
  CHECK_FALSE(v->is_error());
  CHECK(v->verify_checksum());
  CHECK(v->header().size() == 8);
  CHECK(v->payload().size() == 9);
  CHECK(v->payload()[0] == 'p');
  CHECK(v->bytes().size() == 17);

  auto r = icmp::view::checked(echo_reply);
  REQUIRE(r);
  CHECK(r->type() == icmp::type::echo_reply);
  CHECK(r->checksum() == 0x2c7b);
  CHECK(r->identifier() == 0x04d2);
  CHECK(r->sequence_number() == 9);
  CHECK(r->is_echo());
  CHECK(r->verify_checksum());
}

TEST_CASE("icmp view reads the error messages and their quoted datagram") {
  SECTION("port unreachable") {
    auto v = icmp::view::checked(port_unreachable);
    REQUIRE(v);
    CHECK(v->type() == icmp::type::destination_unreachable);
    CHECK(v->code() == icmp::unreachable_code::port);
    CHECK(v->checksum() == 0x9904);
    CHECK(v->rest_of_header() == 0);
    CHECK(v->is_error());
    CHECK_FALSE(v->is_echo());
    CHECK(v->verify_checksum());
    REQUIRE(v->payload().size() == 28);

    // The quoted datagram claims 128 bytes; only its header and 8 more are here.
    CHECK_FALSE(ipv4::view::checked(v->payload()));
    auto quoted = ipv4::view::checked_quoted(v->payload());
    REQUIRE(quoted);
    CHECK(quoted->protocol() == ipv4::protocol::udp);
    CHECK(quoted->source() == ipv4_address::from_octets(10, 0, 0, 1));
    CHECK(quoted->destination() == ipv4_address::from_octets(10, 0, 0, 2));
    CHECK(quoted->payload().size() == 8);
    CHECK(quoted->payload()[2] == 0x82);  // destination port 33434, high byte
  }
  SECTION("fragmentation needed carries the next-hop MTU") {
    auto v = icmp::view::checked(fragmentation_needed);
    REQUIRE(v);
    CHECK(v->code() == icmp::unreachable_code::fragmentation_needed);
    CHECK(v->checksum() == 0x938b);
    CHECK(v->next_hop_mtu() == 1400);
    CHECK(v->rest_of_header() == 1400);
    CHECK(v->verify_checksum());
  }
  SECTION("redirect carries the gateway") {
    auto v = icmp::view::checked(redirect);
    REQUIRE(v);
    CHECK(v->type() == icmp::type::redirect);
    CHECK(v->code() == icmp::redirect_code::host);
    CHECK(v->checksum() == 0x8c08);
    CHECK(v->gateway() == ipv4_address::from_octets(10, 0, 0, 254));
    CHECK(v->is_error());
    CHECK(v->verify_checksum());
  }
  SECTION("time exceeded") {
    auto v = icmp::view::checked(time_exceeded);
    REQUIRE(v);
    CHECK(v->type() == icmp::type::time_exceeded);
    CHECK(v->code() == icmp::time_exceeded_code::ttl_exceeded);
    CHECK(v->checksum() == 0x9107);
    CHECK(v->is_error());
    CHECK(v->verify_checksum());
  }
  SECTION("parameter problem carries the pointer") {
    auto v = icmp::view::checked(parameter_problem);
    REQUIRE(v);
    CHECK(v->type() == icmp::type::parameter_problem);
    CHECK(v->checksum() == 0x8707);
    CHECK(v->pointer() == 9);  // the quoted header's protocol octet
    CHECK(v->rest_of_header() == 0x09000000);
    CHECK(v->is_error());
    CHECK(v->verify_checksum());
  }
}

TEST_CASE("icmp error types") {
  for (int t = 0; t < 256; ++t) {
    const bool error = t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
    CHECK(icmp::is_error(static_cast<std::uint8_t>(t)) == error);
  }
  CHECK(icmp::type::source_quench == 4);
}

TEST_CASE("icmp timestamps are read through a checking parser") {
  auto v = icmp::view::checked(timestamp);
  REQUIRE(v);
  CHECK(v->type() == icmp::type::timestamp);
  CHECK(v->identifier() == 0x3930);
  CHECK(v->sequence_number() == 1);
  CHECK(v->verify_checksum());
  auto t = icmp::timestamps::parse(*v);
  REQUIRE(t);
  CHECK(*t == icmp::timestamps{0x01020304, 0, 0});

  auto reply = icmp::view::checked(timestamp_reply);
  REQUIRE(reply);
  CHECK(reply->checksum() == 0x94a4);
  CHECK(reply->verify_checksum());
  t = icmp::timestamps::parse(*reply);
  REQUIRE(t);
  CHECK(t->originate == 0x01020304);
  CHECK(t->receive == 0x05060708);
  CHECK(t->transmit == 0x090a0b0c);

  // The header alone is a valid ICMP message but not a whole timestamp.
  const auto cut = GENERATE(range<std::size_t>(8, 20));
  // A heap copy of exactly `cut` bytes, so a sanitizer sees any read past it.
  const std::vector<byte> bytes(timestamp_reply.begin(), timestamp_reply.begin() + static_cast<std::ptrdiff_t>(cut));
  auto short_one = icmp::view::checked(bytes);
  REQUIRE(short_one);
  auto e = icmp::timestamps::parse(*short_one);
  REQUIRE_FALSE(e);
  CHECK(e.error().code == errc::truncated);
  CHECK(e.error().field == std::string_view("timestamps"));
  CHECK(e.error().offset == 8);
  CHECK(e.error().value == cut);
  CHECK(e.error().limit == 20);
}

TEST_CASE("icmp timestamps parser rejects other types") {
  auto v = icmp::view::checked(echo_request);
  REQUIRE(v);
  auto e = icmp::timestamps::parse(*v);
  REQUIRE_FALSE(e);
  CHECK(e.error().code == errc::mismatch);
  CHECK(e.error().message() == "icmp: type 8 is not 13");
}

TEST_CASE("icmp repr emits the same bytes into a junk-filled buffer") {
  CHECK(same(emitted(icmp::repr::echo_request(0x04d2, 9), echo_request), echo_request));
  CHECK(same(emitted(icmp::repr::echo_reply(0x04d2, 9), echo_reply), echo_reply));
  CHECK(same(emitted(icmp::repr::destination_unreachable(icmp::unreachable_code::port), port_unreachable),
             port_unreachable));
  CHECK(same(emitted(icmp::repr::destination_unreachable(icmp::unreachable_code::fragmentation_needed, 1400),
                     fragmentation_needed),
             fragmentation_needed));
  CHECK(same(emitted(icmp::repr::redirect(icmp::redirect_code::host, ipv4_address::from_octets(10, 0, 0, 254)),
                     redirect),
             redirect));
  CHECK(same(emitted(icmp::repr::time_exceeded(icmp::time_exceeded_code::ttl_exceeded), time_exceeded),
             time_exceeded));
  CHECK(same(emitted(icmp::repr::parameter_problem(9), parameter_problem), parameter_problem));

  const icmp::repr plain{.type = icmp::type::echo_request, .code = 0, .rest_of_header = 0x04d20009};
  CHECK(plain == icmp::repr::echo_request(0x04d2, 9));
  CHECK(plain.identifier() == 0x04d2);
  CHECK(plain.sequence_number() == 9);
}

TEST_CASE("icmp repr and timestamps emit a timestamp reply") {
  std::vector<byte> out(timestamp_reply.size(), 0xa5);
  const icmp::timestamps times{0x01020304, 0x05060708, 0x090a0b0c};
  const icmp::repr r{.type = icmp::type::timestamp_reply, .code = 0, .rest_of_header = 0x39300001};
  times.emit(out);  // first: the checksum covers them
  r.emit(out);
  CHECK(same(out, timestamp_reply));
}

TEST_CASE("icmp repr parses back what it emits") {
  for (const auto& bytes : {std::span<const byte>(echo_request), std::span<const byte>(redirect),
                            std::span<const byte>(parameter_problem), std::span<const byte>(timestamp)}) {
    auto v = icmp::view::checked(bytes);
    REQUIRE(v);
    auto r = icmp::repr::parse(*v);
    REQUIRE(r);
    CHECK(r->type == v->type());
    CHECK(r->code == v->code());
    CHECK(r->rest_of_header == v->rest_of_header());
    std::vector<byte> out(bytes.size(), 0xa5);
    std::copy(bytes.begin() + 8, bytes.end(), out.begin() + 8);
    r->emit(out);
    CHECK(same(out, bytes));
  }
}

TEST_CASE("icmp rejects every truncation of the header with a typed error") {
  const auto cut = GENERATE(range<std::size_t>(0, icmp::header_size));
  const std::vector<byte> bytes(echo_request.begin(), echo_request.begin() + static_cast<std::ptrdiff_t>(cut));
  auto v = icmp::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error().protocol == std::string_view("icmp"));
  CHECK(v.error().code == errc::truncated);
  CHECK(v.error().field == std::string_view("header"));
  CHECK(v.error().value == cut);
  CHECK(v.error().limit == 8);
}

TEST_CASE("icmp message is every byte given, and the checksum covers them all") {
  // No length field: a header with no payload is a whole message...
  auto header_only = icmp::view::checked(std::span(echo_request).first(8));
  REQUIRE(header_only);
  CHECK(header_only->payload().empty());
  CHECK_FALSE(header_only->verify_checksum());  // ...whose checksum was taken over the data too

  // ...and a changed payload byte shows in the checksum.
  auto bytes = copy_of(echo_request);
  bytes[16] ^= 0x20;
  CHECK_FALSE(icmp::view::checked(bytes)->verify_checksum());
}

TEST_CASE("icmp mutable view setters write only their field") {
  auto bytes = copy_of(echo_request);
  auto v = icmp::mutable_view::checked(bytes);
  REQUIRE(v);

  v->set_identifier(0xabcd);
  CHECK(v->identifier() == 0xabcd);
  CHECK(v->sequence_number() == 9);
  v->set_sequence_number(0x1234);
  CHECK(v->identifier() == 0xabcd);
  CHECK(v->sequence_number() == 0x1234);
  CHECK(v->rest_of_header() == 0xabcd1234);
  CHECK_FALSE(v->verify_checksum());
  v->fill_checksum();
  CHECK(v->verify_checksum());

  v->set_type(icmp::type::destination_unreachable);
  v->set_code(icmp::unreachable_code::fragmentation_needed);
  v->set_rest_of_header(0);
  v->set_next_hop_mtu(576);
  CHECK(v->type() == icmp::type::destination_unreachable);
  CHECK(v->code() == icmp::unreachable_code::fragmentation_needed);
  CHECK(v->rest_of_header() == 576);

  v->set_gateway(ipv4_address::from_octets(192, 0, 2, 1));
  CHECK(v->gateway() == ipv4_address::from_octets(192, 0, 2, 1));
  v->set_pointer(20);
  CHECK(v->pointer() == 20);
  CHECK(v->rest_of_header() == 0x14000201);

  v->set_checksum(0xbeef);
  CHECK(v->checksum() == 0xbeef);
  CHECK(same(v->payload(), std::span(echo_request).subspan(8)));

  v->fill_checksum();
  CHECK(icmp::view::checked(bytes)->verify_checksum());
}

TEST_CASE("icmp echo request turns into its reply in place") {
  auto bytes = copy_of(echo_request);
  auto v = icmp::mutable_view::checked(bytes);
  REQUIRE(v);
  v->make_echo_reply();
  CHECK(same(bytes, echo_reply));
}

TEST_CASE("icmp message read from an IPv4 datagram") {
  // IP(src='192.0.2.1', dst='198.51.100.7', id=7, ttl=64, proto=1)
  //   / ICMP(type=8, id=0x4d2, seq=9) / b'ping-data'
  constexpr std::array<byte, 37> datagram = {
      0x45, 0x00, 0x00, 0x25, 0x00, 0x07, 0x00, 0x00, 0x40, 0x01, 0x8e, 0x95, 0xc0, 0x00, 0x02,
      0x01, 0xc6, 0x33, 0x64, 0x07, 0x08, 0x00, 0x24, 0x7b, 0x04, 0xd2, 0x00, 0x09, 'p',  'i',
      'n',  'g',  '-',  'd',  'a',  't',  'a'};
  auto ip = ipv4::view::checked(datagram);
  REQUIRE(ip);
  CHECK(ip->protocol() == icmp::ip_protocol);
  CHECK(ip->verify_checksum());
  // No pseudo-header: the ICMP checksum does not depend on the addresses.
  auto v = icmp::view::checked(ip->payload());
  REQUIRE(v);
  CHECK(v->verify_checksum());
  CHECK(same(v->bytes(), echo_request));
}

TEST_CASE("icmp echo reply of an all-zero request carries checksum 0xffff") {
  // Scapy: raw(ICMP()) is 0800f7ff00000000, and raw(ICMP(type=0)) is
  // 0000ffff00000000: the reply must hold 0xffff, not RFC 1624's -0 (0x0000).
  std::array<byte, 8> message = {0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00};
  auto v = icmp::mutable_view::checked(message);
  REQUIRE(v);
  v->make_echo_reply();
  const std::array<byte, 8> expected = {0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00};
  CHECK(message == expected);
  CHECK(icmp::view::checked(message)->verify_checksum());
}

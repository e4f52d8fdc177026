// TCP wire format: fixed bytes both ways, a junk-filled build buffer, every
// truncation length, every option framing error, and segments from captures
// made by others (the tcpdump test suite) so that option decoding is checked
// against what real stacks send, not only against Scapy.
//
// Reference bytes are the TCP part (IP payload) of the packets named in each
// comment; Scapy made them with
//   raw(IP(src=..., dst=...)/TCP(...))[20:]
// and checksums are Scapy's or the capture's (tshark -o tcp.check_checksum:TRUE
// reports them correct unless a comment says otherwise).
#include "pystack/wire/tcp.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <random>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {
using namespace pystack;

static_assert(std::ranges::forward_range<tcp::option_range>);
static_assert(std::ranges::view<tcp::option_range>);
static_assert(std::ranges::forward_range<tcp::option_list>);
// The walk yields non-owning option_refs, which convert to owning options.
static_assert(std::forward_iterator<tcp::option_iterator>);
static_assert(std::same_as<std::iter_reference_t<tcp::option_iterator>, tcp::option_ref>);
static_assert(std::same_as<std::ranges::range_value_t<tcp::option_range>, tcp::option_ref>);
static_assert(std::is_convertible_v<tcp::option_ref, tcp::option>);
static_assert(std::is_trivially_copyable_v<tcp::option_ref>);
static_assert(sizeof(tcp::option_ref) <= 2 * sizeof(void*));
static_assert((tcp::flags::syn | tcp::flags::ack).bits() == 0x012);

// Hex as Scapy prints it (`bytes.hex()`), so the references are pasted verbatim.
std::vector<byte> hex(std::string_view text) {
  std::vector<byte> out;
  auto nibble = [](char c) { return static_cast<byte>(c <= '9' ? c - '0' : c - 'a' + 10); };
  for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
    out.push_back(static_cast<byte>(nibble(text[i]) << 4 | nibble(text[i + 1])));
  }
  return out;
}

ipv4_address ip(std::string_view text) { return *ipv4_address::parse(text); }

std::vector<tcp::option_kind> kinds(const auto& options) {
  std::vector<tcp::option_kind> out;
  for (const tcp::option o : options) out.push_back(o.kind());
  return out;
}

using K = tcp::option_kind;

// IP(src="192.168.1.10", dst="192.168.1.20")/TCP(sport=49152, dport=80,
//   seq=0xfffffff0, ack=0x12345678, flags="SA", window=65535,
//   options=[("MSS",1460),("NOP",None),("WScale",7),("SAckOK",b""),
//            ("Timestamp",(1,2)),("SAck",(1,2,3,4)),("EOL",None)])
// 39 bytes of options, padded by Scapy with one zero to 40: data offset 15.
const auto synack_source = ip("192.168.1.10");
const auto synack_destination = ip("192.168.1.20");
const std::vector<byte> synack = hex(
    "c0000050fffffff012345678f012ffff46600000"
    "020405b4010303070402080a0000000100000002"
    "0512000000010000000200000003000000040000");
// The same with /b"hello" after the TCP layer.
const std::vector<byte> synack_hello = hex(
    "c0000050fffffff012345678f012ffff02890000"
    "020405b4010303070402080a0000000100000002"
    "051200000001000000020000000300000004000068656c6c6f");

// The SYN-ACK's options built with the repr's helpers.
tcp::repr synack_repr() {
  tcp::repr r{.source_port = 49152,
              .destination_port = 80,
              .sequence_number = seq_number(0xfffffff0),
              .ack_number = seq_number(0x12345678),
              .flags = tcp::flags::syn | tcp::flags::ack,
              .window = 65535,
              .urgent_pointer = 0};
  const std::array<tcp::sack_block, 2> blocks = {
      tcp::sack_block{seq_number(1), seq_number(2)}, tcp::sack_block{seq_number(3), seq_number(4)}};
  REQUIRE(r.options.push_mss(1460));
  REQUIRE(r.options.push_nop());
  REQUIRE(r.options.push_window_scale(7));
  REQUIRE(r.options.push_sack_permitted());
  REQUIRE(r.options.push_timestamp(1, 2));
  REQUIRE(r.options.push_sack(blocks));
  REQUIRE(r.options.push_eol());
  return r;
}

// A header with only the given option bytes after it, data offset to match,
// for the framing errors (the checksum plays no part there). Base header:
// TCP(sport=1, dport=2, flags="S") = 000100020000000000000000500220007bdd0000.
std::vector<byte> with_options(std::vector<byte> options) {
  auto bytes = hex("000100020000000000000000500220007bdd0000");
  bytes[12] = static_cast<byte>((5 + options.size() / 4) << 4);
  bytes.insert(bytes.end(), options.begin(), options.end());
  return bytes;
}

// Emits `r` into a 0xa5-filled copy of `reference` (payload left in place)
// and returns the result.
std::vector<byte> emit_over_junk(const tcp::repr& r, const std::vector<byte>& reference, ipv4_address source,
                                 ipv4_address destination) {
  std::vector<byte> out(reference.size(), 0xa5);
  std::copy(reference.begin() + static_cast<std::ptrdiff_t>(r.size()), reference.end(),
            out.begin() + static_cast<std::ptrdiff_t>(r.size()));
  r.emit(out, source, destination);
  return out;
}

}  // namespace

TEST_CASE("tcp view reads every field of a Scapy SYN-ACK") {
  auto v = tcp::view::checked(synack);
  REQUIRE(v);
  CHECK(v->source_port() == 49152);
  CHECK(v->destination_port() == 80);
  CHECK(v->sequence_number() == seq_number(0xfffffff0));
  CHECK(v->ack_number() == seq_number(0x12345678));
  CHECK(v->data_offset() == 15);
  CHECK(v->header_length() == 60);
  CHECK(v->flags() == (tcp::flags::syn | tcp::flags::ack));
  CHECK(v->flags().to_string() == "SA");
  CHECK(v->flags().reserved() == 0);
  CHECK(v->window() == 65535);
  CHECK(v->checksum() == 0x4660);
  CHECK(v->urgent_pointer() == 0);
  CHECK(v->header().size() == 60);
  CHECK(v->options_bytes().size() == 40);
  CHECK(v->payload().empty());
  CHECK(v->bytes().size() == 60);
  CHECK(v->verify_checksum(synack_source, synack_destination));
  CHECK_FALSE(v->verify_checksum(synack_source, ip("192.168.1.21")));

  CHECK(kinds(v->options()) ==
        std::vector<K>{K::mss, K::nop, K::window_scale, K::sack_permitted, K::timestamp, K::sack, K::eol});
  auto it = v->options().begin();
  CHECK((*it).mss() == 1460);
  CHECK((*it).code() == tcp::option_code::mss);
  CHECK((*it).size() == 4);
  ++it;
  CHECK((*it).size() == 1);
  ++it;
  CHECK((*it).window_scale() == 7);
  ++it;
  CHECK((*it).size() == 2);
  ++it;
  CHECK((*it).timestamp() == tcp::timestamps{1, 2});
  ++it;
  const auto sack = (*it).sack();
  REQUIRE(sack.size() == 2);
  CHECK(sack[0] == tcp::sack_block{seq_number(1), seq_number(2)});
  CHECK(sack[1] == tcp::sack_block{seq_number(3), seq_number(4)});
  CHECK((*it).size() == 18);
  ++it;
  CHECK((*it).kind() == K::eol);
  CHECK(++it == v->options().end());

  CHECK(v->options().mss() == 1460);
  CHECK(v->options().window_scale() == 7);
  CHECK(v->options().sack_permitted());
  CHECK(v->options().timestamp() == tcp::timestamps{1, 2});
  CHECK(v->options().sack() == sack);
  // A getter for another kind gives zero.
  CHECK((*v->options().begin()).window_scale() == 0);
}

TEST_CASE("tcp view with payload") {
  auto v = tcp::view::checked(synack_hello);
  REQUIRE(v);
  CHECK(v->checksum() == 0x0289);
  CHECK(v->header().size() == 60);
  REQUIRE(v->payload().size() == 5);
  CHECK(std::string(v->payload().begin(), v->payload().end()) == "hello");
  CHECK(v->verify_checksum(synack_source, synack_destination));
}

TEST_CASE("tcp repr emits the Scapy SYN-ACK into a junk-filled buffer") {
  const tcp::repr r = synack_repr();
  CHECK(r.size() == 60);
  CHECK(r.options.size() == 39);
  CHECK(r.options.padded_size() == 40);
  CHECK(emit_over_junk(r, synack, synack_source, synack_destination) == synack);
  CHECK(emit_over_junk(r, synack_hello, synack_source, synack_destination) == synack_hello);

  auto parsed = tcp::repr::parse(*tcp::view::checked(synack));
  REQUIRE(parsed);
  CHECK(*parsed == r);
  CHECK(parsed->options.mss() == 1460);
  CHECK(parsed->options.window_scale() == 7);
  CHECK(parsed->options.sack_permitted());
  CHECK(parsed->options.timestamp() == tcp::timestamps{1, 2});
  CHECK(parsed->options.sack().size() == 2);
  CHECK(kinds(parsed->options) == kinds(tcp::view::checked(synack)->options()));

  std::vector<byte> out(60, 0xa5);
  r.emit_without_checksum(out);
  CHECK(wire::load_be16(out.data() + 16) == 0);
  CHECK(std::equal(out.begin(), out.begin() + 16, synack.begin()));
  CHECK(std::equal(out.begin() + 18, out.end(), synack.begin() + 18));
}

TEST_CASE("tcp repr without options is 20 bytes") {
  // IP(src="10.0.0.1", dst="10.0.0.2")/TCP(sport=1, dport=2, flags="S")
  const auto reference = hex("000100020000000000000000500220007bdd0000");
  const tcp::repr r{.source_port = 1, .destination_port = 2, .flags = tcp::flags::syn, .window = 8192};
  CHECK(r.size() == 20);
  CHECK(emit_over_junk(r, reference, ip("10.0.0.1"), ip("10.0.0.2")) == reference);
  CHECK(*tcp::repr::parse(*tcp::view::checked(reference)) == r);
  CHECK(tcp::view::checked(reference)->options().empty());
}

TEST_CASE("tcp keeps unknown option kinds as opaque bytes") {
  // IP(src="10.0.0.1", dst="10.0.0.2")/TCP(sport=40000, dport=443, seq=1000,
  //   flags="S", window=29200, options=[("MSS",1460),
  //   ("TFO",(0x01020304,0x05060708)),
  //   (30,b"\x00\x81\x11\x22\x33\x44\x55\x66\x77\x88")])
  // TFO is kind 34 (RFC 7413), MPTCP kind 30 (RFC 8684); Scapy pads 2 zeros.
  const auto segment = hex(
      "9c4001bb000003e800000000c0027210ae170000"
      "020405b4220a01020304050607081e0c00811122"
      "3344556677880000");
  auto v = tcp::view::checked(segment);
  REQUIRE(v);
  CHECK(v->verify_checksum(ip("10.0.0.1"), ip("10.0.0.2")));
  CHECK(kinds(v->options()) == std::vector<K>{K::mss, K::unknown, K::unknown, K::eol});
  auto it = v->options().begin();
  ++it;
  const tcp::option tfo = *it;
  CHECK(tfo.code() == 34);
  CHECK(tfo.size() == 10);
  CHECK(tfo.data().size() == 8);
  CHECK(std::ranges::equal(tfo.data(), hex("0102030405060708")));
  const tcp::option mptcp = *++it;
  CHECK(mptcp.code() == 30);
  CHECK(mptcp.size() == 12);
  CHECK(std::ranges::equal(mptcp.data(), hex("00811122334455667788")));
  CHECK(mptcp.mss() == 0);

  // Built with option::make, the repr gives the same bytes back.
  tcp::repr r{.source_port = 40000,
              .destination_port = 443,
              .sequence_number = seq_number(1000),
              .flags = tcp::flags::syn,
              .window = 29200};
  REQUIRE(r.options.push_mss(1460));
  const auto tfo_made = tcp::option::make(34, hex("0102030405060708"));
  REQUIRE(tfo_made);
  CHECK(*tfo_made == tfo);
  REQUIRE(r.options.push(*tfo_made));
  REQUIRE(r.options.push(*tcp::option::make(30, hex("00811122334455667788"))));
  CHECK(emit_over_junk(r, segment, ip("10.0.0.1"), ip("10.0.0.2")) == segment);
  CHECK(*tcp::repr::parse(*v) == r);
}

TEST_CASE("tcp decodes the options of segments from the tcpdump captures") {
  SECTION("mptcp-fclose.pcap frame 3: SYN with MPTCP capable (kind 30) after wscale") {
    // tcpdump: options [mss 1460,sackOK,TS val 38230 ecr 0,nop,wscale 6,
    //   mptcp 12 capable v0 flags [AH] csum {0x9b59be3d695e66a7}]
    const auto segment = hex(
        "926707d270fdad5200000000d002390832dc0000020405b40402080a00009556"
        "00000000010303061e0c00819b59be3d695e66a7");
    auto v = tcp::view::checked(segment);
    REQUIRE(v);
    CHECK(v->source_port() == 37479);
    CHECK(v->destination_port() == 2002);
    CHECK(v->sequence_number() == seq_number(1895673170));
    CHECK(v->flags().to_string() == "S");
    CHECK(v->window() == 14600);
    CHECK(v->verify_checksum(ip("10.1.1.2"), ip("10.2.1.2")));
    CHECK(kinds(v->options()) ==
          std::vector<K>{K::mss, K::sack_permitted, K::timestamp, K::nop, K::window_scale, K::unknown});
    CHECK(v->options().timestamp() == tcp::timestamps{38230, 0});
    CHECK(v->options().window_scale() == 6);
    const auto mptcp = *v->options().find(K::unknown);
    CHECK(mptcp.code() == 30);
    CHECK(mptcp.size() == 12);
    const auto r = *tcp::repr::parse(*v);
    CHECK(emit_over_junk(r, segment, ip("10.1.1.2"), ip("10.2.1.2")) == segment);
  }
  SECTION("mptcp-fclose.pcap frame 4: timestamp value near 2^32") {
    const auto segment = hex(
        "07d29267aafe972670fdad53d01237c8f0250000020405b40402080affffa1ac"
        "00009556010303061e0c0081d005b1ab34bad344");
    auto v = tcp::view::checked(segment);
    REQUIRE(v);
    CHECK(v->flags().to_string() == "SA");
    CHECK(v->ack_number() == seq_number(1895673171));
    CHECK(v->options().timestamp() == tcp::timestamps{4294943148u, 38230});
    CHECK(v->verify_checksum(ip("10.2.1.2"), ip("10.1.1.2")));
    // As serial numbers the wrapped TSval is just behind a later small one.
    CHECK(tcp_timestamp(4294943148u) < tcp_timestamp(38230));
  }
  SECTION("ssh.pcap frame 1: EOL then zero padding, listed once") {
    // tshark lists two EOLs here (it walks the padding); dissect stops at the first.
    const auto segment = hex(
        "f2c20016f351f15800000000b002ffffec120000020405b4010303060101080a"
        "7422c7ce0000000004020000");
    auto v = tcp::view::checked(segment);
    REQUIRE(v);
    CHECK(kinds(v->options()) == std::vector<K>{K::mss, K::nop, K::window_scale, K::nop, K::nop, K::timestamp,
                                                K::sack_permitted, K::eol});
    CHECK(v->verify_checksum(ip("202.108.87.165"), ip("223.132.53.222")));
    const auto r = *tcp::repr::parse(*v);
    CHECK(emit_over_junk(r, segment, ip("202.108.87.165"), ip("223.132.53.222")) == segment);
  }
  SECTION("tfo-5c1fa7f9ae91.pcap frame 13: experimental TFO (254) and data on a SYN") {
    // tcpdump: Flags [S], seq 936732547:936732551, options [exp-tfo cookie
    //   090909090000,nop,nop], length 4
    const auto segment = hex(
        "32f832fe37d56783000000008002057805b40000fe0af9890909090900000101deadbeef");
    auto v = tcp::view::checked(segment);
    REQUIRE(v);
    CHECK(kinds(v->options()) == std::vector<K>{K::unknown, K::nop, K::nop});
    const auto tfo = *v->options().begin();
    CHECK(tfo.code() == 254);
    CHECK(std::ranges::equal(tfo.data(), hex("f989090909090000")));
    CHECK(std::ranges::equal(v->payload(), hex("deadbeef")));
    CHECK(v->verify_checksum(ip("192.168.0.100"), ip("3.3.3.3")));
    const auto r = *tcp::repr::parse(*v);
    CHECK(r.size() == 32);
    CHECK(emit_over_junk(r, segment, ip("192.168.0.100"), ip("3.3.3.3")) == segment);
  }
  SECTION("accecn_handshake.pcap frame 3: odd-length option, EOL, offloaded checksum") {
    // tcpdump -v: Flags [.W], cksum 0x20a4 (incorrect -> 0x3b19), options
    //   [nop,nop,TS val 112147698 ecr 2783239876,exp-acc0,eol]
    const auto source = ip("31.133.146.248");
    const auto destination = ip("66.228.43.12");
    const auto segment = hex(
        "40310050741d4a2eb128b394c090040320a400000101080a06af3cf2a5e4dec4"
        "fe0dacc0000000ffffffffffff000000");
    auto v = tcp::view::checked(segment);
    REQUIRE(v);
    CHECK(v->flags() == (tcp::flags::ack | tcp::flags::cwr));
    CHECK(v->flags().to_string() == "AC");
    CHECK(kinds(v->options()) == std::vector<K>{K::nop, K::nop, K::timestamp, K::unknown, K::eol});
    CHECK(v->options().timestamp() == tcp::timestamps{112147698, 2783239876u});
    const auto acc = *v->options().find(K::unknown);
    CHECK(acc.code() == 254);
    CHECK(acc.size() == 13);
    CHECK_FALSE(v->verify_checksum(source, destination));

    // Re-emitted, only the checksum differs: it becomes the one tcpdump computes.
    const auto r = *tcp::repr::parse(*v);
    const auto out = emit_over_junk(r, segment, source, destination);
    CHECK(wire::load_be16(out.data() + 16) == 0x3b19);
    CHECK(std::equal(out.begin(), out.begin() + 16, segment.begin()));
    CHECK(std::equal(out.begin() + 18, out.end(), segment.begin() + 18));
  }
  SECTION("accecn_handshake.pcap frame 1: the AE bit") {
    // tcpdump -v: Flags [SEWe], cksum 0x209c (incorrect -> 0xe443)
    const auto source = ip("31.133.146.248");
    const auto destination = ip("66.228.43.12");
    auto segment = hex(
        "40310050741d4a2d00000000a1c2ffff209c0000020405b4010303060402080a"
        "06af3c1500000000");
    auto v = tcp::mutable_view::checked(segment);
    REQUIRE(v);
    CHECK(v->data_offset() == 10);
    CHECK(v->flags() == (tcp::flags::syn | tcp::flags::ece | tcp::flags::cwr | tcp::flags::ae));
    CHECK(v->flags().bits() == 0x1c2);
    CHECK(v->flags().to_string() == "SEC");
    CHECK(v->flags().reserved() == 0);
    CHECK_FALSE(v->verify_checksum(source, destination));
    v->fill_checksum(source, destination);
    CHECK(v->checksum() == 0xe443);
    CHECK(v->verify_checksum(source, destination));
    // The AE bit survives a round trip through the repr.
    const auto r = *tcp::repr::parse(tcp::view::checked(segment).value());
    CHECK(r.flags.has(tcp::flags::ae));
    CHECK(emit_over_junk(r, segment, source, destination) == segment);
  }
  SECTION("tcp_eight_lowest_weight_flags_set.pcap: all eight control bits") {
    // tcpdump: Flags [FSRP.UEW], seq 576462951, ack 486026015, win 512, urg 0
    const auto segment = hex("18740050225c20671cf82b1f50ff0200f4c30000");
    auto v = tcp::view::checked(segment);
    REQUIRE(v);
    CHECK(v->flags().to_string() == "FSRPAUEC");
    CHECK(v->sequence_number() == seq_number(576462951));
    CHECK(v->ack_number() == seq_number(486026015));
    CHECK(v->window() == 512);
    CHECK(v->verify_checksum(ip("10.0.0.2"), ip("10.128.0.2")));
  }
}

TEST_CASE("tcp flags spell every combination in FSRPAUEC order") {
  const auto bits = GENERATE(range(0, 256));
  static constexpr char letters[] = "FSRPAUEC";
  std::string expected;
  for (int i = 0; i < 8; ++i) {
    if (bits & (1 << i)) expected += letters[i];
  }
  const tcp::flags f(static_cast<std::uint16_t>(bits));
  CHECK(f.to_string() == expected);
  // AE and the reserved bits are kept but are not letters.
  CHECK((f | tcp::flags::ae | tcp::flags(tcp::flags::reserved_mask)).to_string() == expected);
}

TEST_CASE("tcp flags as a bitmask") {
  tcp::flags f = tcp::flags::syn;
  f |= tcp::flags::ack;
  CHECK(f.has(tcp::flags::syn | tcp::flags::ack));
  CHECK_FALSE(f.has(tcp::flags::syn | tcp::flags::fin));
  CHECK(f.any(tcp::flags::syn | tcp::flags::fin));
  CHECK_FALSE(f.any(tcp::flags::rst));
  CHECK((f & tcp::flags::ack) == tcp::flags::ack);
  CHECK((f ^ tcp::flags::syn) == tcp::flags::ack);
  CHECK((~f).bits() == 0xfed);
  f &= ~tcp::flags::syn;
  CHECK(f == tcp::flags::ack);
  CHECK(tcp::flags{}.empty());
  CHECK(tcp::flags(0xf012).bits() == 0x012);  // the data offset bits are not flags
  CHECK(tcp::flags(0x0e00).reserved() == 7);
  CHECK(tcp::flags::fin.bits() == 0x01);
  CHECK(tcp::flags::rst.bits() == 0x04);
  CHECK(tcp::flags::psh.bits() == 0x08);
  CHECK(tcp::flags::urg.bits() == 0x20);
  CHECK(tcp::flags::ece.bits() == 0x40);
  CHECK(tcp::flags::cwr.bits() == 0x80);
  CHECK(tcp::flags::ae.bits() == 0x100);
}

TEST_CASE("tcp sequence numbers wrap in acceptance tests") {
  // IP(src="10.0.0.1", dst="10.0.0.2")/TCP(sport=5000, dport=6000,
  //   seq=0xffffffe0, ack=0, flags="PA", window=1024)/(b"x"*64)
  const auto segment = hex(
      "13881770ffffffe000000000501804005da20000"
      "7878787878787878787878787878787878787878787878787878787878787878"
      "7878787878787878787878787878787878787878787878787878787878787878");
  auto v = tcp::view::checked(segment);
  REQUIRE(v);
  CHECK(v->verify_checksum(ip("10.0.0.1"), ip("10.0.0.2")));
  const seq_number first = v->sequence_number();
  const seq_number last = first + static_cast<std::int64_t>(v->payload().size()) - 1;
  CHECK(first.raw() == 0xffffffe0);
  CHECK(last.raw() == 0x1f);  // wrapped past 2^32
  CHECK(first < last);
  CHECK(last - first == 63);
  // RFC 9293 §3.4 acceptance with RCV.NXT just before the wrap and a window
  // reaching past it: the segment's first and last bytes both fall inside.
  const seq_number rcv_nxt(0xfffffff0);
  const seq_number rcv_end = rcv_nxt + 4096;
  CHECK(rcv_end.raw() == 0xff0);
  CHECK_FALSE(first.in_window(rcv_nxt, rcv_end));  // starts 16 bytes before RCV.NXT
  CHECK(last.in_window(rcv_nxt, rcv_end));
  CHECK(seq_number(0).in_window(rcv_nxt, rcv_end));
  CHECK_FALSE(seq_number(0xff0).in_window(rcv_nxt, rcv_end));
}

TEST_CASE("tcp rejects every truncation with a typed error") {
  const auto cut = GENERATE(range<std::size_t>(0, 60));
  auto v = tcp::view::checked(std::span(synack).first(cut));
  REQUIRE_FALSE(v);
  CHECK(v.error().protocol == std::string_view("tcp"));
  CHECK(v.error().code == errc::truncated);
  CHECK(v.error().field == std::string_view("header"));
  CHECK(v.error().value == cut);
  CHECK(v.error().limit == (cut < 20 ? 20u : 60u));
}

TEST_CASE("tcp rejects a data offset below 5 words") {
  const auto words = GENERATE(range(0, 5));
  auto bytes = synack;
  bytes[12] = static_cast<byte>((words << 4) | (bytes[12] & 0x0f));
  auto v = tcp::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::below_minimum);
  CHECK(v.error().field == std::string_view("data offset"));
  CHECK(v.error().offset == 12);
  CHECK(v.error().message() == "tcp: data offset " + std::to_string(words) + " is below 5");
}

TEST_CASE("tcp data offset 3 reads like dissect's example") {
  auto bytes = hex("000100020000000000000000500220007bdd0000");
  bytes[12] = 0x30;
  CHECK(tcp::view::checked(bytes).error().message() == "tcp: data offset 3 is below 5");
}

TEST_CASE("tcp rejects a data offset beyond the bytes present") {
  // pcapplusplus tcp-malformed.pcap: data offset 7 (28 bytes) in a 20-byte segment.
  const auto segment = hex("c20761b65744505b4da490b970100891bbe7e00a");
  auto v = tcp::view::checked(segment);
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"tcp", errc::truncated, "header", 0, 20, 28});
  CHECK(v.error().message() == "tcp: header truncated at offset 0: needs 28 bytes, 20 present");

  auto bytes = hex("000100020000000000000000500220007bdd0000");
  bytes[12] = 0xf0;
  CHECK(tcp::view::checked(bytes).error() == parse_error{"tcp", errc::truncated, "header", 0, 20, 60});
}

TEST_CASE("tcp rejects each option framing error") {
  struct bad_case {
    const char* name;
    std::vector<byte> options;
    parse_error error;
    const char* message;
  };
  // Offsets are within the TCP header: options start at 20.
  const std::vector<bad_case> cases = {
      {"length 1", hex("1e010000"), {"tcp", errc::below_minimum, "option length", 21, 1, 2},
       "tcp: option length 1 is below 2"},
      {"length 0", hex("1e000000"), {"tcp", errc::below_minimum, "option length", 21, 0, 2},
       "tcp: option length 0 is below 2"},
      {"length past the header", hex("01011e08"), {"tcp", errc::truncated, "option", 22, 2, 8},
       "tcp: option truncated at offset 22: needs 8 bytes, 2 present"},
      {"no length byte", hex("0101011e"), {"tcp", errc::truncated, "option length", 24, 0, 1},
       "tcp: option length truncated at offset 24: needs 1 bytes, 0 present"},
      {"timestamp past the header", hex("0101080a00000001"),
       {"tcp", errc::truncated, "timestamp option", 22, 6, 10},
       "tcp: timestamp option truncated at offset 22: needs 10 bytes, 6 present"},
      {"mss length 3", hex("02030501"), {"tcp", errc::mismatch, "mss option length", 21, 3, 4},
       "tcp: mss option length 3 is not 4"},
      {"mss length 5", hex("020505b400000000"), {"tcp", errc::mismatch, "mss option length", 21, 5, 4},
       "tcp: mss option length 5 is not 4"},
      {"mss length 1", hex("02010000"), {"tcp", errc::below_minimum, "mss option length", 21, 1, 2},
       "tcp: mss option length 1 is below 2"},
      {"window scale length 4", hex("03040700"), {"tcp", errc::mismatch, "window scale option length", 21, 4, 3},
       "tcp: window scale option length 4 is not 3"},
      {"sack permitted length 3", hex("04030000"),
       {"tcp", errc::mismatch, "sack permitted option length", 21, 3, 2},
       "tcp: sack permitted option length 3 is not 2"},
      {"timestamp length 8", hex("080800000001000000020000"),
       {"tcp", errc::mismatch, "timestamp option length", 21, 8, 10},
       "tcp: timestamp option length 8 is not 10"},
      {"sack length 2", hex("05020000"), {"tcp", errc::below_minimum, "sack option length", 21, 2, 10},
       "tcp: sack option length 2 is below 10"},
      {"sack length 12", hex("050c00000000000000000000"),
       {"tcp", errc::mismatch, "sack option length", 21, 12, 10}, "tcp: sack option length 12 is not 10"},
      {"sack length 25", hex("01010519" "000000000000000000000000000000000000000000000000"),
       {"tcp", errc::mismatch, "sack option length", 23, 25, 18}, "tcp: sack option length 25 is not 18"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    REQUIRE(c.options.size() % 4 == 0);
    const auto bytes = with_options(c.options);
    auto v = tcp::view::checked(bytes);
    REQUIRE_FALSE(v);
    CHECK(v.error() == c.error);
    CHECK(v.error().message() == c.message);
    // The same rules apply to a list built from bytes.
    auto list = tcp::option_list::from_bytes(c.options);
    REQUIRE_FALSE(list);
    CHECK(list.error() == c.error);
  }
}

TEST_CASE("tcp accepts SACK with one to four blocks") {
  const auto blocks = GENERATE(range<std::size_t>(1, 5));
  std::vector<byte> options = {5, static_cast<byte>(2 + 8 * blocks)};
  for (std::size_t i = 0; i < 2 * blocks; ++i) {
    options.insert(options.end(), {0, 0, 0, static_cast<byte>(i)});
  }
  options.insert(options.begin(), {1, 1});  // NOP NOP, as stacks align SACK
  REQUIRE(options.size() % 4 == 0);
  const auto bytes = with_options(options);
  auto v = tcp::view::checked(bytes);
  REQUIRE(v);
  const auto sack = v->options().sack();
  REQUIRE(sack.size() == blocks);
  CHECK(sack[blocks - 1] == tcp::sack_block{seq_number(2 * blocks - 2), seq_number(2 * blocks - 1)});
}

TEST_CASE("tcp ignores the bytes after End of Option List") {
  // IP(src="10.0.0.1", dst="10.0.0.2")/TCP(sport=1, dport=2, flags="S",
  //   dataofs=6)/Raw(b"\x01\x00\xff\xff") -- the Raw bytes sit in the option
  // area: NOP, EOL, then non-zero padding, which Wireshark flags as an error
  // and tcpdump ignores.
  const auto segment = hex("000100020000000000000000600220006ad900000100ffff");
  auto v = tcp::view::checked(segment);
  REQUIRE(v);
  CHECK(kinds(v->options()) == std::vector<K>{K::nop, K::eol});
  CHECK(v->payload().empty());
  // The repr keeps the padding as it was, so it re-emits byte for byte.
  const auto r = *tcp::repr::parse(*v);
  CHECK(r.size() == 24);
  CHECK(emit_over_junk(r, segment, ip("10.0.0.1"), ip("10.0.0.2")) == segment);
  CHECK(kinds(r.options) == std::vector<K>{K::nop, K::eol});
}

TEST_CASE("tcp keeps whole words of zero padding after End of Option List") {
  // IP(src="10.0.0.1", dst="10.0.0.2")/TCP(sport=1, dport=2, flags="S",
  //   options=[("NOP",None)] + [("EOL",None)]*5): 6 bytes, padded to 8.
  const auto segment = hex("000100020000000000000000700220005ad500000100000000000000");
  auto v = tcp::view::checked(segment);
  REQUIRE(v);
  CHECK(kinds(v->options()) == std::vector<K>{K::nop, K::eol});
  const auto r = *tcp::repr::parse(*v);
  CHECK(r.size() == 28);
  CHECK(emit_over_junk(r, segment, ip("10.0.0.1"), ip("10.0.0.2")) == segment);

  // Not the same header as NOP, EOL in one word: equality follows the bytes.
  tcp::option_list short_list;
  REQUIRE(short_list.push_nop());
  REQUIRE(short_list.push_eol());
  CHECK(short_list.padded_size() == 4);
  CHECK_FALSE(short_list == r.options);
}

TEST_CASE("tcp option list builder") {
  SECTION("a list without a final EOL equals its padded parse") {
    tcp::repr r{.source_port = 1, .destination_port = 2, .flags = tcp::flags::ack};
    REQUIRE(r.options.push_nop());
    REQUIRE(r.options.push_nop());
    REQUIRE(r.options.push_timestamp(7, 9));
    REQUIRE(r.options.push_mss(536));  // 16 bytes, no padding
    REQUIRE(r.options.push_window_scale(3));  // 19, padded to 20
    CHECK(r.size() == 40);
    std::vector<byte> out(40, 0xa5);
    r.emit(out, ip("10.0.0.1"), ip("10.0.0.2"));
    CHECK(out[39] == 0);
    auto v = tcp::view::checked(out);
    REQUIRE(v);
    CHECK(v->verify_checksum(ip("10.0.0.1"), ip("10.0.0.2")));
    CHECK(kinds(v->options()) == std::vector<K>{K::nop, K::nop, K::timestamp, K::mss, K::window_scale, K::eol});
    const auto parsed = *tcp::repr::parse(*v);
    CHECK(parsed == r);  // its trailing EOL is the padding emit adds
    CHECK(parsed.options.size() == 20);
    CHECK(r.options.size() == 19);
  }
  SECTION("a push that does not fit leaves the list unchanged") {
    tcp::option_list l;
    const std::array<tcp::sack_block, 4> blocks{};
    REQUIRE(l.push_sack(blocks));  // 34
    REQUIRE(l.push_mss(1460));     // 38
    const auto before = l;
    CHECK_FALSE(l.push_timestamp(1, 2));
    CHECK_FALSE(l.push_window_scale(1));
    CHECK(l == before);
    CHECK(l.size() == 38);
    REQUIRE(l.push_sack_permitted());  // exactly 40
    CHECK_FALSE(l.push_nop());
    CHECK(l.size() == 40);
  }
  SECTION("an option pushed after End of Option List replaces it") {
    tcp::option_list l;
    REQUIRE(l.push_mss(1460));
    REQUIRE(l.push_eol());
    REQUIRE(l.push_eol());  // still one EOL
    CHECK(kinds(l) == std::vector<K>{K::mss, K::eol});
    CHECK(l.size() == 5);
    REQUIRE(l.push_window_scale(2));
    CHECK(kinds(l) == std::vector<K>{K::mss, K::window_scale});
    CHECK(l.window_scale() == 2);

    // Likewise after a parsed EOL followed by non-zero padding.
    auto parsed = *tcp::option_list::from_bytes(hex("0100ffff"));
    REQUIRE(parsed.push_mss(1200));
    CHECK(std::ranges::equal(parsed.bytes(), hex("010204" "04b0")));
  }
  SECTION("sack needs one to four blocks") {
    tcp::option_list l;
    CHECK_FALSE(l.push_sack({}));
    const std::array<tcp::sack_block, 5> five{};
    CHECK_FALSE(l.push_sack(five));
    CHECK(l.empty());
    CHECK(tcp::option::make_sack(five).error() == parse_error{"tcp", errc::above_maximum, "sack blocks", 0, 5, 4});
    CHECK(tcp::option::make_sack({}).error().code == errc::below_minimum);
  }
  SECTION("option::make checks known kinds as a header would") {
    CHECK(tcp::option::make(2, hex("05b4")).value() == tcp::option::make_mss(1460));
    CHECK(tcp::option::make(2, hex("05")).error().message() == "tcp: mss option length 3 is not 4");
    CHECK(tcp::option::make(8, hex("0000000100000002")).value() == tcp::option::make_timestamp(1, 2));
    CHECK(tcp::option::make(1, {}).value() == tcp::option::make_nop());
    CHECK(tcp::option::make(0, {}).value() == tcp::option{});
    CHECK(tcp::option::make(1, hex("00")).error().code == errc::mismatch);
    CHECK(tcp::option::make(253, std::vector<byte>(38, 1)).value().size() == 40);
    CHECK(tcp::option::make(253, std::vector<byte>(39, 1)).error() ==
          parse_error{"tcp", errc::above_maximum, "option length", 1, 41, 40});
    CHECK(tcp::option::make(30, {}).value().size() == 2);
  }
  SECTION("from_bytes") {
    CHECK(tcp::option_list::from_bytes(std::vector<byte>(41, 1)).error().code == errc::above_maximum);
    const auto l = tcp::option_list::from_bytes(hex("020405b40103030a"));
    REQUIRE(l);
    CHECK(l->mss() == 1460);
    CHECK(l->window_scale() == 10);
    CHECK_FALSE(l->timestamp());
    CHECK_FALSE(l->sack_permitted());
    CHECK(l->sack().empty());
  }
  SECTION("the first of a repeated option wins") {
    const auto l = tcp::option_list::from_bytes(hex("020405b4020402180000"));
    REQUIRE(l);
    CHECK(l->mss() == 1460);
  }
  SECTION("clear") {
    tcp::option_list l;
    REQUIRE(l.push_mss(1));
    l.clear();
    CHECK(l.empty());
    CHECK(l == tcp::option_list{});
  }
}

TEST_CASE("tcp options are walked in place, as option_refs into the segment") {
  auto v = tcp::view::checked(synack);
  REQUIRE(v);
  const byte* const area = v->options_bytes().data();
  auto it = v->options().begin();
  const tcp::option_ref mss = *it;
  CHECK(mss.bytes().data() == area);  // no copy
  CHECK(mss.size() == 4);
  CHECK(std::ranges::equal(mss.data(), hex("05b4")));
  CHECK(mss == tcp::option::make_mss(1460));  // compared as an owning option
  CHECK(tcp::option::make_mss(1460).ref() == mss);
  CHECK_FALSE(mss == tcp::option::make_mss(1461).ref());
  CHECK((*++it).bytes().data() == area + 4);
  CHECK((*it).kind() == K::nop);
  CHECK_FALSE(*it == mss);

  // Converted, it keeps its bytes after the segment is gone.
  auto copy = synack;
  tcp::option kept;
  {
    auto w = tcp::view::checked(copy);
    REQUIRE(w);
    kept = *w->options().begin();
    std::fill(copy.begin(), copy.end(), byte{0xa5});
  }
  CHECK(kept == tcp::option::make_mss(1460));
  CHECK(kept.mss() == 1460);
  CHECK(kept.ref().bytes().data() != copy.data() + 20);
  // find() hands out an owning copy too, so a temporary list may go.
  const auto found = tcp::option_list::from_bytes(hex("0101080a0000000100000002"))->find(K::timestamp);
  REQUIRE(found);
  CHECK(found->timestamp() == tcp::timestamps{1, 2});

  // A default option_ref, like a default option, is End of Option List.
  const tcp::option_ref eol;
  CHECK(eol.kind() == K::eol);
  CHECK(eol.size() == 1);
  CHECK(eol.bytes()[0] == 0);
  CHECK(eol.data().empty());
  CHECK(eol == tcp::option{}.ref());
  CHECK(tcp::option(eol) == tcp::option::make_eol());
}

TEST_CASE("tcp option_ref getters stay inside bytes rewritten after the check") {
  // Four NOPs, checked; then the first byte becomes the kind of each option
  // with data. The walk framed it as one byte, so no getter may read more.
  auto bytes = with_options(hex("01010101"));
  auto v = tcp::mutable_view::checked(bytes);
  REQUIRE(v);
  const auto it = v->options().begin();
  for (const byte code : {tcp::option_code::mss, tcp::option_code::window_scale, tcp::option_code::timestamp,
                          tcp::option_code::sack, byte{30}}) {
    v->options_bytes()[0] = code;
    const tcp::option_ref o = *it;
    CHECK(o.code() == code);
    CHECK(o.size() == 1);
    CHECK(o.data().empty());
    CHECK(o.mss() == 0);
    CHECK(o.window_scale() == 0);
    CHECK(o.timestamp() == tcp::timestamps{});
    CHECK(o.sack().empty());
    const tcp::option owned = o;
    CHECK(owned.size() == 1);
    CHECK(owned.mss() == 0);
  }
  // A length byte rewritten to run past the area ends the walk there.
  v->options_bytes()[0] = tcp::option_code::mss;
  v->options_bytes()[1] = 200;
  CHECK(v->options().begin() == v->options().end());
}

TEST_CASE("tcp option list pushes write each option in place") {
  const std::array<tcp::sack_block, 4> blocks = {
      tcp::sack_block{seq_number(1), seq_number(2)}, tcp::sack_block{seq_number(3), seq_number(4)},
      tcp::sack_block{seq_number(5), seq_number(6)}, tcp::sack_block{seq_number(7), seq_number(8)}};
  SECTION("the same bytes as pushing the made option") {
    for (std::size_t n = 1; n <= 4; ++n) {
      tcp::option_list direct, made;
      REQUIRE(direct.push_sack(std::span(blocks).first(n)));
      REQUIRE(made.push(*tcp::option::make_sack(std::span(blocks).first(n))));
      CHECK(direct == made);
      CHECK(std::ranges::equal(direct.bytes(), made.bytes()));
    }
    tcp::option_list direct, made;
    REQUIRE(direct.push_mss(1460));
    REQUIRE(direct.push_sack_permitted());
    REQUIRE(direct.push_timestamp(0x01020304, 0xa0b0c0d0));
    REQUIRE(direct.push_nop());
    REQUIRE(direct.push_window_scale(7));
    REQUIRE(direct.push_eol());
    for (const auto& o : {tcp::option::make_mss(1460), tcp::option::make_sack_permitted(),
                          tcp::option::make_timestamp(0x01020304, 0xa0b0c0d0), tcp::option::make_nop(),
                          tcp::option::make_window_scale(7), tcp::option::make_eol()}) {
      REQUIRE(made.push(o));
    }
    CHECK(std::ranges::equal(direct.bytes(), made.bytes()));
    CHECK(std::ranges::equal(direct.bytes(), hex("020405b40402080a01020304a0b0c0d001030307" "00")));
    // Iterating a list yields refs into it.
    CHECK((*direct.begin()).bytes().data() == direct.bytes().data());
  }
  SECTION("options pushed from a view rebuild its option list") {
    auto v = tcp::view::checked(synack);
    REQUIRE(v);
    tcp::option_list rebuilt;
    for (const tcp::option_ref o : v->options()) REQUIRE(rebuilt.push(o));
    CHECK(rebuilt.size() == 39);
    CHECK(rebuilt == tcp::repr::parse(*v)->options);
    CHECK(rebuilt == synack_repr().options);
  }
  SECTION("a parsed list finds its End of Option List on the first push") {
    // ssh.pcap frame 1's options: EOL then zero padding.
    const auto segment = hex(
        "f2c20016f351f15800000000b002ffffec120000020405b4010303060101080a"
        "7422c7ce0000000004020000");
    auto r = *tcp::repr::parse(*tcp::view::checked(segment));
    REQUIRE(r.options.size() == 24);
    REQUIRE(r.options.push_nop());
    CHECK(r.options.size() == 23);
    CHECK(kinds(r.options) == std::vector<K>{K::mss, K::nop, K::window_scale, K::nop, K::nop, K::timestamp,
                                             K::sack_permitted, K::nop});
    REQUIRE(r.options.push_window_scale(1));
    CHECK(r.options.size() == 26);
    CHECK(r.options.padded_size() == 28);

    // Without an EOL, pushes append after the last option.
    auto no_eol = *tcp::option_list::from_bytes(hex("020405b4"));
    REQUIRE(no_eol.push_nop());
    CHECK(std::ranges::equal(no_eol.bytes(), hex("020405b401")));
  }
  SECTION("a push that does not fit leaves a final EOL in place") {
    tcp::option_list l;
    REQUIRE(l.push_sack(blocks));  // 34
    REQUIRE(l.push_nop());         // 35
    REQUIRE(l.push_eol());         // 36
    const auto before = l;
    CHECK_FALSE(l.push_timestamp(1, 2));
    CHECK(l == before);
    CHECK(l.size() == 36);
    CHECK(kinds(l).back() == K::eol);
    REQUIRE(l.push_mss(536));  // replaces the EOL: 39
    CHECK(l.size() == 39);
    CHECK(l.mss() == 536);
    CHECK(kinds(l).back() == K::mss);
  }
}

TEST_CASE("tcp mutable view setters") {
  auto bytes = synack_hello;
  auto v = tcp::mutable_view::checked(bytes);
  REQUIRE(v);
  v->set_source_port(1111);
  v->set_destination_port(2222);
  v->set_sequence_number(seq_number(0x01020304));
  v->set_ack_number(seq_number(0x05060708));
  v->set_flags(tcp::flags::fin | tcp::flags::ack | tcp::flags::ae);
  v->set_window(4096);
  v->set_urgent_pointer(3);
  CHECK_FALSE(v->verify_checksum(synack_source, synack_destination));
  v->fill_checksum(synack_source, synack_destination);
  CHECK(v->verify_checksum(synack_source, synack_destination));

  auto r = tcp::view::checked(bytes);
  REQUIRE(r);
  CHECK(r->source_port() == 1111);
  CHECK(r->destination_port() == 2222);
  CHECK(r->sequence_number() == seq_number(0x01020304));
  CHECK(r->ack_number() == seq_number(0x05060708));
  CHECK(r->flags() == (tcp::flags::fin | tcp::flags::ack | tcp::flags::ae));
  CHECK(r->flags().to_string() == "FA");
  CHECK(r->data_offset() == 15);  // set_flags leaves the data offset alone
  CHECK(r->window() == 4096);
  CHECK(r->urgent_pointer() == 3);
  CHECK(r->options().mss() == 1460);
  CHECK(std::string(r->payload().begin(), r->payload().end()) == "hello");

  v->set_checksum(0xbeef);
  CHECK(r->checksum() == 0xbeef);

  // Emitting a repr with the same fields gives the same bytes.
  auto rebuilt = synack_repr();
  rebuilt.source_port = 1111;
  rebuilt.destination_port = 2222;
  rebuilt.sequence_number = seq_number(0x01020304);
  rebuilt.ack_number = seq_number(0x05060708);
  rebuilt.flags = tcp::flags::fin | tcp::flags::ack | tcp::flags::ae;
  rebuilt.window = 4096;
  rebuilt.urgent_pointer = 3;
  v->fill_checksum(synack_source, synack_destination);
  CHECK(emit_over_junk(rebuilt, bytes, synack_source, synack_destination) == bytes);
}

// emit sums the fixed header from the repr's values instead of reading the
// bytes back (checksum::accumulator::add_host_words). Checked against RFC
// 1071's sum written out here byte pair by byte pair, over random headers
// with every field's high bits set at times, options of odd and even
// lengths and payloads of odd and even lengths.
TEST_CASE("tcp repr emit's checksum is RFC 1071's over the bytes it wrote") {
  std::mt19937 random(1071);
  auto u16 = [&] { return static_cast<std::uint16_t>(random()); };
  auto rfc1071 = [](const std::vector<byte>& segment, ipv4_address source, ipv4_address destination) {
    std::uint32_t sum = (source.value >> 16) + (source.value & 0xffff) + (destination.value >> 16) +
                        (destination.value & 0xffff) + tcp::ip_protocol + static_cast<std::uint32_t>(segment.size());
    for (std::size_t i = 0; i < segment.size(); i += 2) {
      sum += static_cast<std::uint32_t>(segment[i] << 8) + (i + 1 < segment.size() ? segment[i + 1] : 0);
    }
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
  };
  for (int round = 0; round < 3000; ++round) {
    std::vector<byte> option_bytes(random() % 12, tcp::option_code::nop);
    if (random() % 2 == 0) {
      const std::uint16_t mss = u16();
      const std::array<byte, 4> mss_option{tcp::option_code::mss, 4, static_cast<byte>(mss >> 8),
                                           static_cast<byte>(mss)};
      option_bytes.insert(option_bytes.end(), mss_option.begin(), mss_option.end());
    }
    auto options = tcp::option_list::from_bytes(option_bytes);
    REQUIRE(options);
    const tcp::repr r{.source_port = u16(),
                      .destination_port = u16(),
                      .sequence_number = seq_number(static_cast<std::uint32_t>(random())),
                      .ack_number = seq_number(static_cast<std::uint32_t>(random())),
                      .flags = tcp::flags(u16()),
                      .window = u16(),
                      .urgent_pointer = u16(),
                      .options = *options};
    const ipv4_address source{static_cast<std::uint32_t>(random())};
    const ipv4_address destination{static_cast<std::uint32_t>(random())};
    std::vector<byte> segment(r.size() + random() % 40, 0xa5);
    for (std::size_t i = r.size(); i < segment.size(); ++i) segment[i] = static_cast<byte>(random());
    r.emit(segment, source, destination);
    const std::uint16_t stored = wire::load_be16(segment.data() + 16);
    segment[16] = segment[17] = 0;
    INFO("round " << round << ", " << option_bytes.size() << " option bytes, " << segment.size() << " bytes");
    CHECK(stored == rfc1071(segment, source, destination));
  }
}

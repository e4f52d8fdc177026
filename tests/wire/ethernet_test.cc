// Ethernet II and 802.1Q/802.1ad tags: fixed frames both ways, a junk-filled
// build buffer, every truncation length, and the tag stacks that are refused.
// Every reference frame comes from Scapy; the expression is above each one,
// with E = dict(dst="00:11:22:33:44:55", src="66:77:88:99:aa:bb").
#include "pystack/wire/ethernet.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <string_view>
#include <vector>

namespace {
using namespace pystack;

const mac_address dst = *mac_address::parse("00:11:22:33:44:55");
const mac_address src = *mac_address::parse("66:77:88:99:aa:bb");

// Ether(**E)/IP(src="10.0.0.1", dst="10.0.0.2")/UDP(sport=1234, dport=53)/b"hi"
// 44 bytes: shorter than the 60-byte minimum, as a capture of a sent frame is.
constexpr std::array<byte, 44> untagged = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00,  // header
    0x45, 0x00, 0x00, 0x1e, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x66, 0xcc, 0x0a, 0x00, 0x00, 0x01,
    0x0a, 0x00, 0x00, 0x02, 0x04, 0xd2, 0x00, 0x35, 0x00, 0x0a, 0x7e, 0x67, 0x68, 0x69};

// Ether(**E)/Dot1Q(vlan=10, prio=3)/IP(src="10.0.0.1", dst="10.0.0.2")
constexpr std::array<byte, 38> single_tag = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0x81, 0x00, 0x60, 0x0a,  // C-TAG: pcp 3, vid 10
    0x08, 0x00,              // IPv4
    0x45, 0x00, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00, 0x66, 0xe7, 0x0a, 0x00, 0x00, 0x01,
    0x0a, 0x00, 0x00, 0x02};

// Ether(**E)/Dot1Q(vlan=10, prio=3)/Dot1Q(vlan=20)/IP(src="10.0.0.1", dst="10.0.0.2")
// QinQ with 0x8100 as the outer TPID, as pre-802.1ad switches send it.
constexpr std::array<byte, 42> qinq_8100 = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0x81, 0x00, 0x60, 0x0a,  // outer: pcp 3, vid 10
    0x81, 0x00, 0x00, 0x14,  // inner: vid 20
    0x08, 0x00,              // IPv4
    0x45, 0x00, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00, 0x66, 0xe7, 0x0a, 0x00, 0x00, 0x01,
    0x0a, 0x00, 0x00, 0x02};

// Ether(**E)/Dot1AD(vlan=100, prio=5, id=1)/Dot1Q(vlan=4094, prio=7)/IPv6(src="::1", dst="::2")
// (Scapy's `id` is the DEI bit.)
constexpr std::array<byte, 62> qinq_88a8 = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0x88, 0xa8, 0xb0, 0x64,  // S-TAG: pcp 5, dei 1, vid 100
    0x81, 0x00, 0xef, 0xfe,  // C-TAG: pcp 7, vid 4094
    0x86, 0xdd,              // IPv6
    0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3b, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02};

// Ether(**E, type=0x9100)/Dot1Q(vlan=7)/Dot1Q(vlan=8)/ARP(), first 22 bytes
// (the header; the ARP payload is not needed here).
constexpr std::array<byte, 22> qinq_9100 = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0x91, 0x00, 0x00, 0x07, 0x81, 0x00, 0x00, 0x08, 0x08, 0x06};

// Ether(**E)/Dot1AD(vlan=1)/Dot1Q(vlan=2)/Dot1Q(vlan=3)/IP(src="10.0.0.1", dst="10.0.0.2")
constexpr std::array<byte, 46> three_tags = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0x88, 0xa8, 0x00, 0x01, 0x81, 0x00, 0x00, 0x02, 0x81, 0x00, 0x00, 0x03, 0x08, 0x00,
    0x45, 0x00, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00, 0x66, 0xe7, 0x0a, 0x00, 0x00, 0x01,
    0x0a, 0x00, 0x00, 0x02};

// Ether(**E)/Dot1Q(vlan=1)/Dot1AD(vlan=2)/IP(src="10.0.0.1", dst="10.0.0.2")
constexpr std::array<byte, 42> stag_inside_ctag = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0x81, 0x00, 0x00, 0x01, 0x88, 0xa8, 0x00, 0x02, 0x08, 0x00,
    0x45, 0x00, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00, 0x66, 0xe7, 0x0a, 0x00, 0x00, 0x01,
    0x0a, 0x00, 0x00, 0x02};

// Dot3(**E)/LLC(dsap=0x42, ssap=0x42, ctrl=3)/b"abcd": an 802.3 length frame.
constexpr std::array<byte, 21> llc = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0x00, 0x07, 0x42, 0x42, 0x03, 'a', 'b', 'c', 'd'};

// Builds `reference`'s header with `r` into a 0xa5-filled buffer holding the
// reference payload, and compares byte for byte.
template <std::size_t N>
void check_emit(const eth::repr& r, const std::array<byte, N>& reference) {
  std::vector<byte> out(N, 0xa5);
  REQUIRE(r.size() <= N);
  std::copy(reference.begin() + static_cast<std::ptrdiff_t>(r.size()), reference.end(),
            out.begin() + static_cast<std::ptrdiff_t>(r.size()));
  r.emit(out);
  CHECK(std::equal(out.begin(), out.end(), reference.begin(), reference.end()));

  auto v = eth::view::checked(reference);
  REQUIRE(v);
  auto parsed = eth::repr::parse(*v);
  REQUIRE(parsed);
  CHECK(*parsed == r);
}
}  // namespace

TEST_CASE("eth view reads an untagged frame") {
  auto v = eth::view::checked(untagged);
  REQUIRE(v);
  CHECK(v->destination() == dst);
  CHECK(v->source() == src);
  CHECK(v->ethertype() == eth::ethertype::ipv4);
  CHECK(v->vlan_count() == 0);
  CHECK(v->header_size() == 14);
  CHECK(v->header().size() == 14);
  CHECK(v->payload().size() == 30);
  CHECK(v->payload()[0] == 0x45);
  CHECK(v->bytes().size() == untagged.size());
  // Shorter than the minimum frame: still a frame.
  CHECK(untagged.size() < eth::minimum_frame_size);
}

TEST_CASE("eth view reads a single 802.1Q tag") {
  auto v = eth::view::checked(single_tag);
  REQUIRE(v);
  CHECK(v->destination() == dst);
  CHECK(v->source() == src);
  CHECK(v->ethertype() == eth::ethertype::ipv4);
  REQUIRE(v->vlan_count() == 1);
  CHECK(v->vlan(0) == eth::vlan_tag{.tpid = eth::ethertype::vlan, .pcp = 3, .dei = false, .vid = 10});
  CHECK(v->header_size() == 18);
  CHECK(v->payload().size() == 20);
  CHECK(v->payload()[0] == 0x45);
}

TEST_CASE("eth view reads QinQ with an 0x8100 outer tag") {
  auto v = eth::view::checked(qinq_8100);
  REQUIRE(v);
  CHECK(v->ethertype() == eth::ethertype::ipv4);
  REQUIRE(v->vlan_count() == 2);
  CHECK(v->vlan(0) == eth::vlan_tag{.tpid = 0x8100, .pcp = 3, .dei = false, .vid = 10});
  CHECK(v->vlan(1) == eth::vlan_tag{.tpid = 0x8100, .pcp = 0, .dei = false, .vid = 20});
  CHECK(v->header_size() == 22);
  CHECK(v->payload().size() == 20);
  CHECK(v->payload()[0] == 0x45);
}

TEST_CASE("eth view reads 802.1ad QinQ with an 0x88a8 outer tag") {
  auto v = eth::view::checked(qinq_88a8);
  REQUIRE(v);
  CHECK(v->destination() == dst);
  CHECK(v->source() == src);
  CHECK(v->ethertype() == eth::ethertype::ipv6);
  REQUIRE(v->vlan_count() == 2);
  CHECK(v->vlan(0) == eth::vlan_tag{.tpid = eth::ethertype::qinq, .pcp = 5, .dei = true, .vid = 100});
  CHECK(v->vlan(1) == eth::vlan_tag{.tpid = eth::ethertype::vlan, .pcp = 7, .dei = false, .vid = 4094});
  CHECK(v->vlan(0).tci() == 0xb064);
  CHECK(v->vlan(1).tci() == 0xeffe);
  CHECK(v->header_size() == 22);
  CHECK(v->payload().size() == 40);
  CHECK(v->payload()[0] == 0x60);
  // Past the last tag: a default tag, not the EtherType read as one.
  CHECK(v->vlan(2) == eth::vlan_tag{});
}

TEST_CASE("eth view reads QinQ with the legacy 0x9100 outer tag") {
  auto v = eth::view::checked(qinq_9100);
  REQUIRE(v);
  CHECK(v->ethertype() == eth::ethertype::arp);
  REQUIRE(v->vlan_count() == 2);
  CHECK(v->vlan(0) == eth::vlan_tag{.tpid = eth::ethertype::qinq_legacy, .vid = 7});
  CHECK(v->vlan(1) == eth::vlan_tag{.tpid = eth::ethertype::vlan, .vid = 8});
  CHECK(v->payload().empty());
}

TEST_CASE("eth repr emits the same bytes into a junk-filled buffer") {
  SECTION("untagged") {
    check_emit(eth::repr{.destination = dst, .source = src, .ethertype = eth::ethertype::ipv4}, untagged);
  }
  SECTION("one tag") {
    eth::repr r{.destination = dst, .source = src, .ethertype = eth::ethertype::ipv4};
    r.vlans[0] = {.pcp = 3, .vid = 10};
    r.vlan_count = 1;
    CHECK(r.size() == 18);
    check_emit(r, single_tag);
  }
  SECTION("QinQ, 0x8100 outer") {
    const eth::repr r{.destination = dst,
                      .source = src,
                      .ethertype = eth::ethertype::ipv4,
                      .vlans = {{{.pcp = 3, .vid = 10}, {.vid = 20}}},
                      .vlan_count = 2};
    CHECK(r.size() == 22);
    check_emit(r, qinq_8100);
  }
  SECTION("QinQ, 0x88a8 outer") {
    const eth::repr r{.destination = dst,
                      .source = src,
                      .ethertype = eth::ethertype::ipv6,
                      .vlans = {{{.tpid = eth::ethertype::qinq, .pcp = 5, .dei = true, .vid = 100},
                                 {.pcp = 7, .vid = 4094}}},
                      .vlan_count = 2};
    check_emit(r, qinq_88a8);
  }
  SECTION("QinQ, 0x9100 outer") {
    const eth::repr r{.destination = dst,
                      .source = src,
                      .ethertype = eth::ethertype::arp,
                      .vlans = {{{.tpid = eth::ethertype::qinq_legacy, .vid = 7}, {.vid = 8}}},
                      .vlan_count = 2};
    check_emit(r, qinq_9100);
  }
}

TEST_CASE("eth repr does not pad a short frame") {
  std::array<byte, 20> out;
  out.fill(0xa5);
  eth::repr{.destination = dst, .source = src, .ethertype = eth::ethertype::arp}.emit(out);
  CHECK(std::all_of(out.begin() + 14, out.end(), [](byte b) { return b == 0xa5; }));
}

TEST_CASE("eth rejects every truncation of the header with a typed error") {
  SECTION("untagged") {
    const auto cut = GENERATE(range<std::size_t>(0, 14));
    auto v = eth::view::checked(std::span(untagged).first(cut));
    REQUIRE_FALSE(v);
    CHECK(v.error() == parse_error{"eth", errc::truncated, "header", 0, cut, 14});
  }
  SECTION("0x88a8 QinQ") {
    const auto cut = GENERATE(range<std::size_t>(0, 22));
    auto v = eth::view::checked(std::span(qinq_88a8).first(cut));
    REQUIRE_FALSE(v);
    CHECK(v.error().protocol == std::string_view("eth"));
    CHECK(v.error().code == errc::truncated);
    if (cut < 14) {
      CHECK(v.error().field == std::string_view("header"));
    } else if (cut < 18) {
      CHECK(v.error() == parse_error{"eth", errc::truncated, "vlan tag", 12, cut, 18});
    } else {
      CHECK(v.error() == parse_error{"eth", errc::truncated, "vlan tag", 16, cut, 22});
    }
  }
}

TEST_CASE("eth accepts every length from the header on, payload or not") {
  const auto cut = GENERATE(range<std::size_t>(22, 63));
  auto v = eth::view::checked(std::span(qinq_88a8).first(cut));
  REQUIRE(v);
  CHECK(v->payload().size() == cut - 22);
}

TEST_CASE("eth message for a truncated tag") {
  auto v = eth::view::checked(std::span(single_tag).first(15));
  REQUIRE_FALSE(v);
  CHECK(v.error().message() == "eth: vlan tag truncated at offset 12: needs 18 bytes, 15 present");
}

TEST_CASE("eth refuses a third tag") {
  auto v = eth::view::checked(three_tags);
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"eth", errc::above_maximum, "vlan tags", 20, 3, 2});
  CHECK(v.error().message() == "eth: vlan tags 3 exceeds 2");
  // Any of the TPIDs counts as a third tag.
  auto bytes = three_tags;
  bytes[20] = 0x91;
  bytes[21] = 0x00;
  CHECK(eth::view::checked(bytes).error().code == errc::above_maximum);
}

TEST_CASE("eth refuses an S-TAG inside a C-TAG") {
  auto v = eth::view::checked(stag_inside_ctag);
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"eth", errc::mismatch, "inner vlan tpid", 16, 0x88a8, 0x8100});
  CHECK(v.error().message() == "eth: inner vlan tpid 34984 is not 33024");
}

TEST_CASE("eth refuses an 802.3 length frame") {
  auto v = eth::view::checked(llc);
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"eth", errc::unsupported, "ethertype", 12, 7, 0x0600});
  CHECK(v.error().message() == "eth: ethertype 7 is not supported");

  // The same inside a tag, at the field after it; 0x05ff is the last length.
  auto tagged = single_tag;
  tagged[16] = 0x05;
  tagged[17] = 0xff;
  auto t = eth::view::checked(tagged);
  REQUIRE_FALSE(t);
  CHECK(t.error() == parse_error{"eth", errc::unsupported, "ethertype", 16, 0x05ff, 0x0600});
  tagged[17] = 0x00;  // 0x0500
  CHECK_FALSE(eth::view::checked(tagged));
  tagged[16] = 0x06;  // 0x0600: the first EtherType
  CHECK(eth::view::checked(tagged));
}

TEST_CASE("eth mutable view setters") {
  auto bytes = qinq_88a8;
  auto v = eth::mutable_view::checked(bytes);
  REQUIRE(v);
  const auto other = *mac_address::parse("02:00:00:00:00:01");
  v->set_destination(other);
  v->set_source(mac_address::broadcast());
  v->set_ethertype(eth::ethertype::ipv4);
  v->set_vlan_vid(0, 0xabc);
  v->set_vlan_pcp(0, 1);
  v->set_vlan_dei(0, false);
  v->set_vlan(1, {.tpid = eth::ethertype::vlan, .pcp = 2, .dei = true, .vid = 5});
  v->set_vlan_vid(2, 99);  // no third tag: ignored
  CHECK(bytes[12] == 0x88);  // the S-TAG TPID is untouched by the TCI setters
  CHECK(bytes[13] == 0xa8);

  auto r = eth::view::checked(bytes);
  REQUIRE(r);
  CHECK(r->destination() == other);
  CHECK(r->source().is_broadcast());
  CHECK(r->ethertype() == eth::ethertype::ipv4);
  CHECK(r->vlan(0) == eth::vlan_tag{.tpid = eth::ethertype::qinq, .pcp = 1, .dei = false, .vid = 0xabc});
  CHECK(r->vlan(1) == eth::vlan_tag{.tpid = eth::ethertype::vlan, .pcp = 2, .dei = true, .vid = 5});
  CHECK(r->payload()[0] == 0x60);  // the payload is untouched
  CHECK(std::equal(bytes.begin() + 22, bytes.end(), qinq_88a8.begin() + 22));
}

TEST_CASE("eth vlan tag masks fields to their widths") {
  const eth::vlan_tag t{.pcp = 0xff, .dei = true, .vid = 0xffff};
  CHECK(t.tci() == 0xffff);
  CHECK(eth::vlan_tag{.pcp = 8, .vid = 0x1000}.tci() == 0);
  CHECK(eth::vlan_tag::from_tci(0x8100, 0xb064) == eth::vlan_tag{.tpid = 0x8100, .pcp = 5, .dei = true, .vid = 100});
}

namespace {
using namespace pystack;

TEST_CASE("eth untagged header in two steps is emit's, in either order") {
  std::array<byte, eth::header_size> whole{}, source_first{}, destination_first{};
  whole.fill(0xee);
  source_first.fill(0xee);
  destination_first.fill(0xee);
  eth::repr{.destination = dst, .source = src, .ethertype = eth::ethertype::ipv4}.emit(whole);
  REQUIRE(std::equal(whole.begin(), whole.end(), untagged.begin()));
  eth::repr::emit_untagged_source(source_first.data(), src, eth::ethertype::ipv4);
  eth::repr::emit_destination(source_first.data(), dst);
  REQUIRE(source_first == whole);
  eth::repr::emit_destination(destination_first.data(), dst);
  eth::repr::emit_untagged_source(destination_first.data(), src, eth::ethertype::ipv4);
  REQUIRE(destination_first == whole);
}

}  // namespace

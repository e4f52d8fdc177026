// The rtnetlink walkers and message parsers of host.hpp on hand-made byte
// buffers: well-formed messages in the layout of linux/rtnetlink.h, then
// every way a length can lie (truncated headers, lengths below the header,
// lengths past the end, leftovers too short for a header), each of which
// must come back as a typed error. What real kernels send is checked by
// tests/host/netns/, against `ip -j`.
#include "pystack/host.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <string_view>
#include <vector>

namespace {
using namespace pystack;

// Builds netlink bytes in the host's byte order, as the kernel does.
class builder {
 public:
  std::size_t begin_message(std::uint16_t type, std::uint16_t flags = 0, std::uint32_t sequence = 1,
                            std::uint32_t port = 77) {
    const std::size_t start = bytes.size();
    put<std::uint32_t>(0);  // length, set by end_message
    put(type);
    put(flags);
    put(sequence);
    put(port);
    return start;
  }
  void end_message(std::size_t start) { end_at(start, 0); }
  template <class T>
  void put(T value) {
    const std::size_t at = bytes.size();
    bytes.resize(at + sizeof value);
    std::memcpy(bytes.data() + at, &value, sizeof value);
  }
  void raw(std::initializer_list<byte> b) { bytes.insert(bytes.end(), b.begin(), b.end()); }
  void zeros(std::size_t n) { bytes.insert(bytes.end(), n, 0); }

  // ifinfomsg: family, pad, type, index, flags, change.
  void link_header(std::int32_t index, std::uint32_t flags) {
    raw({AF_UNSPEC, 0});
    put<std::uint16_t>(1);  // ARPHRD_ETHER
    put(index);
    put(flags);
    put<std::uint32_t>(0);
  }
  // ifaddrmsg: family, prefixlen, flags, scope, index.
  void address_header(byte family, byte prefix_length, std::uint32_t index) {
    raw({family, prefix_length, 0, 0});
    put(index);
  }
  // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
  void route_header(byte destination_length, byte table = RT_TABLE_MAIN, byte type = RTN_UNICAST,
                    byte family = AF_INET, byte source_length = 0, byte tos = 0) {
    raw({family, destination_length, source_length, tos, table, RTPROT_BOOT, RT_SCOPE_UNIVERSE, type});
    put<std::uint32_t>(0);
  }

  std::size_t begin_attribute(std::uint16_t type) {
    const std::size_t start = bytes.size();
    put<std::uint16_t>(0);
    put(type);
    return start;
  }
  void end_attribute(std::size_t start) { end_at(start, 16); }
  void attribute(std::uint16_t type, std::initializer_list<byte> payload) {
    const std::size_t a = begin_attribute(type);
    raw(payload);
    end_attribute(a);
  }
  void attribute_u32(std::uint16_t type, std::uint32_t value) {
    const std::size_t a = begin_attribute(type);
    put(value);
    end_attribute(a);
  }
  void attribute_ipv4(std::uint16_t type, std::string_view text) {
    const auto address = *ipv4_address::parse(text);
    byte b[4];
    address.to_bytes(b);
    attribute(type, {b[0], b[1], b[2], b[3]});
  }
  void attribute_string(std::uint16_t type, std::string_view text) {
    const std::size_t a = begin_attribute(type);
    bytes.insert(bytes.end(), text.begin(), text.end());
    bytes.push_back(0);
    end_attribute(a);
  }

  std::vector<byte> bytes;

 private:
  // Writes the length (32 bits for messages, 16 for attributes) and pads to 4.
  void end_at(std::size_t start, int width) {
    const std::size_t length = bytes.size() - start;
    if (width == 16) {
      const auto l = static_cast<std::uint16_t>(length);
      std::memcpy(bytes.data() + start, &l, 2);
    } else {
      const auto l = static_cast<std::uint32_t>(length);
      std::memcpy(bytes.data() + start, &l, 4);
    }
    while (bytes.size() % 4) bytes.push_back(0);
  }
};

// The one message of a datagram.
netlink::message only_message(const std::vector<byte>& datagram) {
  netlink::message_reader reader(datagram);
  auto m = reader.next();
  REQUIRE(m);
  REQUIRE(*m);
  return **m;
}

std::vector<byte> link_message() {
  builder b;
  const auto m = b.begin_message(RTM_NEWLINK);
  b.link_header(7, IFF_UP | IFF_RUNNING | IFF_BROADCAST);
  b.attribute_string(IFLA_IFNAME, "veth-test0");
  b.attribute_u32(IFLA_MTU, 1400);
  b.attribute(IFLA_ADDRESS, {0x02, 0x11, 0x22, 0x33, 0x44, 0x55});
  b.attribute(IFLA_BROADCAST, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  b.end_message(m);
  return b.bytes;
}

ipv4_address ip(std::string_view text) { return *ipv4_address::parse(text); }

}  // namespace

TEST_CASE("message reader walks aligned messages and ends cleanly") {
  builder b;
  const auto first = b.begin_message(RTM_NEWLINK, NLM_F_MULTI, 5, 9);
  b.raw({1, 2, 3});  // 19 bytes, padded to 20
  b.end_message(first);
  const auto second = b.begin_message(NLMSG_DONE, NLM_F_MULTI, 5, 9);
  b.put<std::int32_t>(0);
  b.end_message(second);
  REQUIRE(b.bytes.size() == 20 + 20);

  netlink::message_reader reader(b.bytes);
  auto m = reader.next();
  REQUIRE(m);
  REQUIRE(*m);
  CHECK((*m)->type == RTM_NEWLINK);
  CHECK((*m)->flags == NLM_F_MULTI);
  CHECK((*m)->sequence == 5);
  CHECK((*m)->port == 9);
  CHECK((*m)->payload.size() == 3);
  CHECK((*m)->offset == 16);
  m = reader.next();
  REQUIRE(m);
  REQUIRE(*m);
  CHECK((*m)->type == NLMSG_DONE);
  CHECK((*m)->offset == 36);
  m = reader.next();
  REQUIRE(m);
  CHECK_FALSE(*m);
}

TEST_CASE("the last message's padding may be missing") {
  builder b;
  const auto first = b.begin_message(RTM_NEWLINK);
  b.raw({1, 2, 3});
  b.end_message(first);
  b.bytes.pop_back();  // 19 bytes: nlmsg_len 19, no padding
  netlink::message_reader reader(b.bytes);
  auto m = reader.next();
  REQUIRE(m);
  REQUIRE(*m);
  CHECK((*m)->payload.size() == 3);
  m = reader.next();
  REQUIRE(m);
  CHECK_FALSE(*m);
}

TEST_CASE("a remainder shorter than a message header is truncated") {
  const std::size_t left = GENERATE(range(1, 16));
  builder b;
  const auto first = b.begin_message(RTM_NEWLINK);
  b.end_message(first);
  b.zeros(left);
  netlink::message_reader reader(b.bytes);
  REQUIRE(reader.next());
  auto m = reader.next();
  REQUIRE_FALSE(m);
  CHECK(m.error().code == host_errc::truncated);
  CHECK(m.error().offset == 16);
  CHECK(m.error().value == left);
  CHECK(m.error().limit == 16);
  // After an error the reader is spent rather than wandering on.
  auto after = reader.next();
  REQUIRE(after);
  CHECK_FALSE(*after);
}

TEST_CASE("nlmsg_len below the header or past the datagram is a bad length") {
  const std::uint32_t length = GENERATE(0u, 1u, 15u, 41u, 0xffffffffu);
  builder b;
  const auto first = b.begin_message(RTM_NEWLINK);
  b.zeros(24);
  b.end_message(first);
  std::memcpy(b.bytes.data(), &length, 4);
  netlink::message_reader reader(b.bytes);
  auto m = reader.next();
  REQUIRE_FALSE(m);
  CHECK(m.error().code == host_errc::bad_length);
  CHECK(m.error().what == std::string_view("nlmsg_len"));
  CHECK(m.error().value == length);
  CHECK(m.error().limit == (length < 16 ? 16u : 40u));
}

TEST_CASE("attribute reader masks the nested flag and accepts empty payloads") {
  builder b;
  b.attribute(IFLA_LINKINFO | NLA_F_NESTED, {});
  b.attribute(IFLA_MTU, {1, 2});
  netlink::attribute_reader reader(b.bytes, 100);
  auto a = reader.next();
  REQUIRE(a);
  REQUIRE(*a);
  CHECK((*a)->type == IFLA_LINKINFO);
  CHECK((*a)->payload.empty());
  CHECK((*a)->offset == 104);
  a = reader.next();
  REQUIRE(a);
  REQUIRE(*a);
  CHECK((*a)->type == IFLA_MTU);
  CHECK((*a)->payload.size() == 2);
  CHECK((*a)->offset == 108);
  // Two bytes of payload is not a u32.
  auto mtu = (*a)->u32("IFLA_MTU");
  REQUIRE_FALSE(mtu);
  CHECK(mtu.error().code == host_errc::bad_length);
  CHECK(mtu.error().value == 2);
  CHECK(mtu.error().limit == 4);
  a = reader.next();
  REQUIRE(a);
  CHECK_FALSE(*a);
}

TEST_CASE("rta_len below the attribute header is a bad length, not a loop") {
  const std::uint16_t length = GENERATE(0, 1, 2, 3);
  builder b;
  b.attribute_u32(IFLA_MTU, 1500);
  std::memcpy(b.bytes.data(), &length, 2);
  netlink::attribute_reader reader(b.bytes, 0);
  auto a = reader.next();
  REQUIRE_FALSE(a);
  CHECK(a.error().code == host_errc::bad_length);
  CHECK(a.error().what == std::string_view("rta_len"));
  CHECK(a.error().value == length);
  CHECK(a.error().limit == 4);
}

TEST_CASE("rta_len past the bytes present is a bad length") {
  const std::uint16_t length = GENERATE(9, 100, 0xffff);
  builder b;
  b.attribute_u32(IFLA_MTU, 1500);
  std::memcpy(b.bytes.data(), &length, 2);
  netlink::attribute_reader reader(b.bytes, 20);
  auto a = reader.next();
  REQUIRE_FALSE(a);
  CHECK(a.error().code == host_errc::bad_length);
  CHECK(a.error().offset == 20);
  CHECK(a.error().value == length);
  CHECK(a.error().limit == 8);
}

TEST_CASE("leftover bytes too short for an attribute header are truncated") {
  const std::size_t left = GENERATE(1, 2, 3);
  builder b;
  b.attribute_u32(IFLA_MTU, 1500);
  b.zeros(left);
  netlink::attribute_reader reader(b.bytes, 0);
  REQUIRE(reader.next());
  auto a = reader.next();
  REQUIRE_FALSE(a);
  CHECK(a.error().code == host_errc::truncated);
  CHECK(a.error().offset == 8);
  CHECK(a.error().value == left);
}

TEST_CASE("parse_link reads name, index, MAC, MTU and flags") {
  const auto bytes = link_message();
  auto info = netlink::parse_link(only_message(bytes));
  REQUIRE(info);
  CHECK(info->name == "veth-test0");
  CHECK(info->index == 7);
  CHECK(info->mac == *mac_address::parse("02:11:22:33:44:55"));
  CHECK(info->mtu == 1400);
  CHECK(info->up);
  CHECK(info->running);
  CHECK_FALSE(info->loopback);
  CHECK(info->addresses.empty());
}

TEST_CASE("parse_link: a hardware address that is not six octets is no MAC") {
  builder b;
  const auto m = b.begin_message(RTM_NEWLINK);
  b.link_header(3, IFF_UP | IFF_POINTOPOINT);
  b.attribute_string(IFLA_IFNAME, "tun0");
  b.attribute(IFLA_ADDRESS, {10, 0, 0, 1});
  b.end_message(m);
  auto info = netlink::parse_link(only_message(b.bytes));
  REQUIRE(info);
  CHECK(info->mac == mac_address{});
  CHECK(info->up);
  CHECK_FALSE(info->running);
}

TEST_CASE("parse_link rejects what cannot be an interface") {
  SECTION("ifinfomsg cut short") {
    const std::size_t keep = GENERATE(range(0, 16));
    builder b;
    const auto m = b.begin_message(RTM_NEWLINK);
    b.zeros(keep);
    b.end_message(m);
    b.bytes.resize(16 + keep);
    auto info = netlink::parse_link(only_message(b.bytes));
    REQUIRE_FALSE(info);
    CHECK(info.error().code == host_errc::truncated);
    CHECK(info.error().value == keep);
    CHECK(info.error().limit == 16);
  }
  SECTION("no name") {
    builder b;
    const auto m = b.begin_message(RTM_NEWLINK);
    b.link_header(2, 0);
    b.attribute_u32(IFLA_MTU, 1500);
    b.end_message(m);
    auto info = netlink::parse_link(only_message(b.bytes));
    REQUIRE_FALSE(info);
    CHECK(info.error().code == host_errc::bad_value);
  }
  SECTION("a name longer than IFNAMSIZ - 1, or empty") {
    const std::string name = GENERATE(std::string(16, 'x'), std::string());
    builder b;
    const auto m = b.begin_message(RTM_NEWLINK);
    b.link_header(2, 0);
    b.attribute_string(IFLA_IFNAME, name);
    b.end_message(m);
    auto info = netlink::parse_link(only_message(b.bytes));
    REQUIRE_FALSE(info);
    CHECK(info.error().code == host_errc::bad_value);
    CHECK(info.error().value == name.size());
  }
  SECTION("index 0 or negative") {
    const std::int32_t index = GENERATE(0, -1);
    builder b;
    const auto m = b.begin_message(RTM_NEWLINK);
    b.link_header(index, 0);
    b.attribute_string(IFLA_IFNAME, "x");
    b.end_message(m);
    auto info = netlink::parse_link(only_message(b.bytes));
    REQUIRE_FALSE(info);
    CHECK(info.error().code == host_errc::bad_value);
    CHECK(info.error().what == std::string_view("ifi_index"));
  }
  SECTION("an MTU of the wrong size") {
    builder b;
    const auto m = b.begin_message(RTM_NEWLINK);
    b.link_header(2, 0);
    b.attribute_string(IFLA_IFNAME, "x");
    b.attribute(IFLA_MTU, {0xdc, 0x05, 0, 0, 0});
    b.end_message(m);
    auto info = netlink::parse_link(only_message(b.bytes));
    REQUIRE_FALSE(info);
    CHECK(info.error().code == host_errc::bad_length);
    CHECK(info.error().what == std::string_view("IFLA_MTU"));
    CHECK(info.error().offset == 16 + 16 + 8 + 4);
  }
}

TEST_CASE("parse_link on every truncation of a valid message never reads past it") {
  // The message keeps claiming its full length while the datagram shrinks:
  // the reader must refuse it; with nlmsg_len shrunk too, every attribute
  // cut mid-way must be refused and every cut on a boundary accepted.
  const auto full = link_message();
  const std::size_t keep = GENERATE_COPY(range<std::size_t>(0, full.size()));
  std::vector<byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(keep));
  netlink::message_reader reader(cut);
  auto m = reader.next();
  if (keep == 0) {
    REQUIRE(m);
    CHECK_FALSE(*m);
    return;
  }
  REQUIRE_FALSE(m);
  CHECK((m.error().code == host_errc::truncated || m.error().code == host_errc::bad_length));

  if (keep < 16) return;
  const auto length = static_cast<std::uint32_t>(keep);
  std::memcpy(cut.data(), &length, 4);
  netlink::message_reader shortened(cut);
  auto again = shortened.next();
  REQUIRE(again);
  REQUIRE(*again);
  auto info = netlink::parse_link(**again);
  // Attribute boundaries of link_message(): header 16 + ifinfomsg 16 = 32,
  // then IFLA_IFNAME 16 (15 + pad), IFLA_MTU 8, IFLA_ADDRESS 12 (10 + pad),
  // IFLA_BROADCAST 12. A cut inside the padding of the last attribute is
  // fine too, as the kernel's own walk allows.
  const bool whole_attributes = keep == 48 || keep == 56 || keep == 66 || keep == 67 ||
                                keep == 68 || keep == 78 || keep == 79;
  if (keep < 32) {
    REQUIRE_FALSE(info);
    CHECK(info.error().code == host_errc::truncated);
  } else if (keep < 47) {
    // Without a whole IFLA_IFNAME there is no name, or a broken attribute.
    REQUIRE_FALSE(info);
  } else if (keep == 47) {
    // The name's padding byte is gone: still a whole attribute.
    CHECK(info);
  } else if (whole_attributes) {
    CHECK(info);
  } else {
    REQUIRE_FALSE(info);
    CHECK((info.error().code == host_errc::truncated || info.error().code == host_errc::bad_length));
  }
}

TEST_CASE("parse_address: IFA_LOCAL wins over IFA_ADDRESS; other families are skipped") {
  builder b;
  const auto m = b.begin_message(RTM_NEWADDR);
  b.address_header(AF_INET, 28, 5);
  b.attribute_ipv4(IFA_ADDRESS, "10.201.0.9");  // the peer on a point-to-point link
  b.attribute_ipv4(IFA_LOCAL, "10.201.0.17");
  b.attribute_string(IFA_LABEL, "veth0");
  b.end_message(m);
  auto a = netlink::parse_address(only_message(b.bytes));
  REQUIRE(a);
  REQUIRE(*a);
  CHECK((*a)->interface_index == 5);
  CHECK((*a)->address.address == ip("10.201.0.17"));
  CHECK((*a)->address.prefix_length == 28);

  builder only_address;
  const auto m2 = only_address.begin_message(RTM_NEWADDR);
  only_address.address_header(AF_INET, 24, 5);
  only_address.attribute_ipv4(IFA_ADDRESS, "10.201.0.9");
  only_address.end_message(m2);
  auto a2 = netlink::parse_address(only_message(only_address.bytes));
  REQUIRE(a2);
  REQUIRE(*a2);
  CHECK((*a2)->address.address == ip("10.201.0.9"));

  builder v6;
  const auto m3 = v6.begin_message(RTM_NEWADDR);
  v6.address_header(AF_INET6, 64, 5);
  v6.attribute(IFA_ADDRESS, {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  v6.end_message(m3);
  auto a3 = netlink::parse_address(only_message(v6.bytes));
  REQUIRE(a3);
  CHECK_FALSE(*a3);
}

TEST_CASE("parse_address rejects impossible addresses") {
  SECTION("prefix length 33") {
    builder b;
    const auto m = b.begin_message(RTM_NEWADDR);
    b.address_header(AF_INET, 33, 5);
    b.attribute_ipv4(IFA_LOCAL, "10.0.0.1");
    b.end_message(m);
    auto a = netlink::parse_address(only_message(b.bytes));
    REQUIRE_FALSE(a);
    CHECK(a.error().code == host_errc::bad_value);
    CHECK(a.error().value == 33);
    CHECK(a.error().limit == 32);
    CHECK(a.error().offset == 17);
  }
  SECTION("a five-byte address") {
    builder b;
    const auto m = b.begin_message(RTM_NEWADDR);
    b.address_header(AF_INET, 24, 5);
    b.attribute(IFA_LOCAL, {10, 0, 0, 1, 0});
    b.end_message(m);
    auto a = netlink::parse_address(only_message(b.bytes));
    REQUIRE_FALSE(a);
    CHECK(a.error().code == host_errc::bad_length);
    CHECK(a.error().value == 5);
  }
  SECTION("no address at all") {
    builder b;
    const auto m = b.begin_message(RTM_NEWADDR);
    b.address_header(AF_INET, 24, 5);
    b.end_message(m);
    auto a = netlink::parse_address(only_message(b.bytes));
    REQUIRE_FALSE(a);
    CHECK(a.error().code == host_errc::bad_value);
  }
  SECTION("ifaddrmsg cut short") {
    const std::size_t keep = GENERATE(range(0, 8));
    builder b;
    const auto m = b.begin_message(RTM_NEWADDR);
    b.zeros(keep);
    b.end_message(m);
    b.bytes.resize(16 + keep);
    auto a = netlink::parse_address(only_message(b.bytes));
    REQUIRE_FALSE(a);
    CHECK(a.error().code == host_errc::truncated);
    CHECK(a.error().limit == 8);
  }
}

TEST_CASE("parse_route reads a default route and an on-link route") {
  builder b;
  const auto m = b.begin_message(RTM_NEWROUTE);
  b.route_header(0);
  b.attribute_u32(RTA_TABLE, RT_TABLE_MAIN);
  b.attribute_u32(RTA_PRIORITY, 100);
  b.attribute_ipv4(RTA_GATEWAY, "10.201.0.1");
  b.attribute_u32(RTA_OIF, 4);
  b.end_message(m);
  auto r = netlink::parse_route(only_message(b.bytes));
  REQUIRE(r);
  REQUIRE(*r);
  CHECK((*r)->destination == ip("0.0.0.0"));
  CHECK((*r)->prefix_length == 0);
  CHECK((*r)->gateway == ip("10.201.0.1"));
  CHECK((*r)->interface_index == 4);
  CHECK((*r)->metric == 100);
  CHECK((*r)->type == route_type::unicast);
  CHECK_FALSE((*r)->preferred_source);

  builder link;
  const auto m2 = link.begin_message(RTM_NEWROUTE);
  link.route_header(24);
  link.attribute_ipv4(RTA_DST, "10.201.0.0");
  link.attribute_ipv4(RTA_PREFSRC, "10.201.0.2");
  link.attribute_u32(RTA_OIF, 4);
  link.end_message(m2);
  auto r2 = netlink::parse_route(only_message(link.bytes));
  REQUIRE(r2);
  REQUIRE(*r2);
  CHECK((*r2)->destination == ip("10.201.0.0"));
  CHECK((*r2)->prefix_length == 24);
  CHECK_FALSE((*r2)->gateway);
  CHECK((*r2)->preferred_source == ip("10.201.0.2"));
  CHECK((*r2)->metric == 0);
}

TEST_CASE("parse_route keeps the main table only, by RTA_TABLE when present") {
  struct case_ {
    byte header_table;
    std::optional<std::uint32_t> attribute_table;
    bool kept;
  };
  const auto c = GENERATE(case_{RT_TABLE_MAIN, std::nullopt, true}, case_{RT_TABLE_LOCAL, std::nullopt, false},
                          case_{RT_TABLE_UNSPEC, RT_TABLE_MAIN, true},
                          case_{RT_TABLE_MAIN, RT_TABLE_LOCAL, false},
                          case_{RT_TABLE_COMPAT, 1000, false});
  builder b;
  const auto m = b.begin_message(RTM_NEWROUTE);
  b.route_header(8, c.header_table);
  b.attribute_ipv4(RTA_DST, "10.0.0.0");
  if (c.attribute_table) b.attribute_u32(RTA_TABLE, *c.attribute_table);
  b.attribute_u32(RTA_OIF, 2);
  b.end_message(m);
  auto r = netlink::parse_route(only_message(b.bytes));
  REQUIRE(r);
  CHECK(r->has_value() == c.kept);
}

TEST_CASE("parse_route skips what a route cannot describe") {
  SECTION("IPv6") {
    builder b;
    const auto m = b.begin_message(RTM_NEWROUTE);
    b.route_header(64, RT_TABLE_MAIN, RTN_UNICAST, AF_INET6);
    b.attribute_u32(RTA_OIF, 2);
    b.end_message(m);
    auto r = netlink::parse_route(only_message(b.bytes));
    REQUIRE(r);
    CHECK_FALSE(*r);
  }
  SECTION("source and TOS selectors") {
    const bool by_source = GENERATE(true, false);
    builder b;
    const auto m = b.begin_message(RTM_NEWROUTE);
    b.route_header(24, RT_TABLE_MAIN, RTN_UNICAST, AF_INET, by_source ? 24 : 0, by_source ? 0 : 0x10);
    b.attribute_u32(RTA_OIF, 2);
    b.end_message(m);
    auto r = netlink::parse_route(only_message(b.bytes));
    REQUIRE(r);
    CHECK_FALSE(*r);
  }
  SECTION("an IPv6 next hop (RTA_VIA)") {
    builder b;
    const auto m = b.begin_message(RTM_NEWROUTE);
    b.route_header(0);
    b.attribute(RTA_VIA, {AF_INET6 & 0xff, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
    b.attribute_u32(RTA_OIF, 2);
    b.end_message(m);
    auto r = netlink::parse_route(only_message(b.bytes));
    REQUIRE(r);
    CHECK_FALSE(*r);
  }
  SECTION("a unicast route without an interface") {
    builder b;
    const auto m = b.begin_message(RTM_NEWROUTE);
    b.route_header(0);
    b.attribute_ipv4(RTA_GATEWAY, "10.0.0.1");
    b.end_message(m);
    auto r = netlink::parse_route(only_message(b.bytes));
    REQUIRE(r);
    CHECK_FALSE(*r);
  }
  SECTION("local, broadcast and other types") {
    const byte type = GENERATE(byte{RTN_LOCAL}, byte{RTN_BROADCAST}, byte{RTN_THROW}, byte{RTN_NAT});
    builder b;
    const auto m = b.begin_message(RTM_NEWROUTE);
    b.route_header(32, RT_TABLE_MAIN, type);
    b.attribute_ipv4(RTA_DST, "10.0.0.1");
    b.attribute_u32(RTA_OIF, 2);
    b.end_message(m);
    auto r = netlink::parse_route(only_message(b.bytes));
    REQUIRE(r);
    CHECK_FALSE(*r);
  }
}

TEST_CASE("parse_route keeps blackhole routes and masks host bits") {
  builder b;
  const auto m = b.begin_message(RTM_NEWROUTE);
  b.route_header(16, RT_TABLE_MAIN, RTN_BLACKHOLE);
  b.attribute_ipv4(RTA_DST, "10.9.8.7");
  b.end_message(m);
  auto r = netlink::parse_route(only_message(b.bytes));
  REQUIRE(r);
  REQUIRE(*r);
  CHECK((*r)->type == route_type::blackhole);
  CHECK((*r)->destination == ip("10.9.0.0"));
  CHECK((*r)->interface_index == 0);
}

TEST_CASE("parse_route takes the first next hop of a multipath route") {
  builder b;
  const auto m = b.begin_message(RTM_NEWROUTE);
  b.route_header(0);
  const auto multipath = b.begin_attribute(RTA_MULTIPATH);
  for (const auto& [index, gateway] : {std::pair{3, "10.1.0.1"}, std::pair{4, "10.2.0.1"}}) {
    const std::size_t hop = b.bytes.size();
    b.put<std::uint16_t>(0);  // rtnh_len
    b.raw({0, 0});            // flags, hops
    b.put<std::int32_t>(index);
    b.attribute_ipv4(RTA_GATEWAY, gateway);
    const auto length = static_cast<std::uint16_t>(b.bytes.size() - hop);
    std::memcpy(b.bytes.data() + hop, &length, 2);
  }
  b.end_attribute(multipath);
  b.end_message(m);
  auto r = netlink::parse_route(only_message(b.bytes));
  REQUIRE(r);
  REQUIRE(*r);
  CHECK((*r)->interface_index == 3);
  CHECK((*r)->gateway == ip("10.1.0.1"));

  SECTION("a next hop whose length lies") {
    const std::uint16_t lie = GENERATE(0, 7, 200);
    const std::size_t hop = multipath + 4;
    std::memcpy(b.bytes.data() + hop, &lie, 2);
    auto bad = netlink::parse_route(only_message(b.bytes));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == host_errc::bad_length);
    CHECK(bad.error().what == std::string_view("rtnh_len"));
    CHECK(bad.error().value == lie);
  }
}

TEST_CASE("parse_route rejects impossible routes") {
  SECTION("dst_len 33") {
    builder b;
    const auto m = b.begin_message(RTM_NEWROUTE);
    b.route_header(33);
    b.attribute_u32(RTA_OIF, 2);
    b.end_message(m);
    auto r = netlink::parse_route(only_message(b.bytes));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == host_errc::bad_value);
    CHECK(r.error().value == 33);
  }
  SECTION("fixed-size attributes of the wrong size") {
    const std::uint16_t type = GENERATE(std::uint16_t{RTA_DST}, std::uint16_t{RTA_GATEWAY},
                                        std::uint16_t{RTA_OIF}, std::uint16_t{RTA_PRIORITY},
                                        std::uint16_t{RTA_TABLE}, std::uint16_t{RTA_PREFSRC});
    const std::size_t size = GENERATE(0, 3, 5, 16);
    builder b;
    const auto m = b.begin_message(RTM_NEWROUTE);
    b.route_header(24);
    const auto a = b.begin_attribute(type);
    b.zeros(size);
    b.end_attribute(a);
    b.end_message(m);
    auto r = netlink::parse_route(only_message(b.bytes));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == host_errc::bad_length);
    CHECK(r.error().value == size);
    CHECK(r.error().limit == 4);
  }
  SECTION("rtmsg cut short") {
    const std::size_t keep = GENERATE(range(0, 12));
    builder b;
    const auto m = b.begin_message(RTM_NEWROUTE);
    b.zeros(keep);
    b.end_message(m);
    b.bytes.resize(16 + keep);
    auto r = netlink::parse_route(only_message(b.bytes));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == host_errc::truncated);
    CHECK(r.error().limit == 12);
  }
}

TEST_CASE("dump request is a header and a zeroed family header") {
  const auto request = netlink::dump_request(RTM_GETROUTE, 42, AF_INET, netlink::route_header_size);
  REQUIRE(request.size() == 28);
  auto m = only_message(request);
  CHECK(m.type == RTM_GETROUTE);
  CHECK(m.flags == (NLM_F_REQUEST | NLM_F_DUMP));
  CHECK(m.sequence == 42);
  CHECK(m.port == 0);
  CHECK(m.payload.size() == 12);
  CHECK(m.payload[0] == AF_INET);
  for (std::size_t i = 1; i < m.payload.size(); ++i) CHECK(m.payload[i] == 0);
}

TEST_CASE("dump datagrams: data, end, errors and interruptions") {
  constexpr std::uint32_t sequence = 9, port = 1234;
  const auto run = [&](const builder& b, std::vector<std::uint16_t>& seen, bool& interrupted) {
    return netlink::handle_dump_datagram(b.bytes, RTM_NEWLINK, sequence, port, interrupted,
                                         [&](const netlink::message& m) -> expected<void, host_error> {
                                           seen.push_back(m.type);
                                           return {};
                                         });
  };
  std::vector<std::uint16_t> seen;
  bool interrupted = false;

  SECTION("two data messages then more to come") {
    builder b;
    b.end_message(b.begin_message(RTM_NEWLINK, NLM_F_MULTI, sequence, port));
    b.end_message(b.begin_message(NLMSG_NOOP, 0, sequence, port));
    b.end_message(b.begin_message(RTM_NEWLINK, NLM_F_MULTI, sequence, port));
    auto state = run(b, seen, interrupted);
    REQUIRE(state);
    CHECK(*state == netlink::dump_state::more);
    CHECK(seen == std::vector<std::uint16_t>{RTM_NEWLINK, RTM_NEWLINK});
    CHECK_FALSE(interrupted);
  }
  SECTION("NLMSG_DONE ends the dump; NLM_F_DUMP_INTR marks it") {
    const bool flagged = GENERATE(false, true);
    builder b;
    b.end_message(b.begin_message(RTM_NEWLINK, NLM_F_MULTI | (flagged ? NLM_F_DUMP_INTR : 0), sequence, port));
    const auto done = b.begin_message(NLMSG_DONE, NLM_F_MULTI, sequence, port);
    b.put<std::int32_t>(0);
    b.end_message(done);
    auto state = run(b, seen, interrupted);
    REQUIRE(state);
    CHECK(*state == (flagged ? netlink::dump_state::done_interrupted : netlink::dump_state::done));
    CHECK(interrupted == flagged);
  }
  SECTION("an error from the kernel carries its errno") {
    const std::uint16_t type = GENERATE(std::uint16_t{NLMSG_ERROR}, std::uint16_t{NLMSG_DONE});
    builder b;
    const auto e = b.begin_message(type, 0, sequence, port);
    b.put<std::int32_t>(-EPERM);
    b.zeros(16);  // the request's header, echoed
    b.end_message(e);
    auto state = run(b, seen, interrupted);
    REQUIRE_FALSE(state);
    CHECK(state.error().code == host_errc::netlink_error);
    CHECK(state.error().system_errno == EPERM);
    CHECK(state.error().message().find(std::strerror(EPERM)) != std::string::npos);
  }
  SECTION("an NLMSG_ERROR too short for its errno") {
    builder b;
    const auto e = b.begin_message(NLMSG_ERROR, 0, sequence, port);
    b.raw({1, 2});
    b.end_message(e);
    auto state = run(b, seen, interrupted);
    REQUIRE_FALSE(state);
    CHECK(state.error().code == host_errc::truncated);
  }
  SECTION("another sequence, port or type is not ours") {
    const int which = GENERATE(0, 1, 2);
    builder b;
    b.end_message(b.begin_message(which == 2 ? RTM_NEWROUTE : RTM_NEWLINK, 0, which == 0 ? sequence + 1 : sequence,
                                  which == 1 ? port + 1 : port));
    auto state = run(b, seen, interrupted);
    REQUIRE_FALSE(state);
    CHECK(state.error().code == host_errc::unexpected_message);
    CHECK(state.error().what ==
          std::string_view(which == 0 ? "nlmsg_seq" : which == 1 ? "nlmsg_pid" : "nlmsg_type"));
    CHECK(seen.empty());
  }
  SECTION("an error from the visitor stops the walk") {
    builder b;
    b.end_message(b.begin_message(RTM_NEWLINK, 0, sequence, port));
    b.end_message(b.begin_message(RTM_NEWLINK, 0, sequence, port));
    int calls = 0;
    auto state = netlink::handle_dump_datagram(b.bytes, RTM_NEWLINK, sequence, port, interrupted,
                                               [&](const netlink::message&) -> expected<void, host_error> {
                                                 ++calls;
                                                 return host_error{.code = host_errc::bad_value, .what = "x"};
                                               });
    REQUIRE_FALSE(state);
    CHECK(state.error().what == std::string_view("x"));
    CHECK(calls == 1);
  }
}

TEST_CASE("every error renders a message naming its step") {
  for (auto code : {host_errc::system, host_errc::netlink_error, host_errc::truncated, host_errc::bad_length,
                    host_errc::bad_value, host_errc::unexpected_message, host_errc::interrupted,
                    host_errc::too_large, host_errc::no_source}) {
    const host_error e{.code = code, .what = "IFLA_MTU", .value = 3, .limit = 4, .system_errno = EPERM};
    const std::string text = e.message();
    CHECK(text.rfind("host: IFLA_MTU", 0) == 0);
  }
}

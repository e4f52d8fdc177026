// pcap_live without root: typed errors for bad arguments and a missing
// interface, and the BPF filter that filter_for() builds, run by libpcap's
// own filter engine over frames built here. (The exchange with the kernel
// over a veth pair is pcap_live_netns_test.)
#include "pystack/device/pcap_live.hpp"

#include <pcap/pcap.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/device/frames.hpp"

namespace {
using namespace pystack;

// Whether this process may open a packet socket, which is what libpcap
// does first. Root in Bazel's sandbox may not: it runs in a user namespace
// that does not own the network namespace, so CAP_NET_RAW does not apply.
bool can_open_packet_socket() {
  const int fd = ::socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// Whether `filter` accepts `frame`, decided by libpcap's BPF interpreter.
bool accepts(const std::string& filter, const std::vector<byte>& frame) {
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> dead(pcap_open_dead(DLT_EN10MB, 65535), pcap_close);
  REQUIRE(dead);
  bpf_program program{};
  REQUIRE(pcap_compile(dead.get(), &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0);
  pcap_pkthdr header{};
  header.caplen = header.len = static_cast<bpf_u_int32>(frame.size());
  const bool match = pcap_offline_filter(&program, &header, frame.data()) != 0;
  pcap_freecode(&program);
  return match;
}
}  // namespace

static_assert(device<pcap_live>);
static_assert(!std::is_copy_constructible_v<pcap_live>);
static_assert(std::is_move_constructible_v<pcap_live>);

TEST_CASE("an interface that does not exist is a typed error", "[pcap_live]") {
  const auto r = pcap_live::open("nosuchif0");
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(r.error().message.find("nosuchif0") != std::string::npos);
  if (can_open_packet_socket()) {
    CHECK(r.error().what == device_error::code::no_such_device);
  } else {
    // libpcap fails on the packet socket before it looks the name up.
    CHECK(r.error().what == device_error::code::permission_denied);
  }
}

TEST_CASE("bad options are refused before libpcap is asked", "[pcap_live]") {
  using enum device_error::code;
  CHECK(pcap_live::open("").error().what == invalid_argument);
  CHECK(pcap_live::open("lo", {.snapshot_length = 0}).error().what == invalid_argument);
  CHECK(pcap_live::open("lo", {.buffer_bytes = 0}).error().what == invalid_argument);
  CHECK(std::string(to_string(no_such_device)) == "no such device");
}

TEST_CASE("filter_for admits the stack's own traffic and nothing else", "[pcap_live]") {
  const std::string filter = pcap_live::filter_for(test::mac_a, test::ip_a);
  CAPTURE(filter);
  const mac_address stranger{{0x02, 0, 0, 0, 0, 0x77}};
  const ipv4_address other_ip = ipv4_address::from_octets(10, 0, 0, 99);
  const mac_address ipv4_multicast_mac{{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}};

  // ARP, broadcast or to us.
  CHECK(accepts(filter, test::arp_frame(arp::operation::request, test::mac_b, test::ip_b, {}, test::ip_a,
                                        mac_address::broadcast())));
  CHECK(accepts(filter, test::arp_frame(arp::operation::reply, test::mac_b, test::ip_b, test::mac_a, test::ip_a,
                                        test::mac_a)));
  // IPv4 to our MAC and address.
  CHECK(accepts(filter, test::echo_frame(1, 8, test::mac_b, test::mac_a, test::ip_b, test::ip_a)));
  // IPv4 limited broadcast, and a multicast group.
  CHECK(accepts(filter, test::echo_frame(1, 8, test::mac_b, mac_address::broadcast(), test::ip_b,
                                         ipv4_address::broadcast())));
  CHECK(accepts(filter, test::echo_frame(1, 8, test::mac_b, ipv4_multicast_mac, test::ip_b,
                                         ipv4_address::from_octets(224, 0, 0, 251))));

  // Someone else's unicast frame.
  CHECK_FALSE(accepts(filter, test::echo_frame(1, 8, test::mac_b, stranger, test::ip_b, test::ip_a)));
  CHECK_FALSE(accepts(filter, test::arp_frame(arp::operation::reply, test::mac_b, test::ip_b, stranger, other_ip,
                                              stranger)));
  // To our MAC but another address.
  CHECK_FALSE(accepts(filter, test::echo_frame(1, 8, test::mac_b, test::mac_a, test::ip_b, other_ip)));
  // Broadcast IPv4 to a unicast address that is not ours.
  CHECK_FALSE(accepts(filter, test::echo_frame(1, 8, test::mac_b, mac_address::broadcast(), test::ip_b, other_ip)));
  // IPv6 multicast (neighbour discovery noise on every link).
  auto ipv6 = test::echo_frame(1, 8, test::mac_b, mac_address{{0x33, 0x33, 0, 0, 0, 1}});
  wire::store_be16(ipv6.data() + 12, eth::ethertype::ipv6);
  CHECK_FALSE(accepts(filter, ipv6));
}

// Composition rules as named concepts, checked both ways (the negative tests
// of Boost.Mp11's *_sf.cpp), and one example policy per policy point,
// compiled and run so that the tables in the layer headers cannot drift.
#include <catch2/catch.hpp>
#include <deque>
#include <vector>

#include "pystack/layers/arp.hpp"
#include "pystack/layers/ethernet.hpp"
#include "pystack/layers/icmp.hpp"
#include "pystack/layers/ipv4.hpp"
#include "pystack/layers/udp.hpp"
#include "pystack/stack/stack.hpp"

namespace {
using namespace pystack;

struct sink_app {
  template <class H, class S>
  void on_datagram(const H&, bytes_view, S&) {}
};

// ---- well-formed stacks ----
static_assert(valid_stack<Ethernet<>, IP<UDP<Port<7, sink_app>>>, ARP<>>);
static_assert(valid_stack<Ethernet<IP<ICMP<>>, ARP<>>>);
static_assert(valid_stack<Ethernet<ethernet_promiscuous_policy>, IP<ICMP<>, UDP<>>, ARP<>>);

// ---- ill-formed stacks, each refused by the concept ----
// A transport directly on Ethernet: UDP carries no EtherType.
static_assert(!valid_stack<Ethernet<>, UDP<>>);
// The link layer must come first.
static_assert(!valid_stack<IP<ICMP<>>, Ethernet<>>);
// A link layer with nothing above it.
static_assert(!valid_stack<Ethernet<>>);
// Two layers claiming EtherType 0x0800.
static_assert(!valid_stack<Ethernet<>, IP<ICMP<>>, IP<UDP<>>>);
// ARP inside IP: ARP is not an IP protocol.
static_assert(!valid_stack<Ethernet<>, IP<ARP<>>>);
// Two ICMP layers under one IP.
static_assert(!valid_stack<Ethernet<>, IP<ICMP<>, ICMP<>>>);
// Two applications on port 7.
static_assert(!valid_stack<Ethernet<>, IP<UDP<Port<7, sink_app>, Port<7, sink_app>>>>);
// Something that is neither a layer nor a policy of that layer.
static_assert(!valid_stack<Ethernet<int>, IP<ICMP<>>>);
static_assert(!valid_stack<Ethernet<>, IP<ICMP<>, double>>);
static_assert(!valid_stack<Ethernet<>, IP<ICMP<>>, ARP<int>>);
// Two policies for one layer are ambiguous.
static_assert(!valid_stack<Ethernet<ethernet_default_policy, ethernet_promiscuous_policy>, IP<ICMP<>>>);
// UDP takes applications on ports only.
static_assert(!valid_stack<Ethernet<>, IP<UDP<ICMP<>>>>);

// ---- a scripted device, as in stack_test.cc ----
struct scripted_device {
  std::deque<std::vector<byte>> inbound;
  std::vector<std::vector<byte>> sent;
  device_stats counters;
  bool transmit(bytes_view f) {
    sent.emplace_back(f.begin(), f.end());
    return true;
  }
  template <class Handler>
  std::size_t receive(Handler&& handler, std::size_t max) {
    std::size_t n = 0;
    for (; n < max && !inbound.empty(); ++n) {
      const auto bytes = std::move(inbound.front());
      inbound.pop_front();
      handler(received_frame{.bytes = bytes});
    }
    return n;
  }
  int wait_fd() const { return -1; }
  std::optional<instant> next_delivery() const { return inbound.empty() ? std::nullopt : std::optional(instant{}); }
  const device_stats& stats() const { return counters; }
};

const auto our_mac = *mac_address::parse("02:00:00:00:00:01");
const auto peer_mac = *mac_address::parse("02:00:00:00:00:02");
const auto our_ip = *ipv4_address::parse("10.9.0.1");
const auto peer_ip = *ipv4_address::parse("10.9.0.2");

std::vector<byte> arp_request(ipv4_address target, mac_address to = mac_address::broadcast()) {
  std::vector<byte> f(eth::header_size + arp::repr::size());
  eth::repr{.destination = to, .source = peer_mac, .ethertype = eth::ethertype::arp}.emit(f);
  arp::repr{.operation = arp::operation::request,
            .sender_hardware_address = peer_mac,
            .sender_protocol_address = peer_ip,
            .target_hardware_address = {},
            .target_protocol_address = target}
      .emit(bytes_view(f).size() ? mutable_bytes(f).subspan(eth::header_size) : mutable_bytes{});
  return f;
}

std::vector<byte> echo_request_to(ipv4_address destination) {
  std::vector<byte> f(eth::header_size + ipv4::header_size + icmp::header_size);
  auto message = mutable_bytes(f).subspan(eth::header_size + ipv4::header_size);
  icmp::repr::echo_request(1, 1).emit(message);
  ipv4::repr ip{.source = peer_ip, .destination = destination};
  ip.protocol = icmp::ip_protocol;
  ip.emit(mutable_bytes(f).subspan(eth::header_size));
  eth::repr{.destination = our_mac, .source = peer_mac, .ethertype = eth::ethertype::ipv4}.emit(f);
  return f;
}

interface_config config() { return {.mac = our_mac, .address = our_ip, .prefix_length = 24}; }
}  // namespace

// ---- policy examples ----

// Proxy ARP: answer who-has for every address of the subnet.
struct proxy_arp_policy : arp_default_policy {
  bool answer(const arp::ethernet_ipv4_view& request, const interface_config& c) const noexcept {
    return c.on_link(request.target_protocol_address());
  }
};
static_assert(arp_policy<proxy_arp_policy>);

TEST_CASE("an ARP policy answers for addresses that are not ours") {
  using stack = Stack<Ethernet<>, IP<ICMP<>>, ARP<proxy_arp_policy>>::on<scripted_device, clock_ref<virtual_clock>>;
  virtual_clock clock;
  stack s(scripted_device{}, clock_ref(clock), config());
  s.device().inbound.push_back(arp_request(*ipv4_address::parse("10.9.0.200")));
  s.device().inbound.push_back(arp_request(*ipv4_address::parse("192.168.1.1")));  // off the subnet: no
  s.process();
  REQUIRE(s.device().sent.size() == 1);
  const auto reply = arp::ethernet_ipv4_view::checked(eth::view::checked(s.device().sent[0])->payload());
  CHECK(reply->sender_protocol_address() == *ipv4_address::parse("10.9.0.200"));
  CHECK(reply->sender_hardware_address() == our_mac);
}

// A covert channel in the IP header: fixed TTL and IDs that spell a message.
struct covert_ip_policy : ipv4_default_policy {
  std::uint16_t next = 0xc0de;
  std::uint8_t ttl(ipv4_address) const noexcept { return 33; }
  std::uint16_t identification(const ipv4::repr&) noexcept { return next++; }
};
static_assert(ipv4_policy<covert_ip_policy>);

TEST_CASE("an IP policy chooses the TTL and identification of what the stack sends") {
  using stack = Stack<Ethernet<>, IP<ICMP<>, covert_ip_policy>, ARP<>>::on<scripted_device, clock_ref<virtual_clock>>;
  virtual_clock clock;
  stack s(scripted_device{}, clock_ref(clock), config());
  s.device().inbound.push_back(arp_request(our_ip));  // teaches us the peer's MAC
  s.device().inbound.push_back(echo_request_to(our_ip));
  s.device().inbound.push_back(echo_request_to(our_ip));
  s.process();
  REQUIRE(s.device().sent.size() == 3);
  for (std::size_t i = 1; i < 3; ++i) {
    const auto ip = ipv4::view::checked(eth::view::checked(s.device().sent[i])->payload());
    CHECK(ip->ttl() == 33);
    CHECK(ip->identification() == 0xc0de + (i - 1));
    CHECK(ip->verify_checksum());
  }
}

// A host that does not answer ping.
struct silent_icmp_policy {
  bool answer_echo(const icmp::view&, const ipv4::view&) const noexcept { return false; }
};
static_assert(icmp_policy<silent_icmp_policy>);

TEST_CASE("an ICMP policy can refuse to answer echo requests, and the requests are counted") {
  using stack = Stack<Ethernet<>, IP<ICMP<silent_icmp_policy>>, ARP<>>::on<scripted_device, clock_ref<virtual_clock>>;
  virtual_clock clock;
  stack s(scripted_device{}, clock_ref(clock), config());
  s.device().inbound.push_back(arp_request(our_ip));
  s.device().inbound.push_back(echo_request_to(our_ip));
  s.process();
  CHECK(s.device().sent.size() == 1);  // the ARP reply only
  auto& ip = s.link().find<IP<ICMP<silent_icmp_policy>>::bound<stack::link_layer>>();
  CHECK(ip.find<ICMP<silent_icmp_policy>::bound<std::remove_reference_t<decltype(ip)>>>().stats().echo_requests == 1);
}

TEST_CASE("the default Ethernet policy drops frames for other hosts; the promiscuous one takes them") {
  const auto other = *mac_address::parse("02:00:00:00:00:99");
  virtual_clock clock;
  {
    using stack = Stack<Ethernet<>, IP<ICMP<>>, ARP<>>::on<scripted_device, clock_ref<virtual_clock>>;
    stack s(scripted_device{}, clock_ref(clock), config());
    s.device().inbound.push_back(arp_request(our_ip, other));
    s.process();
    CHECK(s.device().sent.empty());
    CHECK(s.link().stats().not_for_us == 1);
  }
  {
    using stack = Stack<Ethernet<ethernet_promiscuous_policy>, IP<ICMP<>>, ARP<>>::on<scripted_device, clock_ref<virtual_clock>>;
    stack s(scripted_device{}, clock_ref(clock), config());
    s.device().inbound.push_back(arp_request(our_ip, other));
    s.process();
    CHECK(s.device().sent.size() == 1);
  }
}

TEST_CASE("stateless policies take no space in the layer") {
  STATIC_REQUIRE(std::is_empty_v<ethernet_default_policy>);
  STATIC_REQUIRE(std::is_empty_v<arp_default_policy>);
  STATIC_REQUIRE(std::is_empty_v<icmp_default_policy>);
}

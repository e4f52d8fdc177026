// A stack composed as a type, driven frame by frame through a scripted
// device on a virtual clock: ARP, ICMP echo, a UDP application, hooks.
#include "pystack/stack/stack.hpp"

#include <catch2/catch.hpp>
#include <deque>
#include <vector>

#include "pystack/layers/arp.hpp"
#include "pystack/layers/ethernet.hpp"
#include "pystack/layers/icmp.hpp"
#include "pystack/layers/ipv4.hpp"
#include "pystack/layers/udp.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;

// Frames to deliver, and every frame the stack sent.
struct scripted_device {
  std::deque<std::vector<byte>> inbound;
  std::vector<std::vector<byte>> sent;
  device_stats counters;

  bool transmit(bytes_view f) {
    sent.emplace_back(f.begin(), f.end());
    ++counters.frames_sent;
    return true;
  }
  template <class Handler>
  std::size_t receive(Handler&& handler, std::size_t max) {
    std::size_t n = 0;
    while (n < max && !inbound.empty()) {
      const auto bytes = std::move(inbound.front());
      inbound.pop_front();
      handler(received_frame{.bytes = bytes});
      ++n;
    }
    return n;
  }
  int wait_fd() const { return -1; }
  std::optional<instant> next_delivery() const { return inbound.empty() ? std::nullopt : std::optional(instant{}); }
  const device_stats& stats() const { return counters; }
};
static_assert(device<scripted_device>);

// Echoes every datagram back to its sender, and counts them.
struct udp_echo {
  int datagrams = 0;
  template <class Headers, class Socket>
  void on_datagram(const Headers& headers, bytes_view payload, Socket& socket) {
    ++datagrams;
    socket.reply(headers, payload);
  }
};

const auto our_mac = *mac_address::parse("02:00:00:00:00:01");
const auto peer_mac = *mac_address::parse("02:00:00:00:00:02");
const auto our_ip = *ipv4_address::parse("10.9.0.1");
const auto peer_ip = *ipv4_address::parse("10.9.0.2");

using test_stack = Stack<Ethernet<>, IP<ICMP<>, UDP<Port<7, udp_echo>>>, ARP<>>::on<scripted_device, clock_ref<virtual_clock>>;

interface_config config() {
  return interface_config{.mac = our_mac, .address = our_ip, .prefix_length = 24};
}

std::vector<byte> ethernet_frame(mac_address dst, std::uint16_t type, bytes_view payload) {
  std::vector<byte> f(eth::header_size + payload.size());
  std::copy(payload.begin(), payload.end(), f.begin() + eth::header_size);
  eth::repr{.destination = dst, .source = peer_mac, .ethertype = type}.emit(f);
  return f;
}

std::vector<byte> arp_request_for(ipv4_address target) {
  std::vector<byte> body(arp::repr::size());
  arp::repr{.operation = arp::operation::request,
            .sender_hardware_address = peer_mac,
            .sender_protocol_address = peer_ip,
            .target_hardware_address = {},
            .target_protocol_address = target}
      .emit(body);
  return ethernet_frame(mac_address::broadcast(), eth::ethertype::arp, body);
}

std::vector<byte> ipv4_frame(std::uint8_t protocol, std::vector<byte> transport) {
  ipv4::repr ip{.source = peer_ip, .destination = our_ip};
  ip.protocol = protocol;
  std::vector<byte> datagram(ip.size() + transport.size());
  std::copy(transport.begin(), transport.end(), datagram.begin() + static_cast<std::ptrdiff_t>(ip.size()));
  ip.emit(datagram);
  return ethernet_frame(our_mac, eth::ethertype::ipv4, datagram);
}

std::vector<byte> echo_request(std::uint16_t id, std::uint16_t seq) {
  std::vector<byte> message(icmp::header_size + 4, 'p');
  icmp::repr::echo_request(id, seq).emit(message);
  return ipv4_frame(icmp::ip_protocol, message);
}

std::vector<byte> udp_datagram(std::uint16_t dport, std::string_view text) {
  std::vector<byte> d(udp::header_size + text.size());
  std::copy(text.begin(), text.end(), d.begin() + udp::header_size);
  udp::repr{.source_port = 40000, .destination_port = dport}.emit(d, peer_ip, our_ip);
  return ipv4_frame(udp::ip_protocol, d);
}
}  // namespace

TEST_CASE("stack answers an ARP request for its address and learns the asker") {
  virtual_clock clock;
  test_stack s(scripted_device{}, clock_ref(clock), config());
  s.device().inbound.push_back(arp_request_for(our_ip));
  s.process();
  REQUIRE(s.device().sent.size() == 1);
  const auto reply = eth::view::checked(s.device().sent[0]);
  REQUIRE(reply);
  CHECK(reply->destination() == peer_mac);
  CHECK(reply->ethertype() == eth::ethertype::arp);
  const auto packet = arp::ethernet_ipv4_view::checked(reply->payload());
  REQUIRE(packet);
  CHECK(packet->operation() == arp::operation::reply);
  CHECK(packet->sender_hardware_address() == our_mac);
  CHECK(packet->sender_protocol_address() == our_ip);
  CHECK(packet->target_protocol_address() == peer_ip);
  CHECK(s.layer<test_stack::link_layer>().find<ARP<>::bound<test_stack::link_layer>>().lookup(peer_ip) == peer_mac);
}

TEST_CASE("stack ignores an ARP request for another address") {
  virtual_clock clock;
  test_stack s(scripted_device{}, clock_ref(clock), config());
  s.device().inbound.push_back(arp_request_for(*ipv4_address::parse("10.9.0.99")));
  s.process();
  CHECK(s.device().sent.empty());
}

TEST_CASE("stack answers ping once it knows the sender") {
  virtual_clock clock;
  test_stack s(scripted_device{}, clock_ref(clock), config());
  s.device().inbound.push_back(arp_request_for(our_ip));
  s.device().inbound.push_back(echo_request(0x1234, 7));
  s.process();
  REQUIRE(s.device().sent.size() == 2);
  const auto frame = eth::view::checked(s.device().sent[1]);
  REQUIRE(frame);
  CHECK(frame->destination() == peer_mac);
  const auto ip = ipv4::view::checked(frame->payload());
  REQUIRE(ip);
  CHECK(ip->verify_checksum());
  CHECK(ip->source() == our_ip);
  CHECK(ip->destination() == peer_ip);
  const auto reply = icmp::view::checked(ip->payload());
  REQUIRE(reply);
  CHECK(reply->type() == icmp::type::echo_reply);
  CHECK(reply->identifier() == 0x1234);
  CHECK(reply->sequence_number() == 7);
  CHECK(reply->verify_checksum());
}

TEST_CASE("stack holds a reply until ARP resolves, then releases it") {
  virtual_clock clock;
  test_stack s(scripted_device{}, clock_ref(clock), config());
  s.device().inbound.push_back(udp_datagram(7, "hello"));  // peer unknown: we must ask first
  s.process();
  REQUIRE(s.device().sent.size() == 1);
  const auto request = arp::ethernet_ipv4_view::checked(eth::view::checked(s.device().sent[0])->payload());
  REQUIRE(request);
  CHECK(request->operation() == arp::operation::request);
  CHECK(request->target_protocol_address() == peer_ip);

  // The peer answers; the held echo goes out.
  std::vector<byte> body(arp::repr::size());
  arp::repr{.operation = arp::operation::reply,
            .sender_hardware_address = peer_mac,
            .sender_protocol_address = peer_ip,
            .target_hardware_address = our_mac,
            .target_protocol_address = our_ip}
      .emit(body);
  s.device().inbound.push_back(ethernet_frame(our_mac, eth::ethertype::arp, body));
  s.process();
  REQUIRE(s.device().sent.size() == 2);
  const auto frame = eth::view::checked(s.device().sent[1]);
  CHECK(frame->destination() == peer_mac);
  const auto ip = ipv4::view::checked(frame->payload());
  const auto datagram = udp::view::checked(ip->payload());
  REQUIRE(datagram);
  CHECK(datagram->source_port() == 7);
  CHECK(datagram->destination_port() == 40000);
  CHECK(datagram->verify_checksum(ip->source(), ip->destination()));
  CHECK(std::string_view(reinterpret_cast<const char*>(datagram->payload().data()), datagram->payload().size()) == "hello");
}

TEST_CASE("stack does not send to a link address past its ARP entry's lifetime") {
  // ARP's lookup() tests the entry's address, that it is resolved and that
  // it is fresh, in the send path itself (layers/arp.hpp): one lifetime
  // (60 s, arp_default_policy) after it was learnt, the entry is stale to
  // the nanosecond, and a reply is held while the peer is asked again.
  virtual_clock clock;
  test_stack s(scripted_device{}, clock_ref(clock), config());
  auto& arp_layer = s.link().find<ARP<>::bound<test_stack::link_layer>>();
  s.device().inbound.push_back(arp_request_for(our_ip));  // learnt now
  s.process();
  REQUIRE(s.device().sent.size() == 1);
  clock.advance(60s - 1ns);
  CHECK(arp_layer.lookup(peer_ip) == peer_mac);
  // The same answer in place (the facade's link table reads it so).
  REQUIRE(arp_layer.lookup_in_place(peer_ip) != nullptr);
  CHECK(*arp_layer.lookup_in_place(peer_ip) == peer_mac);
  s.device().inbound.push_back(udp_datagram(7, "fresh"));
  s.process();
  REQUIRE(s.device().sent.size() == 2);
  CHECK(eth::view::checked(s.device().sent[1])->ethertype() == eth::ethertype::ipv4);
  CHECK(eth::view::checked(s.device().sent[1])->destination() == peer_mac);

  clock.advance(1ns);
  CHECK_FALSE(arp_layer.lookup(peer_ip));
  CHECK_FALSE(arp_layer.lookup(*ipv4_address::parse("10.9.0.99")));
  CHECK(arp_layer.lookup_in_place(peer_ip) == nullptr);
  CHECK(arp_layer.lookup_in_place(*ipv4_address::parse("10.9.0.99")) == nullptr);
  s.device().inbound.push_back(udp_datagram(7, "stale"));
  s.process();
  REQUIRE(s.device().sent.size() == 3);
  const auto asked = eth::view::checked(s.device().sent[2]);
  REQUIRE(asked);
  REQUIRE(asked->ethertype() == eth::ethertype::arp);
  const auto request = arp::ethernet_ipv4_view::checked(asked->payload());
  REQUIRE(request);
  CHECK(request->operation() == arp::operation::request);
  CHECK(request->target_protocol_address() == peer_ip);
  CHECK(arp_layer.stats().requests_sent == 1);
}

TEST_CASE("stack retries ARP, then drops the held frame and counts it") {
  virtual_clock clock;
  test_stack s(scripted_device{}, clock_ref(clock), config());
  s.device().inbound.push_back(udp_datagram(7, "x"));
  s.process();
  for (int i = 0; i < 5; ++i) {
    auto next = s.next_event();
    REQUIRE(next);  // a retry or the give-up is always scheduled while unresolved
    clock.advance_to(*next);
    s.process();
    if (!s.next_event()) break;
  }
  auto& arp_layer = s.link().find<ARP<>::bound<test_stack::link_layer>>();
  CHECK(arp_layer.stats().requests_sent == 3);
  CHECK(arp_layer.stats().held_dropped == 1);
  CHECK(arp_layer.stats().resolution_failures == 1);
  CHECK(s.device().sent.size() == 3);  // three requests, no datagram
  CHECK_FALSE(s.next_event());
}

TEST_CASE("stack counts frames it cannot use instead of dropping them silently") {
  virtual_clock clock;
  test_stack s(scripted_device{}, clock_ref(clock), config());
  auto bad = udp_datagram(9, "nobody");  // no application on port 9
  s.device().inbound.push_back(bad);
  auto corrupted = udp_datagram(7, "flip");
  corrupted.back() ^= 0x01;  // UDP checksum now wrong
  s.device().inbound.push_back(corrupted);
  s.device().inbound.push_back(std::vector<byte>{1, 2, 3});  // not even an Ethernet header
  s.process();
  auto& link = s.link();
  CHECK(link.stats().malformed == 1);
  auto& ip = link.find<IP<ICMP<>, UDP<Port<7, udp_echo>>>::bound<test_stack::link_layer>>();
  using udp_layer = UDP<Port<7, udp_echo>>::bound<std::remove_reference_t<decltype(ip)>>;
  CHECK(ip.find<udp_layer>().stats().no_listener == 1);
  CHECK(ip.find<udp_layer>().stats().bad_checksum == 1);
  CHECK(s.link().find<udp_echo>().datagrams == 0);
}

TEST_CASE("an outgoing hook rewrites every header and checksums stay right") {
  virtual_clock clock;
  test_stack s(scripted_device{}, clock_ref(clock), config());
  auto& arp_layer = s.link().find<ARP<>::bound<test_stack::link_layer>>();
  arp_layer.insert(peer_ip, peer_mac);
  auto& ip = s.link().find<IP<ICMP<>, UDP<Port<7, udp_echo>>>::bound<test_stack::link_layer>>();
  using udp_layer = UDP<Port<7, udp_echo>>::bound<std::remove_reference_t<decltype(ip)>>;
  const auto spoofed = *ipv4_address::parse("10.9.0.77");
  auto hook = overloaded{
      [](udp::repr& u) { u.source_port = 5555; },
      [&](ipv4::repr& h) {
        h.ttl = 3;
        h.identification = 0xbeef;
        h.dont_fragment = true;
        h.source = spoofed;  // moves the pseudo-header: the UDP checksum must follow
      },
      [](eth::repr& e) { e.source = *mac_address::parse("02:aa:bb:cc:dd:ee"); },
  };
  const std::string_view text = "covert";
  REQUIRE(ip.find<udp_layer>().send(7, peer_ip, 9999, bytes_view(reinterpret_cast<const byte*>(text.data()), text.size()), hook));
  REQUIRE(s.device().sent.size() == 1);
  const auto frame = eth::view::checked(s.device().sent[0]);
  CHECK(frame->source() == *mac_address::parse("02:aa:bb:cc:dd:ee"));
  const auto datagram_ip = ipv4::view::checked(frame->payload());
  CHECK(datagram_ip->ttl() == 3);
  CHECK(datagram_ip->identification() == 0xbeef);
  CHECK(datagram_ip->dont_fragment());
  CHECK(datagram_ip->source() == spoofed);
  CHECK(datagram_ip->verify_checksum());
  const auto datagram = udp::view::checked(datagram_ip->payload());
  CHECK(datagram->source_port() == 5555);
  CHECK(datagram->verify_checksum(spoofed, peer_ip));
}

// RFC 1122 §3.3.1: IP decides the next hop and its kind once (layers/ipv4.hpp
// hands it to Ethernet's send_ipv4_to); the link address must be what
// Ethernet's own classification gives (send_ipv4), with and without a hook
// that sees the Ethernet header.
TEST_CASE("IPv4's next hop reaches the link address of its kind") {
  virtual_clock clock;
  interface_config with_gateway = config();
  const auto gateway_ip = *ipv4_address::parse("10.9.0.254");
  const auto gateway_mac = *mac_address::parse("02:00:00:00:00:fe");
  with_gateway.gateway = gateway_ip;
  test_stack s(scripted_device{}, clock_ref(clock), with_gateway);
  auto& arp_layer = s.link().find<ARP<>::bound<test_stack::link_layer>>();
  arp_layer.insert(peer_ip, peer_mac);
  arp_layer.insert(gateway_ip, gateway_mac);
  auto& ip = s.link().find<IP<ICMP<>, UDP<Port<7, udp_echo>>>::bound<test_stack::link_layer>>();
  using udp_layer = UDP<Port<7, udp_echo>>::bound<std::remove_reference_t<decltype(ip)>>;
  const struct {
    const char* to;
    mac_address link_destination;
  } cases[] = {
      {"255.255.255.255", mac_address::broadcast()},  // limited broadcast
      {"10.9.0.255", mac_address::broadcast()},       // the subnet's directed broadcast
      {"224.0.0.251", *mac_address::parse("01:00:5e:00:00:fb")},  // RFC 1112 §6.4
      {"10.9.0.2", peer_mac},                          // on link: the host itself
      {"192.0.2.1", gateway_mac},                      // off link: the gateway
  };
  const std::string_view text = "kind";
  const bytes_view payload(reinterpret_cast<const byte*>(text.data()), text.size());
  auto sees_ethernet = [](eth::repr&) {};
  for (const auto& c : cases) {
    CAPTURE(c.to);
    const auto to = *ipv4_address::parse(c.to);
    s.device().sent.clear();
    REQUIRE(ip.find<udp_layer>().send(7, to, 9999, payload));
    REQUIRE(ip.find<udp_layer>().send(7, to, 9999, payload, sees_ethernet));
    REQUIRE(s.device().sent.size() == 2);
    for (const auto& sent : s.device().sent) {
      const auto frame = eth::view::checked(sent);
      REQUIRE(frame);
      CHECK(frame->destination() == c.link_destination);
      CHECK(ipv4::view::checked(frame->payload())->destination() == to);
    }
  }
}

TEST_CASE("the stack's headroom covers the deepest header stack") {
  // Ethernet with two tags (22) + IPv4 with options (60) + UDP (8).
  STATIC_REQUIRE(test_stack::headroom == 22 + 60 + 8);
}

TEST_CASE("an interface's MTU is used when IPv4 allows it and a frame buffer holds it") {
  CHECK(usable_mtu(1500) == std::uint16_t{1500});
  CHECK(usable_mtu(68) == std::uint16_t{68});  // RFC 791's minimum
  CHECK_FALSE(usable_mtu(67));
  CHECK(usable_mtu(frame_buffer::capacity - eth::header_size) == std::uint16_t{frame_buffer::capacity - eth::header_size});
  CHECK_FALSE(usable_mtu(frame_buffer::capacity - eth::header_size + 1));
  CHECK_FALSE(usable_mtu(9000));  // jumbo frames are not supported
}

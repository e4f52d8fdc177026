// A stack put together at run time with register_layer, exactly as the
// original's "Stack crafting" does, driven frame by frame through a scripted
// device, and a runtime stack talking to a static stack over the in-process
// link on a virtual clock.
#include "pystack/runtime/ethernet.hpp"

#include <catch2/catch.hpp>
#include <deque>
#include <string>
#include <vector>

#include "pystack/device/in_process_link.hpp"
#include "pystack/layers/arp.hpp"
#include "pystack/layers/ethernet.hpp"
#include "pystack/layers/icmp.hpp"
#include "pystack/layers/ipv4.hpp"
#include "pystack/layers/udp.hpp"
#include "pystack/runtime/layers.hpp"
#include "pystack/runtime/udp_application.hpp"
#include "pystack/stack/simulation.hpp"
#include "pystack/stack/stack.hpp"

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

const auto our_mac = *mac_address::parse("02:00:00:00:00:01");
const auto peer_mac = *mac_address::parse("02:00:00:00:00:02");
const auto our_ip = *ipv4_address::parse("10.9.0.1");
const auto peer_ip = *ipv4_address::parse("10.9.0.2");

interface_config our_config() { return interface_config{.mac = our_mac, .address = our_ip, .prefix_length = 24}; }

std::vector<byte> ethernet_frame(mac_address dst, std::uint16_t type, bytes_view payload) {
  std::vector<byte> f(eth::header_size + payload.size());
  std::copy(payload.begin(), payload.end(), f.begin() + eth::header_size);
  eth::repr{.destination = dst, .source = peer_mac, .ethertype = type}.emit(f);
  return f;
}

std::vector<byte> arp_packet(std::uint16_t op, ipv4_address target, mac_address target_mac = {}) {
  std::vector<byte> body(arp::repr::size());
  arp::repr{.operation = op,
            .sender_hardware_address = peer_mac,
            .sender_protocol_address = peer_ip,
            .target_hardware_address = target_mac,
            .target_protocol_address = target}
      .emit(body);
  return ethernet_frame(op == arp::operation::request ? mac_address::broadcast() : our_mac, eth::ethertype::arp,
                        body);
}

std::vector<byte> ipv4_frame(std::uint8_t protocol, const std::vector<byte>& transport) {
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

std::vector<byte> udp_frame(std::uint16_t sport, std::uint16_t dport, std::string_view text) {
  std::vector<byte> d(udp::header_size + text.size());
  std::copy(text.begin(), text.end(), d.begin() + udp::header_size);
  udp::repr{.source_port = sport, .destination_port = dport}.emit(d, peer_ip, our_ip);
  return ipv4_frame(udp::ip_protocol, d);
}

std::string text_of(const std::vector<byte>& data) { return std::string(data.begin(), data.end()); }
std::string text_of(bytes_view data) { return std::string(data.begin(), data.end()); }

// The original's "Stack crafting": every layer made and registered by hand.
struct crafted_stack {
  runtime::ethernet_layer eth;
  runtime::ip_layer ip;
  runtime::arp_layer arp;
  runtime::icmp_layer icmp;
  runtime::udp_layer udp;

  explicit crafted_stack(virtual_clock& clock) : eth(scripted_device{}, our_config(), clock_ref(clock)) {
    REQUIRE(eth.register_layer(ip));
    REQUIRE(eth.register_layer(arp));
    REQUIRE(ip.register_layer(icmp));
    REQUIRE(ip.register_layer(udp));
  }
  scripted_device& device() { return *eth.device_if<scripted_device>(); }
  // An application on UDP, bound to `port`.
  void bind(UDPApplication& app, std::uint16_t port) {
    REQUIRE(udp.register_layer(app));
    REQUIRE(app.bind(port));
  }
};

// Records what arrives and answers each datagram from inside the loop.
class echo_application : public UDPApplication {
 public:
  ~echo_application() override { static_cast<void>(close()); }
  int received = 0;
  std::vector<std::string> incoming_seen;

 protected:
  void hook_incoming(bytes_view data, const runtime::header_set& headers) override {
    REQUIRE(headers.ethernet());
    REQUIRE(headers.ip());
    REQUIRE(headers.udp());
    CHECK_FALSE(headers.tcp());
    incoming_seen.push_back(text_of(data));
  }
  void packet_received(bytes_view data, const runtime::header_set& headers) override {
    ++received;
    store(data, headers);
    REQUIRE(send_packet_to(data, headers.ip()->source(), headers.udp()->source_port()));
  }
  void hook_outgoing(ipv4::repr& header) override { header.ttl = 33; }
};
}  // namespace

TEST_CASE("register_layer composes a stack and refuses what cannot fit") {
  virtual_clock clock;
  crafted_stack s(clock);
  CHECK(s.ip.lower() == &s.eth);
  CHECK(s.udp.lower() == &s.ip);
  CHECK(s.eth.upper(eth::ethertype::ipv4) == &s.ip);
  CHECK(s.eth.upper(eth::ethertype::arp) == &s.arp);
  CHECK(s.ip.upper(udp::ip_protocol) == &s.udp);
  CHECK(s.ip.upper(icmp::ip_protocol) == &s.icmp);

  // UDP needs a network layer; Ethernet offers a link.
  runtime::udp_layer stray;
  auto wrong = s.eth.register_layer(stray);
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error() == runtime::errc::incompatible_lower);
  CHECK(stray.lower() == nullptr);

  // A second IP layer under EtherType 0x0800.
  runtime::ip_layer second_ip;
  auto twice = s.eth.register_layer(second_ip);
  REQUIRE_FALSE(twice);
  CHECK(twice.error() == runtime::errc::key_in_use);

  // ICMP carries nothing above it.
  runtime::udp_layer on_icmp;
  auto none = s.icmp.register_upper(5, on_icmp);
  REQUIRE_FALSE(none);
  CHECK(none.error() == runtime::errc::takes_no_uppers);

  // unregister_upper, then the key is free again; unknown keys are errors.
  REQUIRE(s.ip.unregister_upper(udp::ip_protocol));
  CHECK(s.ip.upper(udp::ip_protocol) == nullptr);
  CHECK(s.ip.unregister_upper(udp::ip_protocol).error() == runtime::errc::no_such_upper);
  REQUIRE(s.ip.register_upper(udp::ip_protocol, s.udp));
}

TEST_CASE("a crafted stack answers ARP and ping through the static layers") {
  virtual_clock clock;
  crafted_stack s(clock);
  s.device().inbound.push_back(arp_packet(arp::operation::request, our_ip));
  s.device().inbound.push_back(echo_request(0x4242, 3));
  s.eth.process();
  REQUIRE(s.device().sent.size() == 2);

  const auto arp_reply = eth::view::checked(s.device().sent[0]);
  REQUIRE(arp_reply);
  CHECK(arp_reply->destination() == peer_mac);
  const auto packet = arp::ethernet_ipv4_view::checked(arp_reply->payload());
  REQUIRE(packet);
  CHECK(packet->operation() == arp::operation::reply);
  CHECK(packet->sender_protocol_address() == our_ip);
  CHECK(packet->sender_hardware_address() == our_mac);
  CHECK(s.arp.lookup(peer_ip) == peer_mac);

  const auto ping_reply = eth::view::checked(s.device().sent[1]);
  REQUIRE(ping_reply);
  CHECK(ping_reply->destination() == peer_mac);  // resolved through the registered ARP layer
  const auto ip = ipv4::view::checked(ping_reply->payload());
  REQUIRE(ip);
  CHECK(ip->verify_checksum());
  CHECK(ip->destination() == peer_ip);
  const auto reply = icmp::view::checked(ip->payload());
  REQUIRE(reply);
  CHECK(reply->type() == icmp::type::echo_reply);
  CHECK(reply->identifier() == 0x4242);
  CHECK(reply->sequence_number() == 3);
  CHECK(s.icmp.stats().echo_replies_sent == 1);
}

TEST_CASE("a UDP application on a crafted stack receives, sees the sender, and answers") {
  virtual_clock clock;
  crafted_stack s(clock);
  echo_application app;
  REQUIRE(s.udp.register_layer(app));  // as tcpsession.register_layer(conn) in the original
  REQUIRE(app.bind(5000));
  CHECK(s.udp.upper(5000) == &app);
  CHECK(s.udp.upper(0) == nullptr);  // registered without a port: only its lower was set
  s.arp.insert(peer_ip, peer_mac);

  s.device().inbound.push_back(udp_frame(40000, 5000, "hello"));
  s.device().inbound.push_back(udp_frame(40000, 5001, "nobody"));  // no application there
  s.eth.process();

  CHECK(app.received == 1);
  CHECK(app.incoming_seen == std::vector<std::string>{"hello"});
  auto got = app.fetch_data_from();
  REQUIRE(got);
  CHECK(got->address == peer_ip);  // the sender's address, not ours (the original's bug)
  CHECK(got->port == 40000);
  CHECK(text_of(got->data) == "hello");
  CHECK_FALSE(app.fetch_data());
  CHECK(s.udp.stats().no_listener == 1);

  REQUIRE(s.device().sent.size() == 1);
  const auto frame = eth::view::checked(s.device().sent[0]);
  REQUIRE(frame);
  CHECK(frame->destination() == peer_mac);
  const auto ip = ipv4::view::checked(frame->payload());
  REQUIRE(ip);
  CHECK(ip->ttl() == 33);  // hook_outgoing rewrote it
  CHECK(ip->verify_checksum());
  const auto datagram = udp::view::checked(ip->payload());
  REQUIRE(datagram);
  CHECK(datagram->source_port() == 5000);
  CHECK(datagram->destination_port() == 40000);
  CHECK(datagram->verify_checksum(our_ip, peer_ip));
  CHECK(text_of(datagram->payload()) == "hello");
}

TEST_CASE("a frame handed to the Ethernet layer from outside its device goes up as the device's would") {
  // receive_frame (and receive with a header_set) is the entry for frames
  // that do not come from the device: a test, a replay. On the stack's own
  // thread (inside a command) it goes straight up; from another thread it
  // becomes a command, which runs here while no loop runs.
  virtual_clock clock;
  crafted_stack s(clock);
  echo_application app;
  s.bind(app, 5000);
  s.arp.insert(peer_ip, peer_mac);

  const auto outside = udp_frame(40000, 5000, "from this thread");
  s.eth.receive_frame(clock.now(), outside);
  const auto inside = udp_frame(40001, 5000, "from a command");
  auto on_the_stack = [&] { s.eth.receive_frame(clock.now(), inside); };
  s.eth.call(on_the_stack);
  s.eth.receive(runtime::header_set(clock.now()), udp_frame(40002, 5000, "with a header_set"));
  s.eth.receive_frame(clock.now(), udp_frame(40003, 5999, "to no application"));

  CHECK(app.received == 3);
  CHECK(app.incoming_seen == std::vector<std::string>{"from this thread", "from a command", "with a header_set"});
  CHECK(s.udp.stats().no_listener == 1);
  CHECK(s.eth.stats().received == 4);
  // Each was answered from inside the loop, to its own source port.
  REQUIRE(s.device().sent.size() == 3);
  for (std::uint16_t i = 0; i < 3; ++i) {
    const auto frame = eth::view::checked(s.device().sent[i]);
    REQUIRE(frame);
    const auto ip = ipv4::view::checked(frame->payload());
    REQUIRE(ip);
    const auto datagram = udp::view::checked(ip->payload());
    REQUIRE(datagram);
    CHECK(datagram->destination_port() == 40000 + i);
  }
}

TEST_CASE("fetch_data with a size leaves the rest of the datagram for the next call") {
  virtual_clock clock;
  crafted_stack s(clock);
  UDPApplication app;
  s.bind(app, 6000);
  s.device().inbound.push_back(udp_frame(1234, 6000, "abcdefgh"));
  s.device().inbound.push_back(udp_frame(1235, 6000, "second"));
  s.eth.process();
  CHECK(text_of(*app.fetch_data(3)) == "abc");
  auto rest = app.fetch_data_from(0);
  REQUIRE(rest);
  CHECK(text_of(rest->data) == "defgh");
  CHECK(rest->port == 1234);
  auto second = app.fetch_data_from(100);
  REQUIRE(second);
  CHECK(text_of(second->data) == "second");
  CHECK(second->port == 1235);
}

TEST_CASE("binding a taken port fails, close releases it, and the receive queue is bounded") {
  virtual_clock clock;
  crafted_stack s(clock);
  UDPApplication first;
  UDPApplication second;
  REQUIRE(s.udp.register_layer(first));
  REQUIRE(s.udp.register_layer(second));
  REQUIRE(first.bind(7000));
  auto taken = second.bind(7000);
  REQUIRE_FALSE(taken);
  CHECK(taken.error() == runtime::errc::key_in_use);
  CHECK(first.bind(7001).error() == runtime::errc::already_bound);

  first.set_receive_queue_limit(2);
  for (int i = 0; i < 5; ++i) s.device().inbound.push_back(udp_frame(1, 7000, "x"));
  s.eth.process();
  CHECK(first.queued() == 2);
  CHECK(first.dropped() == 3);

  REQUIRE(first.close());
  CHECK(s.udp.upper(7000) == nullptr);
  REQUIRE(second.bind(7000));
  CHECK(s.udp.upper(7000) == &second);
}

TEST_CASE("an application on no stack reports it instead of sending nowhere") {
  UDPApplication alone;
  CHECK(alone.bind(1000).error() == runtime::errc::not_attached);
  CHECK(alone.send_packet_to(std::string_view("x"), peer_ip, 1).error() == runtime::errc::not_attached);
  CHECK(alone.connect("example.org", 53).error() == runtime::errc::bad_address);
  CHECK(alone.send_packet(std::string_view("x")).error() == runtime::errc::not_bound);
}

TEST_CASE("destroying a layer takes it out of the stack") {
  virtual_clock clock;
  crafted_stack s(clock);
  {
    UDPApplication app;
    REQUIRE(s.udp.register_layer(app));
    REQUIRE(app.bind(8000));
    CHECK(s.udp.upper(8000) == &app);
  }
  CHECK(s.udp.upper(8000) == nullptr);
  s.device().inbound.push_back(udp_frame(1, 8000, "late"));
  s.eth.process();  // must not reach the destroyed application
  CHECK(s.udp.stats().no_listener == 1);

  UDPApplication orphan;
  {
    runtime::udp_layer temporary;
    REQUIRE(s.ip.unregister_upper(udp::ip_protocol));
    REQUIRE(s.ip.register_layer(temporary));
    REQUIRE(temporary.register_layer(orphan));
    CHECK(orphan.lower() == &temporary);
  }
  CHECK(orphan.lower() == nullptr);
  CHECK(s.ip.upper(udp::ip_protocol) == nullptr);
}

// ---------------------------------------------------------------------------
// A runtime stack and a static stack on one virtual link

namespace {
const auto static_ip = *ipv4_address::parse("10.30.0.2");
const auto runtime_ip = *ipv4_address::parse("10.30.0.1");

struct static_echo {
  int datagrams = 0;
  template <class Headers, class Socket>
  void on_datagram(const Headers& headers, bytes_view payload, Socket& socket) {
    ++datagrams;
    socket.reply(headers, payload);
  }
};

using endpoint = pystack::in_process_link<virtual_clock>::endpoint;
using static_stack = Stack<Ethernet<>, IP<ICMP<>, UDP<Port<7, static_echo>>>, ARP<>>::on<endpoint, clock_ref<virtual_clock>>;
}  // namespace

TEST_CASE("a crafted runtime stack and a static stack exchange datagrams over a virtual link") {
  const std::uint64_t seed = GENERATE(1u, 2u, 3u);
  virtual_clock clock;
  pystack::in_process_link<virtual_clock> wire(
      clock, {.a_to_b = {.reorder = 0.2, .delay = 1ms, .jitter = 2ms, .seed = seed},
              .b_to_a = {.reorder = 0.2, .delay = 1ms, .jitter = 2ms, .seed = seed + 100}});
  INFO("link " << wire.describe());
  runtime::ethernet_layer eth(wire.a(), {.mac = *mac_address::parse("02:00:00:00:0a:01"), .address = runtime_ip},
                              clock_ref(clock));
  runtime::ip_layer ip;
  runtime::arp_layer arp;
  runtime::udp_layer udp;
  REQUIRE(eth.register_layer(ip));
  REQUIRE(eth.register_layer(arp));
  REQUIRE(ip.register_layer(udp));
  UDPApplication app;
  REQUIRE(udp.register_layer(app));
  REQUIRE(app.connect("10.30.0.2", 7));
  CHECK(app.local_port() >= runtime::ephemeral_first);

  static_stack peer(wire.b(), clock_ref(clock), {.mac = *mac_address::parse("02:00:00:00:0b:01"), .address = static_ip});
  simulation sim(clock, eth, peer);

  // The first datagram waits in ARP's queue while the runtime stack asks
  // for the static stack's address; the rest find the entry.
  REQUIRE(app.send_packet(std::string_view("datagram 0")));
  REQUIRE(sim.run_until([&] { return app.queued() == 1; }, 5s).condition_met);
  constexpr int count = 20;
  for (int i = 1; i < count; ++i) REQUIRE(app.send_packet("datagram " + std::to_string(i)));
  const auto result = sim.run_until([&] { return app.queued() == count; }, 5s);
  CHECK_FALSE(result.stalled);
  REQUIRE(result.condition_met);
  std::vector<std::string> echoed;
  for (int i = 0; i < count; ++i) {
    auto echo = app.fetch_data_from();
    REQUIRE(echo);
    CHECK(echo->address == static_ip);
    CHECK(echo->port == 7);
    echoed.push_back(text_of(echo->data));
  }
  std::vector<std::string> expected;
  for (int i = 0; i < count; ++i) expected.push_back("datagram " + std::to_string(i));
  std::sort(echoed.begin(), echoed.end());
  std::sort(expected.begin(), expected.end());
  CHECK(echoed == expected);
  CHECK(peer.link().find<static_echo>().datagrams == count);
  CHECK(arp.stats().requests_sent == 1);
  CHECK(arp.lookup(static_ip) == *mac_address::parse("02:00:00:00:0b:01"));
  CHECK(eth.unresolved() == 0);
}

namespace {
// A resolver of the user's own in place of the built-in ARP layer: the link
// asks it through the virtual lookup (the built-in one is read by name).
class fixed_resolver : public runtime::layer {
 public:
  fixed_resolver() : layer("fixed resolver") {}
  ~fixed_resolver() override { detach(); }
  std::uint32_t key() const noexcept override { return eth::ethertype::arp; }
  runtime::service needs() const noexcept override { return runtime::service::link; }
  void receive(const runtime::header_set&, bytes_view) override {}
  bool resolves_ipv4() const noexcept override { return true; }
  std::optional<mac_address> lookup(ipv4_address address) const override {
    ++asked;
    if (address == peer_ip) return peer_mac;
    return std::nullopt;
  }
  mutable int asked = 0;
};
}  // namespace

TEST_CASE("a resolver registered in ARP's place answers the link's lookups") {
  virtual_clock clock;
  runtime::ethernet_layer eth(scripted_device{}, our_config(), clock_ref(clock));
  runtime::ip_layer ip;
  runtime::udp_layer udp;
  fixed_resolver resolver;
  REQUIRE(eth.register_layer(ip));
  REQUIRE(eth.register_layer(resolver));
  REQUIRE(ip.register_layer(udp));
  UDPApplication app;
  REQUIRE(udp.register_layer(app));
  REQUIRE(app.bind(5000));

  REQUIRE(app.send_packet_to("known", peer_ip, 7));
  CHECK(resolver.asked == 1);
  auto& sent = eth.device_if<scripted_device>()->sent;
  REQUIRE(sent.size() == 1);
  const auto frame = eth::view::checked(sent[0]);
  REQUIRE(frame);
  CHECK(frame->destination() == peer_mac);
  CHECK(frame->source() == our_mac);

  // Unknown to it: the frame is offered to hold (which the resolver does
  // not take) and counted, not sent.
  static_cast<void>(app.send_packet_to("unknown", *ipv4_address::parse("10.9.0.77"), 7));
  CHECK(resolver.asked == 2);
  CHECK(sent.size() == 1);
  CHECK(eth.unresolved() == 1);
}

// Opening connections: the three-way handshake both ways between two of our
// stacks, simultaneous open, the options of SYN and SYN-ACK (MSS, window
// scale), the ISN, and the policy points that rewrite them, among them the
// original pystack's documented example (a SYN-ACK with sequence number 5555).
#include <catch2/catch.hpp>

#include "tests/tcp/peer.hpp"

using namespace tcp_test;

namespace {

// Both stacks listen and connect.
using both_tcp = TCP<Listen<7, echo_server>>;

}  // namespace

TEST_CASE("handshake and data both ways between two stacks") {
  virtual_clock clock;
  scripted_wire wire(clock);
  journal server_log;
  server_journal::current = &server_log;
  stack_with<both_tcp> a(wire.a(), clock_ref(clock), config_a());
  stack_with<both_tcp> b(wire.b(), clock_ref(clock), config_b());

  journal from_a, from_b;
  recorder app_a;
  app_a.log = &from_a;
  app_a.to_send = "ping from a";
  app_a.close_after_send = true;
  recorder app_b = app_a;
  app_b.log = &from_b;
  app_b.to_send = "ping from b";

  const auto id_a = tcp_of<both_tcp>(a).connect(ip_b, 7, app_a);
  const auto id_b = tcp_of<both_tcp>(b).connect(ip_a, 7, app_b);
  REQUIRE(id_a);
  REQUIRE(id_b);
  REQUIRE(run_until(clock, a, b, [&] { return from_a.closes == 1 && from_b.closes == 1 && server_log.closes == 2; }, 30s));
  CHECK(from_a.connects == 1);
  CHECK(from_b.connects == 1);
  CHECK(from_a.received == "ping from a");  // echoed by b's server
  CHECK(from_b.received == "ping from b");
  CHECK(from_a.reason == close_reason::closed);
  CHECK(server_log.connects == 2);
  CHECK(tcp_of<both_tcp>(a).stats().active_opens == 1);
  CHECK(tcp_of<both_tcp>(a).stats().passive_opens == 1);
  CHECK(tcp_of<both_tcp>(a).stats().retransmissions == 0);

  // The first three TCP segments from a's client: SYN, then ACK (with data).
  std::vector<seen> handshake;
  for (const auto& s : wire.get().log)
    if (s.tcp && (s.from_a ? s.tcp->source_port : s.tcp->destination_port) != 7) handshake.push_back(s);
  REQUIRE(handshake.size() >= 3);
  CHECK(handshake[0].tcp->flags.to_string() == "S");
  CHECK(handshake[1].tcp->flags.to_string() == "SA");
  CHECK(handshake[1].tcp->ack_number == handshake[0].tcp->sequence_number + 1);
  CHECK(handshake[2].tcp->flags.has(tcp::flags::ack));
  CHECK(handshake[2].tcp->sequence_number == handshake[0].tcp->sequence_number + 1);
  CHECK(handshake[2].tcp->ack_number == handshake[1].tcp->sequence_number + 1);
}

// The original's "Modifying the stack behavior" example, as a policy:
//   def _send_SYNACK(self, packet): self.seqNo = 5555 ...
struct seq_5555_policy : tcp_default_policy {
  template <class Connection>
  void syn_ack(tcp::repr& header, const Connection&) noexcept {
    header.sequence_number = seq_number(5555);
  }
};

TEST_CASE("a policy that sends SYN-ACK with seq 5555 completes the handshake (the original's example)") {
  using server = TCP<Session<seq_5555_policy>, Listen<7, echo_server>>;
  SECTION("against a scripted peer: the numbers on the wire") {
    peer_fixture<server> peer;
    journal log;
    server_journal::current = &log;
    const segment syn_ack = peer.handshake(7, seq_number(100));
    CHECK(syn_ack.seq() == seq_number(5555));
    CHECK(syn_ack.checksum_ok);
    REQUIRE(peer.only());
    CHECK(peer.only()->state() == tcp_state::established);
    CHECK(peer.only()->initial_send_sequence() == seq_number(5555));
    peer.inject(from_peer(7, seq_number(101), seq_number(5556), tcp::flags::ack | tcp::flags::psh), "hi");
    const segment echo = peer.take_one();
    CHECK(echo.payload == "hi");
    CHECK(echo.seq() == seq_number(5556));
    CHECK(echo.ack() == seq_number(103));
  }
  SECTION("against our own client") {
    virtual_clock clock;
    scripted_wire wire(clock);
    journal server_log, client_log;
    server_journal::current = &server_log;
    stack_with<server> a(wire.a(), clock_ref(clock), config_a());
    stack_with<TCP<>> b(wire.b(), clock_ref(clock), config_b());
    recorder client;
    client.log = &client_log;
    client.to_send = "after 5555";
    client.close_after_send = true;
    REQUIRE(tcp_of<TCP<>>(b).connect(ip_a, 7, client));
    REQUIRE(run_until(clock, a, b, [&] { return client_log.closes == 1 && server_log.closes == 1; }, 30s));
    CHECK(client_log.received == "after 5555");
    bool saw = false;
    for (const auto& s : wire.get().log)
      if (s.tcp && s.tcp->flags.to_string() == "SA") saw = s.tcp->sequence_number == seq_number(5555);
    CHECK(saw);
  }
}

TEST_CASE("simultaneous open ends ESTABLISHED on both sides (RFC 9293 §3.5 Figure 7)") {
  virtual_clock clock;
  scripted_wire wire(clock);
  stack_with<TCP<>> a(wire.a(), clock_ref(clock), config_a());
  stack_with<TCP<>> b(wire.b(), clock_ref(clock), config_b());
  // Both know each other's link address, so the SYNs cross on the wire.
  a.link().find<ARP<>::bound<stack_with<TCP<>>::link_layer>>().insert(ip_b, mac_b);
  b.link().find<ARP<>::bound<stack_with<TCP<>>::link_layer>>().insert(ip_a, mac_a);
  journal log_a, log_b;
  recorder app_a, app_b;
  app_a.log = &log_a;
  app_a.to_send = "from a";
  app_b.log = &log_b;
  app_b.to_send = "from b";
  REQUIRE(tcp_of<TCP<>>(a).connect(ip_b, 6000, app_a, 5000));
  REQUIRE(tcp_of<TCP<>>(b).connect(ip_a, 5000, app_b, 6000));
  REQUIRE(run_until(clock, a, b, [&] { return log_a.received == "from b" && log_b.received == "from a"; }, 10s));
  CHECK(log_a.connects == 1);
  CHECK(log_b.connects == 1);
  // Each side saw a SYN without ACK while in SYN-SENT.
  int bare_syns = 0, syn_acks = 0;
  for (const auto& s : wire.get().log) {
    if (!s.tcp) continue;
    bare_syns += s.tcp->flags.to_string() == "S";
    syn_acks += s.tcp->flags.to_string() == "SA";
  }
  CHECK(bare_syns == 2);
  CHECK(syn_acks == 2);
  CHECK(tcp_of<TCP<>>(a).stats().retransmissions == 0);

  SECTION("and simultaneous close ends in TIME-WAIT on both sides (Figure 13)") {
    auto* ca = tcp_of<TCP<>>(a).find_connection(*log_a.id);
    auto* cb = tcp_of<TCP<>>(b).find_connection(*log_b.id);
    REQUIRE(ca);
    REQUIRE(cb);
    app_a.close_on_peer_close = app_b.close_on_peer_close = false;
    REQUIRE(ca->close());
    REQUIRE(cb->close());
    std::vector<tcp_state> seen_a;
    REQUIRE(run_until(clock, a, b, [&] {
      if (auto* c = tcp_of<TCP<>>(a).find_connection(*log_a.id); c && (seen_a.empty() || seen_a.back() != c->state()))
        seen_a.push_back(c->state());
      return log_a.closes == 1 && log_b.closes == 1;
    }, 10s));
    CHECK(std::find(seen_a.begin(), seen_a.end(), tcp_state::closing) != seen_a.end());
    CHECK(tcp_of<TCP<>>(a).find_connection(*log_a.id)->state() == tcp_state::time_wait);
    CHECK(tcp_of<TCP<>>(b).find_connection(*log_b.id)->state() == tcp_state::time_wait);
    CHECK(log_a.reason == close_reason::closed);
    // Both FINs carried ACK.
    for (const auto& s : wire.get().log)
      if (s.tcp && s.tcp->flags.has(tcp::flags::fin)) CHECK(s.tcp->flags.has(tcp::flags::ack));
    // And the TIME-WAITs end after 2 MSL.
    run_quiet(clock, a, b, 120s);
    CHECK(tcp_of<TCP<>>(a).connection_count() == 0);
    CHECK(tcp_of<TCP<>>(b).connection_count() == 0);
  }
}

TEST_CASE("SYN and SYN-ACK carry MSS from the MTU, and window scale when both sides offer it") {
  journal log;
  server_journal::current = &log;
  SECTION("our SYN") {
    peer_fixture<TCP<>> peer;
    recorder app;
    app.log = &log;
    REQUIRE(peer.tcp().connect(ip_b, 80, app));
    const segment syn = peer.take_one();
    CHECK(syn.header.options.mss() == 1460);  // 1500 - 20 - 20 (RFC 9293 §3.7.1)
    CHECK(syn.header.options.window_scale() == 3);  // 256 KiB needs a shift of 3
    CHECK(syn.header.window == 65535);
    CHECK(syn.header.ack_number == seq_number{});
  }
  SECTION("a SYN-ACK to a SYN with window scale") {
    peer_fixture<TCP<Listen<7, echo_server>>> peer;
    tcp::repr syn = from_peer(7, seq_number(1), seq_number{}, tcp::flags::syn, 100);
    (void)syn.options.push_mss(500);
    (void)syn.options.push_window_scale(2);
    peer.inject(syn);
    const segment syn_ack = peer.take_one();
    CHECK(syn_ack.header.options.mss() == 1460);
    CHECK(syn_ack.header.options.window_scale() == 3);
    peer.inject(from_peer(7, seq_number(2), syn_ack.seq() + 1, tcp::flags::ack, 100));
    auto* c = peer.only();
    REQUIRE(c);
    CHECK(c->send_scale() == 2);
    CHECK(c->receive_scale() == 3);
    CHECK(c->send_window() == 400);  // 100 << 2 (RFC 7323 §2.3)
    CHECK(c->peer_mss() == 500);
    // Echo 2000 bytes: at most 400 in flight, segments of at most 400.
    const std::string data = pattern(2000);
    peer.inject(from_peer(7, seq_number(2), syn_ack.seq() + 1, tcp::flags::ack, 100), data.substr(0, 1000));
    peer.inject(from_peer(7, seq_number(1002), syn_ack.seq() + 1, tcp::flags::ack, 100), data.substr(1000));
    std::size_t in_flight = 0;
    for (const auto& s : peer.take()) {
      CHECK(s.payload.size() <= 400);
      in_flight += s.payload.size();
      // Our window, scaled by 3: what we offer is 256 KiB >> 3.
      CHECK(s.header.window == (256 * 1024) >> 3);
    }
    CHECK(in_flight == 400);
  }
  SECTION("no window scale in the SYN: none in the SYN-ACK, no scaling (RFC 7323 §1.3)") {
    peer_fixture<TCP<Listen<7, echo_server>>> peer;
    const segment syn_ack = peer.handshake(7, seq_number(1));
    CHECK_FALSE(syn_ack.header.options.window_scale());
    auto* c = peer.only();
    REQUIRE(c);
    CHECK(c->send_scale() == 0);
    CHECK(c->receive_scale() == 0);
    CHECK(c->send_window() == 65535);
  }
  SECTION("no MSS in the SYN: 536 (RFC 9293 §3.7.1)") {
    peer_fixture<TCP<Listen<7, echo_server>>> peer;
    peer.inject(from_peer(7, seq_number(1), seq_number{}, tcp::flags::syn));
    const segment syn_ack = peer.take_one();
    peer.inject(from_peer(7, seq_number(2), syn_ack.seq() + 1, tcp::flags::ack));
    REQUIRE(peer.only());
    CHECK(peer.only()->peer_mss() == 536);
    peer.inject(from_peer(7, seq_number(2), syn_ack.seq() + 1, tcp::flags::ack), pattern(1200));
    for (const auto& s : peer.take()) CHECK(s.payload.size() <= 536);
  }
}

TEST_CASE("a smaller MTU gives a smaller MSS") {
  peer_fixture<TCP<>> peer;
  peer.stack.config().mtu = 1000;
  journal log;
  recorder app;
  app.log = &log;
  REQUIRE(peer.tcp().connect(ip_b, 80, app));
  CHECK(peer.take_one().header.options.mss() == 960);
}

// Which options to send is a policy point: here timestamps on every
// segment and no window scale.
struct options_policy : tcp_default_policy {
  void options(tcp::repr& header, segment_kind kind) noexcept {
    if (kind == segment_kind::syn || kind == segment_kind::syn_ack) {
      header.options.clear();
      (void)header.options.push_mss(1200);
    }
    (void)header.options.push_timestamp(++clock, 0);
  }
  std::uint32_t clock = 0;
};

TEST_CASE("the options policy decides every segment's options, and segments shrink to fit them") {
  peer_fixture<TCP<Session<options_policy>, Listen<7, echo_server>>> peer;
  journal log;
  server_journal::current = &log;
  tcp::repr syn = from_peer(7, seq_number(1), seq_number{}, tcp::flags::syn);
  (void)syn.options.push_mss(1460);
  (void)syn.options.push_window_scale(5);
  peer.inject(syn);
  const segment syn_ack = peer.take_one();
  CHECK(syn_ack.header.options.mss() == 1200);
  CHECK_FALSE(syn_ack.header.options.window_scale());
  CHECK(syn_ack.header.options.timestamp());
  peer.inject(from_peer(7, seq_number(2), syn_ack.seq() + 1, tcp::flags::ack));
  REQUIRE(peer.only());
  CHECK(peer.only()->receive_scale() == 0);  // we did not offer it in the end
  CHECK(peer.only()->send_scale() == 0);
  peer.inject(from_peer(7, seq_number(2), syn_ack.seq() + 1, tcp::flags::ack), pattern(3000));
  for (const auto& s : peer.take()) {
    CHECK(s.header.options.timestamp());
    CHECK(s.header.size() + s.payload.size() <= 20 + 1460);  // MSS minus the 12 option bytes
  }
}

TEST_CASE("initial sequence numbers follow RFC 6528: keyed per 4-tuple, moving with a 4 µs clock") {
  rfc6528_isn isn(1, 2);
  const four_tuple t1{{ip_a, 80}, {ip_b, 40000}};
  const four_tuple t2{{ip_a, 80}, {ip_b, 40001}};
  const instant t0{};
  CHECK(isn(t1, t0) != isn(t2, t0));
  CHECK(isn(t1, t0 + 1s) - isn(t1, t0) == 250'000);  // one tick per 4 µs
  CHECK(isn(t1, t0 + 3us) == isn(t1, t0));
  CHECK(rfc6528_isn(1, 2)(t1, t0) == isn(t1, t0));  // the key makes it reproducible
  CHECK(rfc6528_isn(1, 3)(t1, t0) != isn(t1, t0));
  // SipHash-2-4's reference vector (key 00..0f, input 00..0e, output a129ca6149be45e5).
  std::array<byte, 15> input{};
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<byte>(i);
  CHECK(detail::siphash24(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, input.data(), input.size()) ==
        0xa129ca6149be45e5ull);
}

struct fixed_isn_policy : tcp_default_policy {
  seq_number initial_sequence(const four_tuple&, instant) noexcept { return seq_number(0xfffffff0u); }
};

TEST_CASE("the ISN is a policy point, and sequence numbers wrap cleanly") {
  virtual_clock clock;
  scripted_wire wire(clock);
  journal server_log, client_log;
  server_journal::current = &server_log;
  using server = TCP<Session<fixed_isn_policy>, Listen<7, echo_server>>;
  stack_with<server> a(wire.a(), clock_ref(clock), config_a());
  stack_with<TCP<Session<fixed_isn_policy>>> b(wire.b(), clock_ref(clock), config_b());
  recorder client;
  client.log = &client_log;
  client.to_send = pattern(5000);  // crosses 2^32 in both directions
  client.close_after_send = true;
  REQUIRE(tcp_of<TCP<Session<fixed_isn_policy>>>(b).connect(ip_a, 7, client));
  REQUIRE(run_until(clock, a, b, [&] { return client_log.closes == 1 && server_log.closes == 1; }, 30s));
  CHECK(client_log.received == pattern(5000));
  for (const auto& s : wire.get().log)
    if (s.tcp && s.tcp->flags.has(tcp::flags::syn)) CHECK(s.tcp->sequence_number == seq_number(0xfffffff0u));
}

// Hooks: every segment in, every segment out, any field.
struct hooked_server {
  static inline int syns_seen = 0;
  static inline int segments_seen = 0;
  template <class C>
  void on_data(C& c, bytes_view d) {
    (void)c.send(d);
  }
  template <class H>
  void hook_incoming(const H& headers, const tcp::view& segment) {
    ++segments_seen;
    if (segment.flags().has(tcp::flags::syn)) ++syns_seen;
    CHECK(headers.template get<ipv4::view>().source() == ip_b);
    CHECK(headers.template get<eth::view>().source() == mac_b);
  }
  void hook_outgoing(tcp::repr& t) { t.urgent_pointer = 0x1234; }
  void hook_outgoing(ipv4::repr& ip) {
    ip.ttl = 7;
    ip.identification = 0xbeef;
  }
  void hook_outgoing(eth::repr& e) { e.source = *mac_address::parse("02:aa:bb:cc:dd:ee"); }
};

TEST_CASE("hook_incoming sees every segment, SYN included; hook_outgoing rewrites every header sent") {
  peer_fixture<TCP<Listen<7, hooked_server>>> peer;
  const segment syn_ack = peer.handshake(7, seq_number(1));
  CHECK(hooked_server::syns_seen == 1);
  CHECK(syn_ack.header.urgent_pointer == 0x1234);
  CHECK(syn_ack.checksum_ok);
  peer.inject(from_peer(7, seq_number(2), syn_ack.seq() + 1, tcp::flags::ack), "abc");
  CHECK(hooked_server::segments_seen == 3);
  const auto frames = peer.stack.device().sent;
  const segment echo = peer.take_one();
  CHECK(echo.payload == "abc");
  CHECK(echo.header.urgent_pointer == 0x1234);
  CHECK(echo.checksum_ok);
  const auto frame = eth::view::checked(frames.back());
  CHECK(frame->source() == *mac_address::parse("02:aa:bb:cc:dd:ee"));
  const auto ip = ipv4::view::checked(frame->payload());
  CHECK(ip->ttl() == 7);
  CHECK(ip->identification() == 0xbeef);
  CHECK(ip->verify_checksum());
}

struct port_rewriting_client {
  journal* log = nullptr;
  template <class C>
  void on_data(C&, bytes_view d) {
    log->received += as_string(d);
  }
  // May change even the ports and the sequence number of what goes out.
  void hook_outgoing(tcp::repr& t) { t.source_port = 1111; }
};

TEST_CASE("a client application's hooks apply too") {
  peer_fixture<TCP<>> peer;
  journal log;
  port_rewriting_client app{&log};
  REQUIRE(peer.tcp().connect(ip_b, 80, app));
  const segment syn = peer.take_one();
  CHECK(syn.header.source_port == 1111);
  CHECK(syn.checksum_ok);
}

TEST_CASE("connect() refuses what it cannot do, with a typed error") {
  peer_fixture<TCP<Listen<7, echo_server>>> peer;
  journal log;
  recorder app;
  app.log = &log;
  auto& tcp = peer.tcp();
  CHECK(tcp.connect(ipv4_address::any(), 80, app).error().what == tcp_error::code::invalid_address);
  CHECK(tcp.connect(ipv4_address::broadcast(), 80, app).error().what == tcp_error::code::invalid_address);
  CHECK(tcp.connect(*ipv4_address::parse("224.0.0.1"), 80, app).error().what == tcp_error::code::invalid_address);
  CHECK(tcp.connect(config_a().subnet_broadcast(), 80, app).error().what == tcp_error::code::invalid_address);
  CHECK(tcp.connect(ip_b, 0, app).error().what == tcp_error::code::invalid_address);
  CHECK(tcp.connect(ip_b, 80, app, 7).error().what == tcp_error::code::port_in_use);  // the listener's
  REQUIRE(tcp.connect(ip_b, 80, app, 3000));
  CHECK(tcp.connect(ip_b, 80, app, 3000).error().what == tcp_error::code::port_in_use);
  const auto id = tcp.connect(ip_b, 80, app);
  REQUIRE(id);
  auto* c = tcp.find_connection(*id);
  REQUIRE(c);
  CHECK(c->local().port >= 49152);  // RFC 6335 §6
  CHECK(c->local().address == ip_a);
  CHECK(c->remote() == tcp_endpoint{ip_b, 80});
  CHECK(tcp.port_in_use(c->local().port));
  CHECK(tcp.port_in_use(7));
  CHECK_FALSE(tcp.port_in_use(8));
}

struct two_connections_policy : tcp_default_policy {
  tcp_limits limits() const noexcept {
    tcp_limits l;
    l.max_connections = 2;
    return l;
  }
};

TEST_CASE("the connection limit refuses SYNs with RST and connect() with an error") {
  peer_fixture<TCP<Session<two_connections_policy>, Listen<7, echo_server>>> peer;
  journal log;
  server_journal::current = &log;
  peer.handshake(7, seq_number(1));
  peer.inject([] {
    auto syn = from_peer(7, seq_number(50), seq_number{}, tcp::flags::syn);
    syn.source_port = 40001;
    return syn;
  }());
  CHECK(peer.take_one().flags() == "SA");
  peer.inject([] {
    auto syn = from_peer(7, seq_number(90), seq_number{}, tcp::flags::syn);
    syn.source_port = 40002;
    return syn;
  }());
  const segment refused = peer.take_one();
  CHECK(refused.flags() == "RA");
  CHECK(refused.ack() == seq_number(91));
  CHECK(peer.tcp().stats().refused_limit == 1);
  recorder app;
  app.log = &log;
  CHECK(peer.tcp().connect(ip_b, 80, app).error().what == tcp_error::code::too_many_connections);
}

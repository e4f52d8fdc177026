// Moving data: segmentation by MSS, more than a window each way, the peer's
// window respected, loss of any single segment recovered, reordering,
// zero-window probing, delayed ACKs, a send buffer that fills, and a seeded
// lossy link.
#include <catch2/catch.hpp>

#include "pystack/device/in_process_link.hpp"
#include "tests/tcp/peer.hpp"

using namespace tcp_test;

namespace {

using server_tcp = TCP<Listen<7, echo_server>>;
using client_tcp = TCP<>;

struct transfer {
  virtual_clock clock;
  scripted_wire wire{clock};
  journal server_log, client_log;
  stack_with<client_tcp> a;
  stack_with<server_tcp> b;
  recorder client;

  explicit transfer(std::string data) : a(wire.a(), clock_ref(clock), config_a()), b(wire.b(), clock_ref(clock), config_b()) {
    server_journal::current = &server_log;
    client.log = &client_log;
    client.to_send = std::move(data);
    client.close_after_send = true;
  }
  bool run(duration limit = 120s) {
    REQUIRE(tcp_of<client_tcp>(a).connect(ip_b, 7, client));
    return run_until(clock, a, b, [&] { return client_log.closes == 1 && server_log.closes == 1; }, limit);
  }
  auto& client_layer() { return tcp_of<client_tcp>(a); }
  auto& server_layer() { return tcp_of<server_tcp>(b); }
};

}  // namespace

TEST_CASE("more than a window each way, in segments of at most one MSS") {
  const std::string data = pattern(600 * 1024);  // over twice the 256 KiB window
  transfer t(data);
  REQUIRE(t.run());
  CHECK(t.server_log.received.size() == data.size());
  CHECK(t.server_log.received == data);
  CHECK(t.client_log.received == data);  // echoed back
  CHECK(t.client_log.reason == close_reason::closed);
  CHECK(t.server_log.reason == close_reason::closed);
  std::size_t full = 0;
  for (const auto& s : t.wire.get().log) {
    if (!s.tcp) continue;
    CHECK(s.payload <= 1460);
    full += s.payload == 1460;
  }
  CHECK(full >= 2 * data.size() / 1460 - 2);  // nearly all are full-sized
  CHECK(t.client_layer().stats().retransmissions == 0);
  CHECK(t.server_layer().stats().retransmissions == 0);
  CHECK(t.client_layer().stats().out_of_order == 0);
}

struct small_window_policy : tcp_default_policy {
  template <class C>
  std::uint32_t receive_window(const C&) const noexcept {
    return 3000;
  }
};

TEST_CASE("the sender never has more in flight than the peer's window") {
  virtual_clock clock;
  scripted_wire wire(clock);
  journal server_log, client_log;
  server_journal::current = &server_log;
  using small_server = TCP<Session<small_window_policy>, Listen<7, sink_server>>;
  stack_with<client_tcp> a(wire.a(), clock_ref(clock), config_a());
  stack_with<small_server> b(wire.b(), clock_ref(clock), config_b());
  recorder client;
  client.log = &client_log;
  client.to_send = pattern(50'000);
  client.close_after_send = true;
  REQUIRE(tcp_of<client_tcp>(a).connect(ip_b, 7, client));
  REQUIRE(run_until(clock, a, b, [&] { return client_log.closes == 1 && server_log.closes == 1; }, 60s));
  CHECK(server_log.received == pattern(50'000));
  // Replay the wire: each data segment from a must end within the last
  // window b offered (the window is below 64 KiB, so it is not scaled).
  std::optional<seq_number> acked;
  std::uint32_t window = 0;
  std::size_t checked = 0;
  for (const auto& s : wire.get().log) {
    if (!s.tcp) continue;
    if (!s.from_a && s.tcp->flags.has(tcp::flags::ack)) {
      acked = s.tcp->ack_number;
      window = s.tcp->window;
      CHECK(window <= 3000);
    } else if (s.from_a && s.payload > 0 && acked) {
      CHECK(s.tcp->sequence_number + static_cast<std::int64_t>(s.payload) <= *acked + window);
      ++checked;
    }
  }
  CHECK(checked >= 50'000 / 1460);
}

TEST_CASE("the loss of any one segment is recovered") {
  const std::string data = pattern(20'000);
  // How many TCP segments each side sends on a clean wire.
  std::size_t clean[2] = {0, 0};
  {
    transfer t(data);
    REQUIRE(t.run());
    for (const auto& s : t.wire.get().log)
      if (s.tcp) ++clean[s.from_a ? 0 : 1];
  }
  REQUIRE(clean[0] > 10);
  REQUIRE(clean[1] > 10);
  REQUIRE(clean[0] < 64);
  REQUIRE(clean[1] < 64);
  const bool from_a = GENERATE(true, false);
  const std::size_t victim = GENERATE(range<std::size_t>(0, 64));
  if (victim >= clean[from_a ? 0 : 1]) return;
  INFO("dropping TCP segment " << victim << " sent by " << (from_a ? "the client" : "the server"));
  transfer t(data);
  std::size_t count[2] = {0, 0};
  t.wire.set_filter([&](const seen& s) {
    scripted_wire::decision d;
    if (s.tcp && s.from_a == from_a && count[from_a ? 0 : 1]++ == victim) d.what = scripted_wire::verdict::drop;
    return d;
  });
  REQUIRE(t.run(200s));
  CHECK(t.wire.get().dropped == 1);
  CHECK(t.server_log.received == data);
  CHECK(t.client_log.received == data);
  CHECK(t.client_log.reason == close_reason::closed);
  CHECK(t.server_log.reason == close_reason::closed);
  CHECK(t.client_log.connects == 1);
}

TEST_CASE("a lost data segment mid-window is fast-retransmitted without waiting for the timer") {
  const std::string data = pattern(200'000);
  transfer t(data);
  std::size_t data_segments = 0;
  t.wire.set_filter([&](const seen& s) {
    scripted_wire::decision d;
    if (s.from_a && s.payload > 0 && data_segments++ == 20) d.what = scripted_wire::verdict::drop;
    return d;
  });
  REQUIRE(t.run());
  CHECK(t.server_log.received == data);
  CHECK(t.client_layer().stats().fast_retransmits == 1);
  CHECK(t.client_layer().stats().timeouts == 0);
  CHECK(t.server_layer().stats().out_of_order > 0);
}

TEST_CASE("segments that arrive out of order are held and delivered in order") {
  const std::string data = pattern(60'000);
  const std::size_t late = GENERATE(0, 3, 7, 15);
  INFO("data segment " << late << " arrives 5 ms late");
  transfer t(data);
  std::size_t data_segments = 0;
  t.wire.set_filter([&](const seen& s) {
    scripted_wire::decision d;
    if (s.from_a && s.payload > 0 && data_segments++ == late) d.extra_delay = 5ms;
    return d;
  });
  REQUIRE(t.run());
  CHECK(t.server_log.received == data);
  CHECK(t.server_layer().stats().out_of_order >= 1);
}

TEST_CASE("out-of-order segments with a scripted peer: held, then delivered when the gap fills") {
  peer_fixture<TCP<Listen<7, sink_server>>> peer;
  journal log;
  server_journal::current = &log;
  const segment syn_ack = peer.handshake(7, seq_number(1));
  const seq_number ack = syn_ack.seq() + 1;
  peer.inject(from_peer(7, seq_number(2 + 5), ack, tcp::flags::ack), "world");
  const segment dup = peer.take_one();
  CHECK(dup.ack() == seq_number(2));  // an immediate ACK says what is missing (RFC 5681 §4.2)
  CHECK(log.received.empty());
  peer.inject(from_peer(7, seq_number(2 + 10), ack, tcp::flags::ack | tcp::flags::fin), "!");
  peer.take();
  peer.inject(from_peer(7, seq_number(2), ack, tcp::flags::ack), "hello");
  CHECK(log.received == "helloworld!");
  CHECK(log.peer_closes == 1);  // the held FIN counted once the gap filled
  const auto replies = peer.take();
  REQUIRE(!replies.empty());
  CHECK(replies.front().ack() == seq_number(2 + 11 + 1));
  CHECK(peer.tcp().stats().out_of_order == 2);
}

TEST_CASE("duplicate and overlapping data is delivered once") {
  peer_fixture<TCP<Listen<7, sink_server>>> peer;
  journal log;
  server_journal::current = &log;
  const segment syn_ack = peer.handshake(7, seq_number(1));
  const seq_number ack = syn_ack.seq() + 1;
  peer.inject(from_peer(7, seq_number(2), ack, tcp::flags::ack), "abcdef");
  peer.inject(from_peer(7, seq_number(2), ack, tcp::flags::ack), "abcdef");    // all old
  peer.inject(from_peer(7, seq_number(2 + 3), ack, tcp::flags::ack), "defgh");  // half old
  CHECK(log.received == "abcdefgh");
  const auto replies = peer.take();
  REQUIRE(replies.size() == 3);
  CHECK(replies.back().ack() == seq_number(2 + 8));
  CHECK(peer.tcp().stats().unacceptable == 1);
}

// A receiver that offers 100 bytes, so that a test can fill the window.
struct hundred_byte_window_policy : tcp_default_policy {
  template <class C>
  std::uint32_t receive_window(const C&) const noexcept {
    return 100;
  }
};

// The layer takes the next in-order data segment (ESTABLISHED, SEG.SEQ =
// RCV.NXT, inside the window, no gap queued, ACK = SND.UNA, no SYN/FIN/RST)
// with fewer tests than the general path (TCP<...>::in_order_data). Each
// case sits on one edge of those conditions, inside or just outside, and
// checks the outcome RFC 9293 §3.10.7.4 gives: what is delivered, the ACK,
// the peer's window, and which counters move.
TEST_CASE("in-order data on each edge of the receive fast path is processed as §3.10.7.4 says") {
  peer_fixture<TCP<Session<hundred_byte_window_policy>, Listen<7, sink_server>>> peer;
  journal log;
  server_journal::current = &log;
  const segment syn_ack = peer.handshake(7, seq_number(1));
  CHECK(syn_ack.header.window == 100);
  const seq_number una = syn_ack.seq() + 1;
  auto* c = peer.only();
  REQUIRE(c != nullptr);

  // Exactly the window: all of it, acknowledged at once, the window offered again.
  peer.inject(from_peer(7, seq_number(2), una, tcp::flags::ack | tcp::flags::psh, 3000), std::string(100, 'a'));
  segment reply = peer.take_one();
  CHECK(reply.flags() == "A");
  CHECK(reply.ack() == seq_number(102));
  CHECK(reply.header.window == 100);
  CHECK(log.received == std::string(100, 'a'));
  CHECK(peer.tcp().stats().beyond_window == 0);
  CHECK(c->send_window() == 3000);  // the peer's window, from the newest segment

  // One byte past the window: trimmed (general path).
  peer.inject(from_peer(7, seq_number(102), una, tcp::flags::ack), std::string(101, 'b'));
  reply = peer.take_one();
  CHECK(reply.ack() == seq_number(202));
  CHECK(log.received.size() == 200);
  CHECK(peer.tcp().stats().beyond_window == 1);

  // Our data in flight, the peer's data acknowledging none of it (SEG.ACK =
  // SND.UNA): delivered, not a duplicate ACK (it carries data, RFC 5681 §2),
  // the window updated, our data still outstanding.
  REQUIRE(c->send(as_bytes("ours")));
  CHECK(peer.take_one().payload == "ours");
  peer.inject(from_peer(7, seq_number(202), una, tcp::flags::ack, 2000), "cc");
  reply = peer.take_one();
  CHECK(reply.ack() == seq_number(204));
  CHECK(log.received.size() == 202);
  CHECK(peer.tcp().stats().duplicate_acks == 0);
  CHECK(c->send_window() == 2000);
  CHECK(c->buffered() == 4);

  // The next one's window replaces it (SEG.SEQ moved past SND.WL1).
  peer.inject(from_peer(7, seq_number(204), una, tcp::flags::ack, 1500), "d");
  CHECK(peer.take_one().ack() == seq_number(205));
  CHECK(c->send_window() == 1500);

  // New data acknowledged with data (general path): both processed.
  peer.inject(from_peer(7, seq_number(205), una + 4, tcp::flags::ack, 1500), "e");
  CHECK(peer.take_one().ack() == seq_number(206));
  CHECK(c->buffered() == 0);

  // With FIN (general path): delivered, the FIN taken; sink_server closes
  // in turn, so our FIN carries the ACK.
  peer.inject(from_peer(7, seq_number(206), una + 4, tcp::flags::ack | tcp::flags::fin, 1500), "f");
  reply = peer.take_one();
  CHECK(reply.flags() == "FA");
  CHECK(reply.ack() == seq_number(208));
  CHECK(log.received == std::string(100, 'a') + std::string(100, 'b') + "ccdef");
  CHECK(log.peer_closes == 1);
  CHECK(c->state() == tcp_state::last_ack);
}

// A receiver whose window closes after 4000 bytes until the test opens it.
struct gate_policy : tcp_default_policy {
  static inline bool open = false;
  template <class C>
  std::uint32_t receive_window(const C& c) const noexcept {
    return open || c.stats().bytes_received < 4000 ? 4000 : 0;
  }
};

TEST_CASE("a zero window is probed, with back-off, until it opens (RFC 9293 §3.8.6.1)") {
  gate_policy::open = false;
  virtual_clock clock;
  scripted_wire wire(clock);
  journal server_log, client_log;
  server_journal::current = &server_log;
  using gated_server = TCP<Session<gate_policy>, Listen<7, sink_server>>;
  stack_with<client_tcp> a(wire.a(), clock_ref(clock), config_a());
  stack_with<gated_server> b(wire.b(), clock_ref(clock), config_b());
  recorder client;
  client.log = &client_log;
  client.to_send = pattern(20'000);
  client.close_after_send = true;
  REQUIRE(tcp_of<client_tcp>(a).connect(ip_b, 7, client));
  // Shut: the data stops at the edge and the client probes.
  run_until(clock, a, b, [&] { return tcp_of<client_tcp>(a).stats().window_probes >= 4; }, 60s);
  CHECK(server_log.received == pattern(20'000).substr(0, server_log.received.size()));
  CHECK(server_log.received.size() >= 4000);
  CHECK(server_log.received.size() < 20'000);
  CHECK(tcp_of<gated_server>(b).stats().zero_window_dropped >= 1);
  CHECK(client_log.closes == 0);  // probing never gives up while the peer answers
  const auto probes_before = tcp_of<client_tcp>(a).stats().window_probes;
  // Probing backs off: no more than a probe per doubling interval.
  const instant t0 = clock.now();
  run_until(clock, a, b, [&] { return tcp_of<client_tcp>(a).stats().window_probes >= probes_before + 2; }, 600s);
  CHECK(clock.now() - t0 >= 2s);
  // The probes: one byte each, at intervals that double (RFC 1122 §4.2.2.17).
  std::vector<instant> probes;
  for (const auto& s : wire.get().log)
    if (s.from_a && s.payload == 1) probes.push_back(s.at);
  REQUIRE(probes.size() >= 6);
  for (std::size_t i = 2; i < probes.size(); ++i) CHECK(probes[i] - probes[i - 1] == 2 * (probes[i - 1] - probes[i - 2]));
  // Open: the next probe finds it, and everything goes through.
  gate_policy::open = true;
  REQUIRE(run_until(clock, a, b, [&] { return client_log.closes == 1 && server_log.closes == 1; }, 600s));
  CHECK(server_log.received == pattern(20'000));
  CHECK(client_log.reason == close_reason::closed);
}

struct delayed_ack_policy : tcp_default_policy {
  duration ack_delay() const noexcept { return 40ms; }
};

TEST_CASE("delayed ACK as a policy: within the delay, or at once for every second segment") {
  peer_fixture<TCP<Session<delayed_ack_policy>, Listen<7, sink_server>>> peer;
  journal log;
  server_journal::current = &log;
  const segment syn_ack = peer.handshake(7, seq_number(1));
  const seq_number ack = syn_ack.seq() + 1;
  peer.inject(from_peer(7, seq_number(2), ack, tcp::flags::ack), "one");
  CHECK(peer.take().empty());
  REQUIRE(peer.tcp().next_deadline() == peer.clock.now() + 40ms);
  peer.advance(40ms);
  CHECK(peer.take_one().ack() == seq_number(5));
  peer.inject(from_peer(7, seq_number(5), ack, tcp::flags::ack), "two");
  CHECK(peer.take().empty());
  peer.inject(from_peer(7, seq_number(8), ack, tcp::flags::ack), "three");
  CHECK(peer.take_one().ack() == seq_number(13));  // the second segment is acknowledged at once
  // Out of order: at once.
  peer.inject(from_peer(7, seq_number(20), ack, tcp::flags::ack), "gap");
  CHECK(peer.take_one().ack() == seq_number(13));
}

TEST_CASE("without the policy every segment is acknowledged at once") {
  peer_fixture<TCP<Listen<7, sink_server>>> peer;
  journal log;
  server_journal::current = &log;
  const segment syn_ack = peer.handshake(7, seq_number(1));
  peer.inject(from_peer(7, seq_number(2), syn_ack.seq() + 1, tcp::flags::ack), "one");
  CHECK(peer.take_one().ack() == seq_number(5));
}

struct small_buffer_policy : tcp_default_policy {
  tcp_limits limits() const noexcept {
    tcp_limits l;
    l.send_buffer = 5000;
    return l;
  }
};

TEST_CASE("send() takes what fits, and on_writable says when to offer the rest") {
  virtual_clock clock;
  scripted_wire wire(clock);
  journal server_log, client_log;
  server_journal::current = &server_log;
  using small_client = TCP<Session<small_buffer_policy>>;
  stack_with<small_client> a(wire.a(), clock_ref(clock), config_a());
  stack_with<TCP<Listen<7, sink_server>>> b(wire.b(), clock_ref(clock), config_b());
  recorder client;
  client.log = &client_log;
  client.to_send = pattern(100'000);
  client.close_after_send = true;
  const auto id = tcp_of<small_client>(a).connect(ip_b, 7, client);
  REQUIRE(id);
  // Before the handshake the buffer already takes what fits, no more.
  auto* c = tcp_of<small_client>(a).find_connection(*id);
  REQUIRE(c);
  const auto taken = c->send(as_bytes(pattern(8000)));
  REQUIRE(taken);
  CHECK(*taken == 5000);
  CHECK(c->send_buffer_free() == 0);
  CHECK(*c->send(as_bytes("more")) == 0);
  REQUIRE(run_until(clock, a, b, [&] { return client_log.closes == 1 && server_log.closes == 1; }, 60s));
  CHECK(server_log.received == pattern(8000).substr(0, 5000) + pattern(100'000));
}

TEST_CASE("send() and close() after close() are refused; a finished id is unknown") {
  peer_fixture<TCP<Listen<7, sink_server>>> peer;
  journal log;
  server_journal::current = &log;
  peer.handshake(7, seq_number(1));
  auto* c = peer.only();
  REQUIRE(c);
  const connection_id id = c->id();
  REQUIRE(c->close());
  CHECK(c->send(as_bytes("late")).error().what == tcp_error::code::connection_closing);
  CHECK(c->close().error().what == tcp_error::code::connection_closing);
  REQUIRE(peer.tcp().abort(id));
  CHECK(peer.tcp().send(id, as_bytes("x")).error().what == tcp_error::code::no_such_connection);
  CHECK(peer.tcp().close(id).error().what == tcp_error::code::no_such_connection);
  CHECK(peer.tcp().find_connection(id) == nullptr);
}

TEST_CASE("RTT is measured and the RTO follows it (RFC 6298)") {
  transfer t(pattern(100'000));
  t.wire.get().latency = 10ms;
  auto& layer = t.client_layer();
  std::optional<duration> srtt, rto;
  REQUIRE(tcp_of<client_tcp>(t.a).connect(ip_b, 7, t.client));
  run_until(t.clock, t.a, t.b, [&] {
    layer.for_each_connection([&](auto& c) {
      srtt = c.srtt();
      rto = c.rto();
    });
    return t.server_log.received.size() >= 50'000;
  });
  REQUIRE(srtt);
  CHECK(*srtt >= 20ms);
  CHECK(*srtt < 40ms);
  CHECK(*rto == 200ms);  // the minimum (Linux's; RFC 6298 §2.4 allows a smaller one than 1 s)
}

TEST_CASE("the RFC 6298 estimator") {
  retransmission_parameters p;
  p.min_rto = 1ms;
  rto_estimator e(p);
  CHECK(e.rto() == 1s);
  e.sample(100ms);
  CHECK(e.srtt() == 100ms);
  CHECK(e.rttvar() == 50ms);
  CHECK(e.rto() == 300ms);
  e.sample(200ms);
  CHECK(e.rttvar() == duration{3 * 50ms + 100ms} / 4);
  CHECK(e.srtt() == duration{7 * 100ms + 200ms} / 8);
  e.back_off();
  CHECK(e.rto() == 2 * (e.srtt() + 4 * e.rttvar()));
  for (int i = 0; i < 20; ++i) e.back_off();
  CHECK(e.rto() == 60s);
  rto_estimator lost_syn(p);
  lost_syn.after_lost_syn();
  CHECK(lost_syn.rto() == 3s);
}

TEST_CASE("the send buffer and the reassembly queue") {
  send_buffer b(10);
  CHECK(b.push(as_bytes("abcdefgh")) == 8);
  CHECK(b.push(as_bytes("ijkl")) == 2);
  b.consume(5);
  CHECK(b.push(as_bytes("klmno")) == 5);  // wraps around the ring
  std::string out(10, '\0');
  const auto n = b.copy_out(0, mutable_bytes(reinterpret_cast<byte*>(out.data()), out.size()));
  CHECK(out.substr(0, n) == "fghijklmno");
  reassembly_queue q(2);
  CHECK(q.insert(seq_number(10), as_bytes("cd"), false) == reassembly_queue::outcome::queued);
  CHECK(q.insert(seq_number(10), as_bytes("c"), false) == reassembly_queue::outcome::duplicate);
  CHECK(q.insert(seq_number(20), as_bytes("x"), true) == reassembly_queue::outcome::queued);
  CHECK(q.insert(seq_number(30), as_bytes("y"), false) == reassembly_queue::outcome::full);
  seq_number next(9);
  std::string got;
  const bool fin = q.drain(next, [&](bytes_view d, bool) {
    got += as_string(d);
    return true;
  });
  CHECK(got.empty());  // 9 is still missing
  CHECK_FALSE(fin);
  next = seq_number(11);  // "c" arrived in order with one byte before it
  q.drain(next, [&](bytes_view d, bool) {
    got += as_string(d);
    return true;
  });
  CHECK(got == "d");
  CHECK(next == seq_number(12));
}

TEST_CASE("a seeded lossy, reordering, duplicating, corrupting link (in_process_link.hpp)") {
  const std::uint64_t seed = GENERATE(1, 2, 3, 4, 5);
  virtual_clock clock;
  impairment bad;
  bad.loss = 0.05;
  bad.reorder = 0.05;
  bad.duplicate = 0.02;
  bad.corrupt = 0.01;
  bad.delay = 1ms;
  bad.seed = seed;
  impairment back = bad;
  back.seed = seed + 100;
  in_process_link<virtual_clock> wire(clock, link_options{.a_to_b = bad, .b_to_a = back});
  INFO("replay with: " << wire.describe());
  using lossy_client = stack_with<client_tcp, in_process_link<virtual_clock>::endpoint>;
  using lossy_server = stack_with<server_tcp, in_process_link<virtual_clock>::endpoint>;
  lossy_client a(wire.a(), clock_ref(clock), config_a());
  lossy_server b(wire.b(), clock_ref(clock), config_b());
  journal server_log, client_log;
  server_journal::current = &server_log;
  recorder client;
  client.log = &client_log;
  client.to_send = pattern(150'000, static_cast<unsigned>(seed));
  client.close_after_send = true;
  REQUIRE(tcp_of<client_tcp>(a).connect(ip_b, 7, client));
  REQUIRE(run_until(clock, a, b, [&] { return client_log.closes == 1 && server_log.closes == 1; }, 600s));
  CHECK(server_log.received == pattern(150'000, static_cast<unsigned>(seed)));
  CHECK(client_log.received == pattern(150'000, static_cast<unsigned>(seed)));
  CHECK(client_log.reason == close_reason::closed);
  CHECK(tcp_of<client_tcp>(a).stats().retransmissions > 0);
}

// lookup()'s one-entry cache (layers/tcp.hpp): the last connection found is
// tried first. Segments of two connections that alternate must each reach
// their own (a cache that skipped the tuple compare would give B's data to
// A, with A's numbers in the ACK), and a 4-tuple whose connection ended
// must reach the listener again, not the connection that was cached (it
// was destroyed: a cache not cleared when its connection leaves the table
// would read freed memory here).
TEST_CASE("segments of alternating connections reach their own; a reused 4-tuple reaches the listener") {
  peer_fixture<TCP<Listen<7, sink_server>>> peer;
  journal log;
  server_journal::current = &log;
  const segment syn_ack_a = peer.handshake(7, seq_number(1));
  const seq_number ack_a = syn_ack_a.seq() + 1;
  constexpr std::uint16_t port_b = peer_port + 1;
  tcp::repr syn_b = from_peer(7, seq_number(1000), seq_number{}, tcp::flags::syn);
  syn_b.source_port = port_b;
  peer.inject(syn_b);
  const segment syn_ack_b = peer.take_one();
  REQUIRE(syn_ack_b.flags() == "SA");
  REQUIRE(syn_ack_b.header.destination_port == port_b);
  const seq_number ack_b = syn_ack_b.seq() + 1;
  const auto from_b = [&](seq_number seq, seq_number ack, tcp::flags flags) {
    tcp::repr h = from_peer(7, seq, ack, flags);
    h.source_port = port_b;
    return h;
  };
  peer.inject(from_b(seq_number(1001), ack_b, tcp::flags::ack));
  CHECK(peer.take().empty());

  peer.inject(from_peer(7, seq_number(2), ack_a, tcp::flags::ack), "aa");
  segment r = peer.take_one();
  CHECK(r.header.destination_port == peer_port);
  CHECK(r.ack() == seq_number(4));
  peer.inject(from_b(seq_number(1001), ack_b, tcp::flags::ack), "bbb");
  r = peer.take_one();
  CHECK(r.header.destination_port == port_b);
  CHECK(r.ack() == seq_number(1004));
  peer.inject(from_peer(7, seq_number(4), ack_a, tcp::flags::ack), "cccc");
  r = peer.take_one();
  CHECK(r.header.destination_port == peer_port);
  CHECK(r.ack() == seq_number(8));
  peer.inject(from_b(seq_number(1004), ack_b, tcp::flags::ack), "d");
  r = peer.take_one();
  CHECK(r.header.destination_port == port_b);
  CHECK(r.ack() == seq_number(1005));
  CHECK(log.received == "aabbbccccd");

  // A ends with an in-window RST; its 4-tuple then opens a new connection.
  peer.inject(from_peer(7, seq_number(8), ack_a, tcp::flags::rst));
  CHECK(peer.take().empty());
  CHECK(peer.tcp().stats().resets_received == 1);
  peer.inject(from_peer(7, seq_number(5000), seq_number{}, tcp::flags::syn));
  r = peer.take_one();
  CHECK(r.flags() == "SA");
  CHECK(r.ack() == seq_number(5001));
  CHECK(peer.tcp().stats().passive_opens == 3);
  // B is untouched by all of it.
  peer.inject(from_b(seq_number(1005), ack_b, tcp::flags::ack), "e");
  r = peer.take_one();
  CHECK(r.header.destination_port == port_b);
  CHECK(r.ack() == seq_number(1006));
  CHECK(log.received == "aabbbccccde");
}

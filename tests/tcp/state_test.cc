// The connection state machine against RFC 9293 §3.10 (Event Processing)
// and its Figure 5, event by event, with a scripted peer: for each state and
// each main event, the state that follows and the one segment (or none) the
// stack answers with. Then the details: RFC 5961's challenge ACKs, RSTs for
// segments of no connection (§3.10.7.1), TIME-WAIT's exact length, retries
// that run out.
#include <catch2/catch.hpp>
#include <random>

#include "tests/tcp/peer.hpp"

using namespace tcp_test;

namespace {

struct quiet_server {
  static inline journal* log = nullptr;
  recorder r = make();
  static recorder make() {
    recorder made;
    made.log = log;
    made.close_on_peer_close = false;
    return made;
  }
  template <class C>
  void on_connect(C& c) { r.on_connect(c); }
  template <class C>
  void on_data(C& c, bytes_view d) { r.on_data(c, d); }
  template <class C>
  void on_peer_closed(C& c) { r.on_peer_closed(c); }
  template <class C>
  void on_closed(C& c, close_reason why) { r.on_closed(c, why); }
};

using server_tcp = TCP<Listen<80, quiet_server>>;
constexpr std::uint16_t server_port = 80;
constexpr std::uint16_t remote_port = 5000;

enum class event {
  syn,
  syn_ack,
  ack,
  ack_to_listener,
  bad_ack,
  fin_ack,             // FIN acknowledging all we sent
  fin_ack_before_fin,  // FIN acknowledging all but our FIN
  fin_only,            // FIN without ACK
  fin_again,           // the peer's FIN retransmitted
  rst,                 // RST at RCV.NXT exactly
  rst_ack,             // RST+ACK acknowledging our SYN
  rst_in_window,
  rst_out_of_window,
  syn_in_window,
  ack_too_new,
  data_without_ack,
  close,
  abort,
  two_msl,
};

const char* name(event e) {
  switch (e) {
    case event::syn: return "SYN";
    case event::syn_ack: return "SYN-ACK";
    case event::ack: return "ACK";
    case event::ack_to_listener: return "ACK to listener";
    case event::bad_ack: return "unacceptable ACK";
    case event::fin_ack: return "FIN+ACK";
    case event::fin_ack_before_fin: return "FIN+ACK not covering our FIN";
    case event::fin_only: return "FIN without ACK";
    case event::fin_again: return "FIN again";
    case event::rst: return "RST exact";
    case event::rst_ack: return "RST+ACK of our SYN";
    case event::rst_in_window: return "RST in window";
    case event::rst_out_of_window: return "RST out of window";
    case event::syn_in_window: return "SYN in window";
    case event::ack_too_new: return "ACK of unsent data";
    case event::data_without_ack: return "data without ACK";
    case event::close: return "close()";
    case event::abort: return "abort()";
    case event::two_msl: return "2 MSL";
  }
  return "?";
}

struct transition {
  tcp_state from;
  event what;
  tcp_state to;       // CLOSED: the connection is gone (LISTEN: none was made)
  const char* reply;  // the flags of the one segment sent, "" for none
};

// RFC 9293 §3.10 and Figure 5; RFC 5961 for RST and SYN in synchronized states.
const transition transitions[] = {
    {tcp_state::listen, event::syn, tcp_state::syn_received, "SA"},
    {tcp_state::listen, event::ack_to_listener, tcp_state::listen, "R"},
    {tcp_state::listen, event::rst, tcp_state::listen, ""},
    {tcp_state::listen, event::fin_only, tcp_state::listen, ""},

    {tcp_state::syn_sent, event::syn_ack, tcp_state::established, "A"},
    {tcp_state::syn_sent, event::syn, tcp_state::syn_received, "SA"},
    {tcp_state::syn_sent, event::bad_ack, tcp_state::syn_sent, "R"},
    {tcp_state::syn_sent, event::rst_ack, tcp_state::closed, ""},
    {tcp_state::syn_sent, event::rst, tcp_state::syn_sent, ""},
    {tcp_state::syn_sent, event::close, tcp_state::closed, ""},
    {tcp_state::syn_sent, event::abort, tcp_state::closed, ""},

    {tcp_state::syn_received, event::ack, tcp_state::established, ""},
    {tcp_state::syn_received, event::bad_ack, tcp_state::syn_received, "R"},
    {tcp_state::syn_received, event::rst, tcp_state::closed, ""},
    {tcp_state::syn_received, event::rst_in_window, tcp_state::syn_received, "A"},
    {tcp_state::syn_received, event::syn_in_window, tcp_state::closed, ""},
    {tcp_state::syn_received, event::syn, tcp_state::syn_received, "SA"},
    {tcp_state::syn_received, event::abort, tcp_state::closed, "R"},
    {tcp_state::syn_received, event::close, tcp_state::syn_received, ""},

    {tcp_state::established, event::fin_ack, tcp_state::close_wait, "A"},
    {tcp_state::established, event::close, tcp_state::fin_wait_1, "FA"},
    {tcp_state::established, event::abort, tcp_state::closed, "R"},
    {tcp_state::established, event::rst, tcp_state::closed, ""},
    {tcp_state::established, event::rst_in_window, tcp_state::established, "A"},
    {tcp_state::established, event::rst_out_of_window, tcp_state::established, ""},
    {tcp_state::established, event::syn_in_window, tcp_state::established, "A"},
    {tcp_state::established, event::ack_too_new, tcp_state::established, "A"},
    {tcp_state::established, event::data_without_ack, tcp_state::established, ""},
    {tcp_state::established, event::ack, tcp_state::established, ""},

    {tcp_state::fin_wait_1, event::ack, tcp_state::fin_wait_2, ""},
    {tcp_state::fin_wait_1, event::fin_ack_before_fin, tcp_state::closing, "A"},
    {tcp_state::fin_wait_1, event::fin_ack, tcp_state::time_wait, "A"},
    {tcp_state::fin_wait_1, event::rst, tcp_state::closed, ""},
    {tcp_state::fin_wait_1, event::rst_in_window, tcp_state::fin_wait_1, "A"},
    {tcp_state::fin_wait_1, event::syn_in_window, tcp_state::fin_wait_1, "A"},
    {tcp_state::fin_wait_1, event::abort, tcp_state::closed, "R"},

    {tcp_state::fin_wait_2, event::fin_ack, tcp_state::time_wait, "A"},
    {tcp_state::fin_wait_2, event::rst, tcp_state::closed, ""},
    {tcp_state::fin_wait_2, event::syn_in_window, tcp_state::fin_wait_2, "A"},
    {tcp_state::fin_wait_2, event::abort, tcp_state::closed, "R"},

    {tcp_state::close_wait, event::close, tcp_state::last_ack, "FA"},
    {tcp_state::close_wait, event::rst, tcp_state::closed, ""},
    {tcp_state::close_wait, event::syn_in_window, tcp_state::close_wait, "A"},
    {tcp_state::close_wait, event::fin_again, tcp_state::close_wait, "A"},
    {tcp_state::close_wait, event::abort, tcp_state::closed, "R"},

    {tcp_state::closing, event::ack, tcp_state::time_wait, ""},
    {tcp_state::closing, event::rst, tcp_state::closed, ""},
    {tcp_state::closing, event::syn_in_window, tcp_state::closing, "A"},
    {tcp_state::closing, event::abort, tcp_state::closed, ""},

    {tcp_state::last_ack, event::ack, tcp_state::closed, ""},
    {tcp_state::last_ack, event::rst, tcp_state::closed, ""},
    {tcp_state::last_ack, event::syn_in_window, tcp_state::last_ack, "A"},
    {tcp_state::last_ack, event::abort, tcp_state::closed, ""},

    {tcp_state::time_wait, event::fin_again, tcp_state::time_wait, "A"},
    {tcp_state::time_wait, event::rst, tcp_state::closed, ""},
    {tcp_state::time_wait, event::two_msl, tcp_state::closed, ""},
    // RFC 1122 §4.2.2.13: a new SYN above the old numbers reopens it.
    {tcp_state::time_wait, event::syn_in_window, tcp_state::syn_received, "SA"},
};

// Drives a fresh stack to a state and applies events, tracking both
// sequence spaces.
class machine {
 public:
  explicit machine(journal& log) { quiet_server::log = &log; }

  void reach(tcp_state s) {
    switch (s) {
      case tcp_state::listen: return;
      case tcp_state::syn_sent: {
        auto id = peer.tcp().connect(ip_b, remote_port, client);
        REQUIRE(id);
        const segment syn = peer.take_one();
        REQUIRE(syn.flags() == "S");
        our_port = syn.header.source_port;
        peer_port = remote_port;
        our_next = syn.seq() + 1;
        our_iss = syn.seq();
        return;
      }
      case tcp_state::syn_received: {
        const segment syn_ack = peer.handshake(server_port, peer_iss, false);
        our_iss = syn_ack.seq();
        our_next = our_iss + 1;
        peer_next = peer_iss + 1;
        return;
      }
      case tcp_state::established:
        reach(tcp_state::syn_received);
        peer.inject(from_peer(our_port, peer_next, our_next, tcp::flags::ack));
        REQUIRE(peer.take().empty());
        return;
      case tcp_state::close_wait:
        reach(tcp_state::established);
        peer.inject(from_peer(our_port, peer_next, our_next, tcp::flags::fin | tcp::flags::ack));
        peer_next += 1;
        REQUIRE(peer.take_one().flags() == "A");
        return;
      case tcp_state::last_ack:
        reach(tcp_state::close_wait);
        our_close();
        return;
      case tcp_state::fin_wait_1:
        reach(tcp_state::established);
        our_close();
        return;
      case tcp_state::fin_wait_2:
        reach(tcp_state::fin_wait_1);
        peer.inject(from_peer(our_port, peer_next, our_next, tcp::flags::ack));
        REQUIRE(peer.take().empty());
        return;
      case tcp_state::closing:
        reach(tcp_state::fin_wait_1);
        peer.inject(from_peer(our_port, peer_next, our_fin, tcp::flags::fin | tcp::flags::ack));
        peer_next += 1;
        REQUIRE(peer.take_one().flags() == "A");
        return;
      case tcp_state::time_wait:
        reach(tcp_state::fin_wait_2);
        peer.inject(from_peer(our_port, peer_next, our_next, tcp::flags::fin | tcp::flags::ack));
        peer_next += 1;
        REQUIRE(peer.take_one().flags() == "A");
        return;
      case tcp_state::closed: return;
    }
  }

  void apply(event e) {
    using F = tcp::flags;
    auto send = [&](seq_number seq, seq_number ack, tcp::flags flags, std::string_view data = {}) {
      auto h = from_peer(our_port, seq, ack, flags);
      h.source_port = peer_port;
      peer.inject(h, data);
    };
    switch (e) {
      case event::syn: {
        tcp::repr h = from_peer(our_port, peer_iss, seq_number{}, F::syn);
        h.source_port = peer_port;
        (void)h.options.push_mss(1460);
        peer.inject(h);
        return;
      }
      case event::syn_ack: send(seq_number(7000), our_next, F::syn | F::ack); return;
      case event::ack: send(peer_next, our_next, F::ack); return;
      case event::ack_to_listener: send(peer_iss, seq_number(777), F::ack); return;
      case event::bad_ack:
        send(peer_next, peer.tcp().connection_count() && current() && current()->state() == tcp_state::syn_sent
                            ? our_iss
                            : our_next + 100,
             F::ack);
        return;
      case event::fin_ack: send(peer_next, our_next, F::fin | F::ack); return;
      case event::fin_ack_before_fin: send(peer_next, our_fin, F::fin | F::ack); return;
      case event::fin_only: send(peer_iss, seq_number{}, F::fin); return;
      case event::fin_again: send(peer_next - 1, our_next, F::fin | F::ack); return;
      case event::rst: send(peer_next, seq_number{}, F::rst); return;
      case event::rst_ack: send(seq_number{}, our_next, F::rst | F::ack); return;
      case event::rst_in_window: send(peer_next + 100, seq_number{}, F::rst); return;
      case event::rst_out_of_window: send(peer_next + 10'000'000, seq_number{}, F::rst); return;
      case event::syn_in_window: send(peer_next + 10, seq_number{}, F::syn); return;
      case event::ack_too_new: send(peer_next, our_next + 5000, F::ack); return;
      case event::data_without_ack: send(peer_next, seq_number{}, F::psh, "x"); return;
      case event::close: {
        auto* c = current();
        REQUIRE(c);
        REQUIRE(c->close());
        return;
      }
      case event::abort: {
        auto* c = current();
        REQUIRE(c);
        REQUIRE(c->abort());
        return;
      }
      case event::two_msl: peer.advance(60s); return;
    }
  }

  // The state now: CLOSED when no connection is left, LISTEN when a
  // listener-only machine has none.
  tcp_state state(tcp_state when_none) {
    auto* c = current();
    return c ? c->state() : when_none;
  }

  peer_fixture<server_tcp>::connection* current() { return peer.only(); }

  peer_fixture<server_tcp> peer;
  journal client_log;
  recorder client = make_client();
  std::uint16_t our_port = server_port;
  std::uint16_t peer_port = tcp_test::peer_port;
  seq_number peer_iss{1000};
  seq_number peer_next{1000};
  seq_number our_iss{};
  seq_number our_next{};
  seq_number our_fin{};

 private:
  recorder make_client() {
    recorder made;
    made.log = &client_log;
    made.close_on_peer_close = false;
    return made;
  }
  void our_close() {
    auto* c = current();
    REQUIRE(c);
    REQUIRE(c->close());
    const segment fin = peer.take_one();
    REQUIRE(fin.flags() == "FA");
    REQUIRE(fin.seq() == our_next);
    REQUIRE(fin.ack() == peer_next);
    our_fin = fin.seq();
    our_next = our_fin + 1;
  }
};

}  // namespace

TEST_CASE("every state answers the main events as RFC 9293 §3.10 says") {
  const transition row = GENERATE(from_range(std::begin(transitions), std::end(transitions)));
  INFO(to_string(row.from) << " + " << name(row.what) << " -> " << to_string(row.to) << " replying '" << row.reply
                           << "'");
  journal log;
  machine m(log);
  m.reach(row.from);
  REQUIRE(m.state(tcp_state::listen) == row.from);
  m.apply(row.what);
  const auto replies = m.peer.take();
  std::string flags;
  for (const auto& s : replies) flags += (flags.empty() ? "" : ",") + s.flags();
  CHECK(flags == row.reply);
  for (const auto& s : replies) CHECK(s.checksum_ok);
  const tcp_state none = row.from == tcp_state::listen ? tcp_state::listen : tcp_state::closed;
  CHECK(m.state(none) == row.to);
}

TEST_CASE("replies carry the numbers RFC 9293 prescribes") {
  journal log;
  machine m(log);
  SECTION("an ACK to a listener gets <SEQ=SEG.ACK><CTL=RST>") {
    m.apply(event::ack_to_listener);
    const segment r = m.peer.take_one();
    CHECK(r.flags() == "R");
    CHECK(r.seq() == seq_number(777));
  }
  SECTION("a challenge ACK carries SND.NXT and RCV.NXT (RFC 5961 §3.2)") {
    m.reach(tcp_state::established);
    m.apply(event::rst_in_window);
    const segment a = m.peer.take_one();
    CHECK(a.flags() == "A");
    CHECK(a.seq() == m.our_next);
    CHECK(a.ack() == m.peer_next);
    CHECK(m.peer.tcp().stats().rst_challenged == 1);
    CHECK(m.peer.tcp().stats().challenge_acks == 1);
  }
  SECTION("our FIN always carries ACK, and our numbers are our own") {
    m.reach(tcp_state::established);
    m.apply(event::close);
    const segment fin = m.peer.take_one();
    CHECK(fin.flags() == "FA");
    CHECK(fin.seq() == m.our_iss + 1);  // never the peer's ACK number (the original's bug)
    CHECK(fin.ack() == m.peer_next);
  }
  SECTION("abort sends <SEQ=SND.NXT><CTL=RST> and reports aborted") {
    m.reach(tcp_state::established);
    m.apply(event::abort);
    const segment r = m.peer.take_one();
    CHECK(r.flags() == "R");
    CHECK(r.seq() == m.our_next);
    CHECK(log.reason == close_reason::aborted);
    CHECK(log.closes == 1);
  }
  SECTION("an exact RST reports reset to the application") {
    m.reach(tcp_state::established);
    m.apply(event::rst);
    CHECK(log.reason == close_reason::reset);
    CHECK(m.peer.tcp().stats().resets_received == 1);
  }
  SECTION("RST+ACK to our SYN reports refused") {
    m.reach(tcp_state::syn_sent);
    m.apply(event::rst_ack);
    CHECK(m.client_log.reason == close_reason::refused);
    CHECK(m.client_log.closes == 1);
  }
}

TEST_CASE("challenge ACKs are limited per connection (RFC 5961 §7)") {
  journal log;
  machine m(log);
  m.reach(tcp_state::established);
  for (int i = 0; i < 25; ++i) m.apply(event::rst_in_window);
  CHECK(m.peer.take().size() == 10);
  CHECK(m.peer.tcp().stats().challenge_acks_suppressed == 15);
  m.peer.advance(1s);
  m.apply(event::rst_in_window);
  CHECK(m.peer.take().size() == 1);
  CHECK(m.state(tcp_state::closed) == tcp_state::established);
}

TEST_CASE("a segment for no connection is answered with RST (RFC 9293 §3.10.7.1)") {
  peer_fixture<TCP<>> peer;
  SECTION("with ACK: <SEQ=SEG.ACK><CTL=RST>") {
    peer.inject(from_peer(81, seq_number(10), seq_number(5555), tcp::flags::ack));
    const segment r = peer.take_one();
    CHECK(r.flags() == "R");
    CHECK(r.seq() == seq_number(5555));
    CHECK(r.header.source_port == 81);
    CHECK(r.header.destination_port == peer_port);
  }
  SECTION("without ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>") {
    peer.inject(from_peer(81, seq_number(10), seq_number{}, tcp::flags::syn | tcp::flags::fin), "abc");
    const segment r = peer.take_one();
    CHECK(r.flags() == "RA");
    CHECK(r.seq() == seq_number(0));
    CHECK(r.ack() == seq_number(10 + 3 + 2));
  }
  SECTION("a RST is never answered") {
    peer.inject(from_peer(81, seq_number(10), seq_number{}, tcp::flags::rst));
    CHECK(peer.take().empty());
  }
  CHECK(peer.tcp().stats().no_connection == 1);
}

struct silent_policy : tcp_default_policy {
  bool reply_rst_to_unknown() const noexcept { return false; }
};

TEST_CASE("the policy can keep quiet about unknown segments, as the original did") {
  peer_fixture<TCP<Session<silent_policy>>> peer;
  peer.inject(from_peer(81, seq_number(10), seq_number(5555), tcp::flags::ack));
  CHECK(peer.take().empty());
  CHECK(peer.tcp().stats().no_connection == 1);
  CHECK(peer.tcp().stats().resets_sent == 0);
}

TEST_CASE("segments to broadcast or multicast addresses are dropped (RFC 1122 §4.2.3.10)") {
  peer_fixture<server_tcp> peer;
  journal log;
  quiet_server::log = &log;
  // Through the IP layer's directed broadcast acceptance.
  tcp::repr syn = from_peer(server_port, seq_number(1), seq_number{}, tcp::flags::syn);
  std::vector<byte> seg(syn.size());
  const auto broadcast = config_a().subnet_broadcast();
  syn.emit(seg, ip_b, broadcast);
  ipv4::repr ip{.source = ip_b, .destination = broadcast};
  ip.protocol = tcp::ip_protocol;
  std::vector<byte> datagram(ip.size() + seg.size());
  std::copy(seg.begin(), seg.end(), datagram.begin() + static_cast<std::ptrdiff_t>(ip.size()));
  ip.emit(datagram);
  std::vector<byte> f(eth::header_size + datagram.size());
  std::copy(datagram.begin(), datagram.end(), f.begin() + eth::header_size);
  eth::repr{.destination = mac_address::broadcast(), .source = mac_b, .ethertype = eth::ethertype::ipv4}.emit(f);
  peer.stack.device().inbound.push_back(f);
  peer.stack.process();
  CHECK(peer.take().empty());
  CHECK(peer.tcp().stats().not_unicast == 1);
  CHECK(peer.tcp().connection_count() == 0);
}

TEST_CASE("TIME-WAIT lasts exactly 2 MSL on the clock, restarted by a FIN again") {
  journal log;
  machine m(log);
  m.reach(tcp_state::time_wait);
  const instant entered = m.peer.clock.now();
  CHECK(log.closes == 1);  // the application heard of the end when TIME-WAIT began
  CHECK(log.reason == close_reason::closed);
  REQUIRE(m.peer.tcp().next_deadline() == entered + 60s);
  m.peer.advance(60s - 1ns);
  CHECK(m.state(tcp_state::closed) == tcp_state::time_wait);
  m.peer.advance(1ns);
  CHECK(m.state(tcp_state::closed) == tcp_state::closed);
  CHECK(log.closes == 1);

  machine again(log);
  again.reach(tcp_state::time_wait);
  const instant start = again.peer.clock.now();
  again.peer.advance(40s);
  again.apply(event::fin_again);
  CHECK(again.peer.take_one().flags() == "A");
  CHECK(again.peer.tcp().next_deadline() == start + 40s + 60s);
}

struct short_msl_policy : tcp_default_policy {
  duration msl() const noexcept { return 2s; }
};

TEST_CASE("MSL is a policy value") {
  peer_fixture<TCP<Session<short_msl_policy>, Listen<80, quiet_server>>> peer;
  journal log;
  quiet_server::log = &log;
  const segment syn_ack = peer.handshake(80, seq_number(1));
  auto* c = peer.only();
  REQUIRE(c);
  REQUIRE(c->close());
  const segment fin = peer.take_one();
  peer.inject(from_peer(80, seq_number(2), fin.seq() + 1, tcp::flags::fin | tcp::flags::ack));
  CHECK(peer.take_one().flags() == "A");
  REQUIRE(peer.only()->state() == tcp_state::time_wait);
  CHECK(peer.tcp().next_deadline() == peer.clock.now() + 4s);
  (void)syn_ack;
}

TEST_CASE("retransmissions that run out abort the connection with RST and report it") {
  journal log;
  machine m(log);
  m.reach(tcp_state::established);
  auto* c = m.current();
  REQUIRE(c);
  REQUIRE(c->send(as_bytes("lost forever")));
  m.peer.advance(0s);
  REQUIRE(m.peer.take_one().payload == "lost forever");
  // No ACK ever: 8 retransmissions with doubling RTO, then RST.
  std::vector<instant> times;
  for (int i = 0; i < 20 && m.current(); ++i) {
    const auto next = m.peer.stack.next_event();
    REQUIRE(next);
    m.peer.clock.advance_to(*next);
    m.peer.stack.process();
    for (const auto& s : m.peer.take()) {
      times.push_back(m.peer.clock.now());
      if (s.flags() == "R") CHECK(s.seq() == m.our_next + 12);
    }
  }
  m.peer.stack.process();  // an ARP answer may have to release the RST
  for (const auto& s : m.peer.take()) {
    times.push_back(m.peer.clock.now());
    CHECK(s.flags() == "R");
  }
  REQUIRE(times.size() == 9);  // 8 retransmissions and the RST
  for (std::size_t i = 2; i + 1 < times.size(); ++i) {
    CHECK((times[i] - times[i - 1]) == 2 * (times[i - 1] - times[i - 2]));  // RFC 6298 §5.5
  }
  CHECK(log.reason == close_reason::timed_out);
  CHECK(m.peer.tcp().stats().timed_out == 1);
  CHECK(m.current() == nullptr);
}

TEST_CASE("a SYN nobody answers is retried with back-off, then reported") {
  peer_fixture<TCP<>> peer;
  journal log;
  recorder app;
  app.log = &log;
  REQUIRE(peer.tcp().connect(ip_b, 9, app));
  std::vector<instant> sent{peer.clock.now()};
  peer.take();
  for (int i = 0; i < 20 && log.closes == 0; ++i) {
    const auto next = peer.stack.next_event();
    REQUIRE(next);
    peer.clock.advance_to(*next);
    peer.stack.process();
    for (const auto& s : peer.take()) {
      CHECK(s.flags() == "S");
      sent.push_back(peer.clock.now());
    }
  }
  REQUIRE(sent.size() == 7);  // the SYN and 6 retries (Linux's tcp_syn_retries)
  CHECK(sent[1] - sent[0] == 1s);
  CHECK(sent[6] - sent[5] == 32s);
  CHECK(log.reason == close_reason::timed_out);
  CHECK(log.connects == 0);
}

// Accepts any RST in the window, as RFC 793 did before RFC 5961.
struct trusting_policy : tcp_default_policy {
  template <class C>
  rst_action accept_rst(const tcp::view&, const C&, rst_check where) const noexcept {
    return where == rst_check::out_of_window ? rst_action::ignore : rst_action::reset;
  }
};

TEST_CASE("an in-window RST policy: accept like RFC 793 did") {
  peer_fixture<TCP<Session<trusting_policy>, Listen<80, quiet_server>>> peer;
  journal log;
  quiet_server::log = &log;
  peer.handshake(80, seq_number(1));
  peer.inject(from_peer(80, seq_number(2 + 100), seq_number{}, tcp::flags::rst));
  CHECK(peer.take().empty());
  CHECK(peer.only() == nullptr);
  CHECK(log.reason == close_reason::reset);
}

TEST_CASE("random segments never break the layer, and every one is accounted for") {
  const std::uint32_t seed = GENERATE(1u, 2u, 3u);
  INFO("seed " << seed);
  std::mt19937 random(seed);
  journal log;
  machine m(log);
  m.reach(tcp_state::established);
  auto any = [&](std::uint32_t n) { return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(random); };
  for (int i = 0; i < 3000; ++i) {
    tcp::repr h;
    h.source_port = any(4) == 0 ? static_cast<std::uint16_t>(any(65536)) : peer_port;
    h.destination_port = any(4) == 0 ? static_cast<std::uint16_t>(any(65536)) : server_port;
    // Near the live numbers or anywhere.
    h.sequence_number = any(2) ? m.peer_next + static_cast<std::int64_t>(any(200'000)) - 100'000 : seq_number(any(~0u));
    h.ack_number = any(2) ? m.our_next + static_cast<std::int64_t>(any(200'000)) - 100'000 : seq_number(any(~0u));
    h.flags = tcp::flags(static_cast<std::uint16_t>(any(0x40)));
    h.window = static_cast<std::uint16_t>(any(65536));
    if (any(3) == 0) (void)h.options.push_mss(static_cast<std::uint16_t>(any(65536)));
    if (any(3) == 0) (void)h.options.push_window_scale(static_cast<std::uint8_t>(any(256)));
    std::string payload(any(3) == 0 ? any(1500) : 0, 'z');
    m.peer.inject(h, payload);
    if (any(50) == 0) m.peer.advance(std::chrono::milliseconds(any(3000)));
  }
  m.peer.take();
  // Still a working layer: a fresh connection goes through.
  auto& layer = m.peer.tcp();
  const auto& st = layer.stats();
  CHECK(st.received == 3000 + 2);  // the handshake's two and the random ones
  std::uint64_t cancelled = 0;
  layer.for_each_connection([&](auto& c) { (void)c.abort(); ++cancelled; });
  m.peer.take();
  tcp::repr syn = from_peer(server_port, seq_number(77), seq_number{}, tcp::flags::syn);
  syn.source_port = 12345;
  m.peer.inject(syn);
  const segment syn_ack = m.peer.take_one();
  CHECK(syn_ack.flags() == "SA");
  CHECK(syn_ack.ack() == seq_number(78));
}

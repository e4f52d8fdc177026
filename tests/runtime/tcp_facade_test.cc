// TCPApplication on PyStack: client and server over the in-process link,
// the original's four bind modes, accept() with clients that arrived before
// it, set_custom_session applied to accepted connections, correct TCP port
// checks, and a runtime client against a static stack's TCP listener on a
// virtual clock.
#include "pystack/pystack.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "pystack/device/in_process_link.hpp"
#include "pystack/stack/simulation.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;

const auto server_ip = *ipv4_address::parse("10.50.0.1");
const auto client_ip = *ipv4_address::parse("10.50.0.2");
const interface_config server_config{.mac = *mac_address::parse("02:00:00:00:50:01"), .address = server_ip};
const interface_config client_config{.mac = *mac_address::parse("02:00:00:00:50:02"), .address = client_ip};

std::string text_of(const std::vector<byte>& data) { return std::string(data.begin(), data.end()); }

using wire_type = pystack::in_process_link<steady_clock>;

// A graceful stop waits for the peer's FIN at most this long (a test's
// peer may have stopped already).
const pystack_options quick_stop{.stack = {.stop_timeout = 1s}};

struct two_stacks {
  wire_type wire = std::move(wire_type::open(steady_clock{}).value());
  PyStack server{wire.a(), server_config, quick_stop};
  PyStack client{wire.b(), client_config, quick_stop};
  two_stacks() {
    REQUIRE(server.run(false));
    REQUIRE(client.run(false));
  }
  ~two_stacks() {
    // Both close at once, so each side's FIN is answered.
    client.request_stop();
    server.request_stop();
    client.stop();
    server.stop();
  }
};

// Reads until `expected_size` bytes came or time runs out.
std::string read_all(TCPApplication& app, std::size_t expected_size, std::chrono::milliseconds limit = 5000ms) {
  std::string text;
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (text.size() < expected_size && std::chrono::steady_clock::now() < give_up) {
    if (auto got = app.fetch_data(0, 50ms)) text += text_of(*got);
  }
  return text;
}

// Echoes on every connection it serves; its forks are echo servers too.
class echo_server : public TCPApplication {
 public:
  ~echo_server() override { release(); }  // no callback into a half-destroyed object
  std::shared_ptr<TCPApplication> fork() const override { return std::make_shared<echo_server>(); }

 protected:
  void packet_received(bytes_view data, connection_id id) override { static_cast<void>(send_packet(data, id)); }
};
}  // namespace

TEST_CASE("a TCP client and a shared server exchange data and close") {
  two_stacks s;
  TCPApplication server;
  TCPApplication client;
  REQUIRE(s.server.register_tcp_application(server));
  REQUIRE(s.client.register_tcp_application(client));
  REQUIRE(server.bind(7000));  // conn itself, shared by all clients
  server.listen(5);

  REQUIRE(client.connect("10.50.0.1", 7000, 5s));
  CHECK(client.connected());
  CHECK(client.get_conn_addr() == std::pair{server_ip, std::uint16_t{7000}});
  CHECK(client.get_self_addr().first == client_ip);

  auto accepted = server.accept(5s);
  REQUIRE(accepted);
  CHECK(accepted->get() == &server);

  REQUIRE(client.send_packet(std::string_view("hello over TCP")));
  auto got = server.fetch_data_from(0, 5s);
  REQUIRE(got);
  CHECK(text_of(got->data) == "hello over TCP");
  CHECK(got->address == client_ip);  // the peer's address
  CHECK(got->port == client.get_self_addr().second);
  REQUIRE(server.lastclient());
  CHECK(*server.lastclient() == got->id);

  REQUIRE(server.send_packet(std::string_view("and back"), got->id));
  CHECK(read_all(client, 8) == "and back");

  // A large send goes out whole, in segments, as the peer acknowledges.
  std::string big(300000, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  REQUIRE(client.send_packet(big));
  CHECK(read_all(server, big.size(), 10000ms) == big);

  REQUIRE(client.close());
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (!server.at_eof() && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(1ms);
  CHECK(server.at_eof());  // the end of the stream shows (the original's recv never said)
  REQUIRE(server.close());
}

TEST_CASE("accept() returns each client that arrived before it, in every bind mode") {
  // (app given, newinstance): who serves each client.
  const bool give_app = GENERATE(false, true);
  const bool newinstance = GENERATE(false, true);
  INFO("bind(port, " << (give_app ? "app" : "None") << ", " << newinstance << ")");
  two_stacks s;
  TCPApplication conn;
  echo_server app;
  REQUIRE(s.server.register_tcp_application(conn));
  REQUIRE(s.server.register_tcp_application(app));
  REQUIRE(conn.bind(8000, give_app ? &app : nullptr, newinstance));

  TCPApplication first;
  TCPApplication second;
  REQUIRE(s.client.register_tcp_application(first));
  REQUIRE(s.client.register_tcp_application(second));
  REQUIRE(first.connect(server_ip, 8000, 5s));
  REQUIRE(second.connect(server_ip, 8000, 5s));

  // Both arrived before accept(): two calls, two answers, no hang.
  auto a = conn.accept(5s);
  auto b = conn.accept(5s);
  REQUIRE(a);
  REQUIRE(b);
  TCPApplication* expected_shared = give_app ? static_cast<TCPApplication*>(&app) : &conn;
  if (newinstance) {
    CHECK(a->get() != b->get());
    CHECK(a->get() != &conn);
    CHECK(a->get() != &app);
    CHECK(b->get() != &conn);
  } else {
    CHECK(a->get() == expected_shared);
    CHECK(b->get() == expected_shared);
  }
  auto none = conn.accept(50ms);
  REQUIRE_FALSE(none);
  CHECK(none.error() == runtime::errc::timed_out);

  // Who answers: an echo_server (the app, or its forks) echoes; conn does not.
  REQUIRE(first.send_packet(std::string_view("one")));
  REQUIRE(second.send_packet(std::string_view("two")));
  const bool echoes = give_app;  // forks of conn are plain TCPApplications
  if (echoes) {
    CHECK(read_all(first, 3) == "one");
    CHECK(read_all(second, 3) == "two");
  } else {
    // The data waits in the serving application(s), tagged by connection.
    std::set<std::string> received;
    std::set<TCPApplication*> servers{a->get(), b->get()};
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (received.size() < 2 && std::chrono::steady_clock::now() < give_up) {
      for (auto* server : servers) {
        if (auto got = server->fetch_data_from(0, 10ms)) {
          received.insert(text_of(got->data));
          CHECK(got->address == client_ip);
        }
      }
    }
    CHECK(received == std::set<std::string>{"one", "two"});
  }
  REQUIRE(first.close());
  REQUIRE(second.close());
  REQUIRE(conn.close());
}

TEST_CASE("a listener refuses what its backlog cannot hold, and accept ends when the stack stops") {
  two_stacks s;
  TCPApplication conn;
  REQUIRE(s.server.register_tcp_application(conn));
  REQUIRE(conn.bind(8100, nullptr, true));
  conn.listen(1);
  TCPApplication first;
  TCPApplication second;
  REQUIRE(s.client.register_tcp_application(first));
  REQUIRE(s.client.register_tcp_application(second));
  REQUIRE(first.connect(server_ip, 8100, 5s));
  auto refused = second.connect(server_ip, 8100, 5s);
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == runtime::errc::closed);  // RST: the backlog is full
  REQUIRE(conn.accept(5s));

  std::atomic<bool> woke{false};
  expected<std::shared_ptr<TCPApplication>, runtime::error> waited = runtime::error{};
  std::thread waiter([&] {
    waited = conn.accept();  // no timeout: only a connection or the stop ends it
    woke = true;
  });
  std::this_thread::sleep_for(20ms);
  CHECK_FALSE(woke);
  s.server.stop();
  waiter.join();
  CHECK(woke);
  REQUIRE_FALSE(waited);
  CHECK(waited.error() == runtime::errc::closed);
}

TEST_CASE("connect reports refusal and time-outs") {
  two_stacks s;
  TCPApplication client;
  REQUIRE(s.client.register_tcp_application(client));
  auto refused = client.connect(server_ip, 9999, 5s);  // nobody listens: the server resets
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == runtime::errc::closed);
  CHECK(refused.error().detail.find("refused") != std::string::npos);

  TCPApplication lost;
  REQUIRE(s.client.register_tcp_application(lost));
  auto silent = lost.connect(*ipv4_address::parse("10.50.0.77"), 80, 200ms);  // no such host
  REQUIRE_FALSE(silent);
  CHECK(silent.error() == runtime::errc::timed_out);
  CHECK(lost.connect("not-an-address", 80).error() == runtime::errc::bad_address);
}

TEST_CASE("is_tcp_port_free knows the stack's listeners and connections") {
  two_stacks s;
  CHECK(s.server.is_tcp_port_free(8200));
  TCPApplication listener;
  REQUIRE(s.server.register_tcp_application(listener));
  REQUIRE(listener.bind(8200, nullptr, true));  // each client gets a fork
  CHECK_FALSE(s.server.is_tcp_port_free(8200));
  TCPApplication again;
  REQUIRE(s.server.register_tcp_application(again));
  CHECK(again.bind(8200).error() == runtime::errc::key_in_use);

  TCPApplication client;
  REQUIRE(s.client.register_tcp_application(client));
  REQUIRE(client.connect(server_ip, 8200, 5s));
  CHECK_FALSE(s.client.is_tcp_port_free(client.get_self_addr().second));  // the connection's own port

  // The accepted connection holds the port even after the listener closes,
  // as a kernel's would; it is free once that connection has ended. The
  // client closes first, so the TIME-WAIT (RFC 9293 §3.6) is on its side.
  auto served = listener.accept(5s);
  REQUIRE(served);
  REQUIRE(listener.close());  // stops listening; the fork's connection goes on
  CHECK_FALSE(s.server.is_tcp_port_free(8200));
  REQUIRE(client.close());
  auto give_up = std::chrono::steady_clock::now() + 5s;
  while (!(*served)->at_eof() && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(1ms);
  REQUIRE((*served)->close());  // after the client's FIN: LAST-ACK, then CLOSED
  give_up = std::chrono::steady_clock::now() + 5s;
  while (!s.server.is_tcp_port_free(8200) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  CHECK(s.server.is_tcp_port_free(8200));
  CHECK_FALSE(s.server.is_tcp_port_free(0));
}

namespace {
// The original's "Modifying the stack behavior" example: the SYN-ACK's
// sequence number is 5555.
struct seq_5555_policy : tcp_default_policy {
  template <class Connection>
  void syn_ack(tcp::repr& header, const Connection&) noexcept {
    header.sequence_number = seq_number(5555);
  }
};

// Sees the SYN-ACK that answers its SYN.
class watching_client : public TCPApplication {
 public:
  ~watching_client() override { release(); }
  std::atomic<std::uint32_t> syn_ack_sequence{0};
  std::atomic<int> syn_acks{0};

 protected:
  void hook_incoming(bytes_view, const runtime::header_set& headers) override {
    if (!headers.tcp() || !headers.ip()) return;
    const auto f = headers.tcp()->flags();
    if (f.has(tcp::flags::syn) && f.has(tcp::flags::ack)) {
      syn_ack_sequence = headers.tcp()->sequence_number().raw();
      ++syn_acks;
    }
  }
};
}  // namespace

TEST_CASE("set_custom_session applies to accepted connections") {
  two_stacks s;
  TCPApplication listener;
  REQUIRE(s.server.register_tcp_application(listener));  // registered before: it moves to the new layer
  REQUIRE(s.server.set_custom_session<seq_5555_policy>());
  CHECK(listener.lower() == &s.server.tcp());
  REQUIRE(listener.bind(8300));
  CHECK(s.server.set_custom_session<tcp_default_policy>().error() == runtime::errc::busy);

  watching_client client;
  REQUIRE(s.client.register_tcp_application(client));
  REQUIRE(client.connect(server_ip, 8300, 5s));
  CHECK(client.syn_acks == 1);
  CHECK(client.syn_ack_sequence == 5555u);
  // The connection works on from there: the server adopted 5555 as its ISN.
  auto served = listener.accept(5s);
  REQUIRE(served);
  REQUIRE((*served)->send_packet(std::string_view("after 5555")));
  CHECK(read_all(client, 10) == "after 5555");
}

TEST_CASE("releasing (or destroying) an application resets its open connection") {
  two_stacks s;
  TCPApplication listener;
  REQUIRE(s.server.register_tcp_application(listener));
  REQUIRE(listener.bind(8400, nullptr, true));
  auto client = std::make_unique<TCPApplication>();
  REQUIRE(s.client.register_tcp_application(*client));
  REQUIRE(client->connect(server_ip, 8400, 5s));
  auto served = listener.accept(5s);
  REQUIRE(served);
  // While established: the peer must not wait forever. release() is what
  // the destructor does first; a subclass calls it in its own destructor.
  client->release();
  client.reset();
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while ((*served)->connection_count() != 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  CHECK((*served)->connection_count() == 0);
  CHECK((*served)->at_eof());
}

// ---------------------------------------------------------------------------
// A runtime client against a static stack's TCP listener, on a virtual clock

namespace {
struct static_tcp_echo {
  template <class Connection>
  void on_data(Connection& c, bytes_view data) {
    static_cast<void>(c.send(data));
  }
  template <class Connection>
  void on_peer_closed(Connection& c) {
    static_cast<void>(c.close());
  }
};
using endpoint = pystack::in_process_link<virtual_clock>::endpoint;
using static_stack =
    Stack<Ethernet<>, IP<TCP<Listen<7, static_tcp_echo>>>, ARP<>>::on<endpoint, clock_ref<virtual_clock>>;
}  // namespace

TEST_CASE("a runtime TCP client and a static TCP listener talk over a virtual link") {
  const std::uint64_t seed = GENERATE(1u, 2u);
  virtual_clock clock;
  pystack::in_process_link<virtual_clock> wire(
      clock, {.a_to_b = {.loss = 0.05, .delay = 1ms, .seed = seed}, .b_to_a = {.loss = 0.05, .delay = 1ms, .seed = seed + 7}});
  INFO("link " << wire.describe());
  PyStack runtime_side(wire.a(), client_config, {}, clock_ref(clock));
  static_stack static_side(wire.b(), clock_ref(clock), server_config);
  simulation sim(clock, runtime_side.ethernet(), static_side);

  TCPApplication client;
  REQUIRE(runtime_side.register_tcp_application(client));
  REQUIRE(client.connect(server_ip, 7));  // no loop runs: it starts the handshake and returns
  REQUIRE(sim.run_until([&] { return client.connected(); }, 30s).condition_met);

  std::string sent;
  for (int i = 0; i < 50; ++i) sent += "line " + std::to_string(i) + "\n";
  REQUIRE(client.send_packet(sent));
  std::string echoed;
  const auto result = sim.run_until(
      [&] {
        while (auto got = client.fetch_data()) echoed += text_of(*got);
        return echoed.size() >= sent.size();
      },
      60s);
  CHECK_FALSE(result.stalled);
  CHECK(echoed == sent);  // in order and whole, despite the losses
  const std::uint16_t local_port = client.get_self_addr().second;
  REQUIRE(client.close());
  // The static side closes when it sees our FIN; the application's view of
  // the connection ends when the FINs are exchanged.
  REQUIRE(sim.run_until([&] { return client.at_eof() && client.connection_count() == 0; }, 60s).condition_met);
  CHECK(static_cast<runtime::tcp_layer&>(runtime_side.tcp()).stats().closed == 1);
  // We closed first, so our side is in TIME-WAIT (RFC 9293 §3.6): the port
  // stays taken for 2 MSL of virtual time, then it is free.
  CHECK_FALSE(runtime_side.is_tcp_port_free(local_port));
  sim.run_for(2 * tcp_default_policy{}.msl() - 1s);
  CHECK_FALSE(runtime_side.is_tcp_port_free(local_port));
  sim.run_for(2s);
  CHECK(runtime_side.is_tcp_port_free(local_port));
}

// Tells which client finished, and closes that connection then.
class closing_echo : public TCPApplication {
 public:
  ~closing_echo() override { release(); }
  std::atomic<std::uint64_t> finished_id{0};
  std::atomic<std::uint64_t> closed_id{0};
  std::atomic<int> closed_reason{-1};

 protected:
  void packet_received(bytes_view data, connection_id id) override { static_cast<void>(send_packet(data, id)); }
  void peer_closed(connection_id id) override {
    finished_id = id.value;
    static_cast<void>(close(id));
  }
  void connection_closed(connection_id id, close_reason why) override {
    closed_id = id.value;
    closed_reason = static_cast<int>(why);
  }
};

TEST_CASE("peer_closed tells a shared server which client finished, and closing then ends the connection") {
  two_stacks s;
  closing_echo server;
  TCPApplication client;
  REQUIRE(s.server.register_tcp_application(server));
  REQUIRE(s.client.register_tcp_application(client));
  REQUIRE(server.bind(7100));
  server.listen(5);
  REQUIRE(client.connect("10.50.0.1", 7100, 5s));
  REQUIRE(client.send_packet(std::string_view("last words")));
  CHECK(read_all(client, 10) == "last words");
  CHECK(server.finished_id == 0);  // the client has not closed yet

  REQUIRE(client.close());
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (server.closed_id == 0 && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(1ms);
  REQUIRE(server.lastclient());
  CHECK(server.finished_id == server.lastclient()->value);
  // Both sides closed, before any stop: the connection ended cleanly.
  CHECK(server.closed_id == server.finished_id);
  CHECK(server.closed_reason == static_cast<int>(close_reason::closed));
  CHECK(server.connection_count() == 0);
}

namespace {
// Counts every callback that does nothing by default, and marks what it
// sends (IPv4 TTL 7) so that the peer can tell the rewrite happened.
class hooking_server : public TCPApplication {
 public:
  ~hooking_server() override { release(); }
  std::atomic<int> incoming{0}, outgoing_tcp{0}, outgoing_ipv4{0}, outgoing_eth{0};

  void hook_outgoing(tcp::repr&) override { ++outgoing_tcp; }
  void hook_outgoing(ipv4::repr& header) override {
    ++outgoing_ipv4;
    header.ttl = 7;
  }
  void hook_outgoing(eth::repr&) override { ++outgoing_eth; }

 protected:
  void hook_incoming(bytes_view, const runtime::header_set&) override { ++incoming; }
};

// Overrides one hook only; the others are its base's.
class ttl_server : public TCPApplication {
 public:
  ~ttl_server() override { release(); }
  std::atomic<int> outgoing_ipv4{0};
  void hook_outgoing(ipv4::repr& header) override {
    ++outgoing_ipv4;
    header.ttl = 7;
  }
  using TCPApplication::hook_outgoing;
};
// Its hook comes from the class between.
class derived_ttl_server final : public ttl_server {};

// Sees the TTL of what the server sends.
class ttl_watcher : public TCPApplication {
 public:
  ~ttl_watcher() override { release(); }
  std::atomic<int> segments{0}, ttl_7{0};

 protected:
  void hook_incoming(bytes_view, const runtime::header_set& headers) override {
    ++segments;
    if (headers.ip() && headers.ip()->ttl() == 7) ++ttl_7;
  }
};

// Connects a watcher to `port` on the server, sends, and waits for the data.
void exchange(two_stacks& s, TCPApplication& server, std::uint16_t port, ttl_watcher& client) {
  REQUIRE(server.bind(port));
  server.listen(5);
  REQUIRE(s.client.register_tcp_application(client));
  REQUIRE(client.connect(server_ip, port, 5s));
  REQUIRE(client.send_packet(std::string_view("ping")));
  CHECK(read_all(server, 4) == "ping");
  REQUIRE(server.send_packet(std::string_view("pong"), *server.lastclient()));
  CHECK(read_all(client, 4) == "pong");
}
using callback = runtime::tcp_handler::callback;

// A hooking_server gets every call, and what its hook rewrote goes out so.
void every_call_made(two_stacks& s, hooking_server& server, std::uint16_t port) {
  CHECK(server.calls(callback::incoming));
  CHECK(server.calls(callback::outgoing_tcp));
  CHECK(server.calls_hook_outgoing());
  ttl_watcher client;
  exchange(s, server, port, client);
  CHECK(server.incoming >= 3);  // ACK of the handshake, data, ACK
  CHECK(server.outgoing_tcp >= 2);
  CHECK(server.outgoing_ipv4 == server.outgoing_tcp);
  CHECK(server.outgoing_eth == server.outgoing_tcp);
  CHECK(client.ttl_7 >= 2);
  CHECK(client.ttl_7 == client.segments);  // every segment from the server was rewritten
}
}  // namespace

TEST_CASE("callbacks an application's class overrides are called, those it does not are skipped") {
  two_stacks s;

  SECTION("overridden in the class itself") {
    hooking_server server;
    REQUIRE(s.server.register_tcp_application(server));
    every_call_made(s, server, 8400);
  }
  SECTION("one hook, overridden in a class between") {
    derived_ttl_server server;
    REQUIRE(s.server.register_tcp_application(server));
    CHECK_FALSE(server.calls(callback::incoming));
    CHECK_FALSE(server.calls(callback::outgoing_tcp));
    CHECK(server.calls(callback::outgoing_ipv4));
    CHECK_FALSE(server.calls(callback::outgoing_eth));
    CHECK(server.calls_hook_outgoing());
    ttl_watcher client;
    exchange(s, server, 8401, client);
    CHECK(server.outgoing_ipv4 >= 2);
    CHECK(client.ttl_7 >= 2);
    CHECK(client.ttl_7 == client.segments);
  }
  SECTION("registered through a reference to its base class") {
    hooking_server server;
    TCPApplication& base = server;
    REQUIRE(s.server.register_tcp_application(base));
    every_call_made(s, server, 8402);
  }
  SECTION("registered through the layer interface") {
    hooking_server server;
    REQUIRE(s.server.register_layer(static_cast<runtime::layer&>(server)));
    every_call_made(s, server, 8403);
  }
  SECTION("nothing overridden: nothing called, nothing rewritten") {
    TCPApplication server;
    REQUIRE(s.server.register_tcp_application(server));
    CHECK_FALSE(server.calls(callback::incoming));
    CHECK_FALSE(server.calls_hook_outgoing());
    ttl_watcher client;
    exchange(s, server, 8404, client);
    CHECK(client.segments >= 2);
    CHECK(client.ttl_7 == 0);
  }
}

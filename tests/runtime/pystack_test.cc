// PyStack, the runtime facade: two stacks in one process over the in-process
// link on the real clock, a UDP echo in thread and reactor mode, stop() from
// another thread and from a callback, correct port checks (the stack's own
// bindings and, in shared-address mode, the host kernel's sockets), and 100
// start/stop cycles in each mode that leak no thread and no descriptor.
#include "pystack/pystack.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "pystack/device/in_process_link.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;

const auto server_ip = *ipv4_address::parse("10.40.0.1");
const auto client_ip = *ipv4_address::parse("10.40.0.2");
const interface_config server_config{.mac = *mac_address::parse("02:00:00:00:40:01"), .address = server_ip};
const interface_config client_config{.mac = *mac_address::parse("02:00:00:00:40:02"), .address = client_ip};

using wire_type = pystack::in_process_link<steady_clock>;

std::string text_of(const std::vector<byte>& data) { return std::string(data.begin(), data.end()); }

// Entries of a /proc directory: the calling process's threads or descriptors.
std::size_t count_entries(const char* path) {
  DIR* dir = ::opendir(path);
  REQUIRE(dir != nullptr);
  std::size_t n = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n;
}

// Waits (bounded) until `condition` holds.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 5000ms) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Answers every datagram from inside the loop; "stop" stops its stack.
class echo_server : public UDPApplication {
 public:
  ~echo_server() override { static_cast<void>(close()); }  // no callback into a half-destroyed object
  PyStack* stack = nullptr;
  std::atomic<int> echoed{0};

 protected:
  void packet_received(bytes_view data, const runtime::header_set& headers) override {
    if (std::string(data.begin(), data.end()) == "stop" && stack != nullptr) {
      stack->stop();  // from a callback: the loop ends once this returns
      return;
    }
    // Catch's assertions are not for other threads: count, check later.
    if (send_packet_to(data, headers.ip()->source(), headers.udp()->source_port())) ++echoed;
  }
};

// Throws from its callback: the loop must survive and keep the exception.
class throwing_app : public UDPApplication {
 public:
  ~throwing_app() override { static_cast<void>(close()); }

 protected:
  void packet_received(bytes_view, const runtime::header_set&) override { throw std::runtime_error("boom"); }
};

struct two_stacks {
  wire_type wire = std::move(wire_type::open(steady_clock{}).value());
  PyStack server{wire.a(), server_config};
  PyStack client{wire.b(), client_config};
};
}  // namespace

TEST_CASE("two PyStacks in one process: a UDP echo in thread mode") {
  two_stacks s;
  echo_server echo;
  UDPApplication app;
  REQUIRE(s.server.register_udp_application(echo));
  REQUIRE(s.client.register_udp_application(app));
  REQUIRE(echo.bind(7));
  REQUIRE(s.server.run(false));
  REQUIRE(s.client.run(false));
  CHECK(s.server.running());
  REQUIRE(app.connect("10.40.0.1", 7));  // commands from this thread, run on the client's loop

  for (int i = 0; i < 10; ++i) {
    const std::string text = "ping " + std::to_string(i);
    REQUIRE(app.send_packet(text));
    auto reply = app.fetch_data_from(0, 5s);  // waits on a condition the client's loop signals
    REQUIRE(reply);
    CHECK(text_of(reply->data) == text);
    CHECK(reply->address == server_ip);  // the sender's address
    CHECK(reply->port == 7);
  }
  CHECK(echo.echoed == 10);
  CHECK_FALSE(app.fetch_data(0, 20ms));  // nothing more: the wait times out

  s.client.stop();
  s.server.stop();
  CHECK_FALSE(s.server.running());
  CHECK_FALSE(s.client.running());
}

TEST_CASE("reactor mode runs in the caller's thread until stop() from another thread") {
  two_stacks s;
  echo_server echo;
  UDPApplication app;
  REQUIRE(s.server.register_udp_application(echo));
  REQUIRE(s.client.register_udp_application(app));
  REQUIRE(echo.bind(7));

  std::atomic<bool> returned{false};
  expected<void, runtime::error> outcome = runtime::error{};
  std::thread reactor([&] {
    outcome = s.server.run();  // doreactor = true: blocks here
    returned = true;
  });
  REQUIRE(eventually([&] { return s.server.running(); }));
  REQUIRE(s.client.run(false));
  REQUIRE(app.connect(server_ip, 7));
  REQUIRE(app.send_packet(std::string_view("over the reactor")));
  auto reply = app.fetch_data(0, 5s);
  REQUIRE(reply);
  CHECK(text_of(*reply) == "over the reactor");
  CHECK_FALSE(returned);

  s.server.stop();  // from this thread: returns once the reactor's loop has ended
  CHECK_FALSE(s.server.running());
  reactor.join();
  CHECK(returned);
  CHECK(outcome);
  s.client.stop();
}

TEST_CASE("a callback may stop a reactor") {
  two_stacks s;
  echo_server echo;
  echo.stack = &s.server;
  UDPApplication app;
  REQUIRE(s.server.register_udp_application(echo));
  REQUIRE(s.client.register_udp_application(app));
  REQUIRE(echo.bind(7));
  REQUIRE(s.client.run(false));
  REQUIRE(app.connect(server_ip, 7));

  expected<void, runtime::error> outcome = runtime::error{};
  std::thread reactor([&] { outcome = s.server.run(); });
  REQUIRE(eventually([&] { return s.server.running(); }));
  REQUIRE(app.send_packet(std::string_view("stop")));
  const bool ended = eventually([&] { return !s.server.running(); });
  if (!ended) s.server.stop();  // do not leave the thread behind when the check fails
  CHECK(ended);
  reactor.join();
  CHECK(outcome);
  s.client.stop();
}

TEST_CASE("a throwing callback does not take the loop down") {
  two_stacks s;
  throwing_app bad;
  UDPApplication app;
  REQUIRE(s.server.register_udp_application(bad));
  REQUIRE(s.client.register_udp_application(app));
  REQUIRE(bad.bind(9));
  REQUIRE(s.server.run(false));
  REQUIRE(s.client.run(false));
  REQUIRE(app.connect(server_ip, 9));
  REQUIRE(app.send_packet(std::string_view("x")));
  REQUIRE(eventually([&] { return bad.callback_failures() == 1; }));
  REQUIRE(bad.last_callback_failure());
  CHECK_THROWS_WITH(std::rethrow_exception(bad.last_callback_failure()), "boom");
  CHECK(s.server.running());
  CHECK(s.server.is_udp_port_free(10));  // the loop still answers commands
  s.client.stop();
  s.server.stop();
}

TEST_CASE("is_udp_port_free tells the truth about the stack's own bindings") {
  two_stacks s;
  REQUIRE(s.server.run(false));
  UDPApplication app;
  REQUIRE(s.server.register_udp_application(app));
  CHECK(s.server.is_udp_port_free(5353));
  REQUIRE(app.bind(5353));
  CHECK_FALSE(s.server.is_udp_port_free(5353));
  CHECK(s.server.is_udp_port_free(5354));
  CHECK_FALSE(s.server.is_udp_port_free(0));  // port 0 is nobody's to bind

  UDPApplication other;
  REQUIRE(s.server.register_udp_application(other));
  auto refused = other.bind(5353);
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == runtime::errc::key_in_use);

  REQUIRE(app.close());
  CHECK(s.server.is_udp_port_free(5353));
  REQUIRE(other.bind(5353));
  CHECK_FALSE(s.server.is_udp_port_free(5353));
  s.server.stop();
  // Not running: the same answers, computed in the caller's thread.
  CHECK_FALSE(s.server.is_udp_port_free(5353));
  CHECK(s.server.is_udp_port_free(5352));
}

namespace {
// A kernel UDP socket bound to `address`:0, and the port the kernel chose.
struct kernel_udp_socket {
  int fd = -1;
  std::uint16_t port = 0;
  explicit kernel_udp_socket(ipv4_address address) {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(address.value);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t length = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) == 0);
    port = ntohs(a.sin_port);
  }
  ~kernel_udp_socket() { ::close(fd); }
};
}  // namespace

TEST_CASE("in shared-address mode a port the host's kernel holds is not free") {
  // The stack shares 127.0.0.1 with the host in this test; the kernel's
  // sockets are in this process's network namespace, where the test runs.
  const auto loopback = *ipv4_address::parse("127.0.0.1");
  wire_type wire = std::move(wire_type::open(steady_clock{}).value());
  // Port checks only: keeping the kernel out (kernel_guard) would change
  // this namespace's firewall, which is the host's; the netns tests do that.
  PyStack shared(wire.a(), {.mac = server_config.mac, .address = loopback},
                 {.shares_host_address = true, .guard_kernel = false});
  PyStack own(wire.b(), {.mac = client_config.mac, .address = client_ip});
  CHECK(shared.shares_host_address());
  CHECK_FALSE(own.shares_host_address());

  std::uint16_t wildcard_port = 0;
  {
    kernel_udp_socket wildcard(ipv4_address::any());  // 0.0.0.0: holds the port on every address
    wildcard_port = wildcard.port;
    CHECK_FALSE(shared.is_udp_port_free(wildcard.port));
    CHECK(own.is_udp_port_free(wildcard.port));  // an address of its own: the kernel's ports do not matter
    UDPApplication app;
    REQUIRE(shared.register_udp_application(app));
    auto refused = app.bind(wildcard.port);
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == runtime::errc::key_in_use);

    kernel_udp_socket elsewhere(loopback);
    CHECK_FALSE(shared.is_udp_port_free(elsewhere.port));  // bound to our very address

    // TCP: a listening kernel socket on 0.0.0.0.
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    socklen_t length = sizeof a;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &length) == 0);
    const std::uint16_t tcp_port = ntohs(a.sin_port);
    CHECK_FALSE(shared.is_tcp_port_free(tcp_port));
    CHECK(own.is_tcp_port_free(tcp_port));
    TCPApplication server;
    REQUIRE(shared.register_tcp_application(server));
    CHECK(server.bind(tcp_port).error() == runtime::errc::key_in_use);
    ::close(listener);
  }
  // The sockets are closed: the kernel no longer holds the port (unless
  // another process took it meanwhile, which the next check would show).
  const auto tables = runtime::host_socket_tables::open();
  REQUIRE(tables);
  const auto held = tables->port_in_use(runtime::transport::udp, loopback, wildcard_port);
  REQUIRE(held);
  CHECK(shared.is_udp_port_free(wildcard_port) == !*held);
}

TEST_CASE("parse_proc_net reads the kernel's socket tables") {
  // Lines in the kernel's format (net/ipv4/udp.c, net/ipv6/udp.c), as
  // printed on a little-endian machine.
  const std::string udp4 =
      "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
      "  112: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 19327 2 0000000000000000 0\n"
      "  305: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   102        0 18018 2 0000000000000000 0\n";
  auto sockets = runtime::parse_proc_net(udp4, false);
  REQUIRE(sockets);
  REQUIRE(sockets->size() == 2);
  if (htonl(1) != 1) {  // the words are host-order prints of network-order bytes
    CHECK((*sockets)[0].local_address == ipv4_address::any());
    CHECK((*sockets)[0].local_port == 5353);
    CHECK((*sockets)[1].local_address == *ipv4_address::parse("127.0.0.53"));
    CHECK((*sockets)[1].local_port == 53);
    CHECK((*sockets)[1].state == 7);
  }
  const std::string udp6 =
      "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
      "  112: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 19330 2 0000000000000000 0\n"
      "  113: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 19331 2 0000000000000000 0\n"
      "  114: 000080FE00000000FF005002020000FE:0222 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 19332 2 0000000000000000 0\n";
  auto sockets6 = runtime::parse_proc_net(udp6, true);
  REQUIRE(sockets6);
  REQUIRE(sockets6->size() == 3);
  if (htonl(1) != 1) {
    CHECK((*sockets6)[0].local_address == ipv4_address::any());  // :: takes IPv4 too
    CHECK((*sockets6)[1].local_address == *ipv4_address::parse("127.0.0.1"));  // ::ffff:127.0.0.1
    CHECK((*sockets6)[1].local_port == 8080);
    CHECK_FALSE((*sockets6)[2].local_address);  // fe80::...: no IPv4 traffic
  }
  // Damaged tables are errors, not guesses.
  CHECK_FALSE(runtime::parse_proc_net("header\n  1: 0000000:14E9 00000000:0000 07\n", false));
  CHECK_FALSE(runtime::parse_proc_net("header\n  1: 00000000:14E9 00000000:0000 7\n", false));
  CHECK_FALSE(runtime::parse_proc_net("header\n  1 00000000:14E9 00000000:0000 07\n", false));
  CHECK_FALSE(runtime::parse_proc_net("header\n  1: 0000000G:14E9 00000000:0000 07\n", false));
  CHECK(runtime::parse_proc_net("header only\n", false)->empty());
}

TEST_CASE("100 start/stop cycles in each mode leak no thread and no descriptor") {
  const std::size_t threads_before = count_entries("/proc/self/task");
  const std::size_t fds_before = count_entries("/proc/self/fd");
  {
    two_stacks s;
    echo_server echo;
    UDPApplication app;
    REQUIRE(s.server.register_udp_application(echo));
    REQUIRE(s.client.register_udp_application(app));
    REQUIRE(echo.bind(7));
    REQUIRE(s.client.run(false));
    REQUIRE(app.connect(server_ip, 7));

    // Thread mode, stopped at once (before the loop may even have started).
    for (int cycle = 0; cycle < 100; ++cycle) {
      INFO("thread-mode cycle " << cycle);
      REQUIRE(s.server.run(false));
      if (cycle % 10 == 0) {  // and now and then it must still work
        REQUIRE(app.send_packet("cycle " + std::to_string(cycle)));
        auto reply = app.fetch_data(0, 5s);
        REQUIRE(reply);
        CHECK(text_of(*reply) == "cycle " + std::to_string(cycle));
      }
      s.server.stop();
      REQUIRE_FALSE(s.server.running());
    }
    // Reactor mode, in a thread of the test's, stopped from here.
    for (int cycle = 0; cycle < 100; ++cycle) {
      INFO("reactor-mode cycle " << cycle);
      std::thread reactor([&] { static_cast<void>(s.server.run()); });
      const bool started = eventually([&] { return s.server.running(); });
      if (started && cycle % 10 == 0) {
        REQUIRE(app.send_packet("reactor " + std::to_string(cycle)));
        auto reply = app.fetch_data(0, 5s);
        CHECK(reply);
      }
      s.server.stop();
      reactor.join();
      REQUIRE(started);
    }
    s.client.stop();
  }
  // And whole stacks made and destroyed (each has its loop's eventfd, the
  // link two more).
  for (int cycle = 0; cycle < 100; ++cycle) {
    two_stacks s;
    REQUIRE(s.server.run(false));
    REQUIRE(s.client.run(false));
  }
  CHECK(count_entries("/proc/self/task") == threads_before);
  CHECK(count_entries("/proc/self/fd") == fds_before);
}

TEST_CASE("register_layer on a PyStack puts a layer where it fits, replacing a built-in one") {
  two_stacks s;
  runtime::udp_layer custom_udp;
  REQUIRE(s.server.register_layer(custom_udp));
  CHECK(s.server.ip().upper(udp::ip_protocol) == &custom_udp);
  CHECK(custom_udp.lower() == &s.server.ip());

  UDPApplication app;
  REQUIRE(custom_udp.register_layer(app));
  REQUIRE(app.bind(4000));
  UDPApplication peer;
  REQUIRE(s.client.register_udp_application(peer));
  REQUIRE(s.server.run(false));
  REQUIRE(s.client.run(false));
  REQUIRE(peer.send_packet_to(std::string_view("to the custom layer"), server_ip, 4000));
  auto got = app.fetch_data_from(0, 5s);
  REQUIRE(got);
  CHECK(text_of(got->data) == "to the custom layer");
  CHECK(got->address == client_ip);
  CHECK(custom_udp.stats().received == 1);
  CHECK(s.server.udp().stats().received == 0);

  // A layer that fits nowhere here.
  UDPApplication application_as_layer;
  REQUIRE(s.server.register_layer(application_as_layer));  // needs UDP: goes on the built-in UDP layer
  CHECK(application_as_layer.lower() == &s.server.udp());
  s.client.stop();
  s.server.stop();
}

TEST_CASE("a PyStack on an interface that does not exist reports it") {
  auto stack = PyStack::open("pystack-no-such-interface");
  REQUIRE_FALSE(stack);
  CHECK(stack.error() == runtime::errc::host);
  PyStack kept("pystack-no-such-interface");
  REQUIRE_FALSE(kept.status());
  CHECK(kept.run(false).error() == runtime::errc::host);
  UDPApplication app;
  CHECK(kept.register_udp_application(app).error() == runtime::errc::host);
  CHECK_FALSE(kept.is_udp_port_free(1234));
  kept.stop();  // harmless
}

namespace {
// Sees the TTL of what it receives, and marks what it sends (TTL 7).
class marking_udp_app : public UDPApplication {
 public:
  ~marking_udp_app() override { static_cast<void>(close()); }
  std::atomic<int> incoming{0};
  std::atomic<int> last_ttl{0};

 protected:
  void hook_incoming(bytes_view, const runtime::header_set& headers) override {
    if (headers.ip()) last_ttl = headers.ip()->ttl();
    ++incoming;
  }
  void hook_outgoing(ipv4::repr& header) override { header.ttl = 7; }
};
}  // namespace

TEST_CASE("a UDP application's overridden hooks are called however it was registered") {
  two_stacks s;
  marking_udp_app by_type;
  marking_udp_app by_base;
  UDPApplication plain;  // overrides nothing: its datagrams go out as made
  UDPApplication& base = by_base;
  REQUIRE(s.server.register_udp_application(by_type));
  REQUIRE(s.client.register_udp_application(base));
  REQUIRE(s.client.register_udp_application(plain));
  REQUIRE(by_type.bind(9001));
  REQUIRE(by_base.bind(9002));
  REQUIRE(s.server.run(false));
  REQUIRE(s.client.run(false));

  REQUIRE(by_base.send_packet_to(std::string_view("from base"), server_ip, 9001));
  REQUIRE(by_type.fetch_data(0, 5s));
  CHECK(by_type.incoming == 1);
  CHECK(by_type.last_ttl == 7);  // by_base's hook_outgoing ran

  REQUIRE(by_type.send_packet_to(std::string_view("from type"), client_ip, 9002));
  REQUIRE(by_base.fetch_data(0, 5s));
  CHECK(by_base.incoming == 1);
  CHECK(by_base.last_ttl == 7);  // by_type's hook_outgoing ran

  REQUIRE(plain.send_packet_to(std::string_view("plain"), server_ip, 9001));
  REQUIRE(by_type.fetch_data(0, 5s));
  CHECK(by_type.incoming == 2);
  CHECK(by_type.last_ttl == 64);

  s.client.stop();
  s.server.stop();
}

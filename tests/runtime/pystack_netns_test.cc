// PyStack against the Linux kernel (shared/docs/netns-harness.md): two
// namespaces made here and joined by a veth pair. PyStack(iface) reads the
// interface's facts from the host (in its namespace) and opens the live
// device; the kernel at the other end is the peer nobody here wrote: UDP both
// ways, TCP with PyStack as client and as server, and ping. Needs root;
// tagged no-sandbox, exclusive.
#include "pystack/pystack.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tests/netns/netns.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;

using netns_test::in_namespace;
using netns_test::sh;

// The namespaces and veth pair of one run (tests/netns): the kernel's end
// has a private address; the stack's end has none in the kernel, so the
// kernel there leaves the stack's traffic alone.
class veth_harness : public netns_test::veth_pair {
 public:
  veth_harness() : veth_pair("pr", 201, false) {}
  const std::string& kernel_ns() const { return peer_ns(); }
  ipv4_address kernel_ip() const { return *ipv4_address::parse(peer_ip()); }
  ipv4_address stack_ip() const { return *ipv4_address::parse(veth_pair::stack_ip()); }
};

sockaddr_in socket_address(ipv4_address a, std::uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_addr.s_addr = htonl(a.value);
  s.sin_port = htons(port);
  return s;
}

// A kernel socket, closed on every exit path.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

std::string text_of(const std::vector<byte>& data) { return std::string(data.begin(), data.end()); }

// Echoes what one kernel TCP connection sends until EOF, bounded in time.
void echo_connection(int fd, std::chrono::milliseconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  char buffer[65536];
  while (std::chrono::steady_clock::now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return;
    ssize_t sent = 0;
    while (sent < n) {
      const ssize_t m = ::send(fd, buffer + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
      if (m <= 0) return;
      sent += m;
    }
  }
}

class echo_fork : public TCPApplication {
 public:
  ~echo_fork() override { release(); }
  std::shared_ptr<TCPApplication> fork() const override { return std::make_shared<echo_fork>(); }

 protected:
  void packet_received(bytes_view data, connection_id id) override { static_cast<void>(send_packet(data, id)); }
};
}  // namespace

TEST_CASE("PyStack on a veth talks UDP, TCP and ICMP with the Linux kernel") {
  veth_harness net;
  INFO("setup step: " << net.failed_step());
  REQUIRE(net.ready());

  // Opened inside the stack's namespace: the host facts (rtnetlink) and the
  // capture are that namespace's.
  auto opened = in_namespace(net.stack_ns(), [&] {
    return PyStack::open(net.stack_if(), {.address = ipv4_interface_address{net.stack_ip(), 24}});
  });
  if (!opened) FAIL(opened.error().message());
  PyStack& stack = **opened;
  CHECK(stack.interface_name() == net.stack_if());
  CHECK(stack.config().address == net.stack_ip());
  CHECK(stack.config().prefix_length == 24);
  CHECK_FALSE(stack.shares_host_address());  // an address the kernel does not have
  REQUIRE(stack.run(false));

  SECTION("UDP both ways") {
    fd_guard kernel;
    kernel.fd = in_namespace(net.kernel_ns(), [] { return ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); });
    REQUIRE(kernel.fd >= 0);
    const sockaddr_in here = socket_address(net.kernel_ip(), 9000);
    REQUIRE(::bind(kernel.fd, reinterpret_cast<const sockaddr*>(&here), sizeof here) == 0);

    UDPApplication app;
    REQUIRE(stack.register_udp_application(app));
    REQUIRE(app.bind(5000));
    REQUIRE(app.send_packet_to(std::string_view("from pystack"), net.kernel_ip(), 9000));
    pollfd p{kernel.fd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    char buffer[256];
    sockaddr_in from{};
    socklen_t length = sizeof from;
    const ssize_t n = ::recvfrom(kernel.fd, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from), &length);
    REQUIRE(n == 12);
    CHECK(std::string(buffer, 12) == "from pystack");
    CHECK(ntohl(from.sin_addr.s_addr) == net.stack_ip().value);
    CHECK(ntohs(from.sin_port) == 5000);

    const std::string answer = "from the kernel";
    REQUIRE(::sendto(kernel.fd, answer.data(), answer.size(), 0, reinterpret_cast<const sockaddr*>(&from), length) ==
            static_cast<ssize_t>(answer.size()));
    auto got = app.fetch_data_from(0, 5s);
    REQUIRE(got);
    CHECK(text_of(got->data) == answer);
    CHECK(got->address == net.kernel_ip());  // the sender's address
    CHECK(got->port == 9000);
  }

  SECTION("TCP: PyStack connects to a kernel server") {
    fd_guard listener;
    listener.fd = in_namespace(net.kernel_ns(), [] { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
    REQUIRE(listener.fd >= 0);
    const sockaddr_in here = socket_address(net.kernel_ip(), 9001);
    REQUIRE(::bind(listener.fd, reinterpret_cast<const sockaddr*>(&here), sizeof here) == 0);
    REQUIRE(::listen(listener.fd, 4) == 0);
    std::atomic<bool> served{false};
    std::thread kernel_side([&] {
      pollfd p{listener.fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) return;
      fd_guard connection{::accept(listener.fd, nullptr, nullptr)};
      if (connection.fd < 0) return;
      echo_connection(connection.fd, 10000ms);
      served = true;
    });

    TCPApplication client;
    REQUIRE(stack.register_tcp_application(client));
    auto connected = client.connect(net.kernel_ip(), 9001, 5s);
    if (!connected) FAIL(connected.error().message());
    std::string sent;
    for (int i = 0; sent.size() < 100000; ++i) sent += "segment " + std::to_string(i) + ";";
    REQUIRE(client.send_packet(sent));
    std::string echoed;
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (echoed.size() < sent.size() && std::chrono::steady_clock::now() < give_up) {
      if (auto got = client.fetch_data(0, 50ms)) echoed += text_of(*got);
    }
    CHECK(echoed == sent);
    REQUIRE(client.close());  // the kernel sees EOF and ends its echo
    kernel_side.join();
    CHECK(served);
  }

  SECTION("TCP: a kernel client connects to PyStack, each client a fork") {
    echo_fork server;
    REQUIRE(stack.register_tcp_application(server));
    REQUIRE(server.bind(8080, nullptr, true));
    CHECK_FALSE(stack.is_tcp_port_free(8080));

    fd_guard client;
    client.fd = in_namespace(net.kernel_ns(), [] { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
    REQUIRE(client.fd >= 0);
    const sockaddr_in there = socket_address(net.stack_ip(), 8080);
    REQUIRE(::connect(client.fd, reinterpret_cast<const sockaddr*>(&there), sizeof there) == 0);
    auto fork = server.accept(5s);
    REQUIRE(fork);
    CHECK(fork->get() != &server);
    CHECK(fork->get()->get_conn_addr().first == net.kernel_ip());

    const std::string message = "hello from the kernel's client";
    REQUIRE(::send(client.fd, message.data(), message.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(message.size()));
    std::string echoed;
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    char buffer[256];
    while (echoed.size() < message.size() && std::chrono::steady_clock::now() < give_up) {
      pollfd p{client.fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(client.fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      echoed.append(buffer, static_cast<std::size_t>(n));
    }
    CHECK(echoed == message);
    ::shutdown(client.fd, SHUT_WR);
    const auto eof_deadline = std::chrono::steady_clock::now() + 5s;
    while (!(*fork)->at_eof() && std::chrono::steady_clock::now() < eof_deadline) std::this_thread::sleep_for(1ms);
    CHECK((*fork)->at_eof());
    REQUIRE((*fork)->close());
    REQUIRE(server.close());
  }

  SECTION("the kernel's ping is answered") {
    CHECK(sh("ip netns exec " + net.kernel_ns() + " ping -c 1 -W 2 " + net.stack_ip().to_string()) == 0);
    stack.stop();  // the counters belong to the loop thread while it runs
    CHECK(stack.icmp().stats().echo_replies_sent >= 1);
  }

  stack.stop();
  CHECK_FALSE(stack.running());
}

TEST_CASE("default_stack() opens the default route's interface on its own address, and checks that kernel's ports") {
  veth_harness net;
  INFO("setup step: " << net.failed_step());
  REQUIRE(net.ready());
  // Give the stack's namespace an address and a default route, as a host
  // has: the original's shared-address mode.
  const std::string s = "ip -n " + net.stack_ns();
  REQUIRE(sh(s + " addr add " + net.stack_ip().to_string() + "/24 dev " + net.stack_if()) == 0);
  REQUIRE(sh(s + " route add default via " + net.kernel_ip().to_string()) == 0);

  PyStack* first = in_namespace(net.stack_ns(), [] { return &default_stack(); });
  PyStack* second = in_namespace(net.stack_ns(), [] { return &default_stack(); });
  CHECK(first == second);  // made once, on first use
  if (!first->status()) FAIL(first->status().error().message());
  CHECK(first->interface_name() == net.stack_if());
  CHECK(first->config().address == net.stack_ip());
  REQUIRE(first->config().gateway);
  CHECK(*first->config().gateway == net.kernel_ip());
  CHECK(first->shares_host_address());

  // A kernel socket in the stack's namespace holds a port; the same port
  // held in this (the test's) namespace does not matter to the stack, even
  // when asked from here: the tables were opened in the stack's namespace.
  fd_guard there;
  there.fd = in_namespace(net.stack_ns(), [] { return ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); });
  REQUIRE(there.fd >= 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  REQUIRE(::bind(there.fd, reinterpret_cast<const sockaddr*>(&any), sizeof any) == 0);
  socklen_t length = sizeof any;
  REQUIRE(::getsockname(there.fd, reinterpret_cast<sockaddr*>(&any), &length) == 0);
  const std::uint16_t held_there = ntohs(any.sin_port);
  CHECK_FALSE(first->is_udp_port_free(held_there));

  fd_guard here{::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  REQUIRE(here.fd >= 0);
  // 0.0.0.0: it would hold the port on every address, were it in the
  // stack's namespace. It only receives; nothing is sent from it.
  sockaddr_in loopback = socket_address(ipv4_address::any(), 0);
  REQUIRE(::bind(here.fd, reinterpret_cast<const sockaddr*>(&loopback), sizeof loopback) == 0);
  length = sizeof loopback;
  REQUIRE(::getsockname(here.fd, reinterpret_cast<sockaddr*>(&loopback), &length) == 0);
  const std::uint16_t held_here = ntohs(loopback.sin_port);
  if (held_here != held_there) CHECK(first->is_udp_port_free(held_here));
}

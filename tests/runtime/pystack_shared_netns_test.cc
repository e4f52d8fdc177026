// PyStack on an address its host's kernel has too (the original pystack's
// only mode), against the Linux kernel: two namespaces made here, joined by
// a veth pair; the stack's namespace has the stack's address. The peer's
// kernel is the oracle: a refused connect() or datagram is what the kernel
// of the stack's namespace answered. PyStack must keep that kernel out of
// its own ports (host/kernel_guard.hpp), stay out of the host's ports, and
// leave the firewall as it found it. Needs root; no-sandbox and exclusive.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "pystack/pystack.hpp"
#include "tests/netns/netns.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;
using netns_test::in_namespace;

// A service of the host: a kernel socket listening on the shared address,
// which greets each client it accepts, until stopped. Its own thread.
class host_service {
 public:
  host_service(const netns_test::veth_pair& net, std::uint16_t port) {
    fd_ = in_namespace(net.stack_ns(), [] { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    REQUIRE(::inet_pton(AF_INET, net.stack_ip().c_str(), &address.sin_addr) == 1);
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    thread_ = std::thread([this] {
      for (int i = 0; i < 200 && !stop_; ++i) {  // bounded: 20 s at most
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        const int client = ::accept(fd_, nullptr, nullptr);
        if (client < 0) continue;
        static constexpr char greeting[] = "host\n";
        [[maybe_unused]] auto n = ::send(client, greeting, sizeof greeting - 1, MSG_NOSIGNAL);
        ::close(client);
      }
    });
  }
  ~host_service() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};
}  // namespace

TEST_CASE("PyStack on a shared address keeps the kernel out of its ports and stays out of the host's",
          "[pystack][netns]") {
  REQUIRE(::geteuid() == 0);
  netns_test::veth_pair net("ps", 207, true);
  INFO("failed setup step: " << net.failed_step());
  REQUIRE(net.ready());
  const std::string firewall_before = net.stack_ruleset();
  // Unguarded, the kernel answers for ports it has no socket on.
  REQUIRE(net.udp_probe(5353) == "refused");

  {
    auto opened = in_namespace(net.stack_ns(), [&] { return PyStack::open(net.stack_if()); });
    INFO((opened ? std::string() : opened.error().message()));
    REQUIRE(opened);
    PyStack& stack = **opened;
    REQUIRE(stack.shares_host_address());
    CHECK(net.stack_ruleset() != firewall_before);  // the guard's table

    UDPApplication udp;
    REQUIRE(stack.register_udp_application(udp));
    REQUIRE(udp.bind(5353));
    TCPApplication tcp;
    REQUIRE(stack.register_tcp_application(tcp));
    REQUIRE(tcp.bind(8080));
    tcp.listen(5);
    host_service host(net, 9999);
    // Not running yet: nobody holds the kernel's echo replies back.
    const auto answered_once = [&] {
      const std::string ping = netns_test::output_of(net.in_peer("ping -n -c 2 -i 0.2 -W 1 " + net.stack_ip(), 5));
      return ping.find(" 2 received") != std::string::npos && ping.find("DUP!") == std::string::npos;
    };
    CHECK(answered_once());
    REQUIRE(stack.run(false));

    // Our UDP port: the datagram is ours, and the kernel sent no port unreachable.
    CHECK(net.udp_probe(5353) == "timeout");
    const auto datagram = udp.fetch_data_from(0, 2s);
    REQUIRE(datagram);
    CHECK(std::string(datagram->data.begin(), datagram->data.end()) == "probe");

    // Our TCP port: the kernel's RST would have refused it.
    CHECK(net.tcp_probe(8080) == "connected");
    // The host's port: its kernel serves it; our stack sent no RST to spoil it.
    CHECK(net.tcp_probe(9999, true) == "connected host");
    // Nobody's port: the kernel refuses it, as it would without us.
    CHECK(net.tcp_probe(81) == "refused");

    // One echo reply per request: ours; the kernel's is held back. (The
    // requests of the first ping waited in the capture's ring and were
    // answered, late, when the loop started: count from here.)
    const auto ours_before = stack.icmp().stats().echo_replies_sent;
    CHECK(answered_once());
    CHECK(stack.icmp().stats().echo_replies_sent == ours_before + 2);

    // A port given back is the kernel's to answer for again.
    REQUIRE(udp.close());
    CHECK(net.udp_probe(5353) == "refused");
    stack.stop();
    // Stopped: the kernel answers ping again (once), and ours is silent.
    const auto ours_when_stopped = stack.icmp().stats().echo_replies_sent;
    CHECK(answered_once());
    CHECK(stack.icmp().stats().echo_replies_sent == ours_when_stopped);
  }
  // The guard went with the stack: the firewall is what it was, byte for byte.
  CHECK(net.stack_ruleset() == firewall_before);
}

TEST_CASE("PyStack on a shared address connects out, and closes without the kernel's RSTs", "[pystack][netns]") {
  REQUIRE(::geteuid() == 0);
  netns_test::veth_pair net("pc", 208, true);
  INFO("failed setup step: " << net.failed_step());
  REQUIRE(net.ready());
  auto opened = in_namespace(net.stack_ns(), [&] { return PyStack::open(net.stack_if()); });
  INFO((opened ? std::string() : opened.error().message()));
  REQUIRE(opened);
  PyStack& stack = **opened;
  REQUIRE(stack.run(false));

  SECTION("an active open: its port is claimed before the SYN, so the kernel does not reset the SYN-ACK") {
    // The peer's kernel serves one client: it answers what it got, then closes.
    FILE* server = ::popen(net.in_peer("/usr/bin/python3 -c \"import socket\n"
                                       "l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                                       "l.bind(('" + net.peer_ip() + "', 9100)); l.listen(1); l.settimeout(10)\n"
                                       "print('ready', flush=True)\n"
                                       "c, _ = l.accept(); c.settimeout(5)\n"
                                       "c.sendall(b'back: ' + c.recv(64)); c.close()\"", 15).c_str(), "r");
    REQUIRE(server != nullptr);
    char line[64] = {};
    REQUIRE(std::fgets(line, sizeof line, server) != nullptr);  // listening
    TCPApplication client;
    REQUIRE(stack.register_tcp_application(client));
    const auto connected = client.connect(net.peer_ip(), 9100, 5s);
    INFO((connected ? std::string() : connected.error().message()));
    CHECK(connected);
    if (connected) {
      REQUIRE(client.send_packet(std::string_view("hello")));
      std::string got;
      const auto give_up = std::chrono::steady_clock::now() + 5s;
      while (got.size() < 11 && std::chrono::steady_clock::now() < give_up) {
        if (auto data = client.fetch_data(0, 100ms)) got.append(data->begin(), data->end());
      }
      CHECK(got == "back: hello");
    }
    ::pclose(server);
  }

  SECTION("closing a listener with a connection open: every byte arrives, then a clean end") {
    TCPApplication server;
    REQUIRE(stack.register_tcp_application(server));
    REQUIRE(server.bind(8080));
    server.listen(5);
    // The peer reads until the end of the stream and says how it ended.
    FILE* reader = ::popen(net.in_peer("/usr/bin/python3 -c \"import socket\n"
                                       "s = socket.create_connection(('" + net.stack_ip() + "', 8080), timeout=10)\n"
                                       "n = 0\n"
                                       "try:\n"
                                       " while True:\n"
                                       "  chunk = s.recv(65536)\n"
                                       "  if not chunk: break\n"
                                       "  n += len(chunk)\n"
                                       " print('eof', n)\n"
                                       "except ConnectionResetError: print('reset', n)\n"
                                       "except socket.timeout: print('timeout', n)\"", 15).c_str(), "r");
    REQUIRE(reader != nullptr);
    const auto accepted = server.accept(5s);
    REQUIRE(accepted);
    const std::string payload(200'000, 'p');
    REQUIRE(server.send_packet(payload));
    // The listener and the connection at once: FIN after what is queued. The
    // port stays claimed while the connection lives, so the peer's ACKs of
    // the data and of our FIN meet no RST from the kernel.
    REQUIRE(server.close());
    char line[64] = {};
    REQUIRE(std::fgets(line, sizeof line, reader) != nullptr);
    ::pclose(reader);
    CHECK(std::string(line) == "eof 200000\n");
  }

  SECTION("a closed listener's port is the kernel's again") {
    TCPApplication server;
    REQUIRE(stack.register_tcp_application(server));
    REQUIRE(server.bind(8080));
    server.listen(5);
    CHECK(net.tcp_probe(8080) == "connected");
    CHECK_FALSE(stack.is_tcp_port_free(8080));
    // The listener and the probe's connection (its peer closed first, so
    // ours ends without TIME-WAIT): once both are gone, so is the claim and
    // its reserving socket, which the kernel's tables showed.
    REQUIRE(server.close());
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (!stack.is_tcp_port_free(8080) && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(20ms);
    }
    CHECK(stack.is_tcp_port_free(8080));
    CHECK(net.tcp_probe(8080) == "refused");
  }
  stack.stop();
}

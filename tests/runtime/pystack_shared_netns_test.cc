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

    // One echo reply per request: ours; the kernel's is held back.
    const std::string ping = netns_test::output_of(net.in_peer("ping -n -c 2 -i 0.2 -W 1 " + net.stack_ip(), 5));
    CHECK(ping.find(" 2 received") != std::string::npos);
    CHECK(ping.find("DUP!") == std::string::npos);

    // A port given back is the kernel's to answer for again.
    REQUIRE(udp.close());
    CHECK(net.udp_probe(5353) == "refused");
    stack.stop();
  }
  // The guard went with the stack: the firewall is what it was, byte for byte.
  CHECK(net.stack_ruleset() == firewall_before);
}

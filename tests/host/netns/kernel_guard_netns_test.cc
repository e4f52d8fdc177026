// kernel_guard against the Linux kernel: two namespaces made here, joined by
// a veth pair. In the "stack" namespace the kernel HAS the address the guard
// protects (the shared-address mode); in the "peer" namespace the kernel's
// own sockets probe it. The peer's kernel is the oracle: a refused connect()
// is the RST the guarded kernel sent, a refused connected UDP socket is its
// ICMP port unreachable, a ping reply is its echo reply. `nft list ruleset`
// shows that the guard leaves the firewall exactly as it found it, after a
// normal end and after SIGKILL. Needs root; no-sandbox and exclusive.
#include "pystack/host/kernel_guard.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/netns/netns.hpp"

namespace {
using namespace pystack;
using transport = kernel_guard::transport;
using netns_test::in_namespace;
using netns_test::sh;

// errno of a kernel socket's bind() to the stack's address and `port` in the
// stack's namespace, 0 when it succeeded.
int kernel_bind(const netns_test::veth_pair& net, int type, std::uint16_t port) {
  const int fd = in_namespace(net.stack_ns(), [&] { return ::socket(AF_INET, type | SOCK_CLOEXEC, 0); });
  REQUIRE(fd >= 0);
  sockaddr_in where{};
  where.sin_family = AF_INET;
  where.sin_port = htons(port);
  REQUIRE(::inet_pton(AF_INET, net.stack_ip().c_str(), &where.sin_addr) == 1);
  const int result = ::bind(fd, reinterpret_cast<const sockaddr*>(&where), sizeof where) == 0 ? 0 : errno;
  ::close(fd);
  return result;
}

// The kernel of the stack's namespace has the address the guard protects;
// the peer's kernel probes it.
class shared_address_net : public netns_test::veth_pair {
 public:
  shared_address_net() : veth_pair("kg", 205, true) {}

  ipv4_address address() const { return *ipv4_address::parse(stack_ip()); }

  bool ping_answered() const { return sh(in_peer("ping -n -c 1 -W 1 " + stack_ip(), 3)) == 0; }
};
}  // namespace

TEST_CASE("kernel_guard keeps the kernel out of claimed ports and leaves it as it was", "[kernel_guard][netns]") {
  REQUIRE(::geteuid() == 0);
  shared_address_net net;
  INFO("failed setup step: " << net.failed_step());
  REQUIRE(net.ready());
  // A table of the host's own, which the guard must leave alone.
  REQUIRE(sh("ip netns exec " + net.stack_ns() + " nft add table ip host_own") == 0);
  REQUIRE(sh("ip netns exec " + net.stack_ns() + " nft add chain ip host_own c") == 0);
  const std::string before = net.stack_ruleset();
  REQUIRE(before.find("host_own") != std::string::npos);

  // Unguarded, the kernel answers for ports it has no socket on.
  REQUIRE(net.tcp_probe(8080) == "refused");
  REQUIRE(net.udp_probe(5353) == "refused");
  REQUIRE(net.ping_answered());

  {
    auto guard = in_namespace(net.stack_ns(), [&] { return kernel_guard::open(net.address()); });
    INFO((guard ? std::string() : guard.error().message));
    REQUIRE(guard);
    CHECK(net.stack_ruleset().find(guard->table_name()) != std::string::npos);

    SECTION("a claimed TCP port gets no RST; the others still do") {
      REQUIRE(guard->claim(transport::tcp, 8080));
      CHECK(net.tcp_probe(8080) == "timeout");
      CHECK(net.tcp_probe(8081) == "refused");
      CHECK(net.udp_probe(8080) == "refused");  // TCP's claim says nothing of UDP
    }

    SECTION("a claimed UDP port gets no port unreachable; the others still do") {
      REQUIRE(guard->claim(transport::udp, 5353));
      CHECK(net.udp_probe(5353) == "timeout");
      CHECK(net.udp_probe(5354) == "refused");
      CHECK(net.tcp_probe(5353) == "refused");
    }

    SECTION("claims are counted; the last release gives the port back") {
      REQUIRE(guard->claim(transport::tcp, 8080));
      REQUIRE(guard->claim(transport::tcp, 8080));
      CHECK(guard->claims_on(transport::tcp, 8080) == 2);
      REQUIRE(guard->release(transport::tcp, 8080));
      CHECK(net.tcp_probe(8080) == "timeout");
      REQUIRE(guard->release(transport::tcp, 8080));
      CHECK(guard->claims_on(transport::tcp, 8080) == 0);
      CHECK(net.tcp_probe(8080) == "refused");
      const auto again = guard->release(transport::tcp, 8080);
      REQUIRE_FALSE(again);
      CHECK(again.error().what == guard_error::code::not_claimed);
    }

    SECTION("the kernel's echo replies can be silenced and restored") {
      REQUIRE(guard->silence_echo_replies(true));
      CHECK_FALSE(net.ping_answered());
      REQUIRE(guard->silence_echo_replies(false));
      CHECK(net.ping_answered());
    }

    SECTION("a claimed port is the kernel's no more: its own sockets cannot bind it") {
      REQUIRE(guard->claim(transport::tcp, 8080));
      REQUIRE(guard->claim(transport::udp, 5353));
      CHECK(kernel_bind(net, SOCK_STREAM, 8080) == EADDRINUSE);
      CHECK(kernel_bind(net, SOCK_DGRAM, 5353) == EADDRINUSE);
      REQUIRE(guard->release(transport::tcp, 8080));
      CHECK(kernel_bind(net, SOCK_STREAM, 8080) == 0);
    }

    SECTION("a port a socket of the host's kernel holds is refused, not taken over") {
      const int held = in_namespace(net.stack_ns(), [] { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
      REQUIRE(held >= 0);
      sockaddr_in where{};
      where.sin_family = AF_INET;
      where.sin_port = htons(8090);  // the wildcard address: held on every address
      REQUIRE(::bind(held, reinterpret_cast<const sockaddr*>(&where), sizeof where) == 0);
      const auto refused = guard->claim(transport::tcp, 8090);
      ::close(held);
      REQUIRE_FALSE(refused);
      CHECK(refused.error().what == guard_error::code::in_use);
      CHECK(guard->claims_on(transport::tcp, 8090) == 0);
    }
  }
  // Gone with the guard: the firewall is what it was, byte for byte.
  CHECK(net.stack_ruleset() == before);
  CHECK(net.tcp_probe(8080) == "refused");
}

TEST_CASE("a guard given the stack's interface leaves the host's loopback alone", "[kernel_guard][netns]") {
  REQUIRE(::geteuid() == 0);
  shared_address_net net;
  INFO("failed setup step: " << net.failed_step());
  REQUIRE(net.ready());
  const unsigned index = in_namespace(net.stack_ns(), [&] { return ::if_nametoindex(net.stack_if().c_str()); });
  REQUIRE(index != 0);
  auto guard = in_namespace(net.stack_ns(), [&] { return kernel_guard::open(net.address(), index); });
  REQUIRE(guard);
  REQUIRE(guard->silence_echo_replies(true));
  REQUIRE(guard->claim(transport::tcp, 8080));
  // The peer, across the stack's interface: held back.
  CHECK_FALSE(net.ping_answered());
  CHECK(net.tcp_probe(8080) == "timeout");
  // The host talking to its own address, over loopback: not the stack's business.
  CHECK(sh("ip netns exec " + net.stack_ns() + " ping -n -c 1 -W 1 " + net.stack_ip()) == 0);
  const std::string local = netns_test::output_of(
      "ip netns exec " + net.stack_ns() + " timeout 5 /usr/bin/python3 -c \"import socket\n"
      "s = socket.socket(); s.settimeout(1)\n"
      "try:\n s.connect(('" + net.stack_ip() + "', 8080)); print('connected')\n"
      "except ConnectionRefusedError: print('refused')\n"
      "except socket.timeout: print('timeout')\"");
  CHECK(local == "refused\n");
}

TEST_CASE("a process killed with SIGKILL leaves no rule behind", "[kernel_guard][netns]") {
  REQUIRE(::geteuid() == 0);
  shared_address_net net;
  INFO("failed setup step: " << net.failed_step());
  REQUIRE(net.ready());
  const std::string before = net.stack_ruleset();

  int ready_pipe[2];
  REQUIRE(::pipe(ready_pipe) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child: guard a port, say so, and wait to be killed. No Catch2 here.
    ::close(ready_pipe[0]);
    const int target = ::open(("/var/run/netns/" + net.stack_ns()).c_str(), O_RDONLY | O_CLOEXEC);
    char status = 'x';
    if (target >= 0 && ::setns(target, CLONE_NEWNET) == 0) {
      auto guard = kernel_guard::open(net.address());
      if (guard && guard->claim(transport::tcp, 8080) && guard->claim(transport::udp, 5353)) {
        // A program it starts inherits every descriptor not marked
        // close-on-exec: it must not keep the table alive after us.
        const pid_t grandchild = ::fork();
        if (grandchild == 0) {
          ::execl("/bin/sleep", "sleep", "20", static_cast<char*>(nullptr));
          ::_exit(127);
        }
        status = 'k';
        [[maybe_unused]] auto n = ::write(ready_pipe[1], &status, 1);
        n = ::write(ready_pipe[1], &grandchild, sizeof grandchild);
        for (int i = 0; i < 300; ++i) ::usleep(100'000);  // bounded: 30 s at most
      }
    }
    [[maybe_unused]] auto n = ::write(ready_pipe[1], &status, 1);
    ::_exit(1);
  }
  ::close(ready_pipe[1]);
  char status = 0;
  pid_t grandchild = -1;
  const bool child_ready = ::read(ready_pipe[0], &status, 1) == 1 && status == 'k' &&
                           ::read(ready_pipe[0], &grandchild, sizeof grandchild) == sizeof grandchild;
  ::close(ready_pipe[0]);
  struct reap_grandchild {
    pid_t& pid;
    ~reap_grandchild() {
      if (pid > 0) ::kill(pid, SIGKILL);  // reparented to init, which reaps it
    }
  } reap{grandchild};
  if (child_ready) {
    CHECK(net.tcp_probe(8080) == "timeout");
    CHECK(net.udp_probe(5353) == "timeout");
    CHECK(net.stack_ruleset() != before);
  }
  ::kill(child, SIGKILL);
  int wait_status = 0;
  ::waitpid(child, &wait_status, 0);
  REQUIRE(child_ready);
  CHECK(WIFSIGNALED(wait_status));
  // The kernel deleted the owner table when the killed process's socket
  // closed, although the program it started still runs.
  REQUIRE(grandchild > 0);
  CHECK(::kill(grandchild, 0) == 0);
  CHECK(net.stack_ruleset() == before);
  CHECK(net.tcp_probe(8080) == "refused");
  CHECK(net.udp_probe(5353) == "refused");
}

// kernel_guard against the Linux kernel: two namespaces made here, joined by
// a veth pair. In the "stack" namespace the kernel HAS the address the guard
// protects (the shared-address mode); in the "peer" namespace the kernel's
// own sockets probe it. The peer's kernel is the oracle: a refused connect()
// is the RST the guarded kernel sent, a refused connected UDP socket is its
// ICMP port unreachable, a ping reply is its echo reply. `nft list ruleset`
// shows that the guard leaves the firewall exactly as it found it, after a
// normal end and after SIGKILL. Needs root; no-sandbox and exclusive.
#include "pystack/host/kernel_guard.hpp"

#include <fcntl.h>
#include <signal.h>
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
using netns_test::output_of;
using netns_test::sh;

class shared_address_net {
 public:
  shared_address_net()
      : tag_(std::to_string(::getpid())),
        peer_ns_("pgp" + tag_),
        stack_ns_("pgs" + tag_),
        subnet_(std::to_string(::getpid() % 250)),
        peer_ip_("10.205." + subnet_ + ".2"),
        stack_ip_("10.205." + subnet_ + ".1") {
    remove();
    const std::vector<std::string> steps = {
        "ip netns add " + peer_ns_,
        "ip netns add " + stack_ns_,
        "ip -n " + peer_ns_ + " link add gp" + tag_ + " type veth peer name gs" + tag_ + " netns " + stack_ns_,
        "ip -n " + peer_ns_ + " addr add " + peer_ip_ + "/24 dev gp" + tag_,
        "ip -n " + stack_ns_ + " addr add " + stack_ip_ + "/24 dev gs" + tag_,
        "ip -n " + peer_ns_ + " link set lo up",
        "ip -n " + stack_ns_ + " link set lo up",
        "ip -n " + peer_ns_ + " link set gp" + tag_ + " up",
        "ip -n " + stack_ns_ + " link set gs" + tag_ + " up",
    };
    for (const auto& step : steps) {
      if (sh(step) != 0) {
        failed_step_ = step;
        return;
      }
    }
    ready_ = true;
  }
  ~shared_address_net() { remove(); }
  shared_address_net(const shared_address_net&) = delete;
  shared_address_net& operator=(const shared_address_net&) = delete;

  bool ready() const { return ready_; }
  const std::string& failed_step() const { return failed_step_; }
  const std::string& stack_ns() const { return stack_ns_; }
  ipv4_address stack_ip() const { return *ipv4_address::parse(stack_ip_); }

  // What the peer's kernel makes of a TCP connect to the stack's address:
  // "refused" (a RST came back), "timeout" or "connected".
  std::string tcp_probe(std::uint16_t port) const {
    return probe("import socket\n"
                 "s = socket.socket(); s.settimeout(0.7)\n"
                 "try:\n s.connect(('" + stack_ip_ + "', " + std::to_string(port) + ")); print('connected')\n"
                 "except ConnectionRefusedError: print('refused')\n"
                 "except socket.timeout: print('timeout')\n");
  }
  // The same for a datagram: "refused" when an ICMP port unreachable came back.
  std::string udp_probe(std::uint16_t port) const {
    return probe("import socket\n"
                 "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.7)\n"
                 "s.connect(('" + stack_ip_ + "', " + std::to_string(port) + "))\n"
                 "try:\n s.send(b'x'); s.recv(16); print('answered')\n"
                 "except ConnectionRefusedError: print('refused')\n"
                 "except socket.timeout: print('timeout')\n");
  }
  bool ping_answered() const {
    return sh("ip netns exec " + peer_ns_ + " timeout 3 ping -n -c 1 -W 1 " + stack_ip_) == 0;
  }
  // The stack namespace's whole firewall, as nft prints it.
  std::string ruleset() const { return output_of("ip netns exec " + stack_ns_ + " nft list ruleset"); }

 private:
  std::string probe(const std::string& code) const {
    std::string out = output_of("ip netns exec " + peer_ns_ + " timeout 5 /usr/bin/python3 -c \"" + code + "\"");
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  void remove() {
    sh("ip netns del " + peer_ns_);
    sh("ip netns del " + stack_ns_);
  }

  std::string tag_, peer_ns_, stack_ns_, subnet_, peer_ip_, stack_ip_;
  bool ready_ = false;
  std::string failed_step_;
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
  const std::string before = net.ruleset();
  REQUIRE(before.find("host_own") != std::string::npos);

  // Unguarded, the kernel answers for ports it has no socket on.
  REQUIRE(net.tcp_probe(8080) == "refused");
  REQUIRE(net.udp_probe(5353) == "refused");
  REQUIRE(net.ping_answered());

  {
    auto guard = in_namespace(net.stack_ns(), [&] { return kernel_guard::open(net.stack_ip()); });
    INFO((guard ? std::string() : guard.error().message));
    REQUIRE(guard);
    CHECK(net.ruleset().find(guard->table_name()) != std::string::npos);

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
  }
  // Gone with the guard: the firewall is what it was, byte for byte.
  CHECK(net.ruleset() == before);
  CHECK(net.tcp_probe(8080) == "refused");
}

TEST_CASE("a process killed with SIGKILL leaves no rule behind", "[kernel_guard][netns]") {
  REQUIRE(::geteuid() == 0);
  shared_address_net net;
  INFO("failed setup step: " << net.failed_step());
  REQUIRE(net.ready());
  const std::string before = net.ruleset();

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
      auto guard = kernel_guard::open(net.stack_ip());
      if (guard && guard->claim(transport::tcp, 8080) && guard->claim(transport::udp, 5353)) {
        status = 'k';
        [[maybe_unused]] auto n = ::write(ready_pipe[1], &status, 1);
        for (int i = 0; i < 300; ++i) ::usleep(100'000);  // bounded: 30 s at most
      }
    }
    [[maybe_unused]] auto n = ::write(ready_pipe[1], &status, 1);
    ::_exit(1);
  }
  ::close(ready_pipe[1]);
  char status = 0;
  const bool child_ready = ::read(ready_pipe[0], &status, 1) == 1 && status == 'k';
  ::close(ready_pipe[0]);
  if (child_ready) {
    CHECK(net.tcp_probe(8080) == "timeout");
    CHECK(net.udp_probe(5353) == "timeout");
    CHECK(net.ruleset() != before);
  }
  ::kill(child, SIGKILL);
  int wait_status = 0;
  ::waitpid(child, &wait_status, 0);
  REQUIRE(child_ready);
  CHECK(WIFSIGNALED(wait_status));
  // The kernel deleted the owner table when the killed process's socket closed.
  CHECK(net.ruleset() == before);
  CHECK(net.tcp_probe(8080) == "refused");
  CHECK(net.udp_probe(5353) == "refused");
}

// What every test against the Linux kernel in network namespaces needs
// (shared/docs/netns-harness.md): shell commands, their output, and running
// code with the calling thread inside a namespace the test made.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace netns_test {

// Runs a shell command, its output discarded; returns its status.
inline int sh(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

// Runs a shell command and returns what it printed (stdout and stderr).
inline std::string output_of(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  ::pclose(pipe);
  return out;
}

// Runs `f` with this thread in the network namespace `name` (made with `ip
// netns add`), and returns the thread to its own namespace afterwards, even
// when `f` throws. Sockets opened meanwhile stay in `name`.
template <class F>
auto in_namespace(const std::string& name, F&& f) {
  struct restore {
    int original;
    ~restore() {
      if (original >= 0) {
        ::setns(original, CLONE_NEWNET);
        ::close(original);
      }
    }
  } back{::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)};
  REQUIRE(back.original >= 0);
  const int target = ::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(target >= 0);
  const int entered = ::setns(target, CLONE_NEWNET);
  ::close(target);
  REQUIRE(entered == 0);
  return f();
}

}  // namespace netns_test

namespace netns_test {

// Two namespaces made by the test, named after its PID so that two runs
// never collide, joined by a veth pair; deleted by the destructor on every
// exit path (a failed REQUIRE unwinds through it), and by the constructor
// first, in case a run with the same PID died before cleaning up.
//
//   peer namespace  : the kernel at the other end, with `peer_ip`
//   stack namespace : our stack's end; with `shared_address` its kernel has
//                     `stack_ip` too (the original pystack's mode),
//                     otherwise it has no address and stays silent
//
// `prefix` (two letters) keeps each test's names apart; `second_octet`
// picks its private subnet 10.<second_octet>.<pid % 250>.0/24; `stack_mac`
// ("02:00:...") fixes the stack end's MAC, which is random otherwise.
class veth_pair {
 public:
  veth_pair(const std::string& prefix, int second_octet, bool shared_address, const std::string& stack_mac = {})
      : tag_(std::to_string(::getpid())),
        peer_ns_(prefix + "p" + tag_),
        stack_ns_(prefix + "s" + tag_),
        peer_if_(prefix + "P" + tag_),
        stack_if_(prefix + "S" + tag_),
        subnet_("10." + std::to_string(second_octet) + "." + std::to_string(::getpid() % 250) + "."),
        peer_ip_(subnet_ + "2"),
        stack_ip_(subnet_ + "1") {
    remove();
    std::vector<std::string> steps = {
        "ip netns add " + peer_ns_,
        "ip netns add " + stack_ns_,
        // Made in the peer's namespace with the other end moved straight
        // into the stack's: the root namespace never sees either.
        "ip -n " + peer_ns_ + " link add " + peer_if_ + " type veth peer name " + stack_if_ + " netns " + stack_ns_,
        "ip -n " + peer_ns_ + " addr add " + peer_ip_ + "/24 dev " + peer_if_,
        "ip -n " + peer_ns_ + " link set lo up",
        "ip -n " + peer_ns_ + " link set " + peer_if_ + " up",
        // Complete checksums on the wire (netns-harness.md, "Checksum offload on veth").
        "ip netns exec " + peer_ns_ + " ethtool -K " + peer_if_ + " tx off",
        "ip -n " + stack_ns_ + " link set lo up",
        "ip -n " + stack_ns_ + " link set " + stack_if_ + " up",
    };
    if (shared_address) steps.push_back("ip -n " + stack_ns_ + " addr add " + stack_ip_ + "/24 dev " + stack_if_);
    if (!stack_mac.empty()) steps.push_back("ip -n " + stack_ns_ + " link set " + stack_if_ + " address " + stack_mac);
    for (const auto& step : steps) {
      if (sh(step) != 0) {
        failed_step_ = step;
        return;
      }
    }
    ready_ = true;
  }
  ~veth_pair() { remove(); }
  veth_pair(const veth_pair&) = delete;
  veth_pair& operator=(const veth_pair&) = delete;

  bool ready() const { return ready_; }
  const std::string& failed_step() const { return failed_step_; }
  const std::string& peer_ns() const { return peer_ns_; }
  const std::string& stack_ns() const { return stack_ns_; }
  const std::string& peer_if() const { return peer_if_; }
  const std::string& stack_if() const { return stack_if_; }
  const std::string& peer_ip() const { return peer_ip_; }
  const std::string& stack_ip() const { return stack_ip_; }

  // A command line run in the peer's namespace, killed after `seconds`.
  std::string in_peer(const std::string& command, int seconds) const {
    return "ip netns exec " + peer_ns_ + " timeout " + std::to_string(seconds) + " " + command;
  }
  // What a Python program run by the peer's kernel printed, last newline removed.
  std::string peer_python(const std::string& code, int seconds = 10) const {
    std::string out = output_of(in_peer("/usr/bin/python3 -c \"" + code + "\"", seconds));
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  // What the peer's kernel makes of a TCP connect to the stack's address:
  // "connected" (then, with `read_greeting`, a space and the first line the
  // server sent), "refused" (a RST came back), "reset" or "timeout".
  std::string tcp_probe(int port, bool read_greeting = false) const {
    return peer_python("import socket\n"
                       "s = socket.socket(); s.settimeout(1.5)\n"
                       "try:\n"
                       " s.connect(('" + stack_ip_ + "', " + std::to_string(port) + "))\n"
                       " print('connected' + (' ' + s.recv(64).decode().strip() if " +
                       (read_greeting ? "True" : "False") + " else ''))\n"
                       "except ConnectionRefusedError: print('refused')\n"
                       "except ConnectionResetError: print('reset')\n"
                       "except socket.timeout: print('timeout')\n");
  }
  // The same for a datagram: "refused" when an ICMP port unreachable came
  // back, "timeout" when nothing did, "answered" when a datagram did.
  std::string udp_probe(int port) const {
    return peer_python("import socket\n"
                       "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)\n"
                       "s.connect(('" + stack_ip_ + "', " + std::to_string(port) + "))\n"
                       "try:\n s.send(b'probe'); s.recv(64); print('answered')\n"
                       "except ConnectionRefusedError: print('refused')\n"
                       "except socket.timeout: print('timeout')\n");
  }

  // The stack namespace's whole firewall, as nft prints it.
  std::string stack_ruleset() const { return output_of("ip netns exec " + stack_ns_ + " nft list ruleset"); }

 private:
  void remove() {
    // Deleting a namespace deletes its end of the pair, and with it the pair.
    sh("ip netns del " + peer_ns_);
    sh("ip netns del " + stack_ns_);
  }

  std::string tag_, peer_ns_, stack_ns_, peer_if_, stack_if_, subnet_, peer_ip_, stack_ip_;
  bool ready_ = false;
  std::string failed_step_;
};

}  // namespace netns_test

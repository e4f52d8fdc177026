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

// The host reader against the Linux kernel, with iproute2 as the oracle.
//
// The test makes its own network namespace (named after its PID), two veth
// pairs inside it (one end with a chosen MAC and MTU 1400, a /24, a
// secondary in the same /24 and a /28; a pair with one end down and the other
// without carrier), default routes with two metrics, a more specific route
// inside a less specific one, an on-link route, a blackhole and a route in
// another table. It runs `host::read` INSIDE the namespace (a thread that
// setns()es into it) and compares every fact with what `ip -j link`,
// `ip -j -4 addr` and `ip -j route` print, and every `route_to` with
// `ip route get`. Then it changes the namespace, refreshes, and compares
// again; and it runs a real program on the shared command line inside the
// namespace. Private addresses only, nothing outside the namespace is
// touched, and the namespace is deleted on every exit path: by the fixture,
// and by a guardian process should this one die first.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <algorithm>
#include <array>
#include <functional>
#include <string>
#include <thread>

#include "json_reader.hpp"
#include "pystack/cli.hpp"
#include "pystack/host.hpp"

namespace {
using namespace pystack;

struct command_result {
  int status = -1;
  std::string out;
};

// Runs a shell command; its stderr goes to the test log. Every command here
// is iproute2 or the example program, each of which ends by itself.
command_result run(const std::string& command) {
  command_result r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return r;
  char chunk[4096];
  std::size_t n = 0;
  while ((n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0) r.out.append(chunk, n);
  const int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

void run_checked(const std::string& command) {
  INFO(command);
  REQUIRE(run(command).status == 0);
}

// A namespace that exists exactly as long as this object, and no longer
// than this process: a guardian child, in its own session so that a signal
// to our process group does not take it along, waits for the pipe to close
// (on destruction, or when the kernel closes it because we died however we
// died) and deletes the namespace.
class scratch_namespace {
 public:
  scratch_namespace() : name("pyhost-" + std::to_string(::getpid())) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    guardian_ = ::fork();
    REQUIRE(guardian_ >= 0);
    if (guardian_ == 0) {
      ::close(fds[1]);
      ::setsid();
      char byte;
      // Returns 0 at EOF, when the last writer is gone; EINTR retries are
      // bounded because nothing here installs handlers.
      for (int i = 0; i < 1000 && ::read(fds[0], &byte, 1) < 0; ++i) {
      }
      const int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) ::dup2(null, 2);
      ::execlp("ip", "ip", "netns", "del", name.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[0]);
    guard_ = fds[1];
    run_checked("ip netns add " + name);
  }
  ~scratch_namespace() {
    ::close(guard_);
    int status = 0;
    ::waitpid(guardian_, &status, 0);
  }
  scratch_namespace(const scratch_namespace&) = delete;
  scratch_namespace& operator=(const scratch_namespace&) = delete;

  std::string ip(const std::string& arguments) const { return "ip -n " + name + " " + arguments; }

  const std::string name;

 private:
  pid_t guardian_ = -1;
  int guard_ = -1;
};

// Runs `f` on a thread that has entered the namespace: network namespaces
// belong to threads, so the rest of the process stays where it was.
template <class F>
auto in_namespace(const std::string& name, F f) -> std::optional<decltype(f())> {
  std::optional<decltype(f())> result;
  std::thread worker([&] {
    const int fd = ::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    const int entered = ::setns(fd, CLONE_NEWNET);
    ::close(fd);
    if (entered != 0) return;
    result.emplace(f());
  });
  worker.join();
  return result;
}

json::value ip_json(const scratch_namespace& ns, const std::string& arguments) {
  const auto r = run(ns.ip("-j " + arguments));
  INFO("ip -j " << arguments << " printed: " << r.out);
  REQUIRE(r.status == 0);
  auto parsed = json::parse(r.out);
  REQUIRE(parsed);
  REQUIRE(parsed->is_array());
  return *parsed;
}

ipv4_address address(const std::string& text) {
  auto a = ipv4_address::parse(text);
  INFO(text);
  REQUIRE(a);
  return *a;
}

// Every fact of `facts` against iproute2's view of the same namespace.
void compare_with_iproute2(const host& facts, const scratch_namespace& ns) {
  const auto links = ip_json(ns, "link show");
  REQUIRE(facts.interfaces().size() == links.as_array().size());
  for (std::size_t i = 0; i < links.as_array().size(); ++i) {
    const auto& link = links.as_array()[i];
    const interface_info& info = facts.interfaces()[i];
    CAPTURE(info.name);
    CHECK(info.name == link.string("ifname"));
    CHECK(info.index == static_cast<int>(link.number("ifindex").value_or(0)));
    CHECK(info.mtu == static_cast<std::uint32_t>(link.number("mtu").value_or(0)));
    const auto flags = link.strings("flags");
    const auto has = [&](const char* f) { return std::find(flags.begin(), flags.end(), f) != flags.end(); };
    CHECK(info.up == has("UP"));
    CHECK(info.loopback == has("LOOPBACK"));
    // iproute2 hides IFF_RUNNING and prints NO-CARRIER for an up link
    // without it; a down link is never running (dev_get_flags).
    CHECK(info.running == (has("UP") && !has("NO-CARRIER")));
    const auto type = link.string("link_type");
    if (type == "ether" || type == "loopback") {
      CHECK(info.mac.to_string() == link.string("address"));
    } else {
      CHECK(info.mac == mac_address{});
    }
  }

  const auto addresses = ip_json(ns, "-4 addr show");
  std::size_t with_addresses = 0;
  for (const auto& entry : addresses.as_array()) {
    const auto name = entry.string("ifname");
    REQUIRE(name);
    CAPTURE(*name);
    const interface_info* info = facts.find(*name);
    REQUIRE(info);
    std::vector<ipv4_interface_address> expected;
    const json::value* list = entry.find("addr_info");
    REQUIRE(list);
    for (const auto& a : list->as_array()) {
      if (a.string("family") != "inet") continue;
      expected.push_back({address(*a.string("local")), static_cast<std::uint8_t>(*a.number("prefixlen"))});
    }
    if (!expected.empty()) ++with_addresses;
    CHECK(info->addresses == expected);
  }
  std::size_t ours = 0;
  for (const auto& i : facts.interfaces()) ours += i.addresses.empty() ? 0 : 1;
  CHECK(ours == with_addresses);

  const auto routes = ip_json(ns, "-4 route show table main");
  REQUIRE(facts.routes().size() == routes.as_array().size());
  for (std::size_t i = 0; i < routes.as_array().size(); ++i) {
    const auto& r = routes.as_array()[i];
    const route& ours_route = facts.routes()[i];
    const std::string destination = r.string("dst").value_or("?");
    CAPTURE(destination);
    if (destination == "default") {
      CHECK(ours_route.destination == ipv4_address{});
      CHECK(ours_route.prefix_length == 0);
    } else {
      const auto slash = destination.find('/');
      CHECK(ours_route.destination == address(destination.substr(0, slash)));
      CHECK(ours_route.prefix_length == (slash == std::string::npos ? 32 : std::stoi(destination.substr(slash + 1))));
    }
    const auto gateway = r.string("gateway");
    CHECK(ours_route.gateway == (gateway ? std::optional(address(*gateway)) : std::nullopt));
    const auto source = r.string("prefsrc");
    CHECK(ours_route.preferred_source == (source ? std::optional(address(*source)) : std::nullopt));
    CHECK(ours_route.metric == static_cast<std::uint32_t>(r.number("metric").value_or(0)));
    const std::string type = r.string("type").value_or("unicast");
    const route_type expected_type = type == "blackhole"     ? route_type::blackhole
                                     : type == "unreachable" ? route_type::unreachable
                                     : type == "prohibit"    ? route_type::prohibit
                                                             : route_type::unicast;
    CHECK(ours_route.type == expected_type);
    if (const auto dev = r.string("dev")) {
      const interface_info* info = facts.find(*dev);
      REQUIRE(info);
      CHECK(ours_route.interface_index == info->index);
    } else {
      CHECK(ours_route.interface_index == 0);
    }
  }
}

// route_to against the kernel's own lookup (`ip route get`), which must
// agree on the interface and the gateway; where the kernel refuses (a
// blackhole), route_to must find nothing.
void compare_lookups(const host& facts, const scratch_namespace& ns, std::initializer_list<const char*> destinations) {
  for (const char* destination : destinations) {
    CAPTURE(destination);
    const auto r = run(ns.ip("-j route get " + std::string(destination) + " 2>/dev/null"));
    const auto ours = facts.route_to(address(destination));
    if (r.status != 0) {
      CHECK_FALSE(ours);
      continue;
    }
    auto parsed = json::parse(r.out);
    REQUIRE(parsed);
    REQUIRE(parsed->as_array().size() == 1);
    const auto& kernel = parsed->as_array()[0];
    REQUIRE(ours);
    const interface_info* info = facts.find(ours->interface_index);
    REQUIRE(info);
    CHECK(kernel.string("dev") == info->name);
    const auto gateway = kernel.string("gateway");
    CHECK(ours->gateway == (gateway ? std::optional(address(*gateway)) : std::nullopt));
  }
}

std::string scratch_file(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name + "-" + std::to_string(::getpid());
}

// The example program of tests/host/example, from Bazel's runfiles or from
// PYSTACK_CLI_EXAMPLE for a direct run.
std::string cli_example_path() {
  if (const char* given = std::getenv("PYSTACK_CLI_EXAMPLE")) return given;
  const char* runfiles = std::getenv("TEST_SRCDIR");
  return std::string(runfiles ? runfiles : ".") + "/pystack/tests/host/example/cli_example";
}

}  // namespace

TEST_CASE("host facts read inside a namespace match iproute2, before and after a refresh") {
  INFO("this test creates network namespaces and needs root (CI runs as root)");
  REQUIRE(::geteuid() == 0);

  scratch_namespace ns;
  const std::string pid = std::to_string(::getpid());
  const std::string a = "vh" + pid + "a", b = "vh" + pid + "b", c = "vh" + pid + "c", d = "vh" + pid + "d";
  for (const std::string& step : std::vector<std::string>{
           "link set lo up",
           "link add " + a + " type veth peer name " + b,
           "link set " + a + " address 02:5e:10:20:30:40 mtu 1400 up",
           "link set " + b + " up",
           // c stays down; d is up but its peer is down, so it has no carrier.
           "link add " + c + " type veth peer name " + d,
           "link set " + d + " up",
           "addr add 10.201.33.2/24 dev " + a,
           "addr add 10.201.33.99/24 dev " + a,  // a secondary: listed after the primaries
           "addr add 10.201.34.17/28 dev " + a,
           "addr add 10.201.35.2/24 dev " + b,
           "route add default via 10.201.33.1 dev " + a + " metric 100",
           "route add default via 10.201.35.1 dev " + b + " metric 200",
           "route add 10.77.0.0/16 via 10.201.34.20 dev " + a + " metric 5",
           "route add 10.77.1.0/24 via 10.201.33.254 dev " + a,
           "route add 10.88.0.0/16 dev " + b,
           "route add blackhole 10.99.0.0/16",
           "route add 10.55.0.0/16 dev " + a + " table 100",  // not the main table: not ours
       }) {
    run_checked(ns.ip(step));
  }

  const std::string resolv = scratch_file("resolv.conf");
  {
    std::ofstream out(resolv);
    out << "# written by host_netns_test\nnameserver 10.201.33.53\n";
  }
  const host_sources sources{.resolv_conf = resolv};

  auto facts = in_namespace(ns.name, [&] { return host::read(sources); });
  REQUIRE(facts);
  INFO((facts->has_value() ? std::string() : facts->error().message()));
  REQUIRE(facts->has_value());
  host& h = **facts;

  SECTION("every fact, every lookup, and the shared command line's defaults") {
    compare_with_iproute2(h, ns);
    CHECK(h.default_interface() == a);
    CHECK(h.dns_server() == address("10.201.33.53"));
    const interface_info* info = h.find(a);
    REQUIRE(info);
    CHECK(info->mac.to_string() == "02:5e:10:20:30:40");
    CHECK(info->mtu == 1400);
    CHECK(h.find(c)->up == false);
    CHECK(h.find(d)->running == false);
    compare_lookups(h, ns, {"10.77.1.5", "10.77.200.1", "10.201.33.50", "10.201.34.18", "10.88.1.1", "10.123.4.5",
                            "10.55.1.1", "10.99.1.1", "10.201.35.7"});

    auto o = cli::parse(1, std::array<const char*, 2>{"prog", nullptr}.data(), h);
    REQUIRE(o);
    CHECK(o->interface.name == a);
    CHECK(o->address == ipv4_interface_address{address("10.201.33.2"), 24});
    CHECK(o->gateway == address("10.201.33.1"));
    CHECK(o->dns == address("10.201.33.53"));
    const std::array<const char*, 4> other{"prog", "--iface", b.c_str(), nullptr};
    auto o2 = cli::parse(3, other.data(), h);
    REQUIRE(o2);
    CHECK(o2->address == ipv4_interface_address{address("10.201.35.2"), 24});
    CHECK(o2->gateway == address("10.201.35.1"));
  }

  SECTION("refresh sees changes, and keeps agreeing with iproute2") {
    for (const std::string& step : std::vector<std::string>{
             "link set " + a + " mtu 1300",
             "addr add 10.201.36.5/30 dev " + b,
             "addr del 10.201.34.17/28 dev " + a,
             "route del default via 10.201.33.1 dev " + a,
             "link set " + c + " up",
         }) {
      run_checked(ns.ip(step));
    }
    {
      std::ofstream out(resolv);
      out << "nameserver 10.201.35.53\n";
    }
    auto refreshed = in_namespace(ns.name, [&] { return h.refresh(); });
    REQUIRE(refreshed);
    INFO((refreshed->has_value() ? std::string() : refreshed->error().message()));
    REQUIRE(refreshed->has_value());
    compare_with_iproute2(h, ns);
    CHECK(h.find(a)->mtu == 1300);
    CHECK(h.find(c)->running);
    CHECK(h.default_interface() == b);
    CHECK(h.dns_server() == address("10.201.35.53"));
    compare_lookups(h, ns, {"10.77.1.5", "10.201.34.18", "10.123.4.5", "10.201.36.6"});
  }

  SECTION("a program on the shared command line, run inside the namespace") {
    const std::string program = cli_example_path();
    INFO("cli_example at " << program);
    REQUIRE(::access(program.c_str(), X_OK) == 0);
    const std::string exec = "ip netns exec " + ns.name + " " + program;

    const auto good = run(exec + " --dns 10.201.33.53");
    CHECK(good.status == 0);
    CHECK_THAT(good.out, Catch::Contains("interface=" + a + "\n"));
    CHECK_THAT(good.out, Catch::Contains("mac=02:5e:10:20:30:40\nmtu=1400\nip=10.201.33.2/24\ngateway=10.201.33.1\n"));

    // With no default route left, the interface cannot be guessed: the
    // error names the flag to pass.
    run_checked(ns.ip("route del default via 10.201.33.1 dev " + a));
    run_checked(ns.ip("route del default via 10.201.35.1 dev " + b));
    const auto no_default = run(exec + " --dns 10.201.33.53 2>&1");
    CHECK(no_default.status == 2);
    CHECK_THAT(no_default.out, Catch::Contains("cli_example: --iface: there is no default route"));
    // Without a default route the stack runs on-link only: no gateway, no error.
    const auto no_gateway = run(exec + " --dns 10.201.33.53 --iface " + a + " 2>&1");
    CHECK(no_gateway.status == 0);
    CHECK_THAT(no_gateway.out, Catch::Contains("ip=10.201.33.2/24\ngateway=none\n"));
    const auto explicit_gateway = run(exec + " --dns 10.201.33.53 --iface " + a + " --gateway 10.201.33.1");
    CHECK(explicit_gateway.status == 0);
    CHECK_THAT(explicit_gateway.out, Catch::Contains("ip=10.201.33.2/24\ngateway=10.201.33.1\n"));
  }
  ::unlink(resolv.c_str());
}

TEST_CASE("the namespace is gone once its guardian has run") {
  REQUIRE(::geteuid() == 0);
  std::string name;
  {
    scratch_namespace ns;
    name = ns.name;
    CHECK(::access(("/var/run/netns/" + name).c_str(), F_OK) == 0);
  }
  CHECK(::access(("/var/run/netns/" + name).c_str(), F_OK) != 0);
}

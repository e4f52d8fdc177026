// The host's lookups on given facts (longest prefix, metric tie-break, the
// default route and interface), resolv.conf parsing, and a read of this
// machine's own facts where only what every network namespace has is
// assumed (the loopback interface). The kernel's facts in full are compared
// with `ip -j` by tests/host/netns/.
#include "pystack/host.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {
using namespace pystack;

ipv4_address ip(std::string_view text) { return *ipv4_address::parse(text); }

route unicast(std::string_view destination, std::uint8_t length, int index, std::uint32_t metric = 0,
              std::optional<std::string_view> gateway = std::nullopt) {
  route r;
  r.destination = ip(destination);
  r.prefix_length = length;
  r.interface_index = index;
  r.metric = metric;
  if (gateway) r.gateway = ip(*gateway);
  return r;
}

interface_info interface(std::string name, int index, std::vector<ipv4_interface_address> addresses = {}) {
  interface_info i;
  i.name = std::move(name);
  i.index = index;
  i.addresses = std::move(addresses);
  i.mtu = 1500;
  i.up = i.running = true;
  return i;
}

// A scratch directory: Bazel's TEST_TMPDIR, or /tmp for direct runs.
std::string scratch(std::string_view name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/host_test_" + std::to_string(::getpid()) + "_" + std::string(name);
}
}  // namespace

TEST_CASE("route_to picks the longest prefix, then the lowest metric, then table order") {
  const auto facts = host::from_facts(
      {interface("eth0", 2), interface("eth1", 3)},
      {
          unicast("0.0.0.0", 0, 2, 100, "10.0.0.1"),
          unicast("0.0.0.0", 0, 3, 50, "10.1.0.1"),
          unicast("10.0.0.0", 8, 2, 0),
          unicast("10.1.0.0", 16, 3, 0),
          unicast("10.1.2.0", 24, 2, 20, "10.0.0.254"),
          unicast("10.1.2.0", 24, 3, 10, "10.1.0.254"),
          unicast("10.1.2.128", 25, 2, 5),
          unicast("10.1.2.128", 25, 3, 5),  // same prefix and metric: the first one wins
          unicast("10.1.2.200", 32, 3, 999),
      });

  struct expectation {
    const char* destination;
    int interface_index;
    std::uint32_t metric;
    std::optional<const char*> gateway;
    std::uint8_t prefix_length;
  };
  const auto e = GENERATE(expectation{"8.8.8.8", 3, 50, "10.1.0.1", 0},
                          expectation{"10.9.9.9", 2, 0, std::nullopt, 8},
                          expectation{"10.1.9.9", 3, 0, std::nullopt, 16},
                          expectation{"10.1.2.3", 3, 10, "10.1.0.254", 24},
                          expectation{"10.1.2.129", 2, 5, std::nullopt, 25},
                          expectation{"10.1.2.200", 3, 999, std::nullopt, 32},
                          expectation{"10.1.2.201", 2, 5, std::nullopt, 25},
                          expectation{"11.0.0.0", 3, 50, "10.1.0.1", 0});
  CAPTURE(e.destination);
  auto r = facts.route_to(ip(e.destination));
  REQUIRE(r);
  CHECK(r->interface_index == e.interface_index);
  CHECK(r->metric == e.metric);
  CHECK(r->prefix_length == e.prefix_length);
  if (e.gateway) {
    CHECK(r->gateway == ip(*e.gateway));
    CHECK(r->next_hop(ip(e.destination)) == ip(*e.gateway));
  } else {
    CHECK_FALSE(r->gateway);
    CHECK(r->next_hop(ip(e.destination)) == ip(e.destination));
  }
}

TEST_CASE("route_to without a matching route, or when the best match discards") {
  auto blackhole = unicast("10.66.0.0", 16, 0);
  blackhole.type = route_type::blackhole;
  auto unreachable = unicast("10.77.0.0", 16, 0);
  unreachable.type = route_type::unreachable;
  const auto facts = host::from_facts({interface("eth0", 2)},
                                      {unicast("10.0.0.0", 8, 2), blackhole, unreachable,
                                       unicast("10.66.1.0", 24, 2)});
  CHECK_FALSE(facts.route_to(ip("192.168.1.1")));
  CHECK_FALSE(facts.route_to(ip("10.66.2.1")));
  CHECK_FALSE(facts.route_to(ip("10.77.0.1")));
  // More specific than the blackhole: forwarded.
  REQUIRE(facts.route_to(ip("10.66.1.1")));
  CHECK(facts.route_to(ip("10.66.1.1"))->prefix_length == 24);
  CHECK(facts.route_to(ip("10.1.1.1"))->prefix_length == 8);
  // A blackhole default is not a default route.
  auto blackhole_default = unicast("0.0.0.0", 0, 0);
  blackhole_default.type = route_type::blackhole;
  CHECK_FALSE(host::from_facts({interface("eth0", 2)}, {blackhole_default}).default_route());
}

TEST_CASE("default route and interface: the lowest metric, per interface on request") {
  const auto facts = host::from_facts(
      {interface("eth0", 2), interface("wlan0", 3), interface("tun0", 4)},
      {unicast("0.0.0.0", 0, 2, 600, "192.168.1.1"), unicast("0.0.0.0", 0, 3, 100, "172.16.0.1"),
       unicast("0.0.0.0", 0, 2, 200, "192.168.1.254"), unicast("10.0.0.0", 8, 4, 1)});
  REQUIRE(facts.default_route());
  CHECK(facts.default_route()->gateway == ip("172.16.0.1"));
  CHECK(facts.default_interface() == "wlan0");
  REQUIRE(facts.default_route(2));
  CHECK(facts.default_route(2)->gateway == ip("192.168.1.254"));
  CHECK_FALSE(facts.default_route(4));

  // Equal metrics: the first in table order, as for route_to.
  const auto tie = host::from_facts({interface("eth0", 2), interface("eth1", 3)},
                                    {unicast("0.0.0.0", 0, 3, 10, "10.1.0.1"), unicast("0.0.0.0", 0, 2, 10, "10.0.0.1")});
  CHECK(tie.default_interface() == "eth1");

  // A default route through an interface that is not in the facts names no interface.
  const auto orphan = host::from_facts({interface("eth0", 2)}, {unicast("0.0.0.0", 0, 9, 0, "10.0.0.1")});
  CHECK(orphan.default_route());
  CHECK_FALSE(orphan.default_interface());
  CHECK_FALSE(host::from_facts({interface("eth0", 2)}, {}).default_interface());
}

TEST_CASE("find by name and by index") {
  const auto facts = host::from_facts({interface("lo", 1), interface("eth0", 2)}, {});
  REQUIRE(facts.find("eth0"));
  CHECK(facts.find("eth0")->index == 2);
  REQUIRE(facts.find(1));
  CHECK(facts.find(1)->name == "lo");
  CHECK_FALSE(facts.find("eth"));
  CHECK_FALSE(facts.find(3));
  CHECK(facts.interfaces().size() == 2);
  CHECK(facts.routes().empty());
}

TEST_CASE("interface address arithmetic") {
  const ipv4_interface_address a{ip("10.201.3.77"), 28};
  CHECK(a.network() == ip("10.201.3.64"));
  CHECK(a.contains(ip("10.201.3.79")));
  CHECK_FALSE(a.contains(ip("10.201.3.80")));
  CHECK(a.to_string() == "10.201.3.77/28");
  CHECK(ipv4_interface_address::prefix_mask(0) == 0);
  CHECK(ipv4_interface_address::prefix_mask(1) == 0x80000000u);
  CHECK(ipv4_interface_address::prefix_mask(32) == 0xffffffffu);
  CHECK(ipv4_interface_address{ip("1.2.3.4"), 0}.contains(ip("200.0.0.1")));
}

TEST_CASE("resolv.conf: the first IPv4 nameserver line") {
  struct case_ {
    const char* text;
    std::optional<const char*> server;
  };
  const auto c = GENERATE(
      case_{"nameserver 10.0.0.53\n", "10.0.0.53"},
      case_{"# nameserver 1.1.1.1\n; nameserver 2.2.2.2\nnameserver 3.3.3.3\nnameserver 4.4.4.4\n", "3.3.3.3"},
      case_{"search example.org\nnameserver\t\t9.9.9.9   # quad nine\n", "9.9.9.9"},
      case_{"nameserver ::1\nnameserver fd00::53\nnameserver 192.0.2.53", "192.0.2.53"},
      case_{"nameserver 10.1.1.1\r\n", "10.1.1.1"},
      case_{" nameserver 10.0.0.1\nnameservers 10.0.0.2\nnameserver10.0.0.3\n", std::nullopt},
      case_{"nameserver 10.0.0.256\nnameserver 10.0.0\nnameserver\n", std::nullopt},
      case_{"", std::nullopt}, case_{"\n\n\n", std::nullopt});
  CAPTURE(c.text);
  const auto server = parse_resolv_conf(c.text);
  if (c.server) {
    REQUIRE(server);
    CHECK(*server == ip(*c.server));
  } else {
    CHECK_FALSE(server);
  }
}

TEST_CASE("read_resolv_conf: a file, a missing file, and a directory") {
  const std::string path = scratch("resolv.conf");
  {
    std::ofstream out(path);
    out << "options edns0\nnameserver 10.20.30.40\n";
  }
  auto server = read_resolv_conf(path);
  REQUIRE(server);
  CHECK(*server == ip("10.20.30.40"));
  ::unlink(path.c_str());

  auto missing = read_resolv_conf(path);
  REQUIRE(missing);
  CHECK_FALSE(*missing);

  const std::string directory = scratch("dir");
  REQUIRE(::mkdir(directory.c_str(), 0700) == 0);
  auto unreadable = read_resolv_conf(directory);
  ::rmdir(directory.c_str());
  REQUIRE_FALSE(unreadable);
  CHECK(unreadable.error().code == host_errc::system);
  CHECK(unreadable.error().system_errno == EISDIR);
}

TEST_CASE("a host built from facts has nothing to refresh") {
  auto facts = host::from_facts({interface("eth0", 2)}, {}, ip("10.0.0.53"));
  auto refreshed = facts.refresh();
  REQUIRE_FALSE(refreshed);
  CHECK(refreshed.error().code == host_errc::no_source);
  // The facts are untouched by the refused refresh.
  CHECK(facts.find("eth0"));
  CHECK(facts.dns_server() == ip("10.0.0.53"));
}

TEST_CASE("reading this machine finds its loopback interface and the injected resolv.conf") {
  const std::string path = scratch("resolv-live.conf");
  {
    std::ofstream out(path);
    out << "nameserver 10.99.0.53\n";
  }
  auto facts = host::read(host_sources{.resolv_conf = path});
  REQUIRE(facts);
  CHECK(facts->dns_server() == ip("10.99.0.53"));
  // Every network namespace has "lo", and it is the first interface created.
  const interface_info* lo = facts->find("lo");
  REQUIRE(lo);
  CHECK(lo->index == 1);
  CHECK(lo->loopback);
  CHECK(lo->mac == mac_address{});
  CHECK(lo->mtu > 0);
  for (const auto& i : facts->interfaces()) {
    CAPTURE(i.name);
    CHECK(i.index > 0);
    CHECK(facts->find(i.index) == &i);
    CHECK(i.loopback == (i.name == "lo"));
  }
  for (const auto& r : facts->routes()) {
    if (r.type == route_type::unicast) CHECK(facts->find(r.interface_index));
  }

  // A refresh reads the file again: a changed nameserver shows.
  {
    std::ofstream out(path);
    out << "nameserver 10.99.0.54\n";
  }
  REQUIRE(facts->refresh());
  CHECK(facts->dns_server() == ip("10.99.0.54"));
  ::unlink(path.c_str());
  // And with the file gone, no nameserver rather than an error.
  REQUIRE(facts->refresh());
  CHECK_FALSE(facts->dns_server());
}

// The shared command line: every flag in both spellings, every way a value
// can be wrong, defaults taken from an injected host (so no root and no
// particular machine is needed), the program's own flags, and the usage
// text. What a real program prints and its exit status are checked by
// tests/host/example/.
#include "pystack/cli.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace {
using namespace pystack;

ipv4_address ip(std::string_view text) { return *ipv4_address::parse(text); }

// eth0 carries the default route with the lowest metric; eth1 has its own
// default route with a higher one; dummy0 has no address and no route; tun0
// has an on-link default route with no gateway.
host sample_host(bool with_dns = true) {
  interface_info lo{.name = "lo", .index = 1, .mac = {}, .addresses = {{ip("127.0.0.1"), 8}},
                    .mtu = 65536, .up = true, .running = true, .loopback = true};
  interface_info eth0{.name = "eth0", .index = 2, .mac = *mac_address::parse("02:00:00:00:00:02"),
                      .addresses = {{ip("192.168.1.20"), 24}, {ip("192.168.1.99"), 24}},
                      .mtu = 1500, .up = true, .running = true, .loopback = false};
  interface_info eth1{.name = "eth1", .index = 3, .mac = *mac_address::parse("02:00:00:00:00:03"),
                      .addresses = {{ip("10.201.7.2"), 28}}, .mtu = 1400, .up = true, .running = true,
                      .loopback = false};
  interface_info dummy0{.name = "dummy0", .index = 4, .mac = *mac_address::parse("02:00:00:00:00:04"),
                        .addresses = {}, .mtu = 1500, .up = true, .running = true, .loopback = false};
  interface_info tun0{.name = "tun0", .index = 5, .mac = {}, .addresses = {{ip("10.8.0.6"), 32}},
                      .mtu = 1420, .up = true, .running = true, .loopback = false};
  std::vector<route> routes = {
      {.destination = ip("0.0.0.0"), .prefix_length = 0, .gateway = ip("10.201.7.1"), .interface_index = 3,
       .metric = 200},
      {.destination = ip("0.0.0.0"), .prefix_length = 0, .gateway = ip("192.168.1.1"), .interface_index = 2,
       .metric = 100},
      {.destination = ip("192.168.1.0"), .prefix_length = 24, .interface_index = 2},
      {.destination = ip("10.201.7.0"), .prefix_length = 28, .interface_index = 3},
      {.destination = ip("0.0.0.0"), .prefix_length = 0, .interface_index = 5, .metric = 300},
  };
  return host::from_facts({lo, eth0, eth1, dummy0, tun0}, routes,
                          with_dns ? std::optional(ip("192.168.1.53")) : std::nullopt);
}

host no_default_route_host() {
  interface_info veth{.name = "veth-s", .index = 7, .mac = *mac_address::parse("02:00:00:00:00:07"),
                      .addresses = {{ip("10.201.9.2"), 24}}, .mtu = 1500, .up = true, .running = true,
                      .loopback = false};
  return host::from_facts({veth}, {{.destination = ip("10.201.9.0"), .prefix_length = 24, .interface_index = 7}},
                          ip("10.201.9.53"));
}

// argv with a program name in front, kept alive for the call.
struct arguments {
  explicit arguments(std::vector<std::string> given) : strings(std::move(given)) {
    strings.insert(strings.begin(), "/usr/bin/prog");
    for (auto& s : strings) pointers.push_back(s.c_str());
    pointers.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(strings.size()); }
  const char* const* argv() const { return pointers.data(); }
  std::vector<std::string> strings;
  std::vector<const char*> pointers;
};

expected<cli::options, cli::error> parse(std::vector<std::string> given, const host& facts = sample_host(),
                                         const cli::program& p = {}) {
  const arguments a(std::move(given));
  return cli::parse(a.argc(), a.argv(), facts, p);
}

// The error of a command line that must fail.
cli::error failure(std::vector<std::string> given, const host& facts = sample_host(), const cli::program& p = {}) {
  auto o = parse(std::move(given), facts, p);
  REQUIRE_FALSE(o);
  return o.error();
}

constexpr cli::flag program_flags[] = {
    {.name = "port", .has_value = true, .help = "port to listen on", .value_name = "PORT"},
    {.name = "once", .has_value = false, .help = "serve one connection and exit"},
    {.name = "header", .has_value = true, .help = "an extra header, may repeat"},
};
const cli::program server{.name = "", .summary = "A tiny server.", .positional = "ROOT", .flags = program_flags};
}  // namespace

TEST_CASE("no flags: everything from the host") {
  auto o = parse({});
  REQUIRE(o);
  CHECK(o->interface.name == "eth0");
  CHECK(o->interface.index == 2);
  CHECK(o->interface.mac == *mac_address::parse("02:00:00:00:00:02"));
  CHECK(o->interface.mtu == 1500);
  CHECK(o->address == ipv4_interface_address{ip("192.168.1.20"), 24});  // the primary, not the secondary
  CHECK(o->gateway == ip("192.168.1.1"));
  CHECK(o->dns == ip("192.168.1.53"));
  CHECK_FALSE(o->pcap);
  CHECK_FALSE(o->impair);
  CHECK_FALSE(o->verbose);
  CHECK_FALSE(o->help);
  CHECK(o->positional.empty());
  CHECK(o->extra.empty());
}

TEST_CASE("--iface picks another interface, and the defaults follow it") {
  const bool joined = GENERATE(false, true);
  auto o = joined ? parse({"--iface=eth1"}) : parse({"--iface", "eth1"});
  REQUIRE(o);
  CHECK(o->interface.name == "eth1");
  CHECK(o->interface.mtu == 1400);
  CHECK(o->address == ipv4_interface_address{ip("10.201.7.2"), 28});
  CHECK(o->gateway == ip("10.201.7.1"));  // the default route through eth1, not the best one
}

TEST_CASE("every shared flag in both spellings") {
  const bool joined = GENERATE(false, true);
  const auto flag = [&](std::string name, std::string value) -> std::vector<std::string> {
    if (joined) return {"--" + name + "=" + value};
    return {"--" + name, value};
  };
  std::vector<std::string> args;
  for (auto part : {flag("iface", "dummy0"), flag("ip", "10.201.5.9/30"), flag("gateway", "10.201.5.10"),
                    flag("dns", "10.201.5.53"), flag("pcap", "/tmp/out.pcap"),
                    flag("impair", "loss=0.05,reorder=0.05,dup=0.01,corrupt=0.01,delay=2ms,seed=7")}) {
    args.insert(args.end(), part.begin(), part.end());
  }
  args.push_back("--verbose");
  auto o = parse(args);
  REQUIRE(o);
  CHECK(o->interface.name == "dummy0");
  CHECK(o->address == ipv4_interface_address{ip("10.201.5.9"), 30});
  CHECK(o->gateway == ip("10.201.5.10"));
  CHECK(o->dns == ip("10.201.5.53"));
  CHECK(o->pcap == "/tmp/out.pcap");
  REQUIRE(o->impair);
  CHECK(*o->impair == *impairment::parse("loss=0.05,reorder=0.05,dup=0.01,corrupt=0.01,delay=2ms,seed=7"));
  CHECK(o->impair->seed == 7);
  CHECK(o->verbose);
}

TEST_CASE("a flag given twice takes its last value") {
  auto o = parse({"--dns", "10.0.0.1", "--dns=10.0.0.2", "--verbose", "--verbose"});
  REQUIRE(o);
  CHECK(o->dns == ip("10.0.0.2"));
  CHECK(o->verbose);
}

TEST_CASE("--ip: prefix lengths 0 and 32 are fine") {
  const std::string text = GENERATE(std::string("10.0.0.1/0"), std::string("10.0.0.1/32"));
  auto o = parse({"--ip", text});
  REQUIRE(o);
  CHECK(o->address.to_string() == text);
}

TEST_CASE("bad values name the flag and say why") {
  struct case_ {
    std::vector<std::string> args;
    cli::errc code;
    const char* flag;
    const char* reason_part;
  };
  const auto c = GENERATE(
      case_{{"--ip", "10.0.0.1/33"}, cli::errc::bad_value, "--ip", "prefix length 33 exceeds 32"},
      case_{{"--ip=10.0.0.1/99"}, cli::errc::bad_value, "--ip", "prefix length 99 exceeds 32"},
      case_{{"--ip", "10.0.0.1/123"}, cli::errc::bad_value, "--ip", "is not a number 0-32"},
      case_{{"--ip", "10.0.0.1/"}, cli::errc::bad_value, "--ip", "is not a number 0-32"},
      case_{{"--ip", "10.0.0.1/+8"}, cli::errc::bad_value, "--ip", "is not a number 0-32"},
      case_{{"--ip", "10.0.0.1/2x"}, cli::errc::bad_value, "--ip", "is not a number 0-32"},
      case_{{"--ip", "10.0.0.1"}, cli::errc::bad_value, "--ip", "has no prefix length"},
      case_{{"--ip", "10.0.0.256/24"}, cli::errc::bad_value, "--ip", "is not an IPv4 address"},
      case_{{"--ip", "eth0/24"}, cli::errc::bad_value, "--ip", "is not an IPv4 address"},
      case_{{"--ip", "0.0.0.0/0"}, cli::errc::bad_value, "--ip", "is not a unicast address"},
      case_{{"--ip", "224.0.0.1/4"}, cli::errc::bad_value, "--ip", "is not a unicast address"},
      case_{{"--gateway", "10.0.0"}, cli::errc::bad_value, "--gateway", "is not an IPv4 address"},
      case_{{"--gateway=10.0.0.1/24"}, cli::errc::bad_value, "--gateway", "is not an IPv4 address"},
      case_{{"--gateway", "255.255.255.255"}, cli::errc::bad_value, "--gateway", "is not a unicast address"},
      case_{{"--dns", "dns.example"}, cli::errc::bad_value, "--dns", "is not an IPv4 address"},
      case_{{"--dns", " 10.0.0.1"}, cli::errc::bad_value, "--dns", "is not an IPv4 address"},
      case_{{"--dns", "239.1.1.1"}, cli::errc::bad_value, "--dns", "is not a unicast address"},
      case_{{"--iface", "wlan9"}, cli::errc::bad_value, "--iface", "no interface named 'wlan9' (present: lo, eth0"},
      case_{{"--iface", "a-name-of-16-chr"}, cli::errc::bad_value, "--iface", "is not a valid interface name"},
      case_{{"--iface", "eth0:1"}, cli::errc::bad_value, "--iface", "is not a valid interface name"},
      case_{{"--iface=a/b"}, cli::errc::bad_value, "--iface", "is not a valid interface name"},
      case_{{"--impair", "loss=2"}, cli::errc::bad_value, "--impair", "loss: 2 is not a probability"},
      case_{{"--impair=delay=5"}, cli::errc::bad_value, "--impair", "delay: '5' needs a unit"},
      case_{{"--impair", "flood=1"}, cli::errc::bad_value, "--impair", "flood: unknown key"},
      case_{{"--iface="}, cli::errc::bad_value, "--iface", "the value is empty"},
      case_{{"--pcap", ""}, cli::errc::bad_value, "--pcap", "the value is empty"},
      case_{{"--iface"}, cli::errc::missing_value, "--iface", "needs a value NAME"},
      case_{{"--ip"}, cli::errc::missing_value, "--ip", "needs a value A.B.C.D/P"},
      case_{{"--gateway", "--verbose"}, cli::errc::missing_value, "--gateway", "needs a value A.B.C.D"},
      case_{{"--dns"}, cli::errc::missing_value, "--dns", "needs a value"},
      case_{{"--pcap"}, cli::errc::missing_value, "--pcap", "needs a value FILE"},
      case_{{"--impair", "--pcap", "x"}, cli::errc::missing_value, "--impair", "needs a value SPEC"},
      case_{{"--verbose=yes"}, cli::errc::unexpected_value, "--verbose", "takes no value"},
      case_{{"--help=me"}, cli::errc::unexpected_value, "--help", "takes no value"},
      case_{{"--bogus"}, cli::errc::unknown_flag, "--bogus", "unknown flag"},
      case_{{"--bogus=1"}, cli::errc::unknown_flag, "--bogus", "unknown flag"},
      case_{{"--IFACE", "eth0"}, cli::errc::unknown_flag, "--IFACE", "unknown flag"},
      case_{{"-i", "eth0"}, cli::errc::unknown_flag, "-i", "unknown flag"},
      case_{{"--port", "80"}, cli::errc::unknown_flag, "--port", "unknown flag"});
  CAPTURE(c.args);
  const auto e = failure(c.args);
  CHECK(e.code == c.code);
  CHECK(e.flag == c.flag);
  CHECK_THAT(e.reason, Catch::Contains(c.reason_part));
  CHECK(e.message() == e.flag + ": " + e.reason);
}

TEST_CASE("the first bad flag is the one reported") {
  const auto e = failure({"--dns", "x", "--ip", "y"});
  CHECK(e.flag == "--dns");
}

TEST_CASE("defaults the host cannot supply name the flag to pass") {
  SECTION("no default route: --iface") {
    const auto e = failure({}, no_default_route_host());
    CHECK(e.code == cli::errc::unresolved_default);
    CHECK(e.flag == "--iface");
    CHECK_THAT(e.reason, Catch::Contains("pass --iface NAME"));
  }
  SECTION("no default route through the chosen interface: no gateway, on-link only") {
    auto o = parse({"--iface", "veth-s"}, no_default_route_host());
    REQUIRE(o);
    CHECK_FALSE(o->gateway);
    CHECK(o->address == ipv4_interface_address{ip("10.201.9.2"), 24});
    CHECK(o->dns == ip("10.201.9.53"));
    // Given the gateway, it is used.
    auto with = parse({"--iface", "veth-s", "--gateway", "10.201.9.1"}, no_default_route_host());
    REQUIRE(with);
    CHECK(with->gateway == ip("10.201.9.1"));
  }
  SECTION("an on-link default route has no gateway") {
    auto o = parse({"--iface", "tun0"});
    REQUIRE(o);
    CHECK_FALSE(o->gateway);
  }
  SECTION("an interface without an IPv4 address: --ip") {
    const auto e = failure({"--iface", "dummy0"});
    CHECK(e.code == cli::errc::unresolved_default);
    CHECK(e.flag == "--ip");
    CHECK_THAT(e.reason, Catch::Contains("dummy0 has no IPv4 address; pass --ip A.B.C.D/P"));
  }
  SECTION("no nameserver: no DNS server unless --dns") {
    auto o = parse({}, sample_host(false));
    REQUIRE(o);
    CHECK_FALSE(o->dns);
    CHECK(parse({"--dns", "10.0.0.53"}, sample_host(false))->dns == ip("10.0.0.53"));
  }
  SECTION("bad syntax is reported before an unresolved default") {
    const auto e = failure({"--ip", "1.2.3.4/40"}, no_default_route_host());
    CHECK(e.flag == "--ip");
  }
}

TEST_CASE("--help wins wherever it stands before --") {
  const std::vector<std::string> args = GENERATE(std::vector<std::string>{"--help"}, std::vector<std::string>{"-h"},
                                                 std::vector<std::string>{"--bogus", "--help"},
                                                 std::vector<std::string>{"--ip", "1/99", "-h"},
                                                 std::vector<std::string>{"x", "--help", "y"});
  CAPTURE(args);
  // Even with no default route, which would otherwise fail.
  auto o = parse(args, no_default_route_host());
  REQUIRE(o);
  CHECK(o->help);
  CHECK(o->interface.name.empty());
}

TEST_CASE("positional arguments stay, in order, for the program") {
  auto o = parse({"first", "--verbose", "second", "-", "--", "--iface", "-h", "--help"});
  REQUIRE(o);
  CHECK(o->verbose);
  CHECK(o->interface.name == "eth0");
  CHECK(o->positional == std::vector<std::string>{"first", "second", "-", "--iface", "-h", "--help"});
  CHECK_FALSE(o->help);
}

TEST_CASE("a separate value may start with a single dash but not with two") {
  auto o = parse({"--pcap", "-"});
  REQUIRE(o);
  CHECK(o->pcap == "-");
  auto joined = parse({"--pcap=--odd-name"});
  REQUIRE(joined);
  CHECK(joined->pcap == "--odd-name");
}

TEST_CASE("a program's own flags, with and without values, repeated") {
  auto o = parse({"--port", "8080", "--once", "--header=A: 1", "www", "--header", "B: 2", "--port=9090"},
                 sample_host(), server);
  REQUIRE(o);
  CHECK(o->has("once"));
  CHECK(o->value("once") == std::optional<std::string_view>(""));
  CHECK(o->value("port") == std::optional<std::string_view>("9090"));
  CHECK(o->values("header") == std::vector<std::string_view>{"A: 1", "B: 2"});
  CHECK_FALSE(o->has("missing"));
  CHECK_FALSE(o->value("missing"));
  CHECK(o->positional == std::vector<std::string>{"www"});
  CHECK(o->extra.size() == 5);

  CHECK(failure({"--port"}, sample_host(), server).code == cli::errc::missing_value);
  CHECK(failure({"--port="}, sample_host(), server).code == cli::errc::bad_value);
  CHECK(failure({"--once=1"}, sample_host(), server).code == cli::errc::unexpected_value);
  CHECK(failure({"--ports", "1"}, sample_host(), server).code == cli::errc::unknown_flag);
  // A program flag with a value takes the program's value name in the message.
  CHECK(failure({"--port"}, sample_host(), server).reason == "needs a value PORT");
}

TEST_CASE("a program's flag table is checked") {
  const cli::flag duplicate[] = {{.name = "port", .has_value = true}, {.name = "port", .has_value = false}};
  const cli::flag shadow[] = {{.name = "iface", .has_value = true}};
  const cli::flag dashed[] = {{.name = "-x"}};
  const cli::flag empty[] = {{.name = ""}};
  const cli::flag with_equals[] = {{.name = "a=b"}};
  for (std::span<const cli::flag> table : {std::span<const cli::flag>(duplicate), std::span<const cli::flag>(shadow),
                                           std::span<const cli::flag>(dashed), std::span<const cli::flag>(empty),
                                           std::span<const cli::flag>(with_equals)}) {
    const cli::program p{.flags = table};
    // Even a command line that uses none of them, and even --help.
    CHECK(failure({}, sample_host(), p).code == cli::errc::bad_definition);
    CHECK(failure({"--help"}, sample_host(), p).code == cli::errc::bad_definition);
  }
}

TEST_CASE("usage lists every shared flag and the program's own") {
  const std::string text = cli::usage(server, "srv");
  CHECK(text.rfind("usage: srv [options] ROOT\nA tiny server.\n", 0) == 0);
  for (const char* line : {"  --iface NAME ", "  --ip A.B.C.D/P ", "  --gateway A.B.C.D ", "  --dns A.B.C.D ",
                           "  --pcap FILE ", "  --impair SPEC", "  --verbose ", "  --help ", "srv options:\n",
                           "  --port PORT ", "port to listen on\n", "  --once ", "  --header VALUE "}) {
    CAPTURE(line);
    CHECK(text.find(line) != std::string::npos);
  }
  const std::string plain = cli::usage({}, "p");
  CHECK(plain.rfind("usage: p [options]\n", 0) == 0);
  CHECK(plain.find("p options:") == std::string::npos);
}

TEST_CASE("an address of the host's, on any interface, is a shared address") {
  // Its own interface's, another interface's (Linux answers for it on
  // eth0 too), and one the host does not have.
  const auto own = parse({"--iface", "eth0", "--ip", "192.168.1.99/24"});
  REQUIRE(own);
  CHECK(own->shares_host_address());
  const auto other_interface = parse({"--iface", "eth0", "--ip", "10.201.7.2/24"});
  REQUIRE(other_interface);
  CHECK(other_interface->shares_host_address());
  const auto not_the_host = parse({"--iface", "eth0", "--ip", "192.168.1.77/24"});
  REQUIRE(not_the_host);
  CHECK_FALSE(not_the_host->shares_host_address());
}

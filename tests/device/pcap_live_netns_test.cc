// pcap_live against the Linux kernel (netns-harness.md): two namespaces made
// here and joined by a veth pair. The kernel's end has a private address;
// our end has none, so the kernel in our namespace ignores the traffic and
// only pcap_live speaks there. We ask the kernel for its MAC (ARP), ping it
// (ICMP echo built with the wire reprs), and check that the filter and the
// "inbound only" direction hold. Needs root; tagged no-sandbox, exclusive.
#include "pystack/device/pcap_live.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pystack/cli.hpp"
#include "pystack/device/command_line_device.hpp"
#include "pystack/device/impair.hpp"
#include "pystack/device/pcap_tee.hpp"
#include "pystack/pcap/file.hpp"
#include "pystack/wire/checksum.hpp"
#include "tests/device/frames.hpp"
#include "tests/netns/netns.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;

using netns_test::in_namespace;
using netns_test::sh;

// The namespaces and the veth pair of one test run (tests/netns): the
// kernel's end has a private address; our end has none, so the kernel in
// our namespace ignores the traffic and only pcap_live speaks there.
class veth_harness : public netns_test::veth_pair {
 public:
  veth_harness()
      : veth_pair("pl", 200, false, mac_for(::getpid()).to_string()),
        stack_mac_(mac_for(::getpid())) {}

  const std::string& kernel_ns() const { return peer_ns(); }
  const std::string& kernel_if() const { return peer_if(); }
  ipv4_address kernel_ip() const { return *ipv4_address::parse(peer_ip()); }
  ipv4_address stack_ip() const { return *ipv4_address::parse(veth_pair::stack_ip()); }
  mac_address stack_mac() const { return stack_mac_; }

 private:
  static mac_address mac_for(int pid) { return mac_address{{0x02, 0x00, 0x00, 0xc8, static_cast<byte>(pid % 250), 0x01}}; }
  mac_address stack_mac_;
};

// Polls the device's descriptor (and its next delivery) until `done` says
// so or `limit` passes; hands every frame to `on_frame`.
template <class Device>
void exchange(Device& d, std::chrono::milliseconds limit, const std::function<void(const received_frame&)>& on_frame,
              const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (const auto next = d.next_delivery()) {
      const auto until = std::chrono::ceil<std::chrono::milliseconds>(*next - steady_clock{}.now());
      if (until < timeout) timeout = until < 0ms ? 0ms : until;
    }
    pollfd p{d.wait_fd(), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(timeout.count()));
    d.receive(on_frame, 64);
  }
}

struct observed {
  std::vector<std::vector<byte>> frames;
  void operator()(const received_frame& f) { frames.emplace_back(f.bytes.begin(), f.bytes.end()); }
};

std::optional<arp::repr> as_arp(const std::vector<byte>& frame) {
  const auto e = eth::view::checked(bytes_view(frame));
  if (!e || e->ethertype() != eth::ethertype::arp) return std::nullopt;
  const auto a = arp::view::checked(e->payload());
  if (!a) return std::nullopt;
  const auto r = arp::repr::parse(*a);
  return r ? std::optional(*r) : std::nullopt;
}

bool is_echo_reply(const std::vector<byte>& frame, std::uint16_t sequence) {
  return frame.size() >= 42 && wire::load_be16(frame.data() + 12) == eth::ethertype::ipv4 && frame[23] == 1 &&
         frame[34] == icmp::type::echo_reply && test::number_of(frame) == sequence;
}
}  // namespace

TEST_CASE("pcap_live exchanges ARP and ICMP with the kernel over a veth pair", "[pcap_live][netns]") {
  REQUIRE(::geteuid() == 0);  // namespaces and raw capture need root; CI runs as root
  veth_harness net;
  INFO("failed setup step: " << net.failed_step());
  REQUIRE(net.ready());

  const std::string filter = pcap_live::filter_for(net.stack_mac(), net.stack_ip());
  auto opened = in_namespace(net.stack_ns(), [&] { return pcap_live::open(net.stack_if(), {.filter = filter}); });
  INFO((opened ? std::string() : opened.error().message));
  REQUIRE(opened);
  pcap_live& nic = *opened;
  REQUIRE(nic.wait_fd() >= 0);
  CHECK_FALSE(nic.next_delivery());
  CHECK(nic.interface_name() == net.stack_if());

  // A second capture of the same interface that sees both directions, to
  // prove that our frames do leave (and that only direction "in" hides them).
  auto both_ways = in_namespace(net.stack_ns(), [&] {
    return pcap_live::open(net.stack_if(), {.filter = "arp", .inbound_only = false});
  });
  REQUIRE(both_ways);

  SECTION("frames sent through the interface are not read back") {
    // Linux never hands a packet socket the frames it sent itself; frames
    // that other sockets (another capture, the kernel) send out of the same
    // interface are what direction "in" keeps from the stack.
    auto other_sender = in_namespace(net.stack_ns(), [&] { return pcap_live::open(net.stack_if()); });
    REQUIRE(other_sender);
    // An address in the kernel's subnet that nobody has: nothing answers.
    const ipv4_address unused{(net.stack_ip().value & 0xffffff00u) | 77u};
    const auto who_has = test::arp_frame(arp::operation::request, net.stack_mac(), net.stack_ip(), {}, unused,
                                         mac_address::broadcast());
    REQUIRE(nic.transmit(who_has));
    REQUIRE(other_sender->transmit(who_has));
    observed seen_in;
    observed seen_both;
    // The capture of both directions sees the other socket's frame leave
    // (not its own: see above)...
    exchange(*both_ways, 2000ms, std::ref(seen_both), [&] { return seen_both.frames.size() >= 2; });
    REQUIRE(!seen_both.frames.empty());
    for (const auto& f : seen_both.frames) CHECK(f == who_has);
    // ...and the stack's, which the broadcast ARP passes the filter of, sees
    // neither: only the direction keeps them out.
    exchange(nic, 300ms, std::ref(seen_in), [] { return false; });
    CHECK(seen_in.frames.empty());
    CHECK(nic.stats().frames_received == 0);
    CHECK(nic.stats().frames_sent == 1);
  }

  SECTION("the filter keeps out frames that are not the stack's") {
    auto everything = in_namespace(net.stack_ns(), [&] { return pcap_live::open(net.stack_if()); });
    REQUIRE(everything);
    const std::uint32_t subnet = net.stack_ip().value & 0xffffff00u;
    const ipv4_address stranger_ip{subnet | 99u};  // another host's MAC and address
    const ipv4_address misaddressed_ip{subnet | 98u};  // our MAC, another address
    const mac_address stranger_mac{{0x02, 0x00, 0x00, 0xc8, 0x00, 0x99}};
    const std::string k = "ip netns exec " + net.kernel_ns() + " ";
    REQUIRE(sh("ip -n " + net.kernel_ns() + " neigh add " + stranger_ip.to_string() + " lladdr " +
               stranger_mac.to_string() + " dev " + net.kernel_if()) == 0);
    REQUIRE(sh("ip -n " + net.kernel_ns() + " neigh add " + misaddressed_ip.to_string() + " lladdr " +
               net.stack_mac().to_string() + " dev " + net.kernel_if()) == 0);
    // One echo request each; nobody answers, so each ping gives up after 1 s.
    sh(k + "timeout 3 ping -n -c 1 -W 1 " + stranger_ip.to_string());
    sh(k + "timeout 3 ping -n -c 1 -W 1 " + misaddressed_ip.to_string());

    observed all;
    exchange(*everything, 500ms, std::ref(all), [] { return false; });
    observed ours;
    exchange(nic, 200ms, std::ref(ours), [] { return false; });
    const auto is_echo_to = [](const std::vector<byte>& f, ipv4_address to) {
      return f.size() >= 42 && wire::load_be16(f.data() + 12) == eth::ethertype::ipv4 && f[34] == icmp::type::echo_request &&
             ipv4_address::from_bytes(f.data() + 30) == to;
    };
    const auto count = [&](const observed& o, ipv4_address to) {
      return std::count_if(o.frames.begin(), o.frames.end(), [&](const auto& f) { return is_echo_to(f, to); });
    };
    // Both pings were on the wire...
    CHECK(count(all, stranger_ip) == 1);
    CHECK(count(all, misaddressed_ip) == 1);
    // ...and the stack saw neither.
    CHECK(count(ours, stranger_ip) == 0);
    CHECK(count(ours, misaddressed_ip) == 0);
    for (const auto& f : ours.frames) {
      const auto type = wire::load_be16(f.data() + 12);
      CHECK((type == eth::ethertype::arp || type == eth::ethertype::ipv4));
    }
  }

  SECTION("ARP who-has for the kernel's address, then ICMP echo") {
    const auto who_has = test::arp_frame(arp::operation::request, net.stack_mac(), net.stack_ip(), {},
                                         net.kernel_ip(), mac_address::broadcast());
    REQUIRE(nic.transmit(who_has));
    observed seen;
    std::optional<arp::repr> reply;
    exchange(
        nic, 3000ms,
        [&](const received_frame& f) {
          seen(f);
          const auto a = as_arp(seen.frames.back());
          if (a && a->operation == arp::operation::reply && a->sender_protocol_address == net.kernel_ip()) reply = a;
        },
        [&] { return reply.has_value(); });
    REQUIRE(reply);
    CHECK(reply->target_hardware_address == net.stack_mac());
    CHECK(reply->target_protocol_address == net.stack_ip());
    const mac_address kernel_mac = reply->sender_hardware_address;
    CHECK_FALSE(kernel_mac.is_multicast());

    // Every frame the filter let through is ours to see.
    for (const auto& frame : seen.frames) {
      const mac_address destination = mac_address::from_bytes(frame.data());
      CHECK((destination == net.stack_mac() || destination.is_multicast()));
    }

    // ICMP echo through a tee, so the exchange is also on file.
    const std::string capture = std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") +
                                "/" + std::to_string(::getpid()) + "-live.pcap";
    auto traced = pystack::pcap_tee<pcap_live&>::create(nic, capture, {.flush_interval = 0ns});
    REQUIRE(traced);
    const auto request =
        test::echo_frame(7, 56, net.stack_mac(), kernel_mac, net.stack_ip(), net.kernel_ip());
    REQUIRE(traced->transmit(request));
    std::optional<std::vector<byte>> echo;
    exchange(
        *traced, 3000ms,
        [&](const received_frame& f) {
          std::vector<byte> frame(f.bytes.begin(), f.bytes.end());
          if (is_echo_reply(frame, 7)) echo = std::move(frame);
        },
        [&] { return echo.has_value(); });
    REQUIRE(echo);
    const bytes_view reply_bytes(*echo);
    CHECK(mac_address::from_bytes(reply_bytes.data()) == net.stack_mac());
    CHECK(ipv4_address::from_bytes(reply_bytes.data() + 26) == net.kernel_ip());
    CHECK(ipv4_address::from_bytes(reply_bytes.data() + 30) == net.stack_ip());
    const std::size_t ip_total = wire::load_be16(reply_bytes.data() + 16);
    REQUIRE(ip_total == 20 + 8 + 56);
    CHECK(checksum::verify(reply_bytes.subspan(14, 20)));
    CHECK(checksum::verify(reply_bytes.subspan(34, ip_total - 20)));
    // The kernel echoes the payload (RFC 792).
    CHECK(std::equal(request.begin() + 42, request.end(), reply_bytes.begin() + 42));

    CHECK(traced->frames_recorded() >= 2);
    std::vector<std::vector<byte>> on_file;
    {
      auto file = pcap::reader::open(capture);
      REQUIRE(file);
      for (int i = 0; i < 1000; ++i) {
        auto next = file->next();
        REQUIRE(next);
        if (!*next) break;
        on_file.emplace_back((*next)->bytes.begin(), (*next)->bytes.end());
      }
    }
    REQUIRE(on_file.size() >= 2);
    CHECK(on_file.front() == request);
    CHECK(std::find(on_file.begin(), on_file.end(), *echo) != on_file.end());
    std::filesystem::remove(capture);

    // The same ping with 30 ms of delay added on the way out: the reply
    // cannot come back sooner.
    impaired<pcap_live&, steady_clock> slow(nic, steady_clock{}, impaired_options{.outbound = {.delay = 30ms}, .inbound = {}});
    const auto sent_at = steady_clock{}.now();
    REQUIRE(slow.transmit(test::echo_frame(8, 56, net.stack_mac(), kernel_mac, net.stack_ip(), net.kernel_ip())));
    CHECK(nic.stats().frames_sent == 2);  // held by the wrapper
    std::optional<instant> answered_at;
    exchange(
        slow, 3000ms,
        [&](const received_frame& f) {
          if (is_echo_reply(std::vector<byte>(f.bytes.begin(), f.bytes.end()), 8)) answered_at = f.timestamp;
        },
        [&] { return answered_at.has_value(); });
    REQUIRE(answered_at);
    CHECK(*answered_at - sent_at >= 30ms);
    CHECK(*answered_at - sent_at < 3s);

    CHECK(nic.stats().send_failures == 0);
    CHECK(nic.stats().frames_sent == 3);
  }

  SECTION("a frame the kernel refuses is counted") {
    std::vector<byte> oversize = test::echo_frame(1, 3000, net.stack_mac(), mac_address::broadcast());
    CHECK_FALSE(nic.transmit(oversize));
    CHECK(nic.stats().send_failures == 1);
    CHECK_FALSE(nic.last_error().empty());
  }

  SECTION("a filter that does not compile is a typed error") {
    const auto r = nic.set_filter("this is not a filter");
    REQUIRE_FALSE(r);
    CHECK(r.error().what == device_error::code::bad_filter);
    CHECK(nic.set_filter("arp"));
  }

  const auto kernel_stats = nic.capture_stats();
  REQUIRE(kernel_stats);
  CHECK(kernel_stats->dropped == 0);
}

// The command line a program would be run with in the stack's namespace,
// resolved against that namespace's facts (cli.hpp).
cli::options command_line(const veth_harness& net, std::vector<std::string> extra) {
  std::vector<std::string> words = {"program", "--iface", net.stack_if(), "--ip", net.stack_ip().to_string() + "/24"};
  words.insert(words.end(), extra.begin(), extra.end());
  std::vector<const char*> argv;
  for (const auto& w : words) argv.push_back(w.c_str());
  auto facts = in_namespace(net.stack_ns(), [] { return host::read(); });
  REQUIRE(facts);
  auto options = cli::parse(static_cast<int>(argv.size()), argv.data(), *facts);
  INFO((options ? std::string() : options.error().message()));
  REQUIRE(options);
  return std::move(*options);
}

TEST_CASE("command_line_device is the device --pcap and --impair ask for", "[pcap_live][netns]") {
  REQUIRE(::geteuid() == 0);
  veth_harness net;
  INFO("failed setup step: " << net.failed_step());
  REQUIRE(net.ready());
  const auto who_has_kernel = [&] {
    return test::arp_frame(arp::operation::request, net.stack_mac(), net.stack_ip(), {}, net.kernel_ip(),
                           mac_address::broadcast());
  };
  const auto is_kernel_reply = [&](const received_frame& f) {
    const auto a = as_arp(std::vector<byte>(f.bytes.begin(), f.bytes.end()));
    return a && a->operation == arp::operation::reply && a->sender_protocol_address == net.kernel_ip();
  };
  const std::string capture = std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") + "/" +
                              std::to_string(::getpid()) + "-command-line.pcap";

  SECTION("no flags: the live interface alone, with the addresses of --ip and the interface") {
    const auto options = command_line(net, {});
    const interface_config config = command_line_device::config_of(options);
    CHECK(config.mac == net.stack_mac());
    CHECK(config.address == net.stack_ip());
    CHECK(config.prefix_length == 24);
    auto opened = in_namespace(net.stack_ns(), [&] { return command_line_device::open(options); });
    REQUIRE(opened);
    CHECK_FALSE(opened->frames_recorded());
    CHECK_FALSE(opened->impairment_counts());
    REQUIRE(opened->transmit(who_has_kernel()));
    bool answered = false;
    exchange(*opened, 3000ms, [&](const received_frame& f) { answered = answered || is_kernel_reply(f); },
             [&] { return answered; });
    CHECK(answered);
    CHECK(opened->stats().frames_sent == 1);
  }

  SECTION("--pcap and --impair: delayed on the way out, and every frame on file") {
    const auto options = command_line(net, {"--pcap", capture, "--impair", "delay=30ms,seed=3"});
    auto opened = in_namespace(net.stack_ns(), [&] { return command_line_device::open(options); });
    INFO((opened ? std::string() : opened.error().message));
    REQUIRE(opened);
    const auto sent_at = steady_clock{}.now();
    REQUIRE(opened->transmit(who_has_kernel()));
    std::optional<instant> answered_at;
    std::vector<byte> reply;
    exchange(
        *opened, 3000ms,
        [&](const received_frame& f) {
          if (!answered_at && is_kernel_reply(f)) {
            answered_at = f.timestamp;
            reply.assign(f.bytes.begin(), f.bytes.end());
          }
        },
        [&] { return answered_at.has_value(); });
    REQUIRE(answered_at);
    CHECK(*answered_at - sent_at >= 30ms);
    const auto counts = opened->impairment_counts();
    REQUIRE(counts);
    CHECK(counts->first.offered == 1);
    CHECK(counts->second.offered >= 1);
    REQUIRE(opened->flush_capture());
    CHECK(opened->frames_recorded() >= 2);
    CHECK_FALSE(opened->capture_error());
    auto file = pcap::reader::open(capture);
    REQUIRE(file);
    std::vector<std::vector<byte>> on_file;
    for (int i = 0; i < 100; ++i) {
      auto next = file->next();
      REQUIRE(next);
      if (!*next) break;
      on_file.emplace_back((*next)->bytes.begin(), (*next)->bytes.end());
    }
    CHECK(std::find(on_file.begin(), on_file.end(), who_has_kernel()) != on_file.end());
    CHECK(std::find(on_file.begin(), on_file.end(), reply) != on_file.end());
    std::filesystem::remove(capture);
  }

  SECTION("--impair loss=1: nothing leaves, and the loss is counted") {
    const auto options = command_line(net, {"--impair", "loss=1,seed=9"});
    auto opened = in_namespace(net.stack_ns(), [&] { return command_line_device::open(options); });
    REQUIRE(opened);
    CHECK_FALSE(opened->frames_recorded());
    CHECK(opened->transmit(who_has_kernel()));  // lost on purpose: a network does not tell the sender
    bool answered = false;
    exchange(*opened, 300ms, [&](const received_frame& f) { answered = answered || is_kernel_reply(f); },
             [] { return false; });
    CHECK_FALSE(answered);
    REQUIRE(opened->impairment_counts());
    CHECK(opened->impairment_counts()->first.lost == 1);
    CHECK(opened->stats().frames_dropped == 1);
  }

  SECTION("what cannot be opened is a typed error") {
    auto options = command_line(net, {"--pcap", "/nonexistent-directory/x.pcap"});
    auto unwritable = in_namespace(net.stack_ns(), [&] { return command_line_device::open(options); });
    REQUIRE_FALSE(unwritable);
    CHECK(unwritable.error().what == device_error::code::capture_file);
    options.interface.name = "nosuch" + std::to_string(::getpid() % 10000);
    auto missing = in_namespace(net.stack_ns(), [&] { return command_line_device::open(options); });
    REQUIRE_FALSE(missing);
    CHECK(missing.error().what == device_error::code::no_such_device);
  }
}

TEST_CASE("a capture device that is not Ethernet is refused", "[pcap_live][netns]") {
  REQUIRE(::geteuid() == 0);
  // libpcap's "any" pseudo-device has the Linux cooked link type.
  const auto r = pcap_live::open("any");
  REQUIRE_FALSE(r);
  CHECK(r.error().what == device_error::code::unsupported_link_type);
}

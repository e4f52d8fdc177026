// Two stacks exchange frames over the in-process link on one virtual clock:
// ARP between them, UDP datagrams and their echoes, exact delays, and seeded
// loss that replays identically. The link's seeds are printed on failure.
#include <catch2/catch.hpp>
#include <vector>

#include "pystack/device/in_process_link.hpp"
#include "pystack/layers/arp.hpp"
#include "pystack/layers/ethernet.hpp"
#include "pystack/layers/icmp.hpp"
#include "pystack/layers/ipv4.hpp"
#include "pystack/layers/udp.hpp"
#include "pystack/stack/simulation.hpp"
#include "pystack/stack/stack.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;

const auto a_ip = *ipv4_address::parse("10.20.0.1");
const auto b_ip = *ipv4_address::parse("10.20.0.2");

// Sends `total` numbered datagrams to b:7, one every 10 ms, and records the
// echoes: their numbers and when they came back.
struct pinger {
  static constexpr int total = 50;
  int sent = 0;
  instant next_send{};
  std::vector<std::uint32_t> echoed;
  std::vector<duration> round_trips;
  std::vector<instant> sent_at = std::vector<instant>(total);

  template <class Socket>
  void on_start(Socket&) {}
  std::optional<instant> next_deadline() const {
    return sent < total ? std::optional(next_send) : std::nullopt;
  }
  template <class Socket>
  void on_timer(instant now, Socket& socket) {
    const std::uint32_t n = static_cast<std::uint32_t>(sent);
    byte payload[4];
    wire::store_be32(payload, n);
    sent_at[n] = now;
    socket.send_to(b_ip, 7, payload);
    ++sent;
    next_send = now + 10ms;
  }
  template <class Headers, class Socket>
  void on_datagram(const Headers& headers, bytes_view payload, Socket&) {
    if (payload.size() != 4) return;
    const std::uint32_t n = wire::load_be32(payload.data());
    echoed.push_back(n);
    if (n < sent_at.size()) round_trips.push_back(headers.timestamp() - sent_at[n]);
  }
};

struct echo {
  template <class Headers, class Socket>
  void on_datagram(const Headers& headers, bytes_view payload, Socket& socket) {
    socket.reply(headers, payload);
  }
};

using endpoint = pystack::in_process_link<virtual_clock>::endpoint;
using stack_a = Stack<Ethernet<>, IP<ICMP<>, UDP<Port<7000, pinger>>>, ARP<>>::on<endpoint, clock_ref<virtual_clock>>;
using stack_b = Stack<Ethernet<>, IP<ICMP<>, UDP<Port<7, echo>>>, ARP<>>::on<endpoint, clock_ref<virtual_clock>>;

struct outcome {
  std::vector<std::uint32_t> echoed;
  std::vector<duration> round_trips;
  std::uint64_t a_sent = 0;
};

outcome run(const link_options& options, duration horizon = 5s) {
  virtual_clock clock;
  pystack::in_process_link<virtual_clock> wire(clock, options);
  stack_a a(wire.a(), clock_ref(clock),
            {.mac = *mac_address::parse("02:00:00:00:0a:01"), .address = a_ip, .prefix_length = 24});
  stack_b b(wire.b(), clock_ref(clock),
            {.mac = *mac_address::parse("02:00:00:00:0b:01"), .address = b_ip, .prefix_length = 24});
  a.link().start();
  b.link().start();
  simulation sim(clock, a, b);
  auto& app = a.link().find<pinger>();
  const auto result = sim.run_until([&] { return app.sent == pinger::total && !a.next_event() && !b.next_event(); }, horizon);
  CHECK_FALSE(result.stalled);
  return {app.echoed, app.round_trips, a.device().stats().frames_sent};
}
}  // namespace

TEST_CASE("two stacks resolve each other and exchange every datagram over a clean link") {
  const auto result = run({});
  REQUIRE(result.echoed.size() == pinger::total);
  for (std::uint32_t i = 0; i < pinger::total; ++i) CHECK(result.echoed[i] == i);
}

TEST_CASE("round trips over a delayed link take exactly twice the delay") {
  link_options options;
  options.a_to_b.delay = 5ms;
  options.b_to_a.delay = 5ms;
  const auto result = run(options);
  REQUIRE(result.round_trips.size() == pinger::total);
  // The first datagram waits for ARP (one more round trip); the rest do not.
  CHECK(result.round_trips[0] == 20ms);
  for (std::size_t i = 1; i < result.round_trips.size(); ++i) CHECK(result.round_trips[i] == 10ms);
}

TEST_CASE("a lossy link loses some datagrams, and the same seed loses the same ones") {
  link_options options;
  options.a_to_b.loss = 0.2;
  options.b_to_a.loss = 0.2;
  options.a_to_b.seed = GENERATE(1u, 7u, 12345u);
  options.b_to_a.seed = options.a_to_b.seed + 1;
  INFO("link: " << options.a_to_b.to_string() << " / " << options.b_to_a.to_string());
  const auto first = run(options);
  const auto again = run(options);
  CHECK(first.echoed == again.echoed);
  // Each echo survives two crossings: 0.64 of 50 expected; a binomial
  // bound far from the mean (32 +- 4.5 sd) still catches a link that loses
  // nothing or everything.
  CHECK(first.echoed.size() >= 12);
  CHECK(first.echoed.size() <= 45);
  CHECK(first.echoed.size() < pinger::total);
}

// The impairment wrapper around a device (here one end of an in-process
// link on the virtual clock, standing in for a live interface).
#include "pystack/device/impair.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "pystack/device/in_process_link.hpp"
#include "tests/device/frames.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;
using virtual_link = pystack::in_process_link<virtual_clock>;
using wrapped = impaired<virtual_link::endpoint&, virtual_clock>;

template <class Device>
std::vector<std::uint16_t> numbers_received(Device& d, std::size_t max = 100000) {
  std::vector<std::uint16_t> out;
  d.receive([&](const received_frame& f) { out.push_back(test::number_of(f.bytes)); }, max);
  return out;
}
}  // namespace

static_assert(device<wrapped>);
static_assert(device<impaired<virtual_link::endpoint, steady_clock>>);

TEST_CASE("outbound delay holds frames in the wrapper until next_delivery", "[impaired]") {
  virtual_clock clock;
  virtual_link wire(clock);
  wrapped a(wire.a(), clock, impaired_options{.outbound = {.delay = 5ms}, .inbound = {}});
  CHECK(a.wait_fd() == -1);

  REQUIRE(a.transmit(test::echo_frame(1)));
  CHECK(wire.b().pending() == 0);  // still in the wrapper
  CHECK(a.next_delivery() == instant{5ms});

  clock.advance(5ms - 1ns);
  CHECK(numbers_received(a).empty());
  CHECK(wire.b().pending() == 0);

  clock.advance(1ns);
  CHECK(numbers_received(a).empty());  // receive() is what releases due frames
  CHECK(numbers_received(wire.b()) == std::vector<std::uint16_t>{1});
  CHECK(a.stats().frames_sent == 1);
  CHECK_FALSE(a.next_delivery());
}

TEST_CASE("a frame transmitted later goes out behind the delayed ones", "[impaired]") {
  virtual_clock clock;
  virtual_link wire(clock);
  wrapped a(wire.a(), clock, impaired_options{.outbound = {.delay = 1ms}, .inbound = {}});
  for (std::uint16_t i = 0; i < 3; ++i) {
    REQUIRE(a.transmit(test::echo_frame(i)));
    clock.advance(600us);
  }
  // Frame 0 (due at 1 ms) went out with the transmit at 1.2 ms: transmit
  // first flushes what is due. Frame 1 (due at 1.6 ms) waits for a call.
  CHECK(numbers_received(wire.b()) == std::vector<std::uint16_t>{0});
  CHECK(a.next_delivery() == instant{1600us});
  clock.advance(1ms);
  CHECK(numbers_received(a).empty());
  CHECK(numbers_received(wire.b()) == std::vector<std::uint16_t>{1, 2});
}

TEST_CASE("inbound impairments apply to what the device receives", "[impaired]") {
  virtual_clock clock;
  virtual_link wire(clock);
  SECTION("duplication") {
    wrapped a(wire.a(), clock, impaired_options{.outbound = {}, .inbound = {.duplicate = 1.0}});
    for (std::uint16_t i = 0; i < 3; ++i) REQUIRE(wire.b().transmit(test::echo_frame(i)));
    CHECK(numbers_received(a) == std::vector<std::uint16_t>{0, 0, 1, 1, 2, 2});
    CHECK(a.inbound_counters().duplicated == 3);
    CHECK(a.stats().frames_received == 6);
  }
  SECTION("delay, with the delivery time as the frame's timestamp") {
    wrapped a(wire.a(), clock, impaired_options{.outbound = {}, .inbound = {.delay = 2ms}});
    REQUIRE(wire.b().transmit(test::echo_frame(9)));
    CHECK(numbers_received(a).empty());  // pulled from the link, held by the wrapper
    CHECK(wire.a().pending() == 0);
    CHECK(a.next_delivery() == instant{2ms});
    clock.advance(2ms);
    std::vector<instant> stamps;
    a.receive([&](const received_frame& f) { stamps.push_back(f.timestamp); }, 10);
    CHECK(stamps == std::vector<instant>{instant{2ms}});
  }
  SECTION("loss is counted as dropped") {
    wrapped a(wire.a(), clock, impaired_options{.outbound = {}, .inbound = {.loss = 1.0}});
    for (std::uint16_t i = 0; i < 10; ++i) REQUIRE(wire.b().transmit(test::echo_frame(i)));
    CHECK(numbers_received(a).empty());
    CHECK(a.stats().frames_dropped == 10);
    CHECK(a.inbound_counters().lost == 10);
  }
}

TEST_CASE("a full wrapper queue refuses the transmit", "[impaired]") {
  virtual_clock clock;
  virtual_link wire(clock);
  wrapped a(wire.a(), clock, impaired_options{.outbound = {.delay = 1ms}, .inbound = {}, .queue_limit = 2});
  CHECK(a.transmit(test::echo_frame(0)));
  CHECK(a.transmit(test::echo_frame(1)));
  CHECK_FALSE(a.transmit(test::echo_frame(2)));
  CHECK(a.stats().send_failures == 1);
  CHECK(a.outbound_counters().overflowed == 1);
}

TEST_CASE("the wrapped device's refusals are counted", "[impaired]") {
  virtual_clock clock;
  virtual_link wire(clock, {.queue_limit = 1});
  wrapped a(wire.a(), clock, impairment{});
  CHECK(a.transmit(test::echo_frame(0)));
  CHECK_FALSE(a.transmit(test::echo_frame(1)));  // the link's queue is full
  CHECK(a.stats().send_failures == 1);
  CHECK(a.stats().frames_sent == 1);
}

TEST_CASE("loss both ways through the wrapper, replayable from the seed", "[impaired]") {
  const auto run = [](std::uint64_t seed) {
    virtual_clock clock;
    virtual_link wire(clock);
    const impairment lossy{.loss = 0.2, .reorder = 0.05, .delay = 1ms, .seed = seed};
    wrapped a(wire.a(), clock, lossy);
    std::vector<std::uint16_t> at_b;
    std::vector<std::uint16_t> at_a;
    for (std::uint16_t i = 0; i < 2000; ++i) {
      a.transmit(test::echo_frame(i));
      wire.b().transmit(test::echo_frame(i));
      clock.advance(10us);
      for (auto n : numbers_received(a)) at_a.push_back(n);
      for (auto n : numbers_received(wire.b())) at_b.push_back(n);
    }
    // Bounded: each pass moves the clock to a due frame.
    for (int pass = 0; pass < 10000; ++pass) {
      const auto next = a.next_delivery();
      if (!next) break;
      clock.advance_to(*next);
      for (auto n : numbers_received(a)) at_a.push_back(n);
      for (auto n : numbers_received(wire.b())) at_b.push_back(n);
    }
    INFO("replay with: " << a.outbound_impairment().to_string());
    CHECK(at_b.size() + a.outbound_counters().lost == 2000);
    CHECK(at_a.size() + a.inbound_counters().lost == 2000);
    CHECK(std::abs(static_cast<double>(a.outbound_counters().lost) - 400) < 5 * std::sqrt(2000 * 0.2 * 0.8));
    CHECK(std::abs(static_cast<double>(a.inbound_counters().lost) - 400) < 5 * std::sqrt(2000 * 0.2 * 0.8));
    CHECK(a.stats().frames_dropped == a.outbound_counters().lost + a.inbound_counters().lost);
    return std::pair(at_a, at_b);
  };
  const auto first = run(7);
  CHECK(first == run(7));
  CHECK(first != run(8));
  // The two directions draw from different streams of the same seed.
  CHECK(first.first != first.second);
}

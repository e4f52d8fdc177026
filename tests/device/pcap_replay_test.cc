// Replaying a capture as received frames, at full speed and at the recorded
// pace, and recording the answers.
#include "pystack/device/pcap_replay.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "pystack/pcap/file.hpp"
#include "tests/device/frames.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;

// A data dependency of the test (//examples:captures): 20 frames of an ARP
// exchange, pings, an HTTP request over TCP and a DNS query.
const std::string demo = "examples/captures/demo.pcap";

std::string temp_path(const char* name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + std::to_string(::getpid()) + "-" + name;
}

struct recorded {
  std::vector<byte> bytes;
  std::chrono::nanoseconds timestamp;
  std::uint32_t original_length;
};

std::vector<recorded> read_all(const std::string& path) {
  std::vector<recorded> out;
  auto file = pcap::reader::open(path);
  REQUIRE(file);
  // Bounded by the file's length.
  while (true) {
    auto next = file->next();
    REQUIRE(next);
    if (!*next) break;
    out.push_back({{(*next)->bytes.begin(), (*next)->bytes.end()}, (*next)->timestamp, (*next)->original_length});
  }
  return out;
}

struct delivered {
  std::vector<byte> bytes;
  instant timestamp;
  std::uint32_t original_length;
  instant at;  // the clock when it was handed over
};
}  // namespace

TEST_CASE("the demo capture is delivered whole, as fast as possible", "[replay]") {
  const auto expected = read_all(demo);
  REQUIRE(expected.size() == 20);
  virtual_clock clock;
  clock.advance(5s);
  auto replay = pcap_replay<virtual_clock>::open(demo, clock);
  REQUIRE(replay);
  CHECK(replay->wait_fd() == -1);
  CHECK(replay->start() == instant{5s});
  CHECK(replay->next_delivery() == clock.now());

  std::vector<delivered> got;
  const auto take = [&](std::size_t max) {
    return replay->receive(
        [&](const received_frame& f) {
          got.push_back({{f.bytes.begin(), f.bytes.end()}, f.timestamp, f.original_length, clock.now()});
        },
        max);
  };
  CHECK(take(0) == 0);
  CHECK(take(7) == 7);
  CHECK_FALSE(replay->finished());
  CHECK(take(100) == 13);
  CHECK(take(100) == 0);
  CHECK(replay->finished());
  CHECK_FALSE(replay->next_delivery());
  CHECK_FALSE(replay->read_error());

  REQUIRE(got.size() == 20);
  for (std::size_t i = 0; i < 20; ++i) {
    CAPTURE(i);
    CHECK(got[i].bytes == expected[i].bytes);
    CHECK(got[i].original_length == expected[i].original_length);
    // The capture's spacing on the stack's clock.
    CHECK(got[i].timestamp == instant{5s} + (expected[i].timestamp - expected[0].timestamp));
  }
  CHECK(replay->stats().frames_received == 20);
}

TEST_CASE("at the recorded pace no frame comes before its time", "[replay]") {
  const auto expected = read_all(demo);
  virtual_clock clock;
  auto replay = pcap_replay<virtual_clock>::open(demo, clock, {.pace = replay_pace::recorded});
  REQUIRE(replay);
  std::vector<delivered> got;
  // Bounded: every step delivers at least one frame.
  for (int step = 0; step < 100 && !replay->finished(); ++step) {
    const auto next = replay->next_delivery();
    REQUIRE(next);
    if (*next > clock.now() + 1ns) {
      clock.advance_to(*next - 1ns);
      CHECK(replay->receive([](const received_frame&) {}, 100) == 0);  // not yet
    }
    clock.advance_to(*next);
    const auto n = replay->receive(
        [&](const received_frame& f) {
          got.push_back({{f.bytes.begin(), f.bytes.end()}, f.timestamp, f.original_length, clock.now()});
        },
        100);
    CHECK(n >= 1);
  }
  REQUIRE(got.size() == 20);
  for (std::size_t i = 0; i < 20; ++i) {
    CAPTURE(i);
    CHECK(got[i].bytes == expected[i].bytes);
    const instant due = instant{} + (expected[i].timestamp - expected[0].timestamp);
    CHECK(got[i].timestamp == due);
    CHECK(got[i].at == due);  // handed over exactly when due
  }
  // The capture spans about 254 ms; it took that long on the virtual clock.
  CHECK(clock.now() == instant{} + (expected[19].timestamp - expected[0].timestamp));
}

TEST_CASE("transmitted frames are counted and written to the output capture", "[replay]") {
  const std::string output = temp_path("replay-out.pcap");
  const auto input = read_all(demo);
  virtual_clock clock;
  auto replay = pcap_replay<virtual_clock>::open(demo, clock, {.output = output});
  REQUIRE(replay);
  const std::vector<std::vector<byte>> answers = {test::echo_frame(1), test::echo_frame(2, 100),
                                                  test::arp_frame(arp::operation::reply, test::mac_a, test::ip_a,
                                                                  test::mac_b, test::ip_b, test::mac_b)};
  for (const auto& a : answers) {
    REQUIRE(replay->transmit(a));
    clock.advance(3ms);
  }
  CHECK(replay->stats().frames_sent == 3);
  // Flushed per frame: readable while the replay is open.
  const auto written = read_all(output);
  REQUIRE(written.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(written[i].bytes == answers[i]);
    // On the capture's own time line, so the answers sort among its frames.
    CHECK(written[i].timestamp == input[0].timestamp + std::chrono::milliseconds(3 * i));
  }
  std::filesystem::remove(output);
}

TEST_CASE("a replay without output only counts", "[replay]") {
  auto replay = pcap_replay<>::open(demo);
  REQUIRE(replay);
  CHECK(replay->transmit(test::echo_frame(1)));
  CHECK(replay->stats().frames_sent == 1);
  CHECK(replay->stats().bytes_sent == test::echo_frame(1).size());
  CHECK(replay->next_delivery().has_value());
}

TEST_CASE("a capture that cannot be replayed is a typed error", "[replay]") {
  virtual_clock clock;
  SECTION("missing") {
    const auto r = pcap_replay<virtual_clock>::open("no-such-capture.pcap", clock);
    REQUIRE_FALSE(r);
    CHECK(r.error().what == device_error::code::capture_file);
  }
  SECTION("not Ethernet") {
    const std::string path = temp_path("raw.pcap");
    {
      auto w = pcap::writer::create(path, pcap::link_type::raw);
      REQUIRE(w);
    }
    const auto r = pcap_replay<virtual_clock>::open(path, clock);
    REQUIRE_FALSE(r);
    CHECK(r.error().what == device_error::code::unsupported_link_type);
    std::filesystem::remove(path);
  }
  SECTION("the output cannot be created") {
    const auto r = pcap_replay<virtual_clock>::open(demo, clock, {.output = "/no/such/dir/out.pcap"});
    REQUIRE_FALSE(r);
    CHECK(r.error().what == device_error::code::capture_file);
  }
  SECTION("cut inside a record: the whole frames are delivered, then the error") {
    const std::string path = temp_path("cut.pcap");
    {
      auto w = pcap::writer::create(path, pcap::link_type::ethernet);
      REQUIRE(w);
      for (std::uint16_t i = 0; i < 3; ++i) REQUIRE(w->write(test::echo_frame(i), std::chrono::seconds(i)));
    }
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);
    auto r = pcap_replay<virtual_clock>::open(path, clock);
    REQUIRE(r);
    std::vector<std::uint16_t> numbers;
    CHECK(r->receive([&](const received_frame& f) { numbers.push_back(test::number_of(f.bytes)); }, 100) == 2);
    CHECK(numbers == std::vector<std::uint16_t>{0, 1});
    CHECK(r->finished());
    REQUIRE(r->read_error());
    CHECK(r->read_error()->what == device_error::code::capture_file);
    std::filesystem::remove(path);
  }
  SECTION("cut inside the first record") {
    const std::string path = temp_path("cut-first.pcap");
    {
      auto w = pcap::writer::create(path, pcap::link_type::ethernet);
      REQUIRE(w);
      REQUIRE(w->write(test::echo_frame(0), std::chrono::seconds(1)));
    }
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);
    const auto r = pcap_replay<virtual_clock>::open(path, clock);
    REQUIRE_FALSE(r);
    CHECK(r.error().what == device_error::code::capture_file);
    std::filesystem::remove(path);
  }
}

TEST_CASE("timestamps that go backwards are delivered in file order", "[replay]") {
  const std::string path = temp_path("backwards.pcap");
  {
    auto w = pcap::writer::create(path, pcap::link_type::ethernet, pcap::timestamp_precision::nanoseconds);
    REQUIRE(w);
    REQUIRE(w->write(test::echo_frame(0), 10s));
    REQUIRE(w->write(test::echo_frame(1), 12s));
    REQUIRE(w->write(test::echo_frame(2), 11s));  // earlier than the one before
    REQUIRE(w->write(test::echo_frame(3), 13s));
  }
  virtual_clock clock;
  auto replay = pcap_replay<virtual_clock>::open(path, clock, {.pace = replay_pace::recorded});
  REQUIRE(replay);
  std::vector<std::pair<std::uint16_t, instant>> got;
  for (int step = 0; step < 10 && !replay->finished(); ++step) {
    clock.advance_to(*replay->next_delivery());
    replay->receive([&](const received_frame& f) { got.emplace_back(test::number_of(f.bytes), f.timestamp); }, 10);
  }
  const std::vector<std::pair<std::uint16_t, instant>> want = {
      {0, instant{0s}}, {1, instant{2s}}, {2, instant{2s}}, {3, instant{3s}}};
  CHECK(got == want);
  std::filesystem::remove(path);
}

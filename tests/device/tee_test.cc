// The pcap tee: what it writes is read back frame by frame by pcap::reader,
// decoded by the library's dissector, and decoded by tshark.
#include "pystack/device/pcap_tee.hpp"

#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "pystack/device/in_process_link.hpp"
#include "pystack/dissect.hpp"
#include "pystack/pcap/file.hpp"
#include "tests/device/frames.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;
using virtual_link = pystack::in_process_link<virtual_clock>;
using traced = pcap_tee<virtual_link::endpoint&, virtual_clock>;

std::string temp_dir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}
std::string temp_path(const char* name) { return temp_dir() + "/" + std::to_string(::getpid()) + "-" + name; }

struct recorded {
  std::vector<byte> bytes;
  std::chrono::nanoseconds timestamp;
};

std::vector<recorded> read_all(const std::string& path) {
  std::vector<recorded> out;
  auto file = pcap::reader::open(path);
  if (!file) return out;
  // Bounded by the file's length.
  while (true) {
    auto next = file->next();
    if (!next || !*next) break;
    out.push_back({{(*next)->bytes.begin(), (*next)->bytes.end()}, (*next)->timestamp});
  }
  return out;
}

// Runs a shell command and returns its standard output.
std::string run(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return out;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) out.append(buffer.data(), n);
  return out;
}
}  // namespace

static_assert(device<traced>);
static_assert(device<pcap_tee<virtual_link::endpoint, wall_clock>>);

TEST_CASE("every frame in and out is in the file, in order, with its time", "[tee]") {
  const std::string path = temp_path("tee.pcap");
  virtual_clock clock;
  clock.advance(1700000000s);  // a plausible date, so tshark shows a sensible time
  virtual_link wire(clock, {.b_to_a = {.delay = 250us}});
  auto opened = traced::create(wire.a(), path, clock, {.flush_interval = 0ns});
  REQUIRE(opened);
  traced& a = *opened;

  std::vector<recorded> expected;
  for (std::uint16_t i = 0; i < 5; ++i) {
    const auto request = test::echo_frame(i, 10 + i * 100);
    REQUIRE(a.transmit(request));
    expected.push_back({request, clock.now().since_epoch});
    const auto reply = test::echo_frame(static_cast<std::uint16_t>(100 + i), 20 + i * 50, test::mac_b, test::mac_a,
                                        test::ip_b, test::ip_a, true);
    REQUIRE(wire.b().transmit(reply));
    clock.advance(250us);
    std::size_t seen = 0;
    a.receive(
        [&](const received_frame& f) {
          ++seen;
          CHECK(std::vector<byte>(f.bytes.begin(), f.bytes.end()) == reply);
        },
        10);
    CHECK(seen == 1);
    expected.push_back({reply, clock.now().since_epoch});
    clock.advance(1ms);
  }
  CHECK(a.frames_recorded() == 10);
  CHECK(a.capture_failures() == 0);
  CHECK(a.stats().frames_sent == 5);  // the wrapped device's counts
  CHECK(a.stats().frames_received == 5);

  // Flushed after every frame: readable while the tee is still open.
  const auto got = read_all(path);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].bytes == expected[i].bytes);
    CHECK(got[i].timestamp == expected[i].timestamp);
    // The library's own dissector decodes each one as ICMP echo.
    const std::string json = dissect::frame(pcap::link_type::ethernet, i, got[i].bytes);
    CAPTURE(json);
    CHECK(json.find("\"icmp\"") != std::string::npos);
    CHECK(json.find("error") == std::string::npos);
  }

  // tshark, an independent decoder, reads the same frames.
  REQUIRE(std::system("command -v tshark >/dev/null 2>&1") == 0);  // tools/setup.sh installs it
  const std::string out = run("HOME=" + temp_dir() + " tshark -n -r " + path +
                              " -T fields -e frame.len -e icmp.type -e icmp.seq -e icmp.checksum.status 2>/dev/null");
  std::ostringstream want;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const bool reply = i % 2 == 1;
    want << expected[i].bytes.size() << '\t' << (reply ? 0 : 8) << '\t' << test::number_of(expected[i].bytes)
         << "\t1\n";
  }
  CHECK(out == want.str());
  std::filesystem::remove(path);
}

TEST_CASE("a live file is flushed within the interval, through next_delivery", "[tee]") {
  const std::string path = temp_path("tee-live.pcap");
  virtual_clock clock;
  virtual_link wire(clock);
  auto opened = traced::create(wire.a(), path, clock, {.flush_interval = 100ms});
  REQUIRE(opened);
  traced& a = *opened;
  CHECK_FALSE(a.next_delivery());

  REQUIRE(a.transmit(test::echo_frame(1)));
  CHECK(a.next_delivery() == instant{100ms});
  CHECK(read_all(path).empty());  // still in libpcap's buffer

  clock.advance(100ms);
  CHECK(a.receive([](const received_frame&) {}, 10) == 0);
  CHECK_FALSE(a.next_delivery());
  CHECK(read_all(path).size() == 1);

  // Another frame; an explicit flush writes it at once.
  REQUIRE(a.transmit(test::echo_frame(2)));
  REQUIRE(a.flush());
  CHECK(read_all(path).size() == 2);
  std::filesystem::remove(path);
}

TEST_CASE("a frame the device refused is not recorded", "[tee]") {
  const std::string path = temp_path("tee-refused.pcap");
  virtual_clock clock;
  virtual_link wire(clock, {.queue_limit = 1});
  auto a = traced::create(wire.a(), path, clock, {.flush_interval = 0ns});
  REQUIRE(a);
  CHECK(a->transmit(test::echo_frame(1)));
  CHECK_FALSE(a->transmit(test::echo_frame(2)));
  CHECK(a->frames_recorded() == 1);
  CHECK(read_all(path).size() == 1);
  CHECK(a->stats().send_failures == 1);
  std::filesystem::remove(path);
}

TEST_CASE("a file that cannot be created is a typed error", "[tee]") {
  virtual_clock clock;
  virtual_link wire(clock);
  const auto a = traced::create(wire.a(), temp_dir() + "/no/such/dir/x.pcap", clock);
  REQUIRE_FALSE(a);
  CHECK(a.error().what == device_error::code::capture_file);
  CHECK(a.error().message.find("no/such/dir/x.pcap") != std::string::npos);
}

TEST_CASE("a tee owns a device it is given by value, stamped by the wall clock", "[tee]") {
  const std::string path = temp_path("tee-owned.pcap");
  virtual_clock clock;
  virtual_link wire(clock);
  const auto before = std::chrono::system_clock::now().time_since_epoch();
  auto a = pcap_tee<virtual_link::endpoint>::create(wire.a(), path, {.flush_interval = 0ns});
  REQUIRE(a);
  REQUIRE(a->transmit(test::echo_frame(4)));
  const auto after = std::chrono::system_clock::now().time_since_epoch();
  const auto got = read_all(path);
  REQUIRE(got.size() == 1);
  CHECK(got[0].timestamp >= before);
  CHECK(got[0].timestamp <= after);
  CHECK(wire.b().pending() == 1);
  std::filesystem::remove(path);
}

// pcap files through libpcap: round trips, pcapng input, and a typed error
// for every way a file can be wrong.
#include "pystack/pcap/file.hpp"

#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <vector>

namespace {
using namespace pystack;
using namespace std::chrono_literals;

std::string temp_path(const char* name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + std::to_string(::getpid()) + "-" + name;
}

std::vector<char> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void spit(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

const std::array<byte, 6> small = {1, 2, 3, 4, 5, 6};
const std::array<byte, 60> larger = [] {
  std::array<byte, 60> a{};
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<byte>(i * 7);
  return a;
}();
}  // namespace

TEST_CASE("pcap writer and reader round-trip frames and timestamps") {
  const auto precision = GENERATE(pcap::timestamp_precision::microseconds, pcap::timestamp_precision::nanoseconds);
  const auto path = temp_path("roundtrip.pcap");
  {
    auto w = pcap::writer::create(path, pcap::link_type::ethernet, precision);
    REQUIRE(w);
    REQUIRE(w->write(small, 1700000000s + 123456789ns));
    REQUIRE(w->write(larger, 1700000001s + 5us, 1514));
  }
  auto r = pcap::reader::open(path);
  REQUIRE(r);
  CHECK(r->link() == pcap::link_type::ethernet);

  auto first = r->next();
  REQUIRE(first);
  REQUIRE(first->has_value());
  const auto& f1 = **first;
  CHECK(std::equal(f1.bytes.begin(), f1.bytes.end(), small.begin(), small.end()));
  CHECK(f1.original_length == small.size());
  CHECK_FALSE(f1.truncated());
  if (precision == pcap::timestamp_precision::nanoseconds) {
    CHECK(f1.timestamp == 1700000000s + 123456789ns);
  } else {
    CHECK(f1.timestamp == 1700000000s + 123456us);
  }

  auto second = r->next();
  REQUIRE(second);
  REQUIRE(second->has_value());
  CHECK((*second)->bytes.size() == larger.size());
  CHECK((*second)->original_length == 1514);
  CHECK((*second)->truncated());
  CHECK((*second)->timestamp == 1700000001s + 5us);

  auto end = r->next();
  REQUIRE(end);
  CHECK_FALSE(end->has_value());
  std::remove(path.c_str());
}

TEST_CASE("pcap reader decodes raw IPv4 captures") {
  const auto path = temp_path("raw.pcap");
  {
    auto w = pcap::writer::create(path, pcap::link_type::raw);
    REQUIRE(w);
    REQUIRE(w->write(larger, 0s));
  }
  auto r = pcap::reader::open(path);
  REQUIRE(r);
  CHECK(r->link() == pcap::link_type::raw);
  std::remove(path.c_str());
}

TEST_CASE("pcap reader reads pcapng") {
  // A minimal pcapng file built by hand from the format's definition
  // (draft-ietf-opsawg-pcapng §4.1 SHB, §4.2 IDB, §4.3 EPB), little-endian,
  // one Ethernet frame of 6 bytes at 1 s + 2 us with the default microsecond
  // resolution.
  const std::vector<unsigned char> file = {
      // Section Header Block: type, length 28, byte-order magic, v1.0, section length -1
      0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0,
      // Interface Description Block: type 1, length 20, linktype 1, snaplen 65535
      1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0, 0, 20, 0, 0, 0,
      // Enhanced Packet Block: type 6, length 40, interface 0, timestamp 1000002 us
      6, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x42, 0x0f, 0,
      6, 0, 0, 0, 6, 0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 40, 0, 0, 0};
  const auto path = temp_path("one.pcapng");
  spit(path, std::vector<char>(file.begin(), file.end()));
  auto r = pcap::reader::open(path);
  REQUIRE(r);
  auto f = r->next();
  REQUIRE(f);
  REQUIRE(f->has_value());
  CHECK(std::equal((*f)->bytes.begin(), (*f)->bytes.end(), small.begin(), small.end()));
  CHECK((*f)->timestamp == 1s + 2us);
  std::remove(path.c_str());
}

TEST_CASE("pcap reader reports a missing file as open_failed") {
  auto r = pcap::reader::open("/nonexistent/dir/missing.pcap");
  REQUIRE_FALSE(r);
  CHECK(r.error().what == pcap::error::code::open_failed);
  CHECK(r.error().message.find("missing.pcap") != std::string::npos);
}

TEST_CASE("pcap reader reports a file that is not a capture as bad_format") {
  const auto path = temp_path("text.pcap");
  spit(path, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', ' ', 'n', 'o', 't', ' ', 'a', ' ',
              'c', 'a', 'p', 't', 'u', 'r', 'e', '\n'});
  auto r = pcap::reader::open(path);
  REQUIRE_FALSE(r);
  CHECK(r.error().what == pcap::error::code::bad_format);
  std::remove(path.c_str());
}

TEST_CASE("pcap reader reports a file cut inside a record as truncated") {
  const auto path = temp_path("cut.pcap");
  {
    auto w = pcap::writer::create(path, pcap::link_type::ethernet);
    REQUIRE(w);
    REQUIRE(w->write(larger, 0s));
  }
  auto bytes = slurp(path);
  const std::size_t whole = bytes.size();
  // Cut inside the record header and inside the record data.
  const std::size_t cut = GENERATE(24 + 8, 24 + 16 + 10, 24 + 16 + 59);
  REQUIRE(cut < whole);
  bytes.resize(cut);
  spit(path, bytes);
  auto r = pcap::reader::open(path);
  REQUIRE(r);
  auto f = r->next();
  REQUIRE_FALSE(f);
  CHECK(f.error().what == pcap::error::code::truncated);
  std::remove(path.c_str());
}

TEST_CASE("pcap reader refuses link types it cannot decode, naming them") {
  const auto path = temp_path("null.pcap");
  {
    pcap_t* dead = pcap_open_dead(DLT_IEEE802_11, 65535);
    pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
    REQUIRE(d);
    pcap_dump_close(d);
    pcap_close(dead);
  }
  auto r = pcap::reader::open(path);
  REQUIRE_FALSE(r);
  CHECK(r.error().what == pcap::error::code::unsupported_link_type);
  CHECK(r.error().message.find("IEEE802_11") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("pcap writer reports a path it cannot create") {
  auto w = pcap::writer::create("/nonexistent/dir/out.pcap", pcap::link_type::ethernet);
  REQUIRE_FALSE(w);
  CHECK(w.error().what == pcap::error::code::open_failed);
}

TEST_CASE("pcap writer cuts frames at the snapshot length and keeps the original length") {
  const auto path = temp_path("snap.pcap");
  {
    auto w = pcap::writer::create(path, pcap::link_type::ethernet, pcap::timestamp_precision::microseconds, 16);
    REQUIRE(w);
    REQUIRE(w->write(larger, 0s));
  }
  auto r = pcap::reader::open(path);
  REQUIRE(r);
  auto f = r->next();
  REQUIRE(f);
  REQUIRE(f->has_value());
  CHECK((*f)->bytes.size() == 16);
  CHECK((*f)->original_length == larger.size());
  std::remove(path.c_str());
}

TEST_CASE("pcap writer refuses timestamps the format cannot hold instead of truncating them") {
  const auto path = temp_path("range.pcap");
  auto w = pcap::writer::create(path, pcap::link_type::ethernet);
  REQUIRE(w);
  auto before_epoch = w->write(small, -1s);
  REQUIRE_FALSE(before_epoch);
  CHECK(before_epoch.error().what == pcap::error::code::timestamp_out_of_range);
  auto from_2038 = w->write(small, std::chrono::seconds(0x80000000LL));
  REQUIRE_FALSE(from_2038);
  CHECK(from_2038.error().what == pcap::error::code::timestamp_out_of_range);
  CHECK(w->write(small, std::chrono::seconds(0x7fffffffLL)));
  std::remove(path.c_str());
}

TEST_CASE("pcap reader clamps a timestamp beyond 64-bit nanoseconds instead of overflowing") {
  using pystack::pcap::detail::to_nanoseconds;
  CHECK(to_nanoseconds(std::numeric_limits<std::int64_t>::max(), 0) == std::chrono::nanoseconds::max());
  CHECK(to_nanoseconds(std::numeric_limits<std::int64_t>::min(), 0) == std::chrono::nanoseconds::min());
  CHECK(to_nanoseconds(18446744073709LL, 551615000) == std::chrono::nanoseconds::max());
  CHECK(to_nanoseconds(1, 5) == 1s + 5ns);
}

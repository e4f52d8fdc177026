// Capture files: the input is the bytes of a file, opened with
// `pcap::reader` and read to the end; every frame is written again with
// `pcap::writer` and the copy must read back the same. The files live in
// memory (memfd), named through /proc/self/fd, because the reader and
// writer take paths.
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "pystack/pcap/file.hpp"

// Inside namespace pystack, `pcap::` is this library's; at global scope it
// would also name libpcap's `struct pcap`.
namespace pystack::fuzz {
namespace {

// An anonymous in-memory file, closed when it goes out of scope.
class memory_file {
 public:
  explicit memory_file(const char* name) : fd_(memfd_create(name, 0)) {
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
  }
  memory_file(const memory_file&) = delete;
  memory_file& operator=(const memory_file&) = delete;
  ~memory_file() { close(fd_); }

  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }
  void write_all(bytes_view bytes) const {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
      if (n <= 0) {
        std::perror("pwrite");
        std::abort();
      }
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  int fd_;
};

struct frame_copy {
  std::chrono::nanoseconds timestamp;
  std::uint32_t original_length;
  std::vector<byte> bytes;
};

void read_and_copy(const std::uint8_t* data, std::size_t size) {
  const memory_file input("pcap_fuzz_input");
  input.write_all(bytes_view(data, size));

  auto reader = pcap::reader::open(input.path());
  if (!reader) {
    consume_bytes(bytes_view(reinterpret_cast<const byte*>(reader.error().message.data()),
                             reader.error().message.size()));
    PYSTACK_FUZZ_REQUIRE(reader.error().what == pcap::error::code::open_failed ||
                         reader.error().what == pcap::error::code::bad_format ||
                         reader.error().what == pcap::error::code::unsupported_link_type);
    return;
  }
  const pcap::link_type link = reader->link();
  consume(pcap::to_string(link));
  consume(reader->snapshot_length());

  // Every frame; each record takes at least 16 header bytes of the input,
  // so the count is bounded by the input.
  std::vector<frame_copy> frames;
  bool ended_with_error = false;
  for (;;) {
    auto next = reader->next();
    if (!next) {
      ended_with_error = true;
      PYSTACK_FUZZ_REQUIRE(next.error().what == pcap::error::code::truncated ||
                           next.error().what == pcap::error::code::bad_format);
      break;
    }
    if (!*next) break;
    const pcap::frame& f = **next;
    consume_bytes(f.bytes);
    consume(f.timestamp);
    PYSTACK_FUZZ_REQUIRE(f.truncated() == (f.bytes.size() < f.original_length));
    frames.push_back({f.timestamp, f.original_length, std::vector<byte>(f.bytes.begin(), f.bytes.end())});
    PYSTACK_FUZZ_REQUIRE(frames.size() <= size / 16);
  }
  consume(ended_with_error);

  // What a pcap record can hold: whole seconds in [0, 2^31), as libpcap
  // reads them back signed.
  const auto representable = [](std::chrono::nanoseconds t) {
    return t.count() >= 0 && std::chrono::duration_cast<std::chrono::seconds>(t).count() <= 0x7fffffffLL;
  };

  // Written with nanosecond stamps and a snapshot length no frame exceeds,
  // the copy reads back frame for frame.
  std::uint32_t longest = 1;
  for (const frame_copy& f : frames) longest = std::max<std::uint32_t>(longest, static_cast<std::uint32_t>(f.bytes.size()));
  const memory_file copy("pcap_fuzz_copy");
  {
    auto writer = pcap::writer::create(copy.path(), link, pcap::timestamp_precision::nanoseconds, longest);
    PYSTACK_FUZZ_REQUIRE(writer.has_value());
    for (const frame_copy& f : frames) {
      // The writer refuses, with a typed error, a time a pcap record cannot
      // hold; it must accept every other.
      const auto written = writer->write(f.bytes, f.timestamp, f.original_length);
      PYSTACK_FUZZ_REQUIRE(written.has_value() == representable(f.timestamp));
      if (!written) PYSTACK_FUZZ_REQUIRE(written.error().what == pcap::error::code::timestamp_out_of_range);
    }
    PYSTACK_FUZZ_REQUIRE(writer->flush().has_value());
  }
  auto again = pcap::reader::open(copy.path());
  PYSTACK_FUZZ_REQUIRE(again.has_value() && again->link() == link);
  for (const frame_copy& f : frames) {
    if (!representable(f.timestamp)) continue;
    auto next = again->next();
    PYSTACK_FUZZ_REQUIRE(next.has_value() && next->has_value());
    const pcap::frame& g = **next;
    PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(g.bytes, f.bytes));
    PYSTACK_FUZZ_REQUIRE(g.original_length == f.original_length);
    PYSTACK_FUZZ_REQUIRE(g.timestamp == f.timestamp);
  }
  auto end = again->next();
  PYSTACK_FUZZ_REQUIRE(end.has_value() && !end->has_value());
}

}  // namespace
}  // namespace pystack::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  pystack::fuzz::read_and_copy(data, size);
  return 0;
}

// dissect: one JSON object per frame of a capture, one per line.
//
//   dissect FILE        (pcap or pcapng; Ethernet, raw IP or raw IPv4)
//
// The format is described in tools/dissect.md. Exit status: 0 when every
// frame was read, 1 when the file cannot be opened or ends inside a record
// (the frames before it are printed), 2 on bad usage.
#include <cstdio>
#include <cstring>
#include <string>

#include "pystack/dissect.hpp"
#include "pystack/pcap/file.hpp"

namespace {

constexpr const char* usage =
    "usage: dissect FILE\n"
    "Prints one JSON object per frame of a pcap or pcapng capture, one per line.\n"
    "Fields are described in tools/dissect.md.\n";

int dissect_file(const char* path) {
  auto reader = pystack::pcap::reader::open(path);
  if (!reader) {
    std::fprintf(stderr, "dissect: %s\n", reader.error().message.c_str());
    return 1;
  }
  std::string line;
  for (std::size_t index = 1;; ++index) {
    auto next = reader->next();
    if (!next) {
      std::fflush(stdout);
      std::fprintf(stderr, "dissect: %s\n", next.error().message.c_str());
      return 1;
    }
    if (!next->has_value()) return 0;
    line.clear();
    pystack::dissect::append_frame(line, reader->link(), index, (*next)->bytes);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(usage, stdout);
    return 0;
  }
  if (argc != 2 || argv[1][0] == '-') {
    std::fputs(usage, stderr);
    return 2;
  }
  return dissect_file(argv[1]);
}

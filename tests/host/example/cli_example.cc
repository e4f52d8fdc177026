// A program that runs the shared command line the way every pystack
// program does: its own flags beside the shared ones, its own check of its
// own values through cli::fail, and the resolved options printed one per
// line, so that the tests can check what a user would see and the exit
// status a shell would get.
#include <cstdio>
#include <string>
#include <string_view>

#include "pystack/cli.hpp"

namespace {
constexpr pystack::cli::flag flags[] = {
    {.name = "port", .has_value = true, .help = "TCP port to use", .value_name = "PORT"},
    {.name = "once", .has_value = false, .help = "stop after one connection", .value_name = ""},
};
constexpr pystack::cli::program program{
    .name = "cli_example",
    .summary = "Prints the options every pystack program would run with.",
    .positional = "[WORD...]",
    .flags = flags,
};
}  // namespace

int main(int argc, char** argv) {
  const auto options = pystack::cli::parse_or_exit(argc, argv, program);

  // The program's own value, reported the way the shared ones are.
  const unsigned port = pystack::cli::port_or_exit(options, "port", 7, program, argc, argv);

  std::printf("interface=%s\n", options.interface.name.c_str());
  std::printf("index=%d\n", options.interface.index);
  std::printf("mac=%s\n", options.interface.mac.to_string().c_str());
  std::printf("mtu=%u\n", options.interface.mtu);
  std::printf("ip=%s\n", options.address.to_string().c_str());
  std::printf("gateway=%s\n", options.gateway ? options.gateway->to_string().c_str() : "none");
  std::printf("dns=%s\n", options.dns ? options.dns->to_string().c_str() : "none");
  std::printf("pcap=%s\n", options.pcap ? options.pcap->c_str() : "");
  std::printf("impair=%s\n", options.impair ? options.impair->to_string().c_str() : "");
  std::printf("verbose=%d\n", options.verbose ? 1 : 0);
  std::printf("port=%u\n", port);
  std::printf("once=%d\n", options.has("once") ? 1 : 0);
  for (const auto& word : options.positional) std::printf("word=%s\n", word.c_str());
  return 0;
}

// The original pystack's EchoServer, on the runtime facade `PyStack`, with
// its API as it was: one application shared by every client
// (`bind(8888, self, False)`, `listen(5)`), answering each by its connection
// id. Where the stack in examples/web_server.cc is a type fixed at compile
// time, this one is put together while the program runs, like a Python
// program on the original.
//
//     echo_server --iface veth0 --ip 10.0.0.1/24 [--port 8888] [--pcap run.pcap] [--impair loss=0.05,seed=7]
//
// Stops on SIGINT or SIGTERM (closing connections gracefully) and prints
// what it echoed. examples/demo_netns.sh runs it against two kernel clients
// at once.
#include <atomic>
#include <cstdio>
#include <string>

#include "pystack/cli.hpp"
#include "pystack/device/command_line_device.hpp"
#include "pystack/pystack.hpp"

namespace {
using namespace pystack;

class echo_server : public TCPApplication {
 public:
  // The loop may be inside a callback until release() returns.
  ~echo_server() override { release(); }

  std::atomic<unsigned long> bytes_echoed{0};
  std::atomic<unsigned long> clients{0};

 protected:
  // Shared by every client: the id says whom to answer (the original's
  // `self.send_packet(data, id=id)`).
  void packet_received(bytes_view data, connection_id id) override {
    if (send_packet(data, id)) bytes_echoed += data.size();
  }
  void connection_made(connection_id id) override {
    ++clients;
    std::printf("echo_server: connection %llu opened\n", static_cast<unsigned long long>(id.value));
    std::fflush(stdout);
  }
  // The client is done sending, and all it sent was echoed (on this thread,
  // before this call): our side closes too.
  void peer_closed(connection_id id) override { static_cast<void>(close(id)); }
  void connection_closed(connection_id id, close_reason) override {
    std::printf("echo_server: connection %llu closed\n", static_cast<unsigned long long>(id.value));
    std::fflush(stdout);
  }
};

constexpr cli::flag flags[] = {
    {.name = "port", .has_value = true, .help = "TCP port to echo on (default 8888)", .value_name = "PORT"},
};
constexpr cli::program program{
    .name = "echo_server",
    .summary = "Echoes TCP to every client of one shared application, on the PyStack facade.",
    .positional = "",
    .flags = flags,
};
}  // namespace

int main(int argc, char** argv) {
  const cli::termination_signals signals;  // before any thread: Ctrl-C is never lost
  const cli::options options = cli::parse_or_exit(argc, argv, program);
  const std::uint16_t port = cli::port_or_exit(options, "port", 8888, program, argc, argv);
  auto device = command_line_device::open(options);
  if (!device) {
    std::fprintf(stderr, "echo_server: %s: %s\n", to_string(device.error().what), device.error().message.c_str());
    return 1;
  }
  // On the interface's own address the kernel's sockets hold ports too, and
  // the kernel would answer for ours: PyStack then checks its tables
  // (runtime/host_sockets.hpp) and keeps its answers out (host/kernel_guard.hpp).
  PyStack stack(std::move(*device), command_line_device::config_of(options),
                {.shares_host_address = options.shares_host_address(),
                 .interface_index = static_cast<unsigned>(options.interface.index)});
  echo_server server;
  const auto ready = [&]() -> expected<void, runtime::error> {
    if (auto r = stack.register_tcp_application(server); !r) return r;
    if (auto r = server.bind(port, nullptr, false); !r) return r;
    server.listen(5);
    return {};
  }();
  if (!ready) {
    std::fprintf(stderr, "echo_server: %s\n", ready.error().message().c_str());
    return 1;
  }

  std::printf("echo_server: listening on %s:%u\n", options.address.address.to_string().c_str(), port);
  std::fflush(stdout);
  // Thread mode: callbacks run on the loop's thread while this one waits
  // for a signal; stop() closes the connections (bounded) and joins it.
  if (auto ran = stack.run(false); !ran) {
    std::fprintf(stderr, "echo_server: %s\n", ran.error().message().c_str());
    return 1;
  }
  signals.wait();
  stack.stop();
  std::printf("echo_server: stopped; %lu client(s), %lu bytes echoed\n", server.clients.load(),
              server.bytes_echoed.load());
  return 0;
}

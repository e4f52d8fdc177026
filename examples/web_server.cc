// A web server, a UDP echo and ping, on a stack that is a type, with the
// behaviour the kernel would never let you change: every SYN-ACK carries
// sequence number 5555.
//
// Two of the original pystack's examples in one program: its webserver
// (`bind(80, self, True)`: each client gets a fresh application) and its
// documentation's "Modifying the stack behavior", which subclassed
// TCPSession to send `seqNo = 5555` in `_send_SYNACK`. Here the same change
// is a policy (layers/tcp.hpp lists every policy point) that the compiler
// puts straight into the TCP layer: nothing is looked up per packet.
//
//     web_server --iface veth0 --ip 10.0.0.1/24 [--pcap run.pcap] [--impair loss=0.05,seed=7]
//
// The stack answers on the address of --ip. When that is one of the host's
// (the original's only mode), the kernel sees the same traffic and would
// answer for itself: a RST to every SYN for port 80, a port unreachable for
// every datagram to port 7, a second echo reply to every ping. A
// kernel_guard (host/kernel_guard.hpp) holds those back while the program
// runs, and the kernel removes its rules however the program ends. Stops on
// SIGINT or SIGTERM, closing open connections gracefully, then prints what
// it served. tools/demo.sh runs it against the
// kernel's ping and curl in two network namespaces.
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "pystack/cli.hpp"
#include "pystack/device/command_line_device.hpp"
#include "pystack/host/kernel_guard.hpp"
#include "pystack/layers/arp.hpp"
#include "pystack/layers/ethernet.hpp"
#include "pystack/layers/icmp.hpp"
#include "pystack/layers/ipv4.hpp"
#include "pystack/layers/tcp.hpp"
#include "pystack/layers/udp.hpp"
#include "pystack/stack/stack.hpp"

namespace {
using namespace pystack;

bytes_view as_bytes(std::string_view text) { return {reinterpret_cast<const byte*>(text.data()), text.size()}; }

// The original's `_send_SYNACK` override, as a policy: syn_ack() changes;
// every other point keeps tcp_default_policy's behaviour. The connection
// adopts 5555 as its initial send sequence, so the rest of the conversation
// follows from it (RFC 9293 §3.4).
struct syn_ack_5555 : tcp_default_policy {
  template <class Connection>
  void syn_ack(tcp::repr& header, const Connection&) noexcept {
    header.sequence_number = seq_number(5555);
  }

  // A segment for no connection of ours gets a RST (RFC 9293 §3.10.7.1),
  // except on an address the kernel shares: the ports that are not ours are
  // then the host's, with its own connections on them, and the kernel
  // answers for them itself. Set once, before the stack runs.
  static inline bool answer_for_ports_not_ours = true;
  bool reply_rst_to_unknown() const noexcept { return answer_for_ports_not_ours; }
};

// One per connection: reads the request head, answers with a page that says
// what the stack saw, and closes (HTTP/1.0).
struct web_page {
  static inline unsigned long served = 0;
  std::string request;
  bool answered = false;

  template <class Connection>
  void on_data(Connection& c, bytes_view data) {
    if (answered) return;
    request.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) return;
    answered = true;
    const std::string request_line = request.substr(0, request.find("\r\n"));
    const std::string body = "Hello from pystack, a user-space TCP/IP stack.\n"
                             "You are " + c.remote().address.to_string() + ":" + std::to_string(c.remote().port) +
                             ", this is connection " + std::to_string(c.id().value) + ".\n"
                             "Our SYN-ACK carried sequence number " + std::to_string(c.initial_send_sequence().raw()) +
                             ", chosen by a policy compiled into the stack's type.\n"
                             "You asked: " + request_line + "\n";
    const std::string response = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    // The page fits the send buffer (tcp_limits) whole: send() takes it all.
    if (auto taken = c.send(as_bytes(response)); taken && *taken == response.size()) {
      ++served;
      std::printf("web_server: %s:%u \"%s\" -> 200 (%zu bytes)\n", c.remote().address.to_string().c_str(),
                  c.remote().port, request_line.c_str(), body.size());
      std::fflush(stdout);
    }
    (void)c.close();
  }
};

// Echoes every datagram to its sender (RFC 862).
struct udp_echo {
  unsigned long datagrams = 0;
  template <class Headers, class Socket>
  void on_datagram(const Headers& headers, bytes_view payload, Socket& socket) {
    if (socket.reply(headers, payload)) ++datagrams;
  }
};

using web_stack = Stack<Ethernet<>,
                        IP<ICMP<>, UDP<Port<7, udp_echo>>, TCP<Session<syn_ack_5555>, Listen<80, web_page>>>,
                        ARP<>>::on<command_line_device>;

// Keeps the kernel's own answers out of our ports when it has our address.
expected<std::optional<kernel_guard>, guard_error> guard_if_shared(const cli::options& options) {
  if (!options.shares_host_address()) return std::optional<kernel_guard>{};
  auto guard = kernel_guard::open(options.address.address, static_cast<unsigned>(options.interface.index));
  if (!guard) return guard.error();
  for (auto claimed : {guard->claim(kernel_guard::transport::tcp, 80), guard->claim(kernel_guard::transport::udp, 7),
                       guard->silence_echo_replies(true)}) {
    if (!claimed) return claimed.error();
  }
  return std::optional<kernel_guard>(std::move(*guard));
}

constexpr cli::program program{
    .name = "web_server",
    .summary = "Serves HTTP on port 80, echoes UDP on port 7 and answers ping, from user space; "
               "every SYN-ACK has sequence number 5555.",
    .positional = "",
    .flags = {},
};
}  // namespace

int main(int argc, char** argv) {
  const cli::termination_signals signals;  // before any thread: Ctrl-C is never lost
  const cli::options options = cli::parse_or_exit(argc, argv, program);
  auto device = command_line_device::open(options);
  if (!device) {
    std::fprintf(stderr, "web_server: %s: %s\n", to_string(device.error().what), device.error().message.c_str());
    return 1;
  }
  auto guard = guard_if_shared(options);
  if (!guard) {
    // E.g. a host service holds port 80, or the firewall cannot be changed.
    std::fprintf(stderr, "web_server: %s is an address of this host, and the stack cannot share it: %s\n",
                 options.address.address.to_string().c_str(), guard.error().message.c_str());
    return 1;
  }
  if (*guard) {
    syn_ack_5555::answer_for_ports_not_ours = false;
    std::printf("web_server: the kernel shares %s; its answers for 80/tcp, 7/udp and ping are held back while we run "
                "(nftables table %s, which the kernel removes when we exit)\n",
                options.address.address.to_string().c_str(), (*guard)->table_name().c_str());
  }
  web_stack stack(std::move(*device), steady_clock{}, command_line_device::config_of(options));

  std::printf("web_server: listening on %s (%s, %s), port 80/tcp and 7/udp\n", options.address.address.to_string().c_str(),
              options.interface.name.c_str(), options.interface.mac.to_string().c_str());
  std::fflush(stdout);
  // Thread mode: the loop runs in its own thread while this one waits for
  // a signal; stop() then closes what is open (bounded) and joins it.
  if (auto ran = stack.run(false); !ran) {
    std::fprintf(stderr, "web_server: the stack could not run (error %d)\n", static_cast<int>(ran.error().what));
    return 1;
  }
  signals.wait();
  stack.stop();

  auto& link = stack.link();
  const unsigned long echoed = link.find<udp_echo>().datagrams;
  std::printf("web_server: stopped; %lu page(s) served, %lu UDP datagram(s) echoed, %llu frames in, %llu out\n",
              web_page::served, echoed, static_cast<unsigned long long>(stack.device().stats().frames_received),
              static_cast<unsigned long long>(stack.device().stats().frames_sent));
  if (auto recorded = stack.device().frames_recorded()) {
    [[maybe_unused]] auto flushed = stack.device().flush_capture();
    std::printf("web_server: %llu frames recorded in %s\n", static_cast<unsigned long long>(*recorded),
                options.pcap->c_str());
    if (auto error = stack.device().capture_error()) std::fprintf(stderr, "web_server: capture: %s\n", error->message.c_str());
  }
  return 0;
}

// Our TCP against the Linux kernel's (netns-harness.md): two namespaces made
// here, joined by a veth pair. Our stack runs on one end through libpcap
// (pcap_live), in a namespace where the kernel has no address and so stays
// out of the conversation; the kernel and its tools (python3's socket
// module, curl) are at the other end.
//   (a) kernel clients connect to our listeners: a 300 kB echo both ways
//       with a half close, and an HTTP GET with curl;
//   (b) our client connects to a kernel echo server and exchanges 300 kB.
// Needs root; tagged no-sandbox and exclusive. Every wait is bounded and
// everything made is deleted on every exit path.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pystack/device/pcap_live.hpp"
#include "pystack/layers/arp.hpp"
#include "pystack/layers/ethernet.hpp"
#include "pystack/layers/icmp.hpp"
#include "pystack/layers/ipv4.hpp"
#include "pystack/layers/tcp.hpp"
#include "pystack/stack/stack.hpp"
#include "tests/netns/netns.hpp"

namespace {
using namespace pystack;
using namespace std::chrono_literals;

using netns_test::output_of;

// The same bytes as the Python scripts make: byte i is 'a' + (7i + i/251) mod 26.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}
bytes_view as_bytes(std::string_view s) { return {reinterpret_cast<const byte*>(s.data()), s.size()}; }

// Namespaces and veth pair of one run (tests/netns), with the Python
// scripts it writes; all deleted by the destructor.
class harness : public netns_test::veth_pair {
 public:
  harness()
      : veth_pair("tk", 201, false, mac_for(::getpid()).to_string()),
        tag_(std::to_string(::getpid())),
        stack_mac_(mac_for(::getpid())) {}
  ~harness() {
    for (const auto& f : files_) std::remove(f.c_str());
  }

  ipv4_address kernel_ip() const { return *ipv4_address::parse(peer_ip()); }
  ipv4_address stack_ip() const { return *ipv4_address::parse(veth_pair::stack_ip()); }
  mac_address stack_mac() const { return stack_mac_; }

  // A command run in the kernel's namespace, killed after `seconds`.
  std::string in_kernel(const std::string& command, int seconds) const { return in_peer(command, seconds); }
  // A Python script in a file of this run, for /usr/bin/python3 (the
  // system's, as netns-harness.md asks).
  // STACK_IP and KERNEL_IP in the code become the addresses.
  std::string python(const std::string& name, std::string code) {
    for (const auto& [placeholder, address] : {std::pair{std::string("STACK_IP"), stack_ip().to_string()},
                                               std::pair{std::string("KERNEL_IP"), kernel_ip().to_string()}}) {
      for (auto at = code.find(placeholder); at != std::string::npos; at = code.find(placeholder)) {
        code.replace(at, placeholder.size(), address);
      }
    }
    const std::string path = "/tmp/pystack_tcp_" + tag_ + "_" + name + ".py";
    std::ofstream(path) << code;
    files_.push_back(path);
    return "/usr/bin/python3 " + path;
  }

  // Opens the stack's end of the pair with libpcap, from inside our
  // namespace; the socket stays there when the thread goes back.
  expected<pcap_live, device_error> open_device() {
    pcap_live_options options;
    options.filter = pcap_live::filter_for(stack_mac_, stack_ip());
    return netns_test::in_namespace(stack_ns(), [&] { return pcap_live::open(stack_if(), options); });
  }

 private:
  static mac_address mac_for(int pid) { return mac_address{{0x02, 0x00, 0x00, 0xc9, static_cast<byte>(pid % 250), 0x01}}; }

  std::string tag_;
  mac_address stack_mac_;
  std::vector<std::string> files_;
};

// Echoes everything, holding back what the send buffer refuses until
// on_writable; closes once the peer has and all is echoed.
struct echo_app {
  static inline std::atomic<int> closed{0};
  static inline std::atomic<int> closed_cleanly{0};
  std::string pending;
  bool peer_done = false;

  template <class C>
  void on_data(C& c, bytes_view data) {
    pending.append(reinterpret_cast<const char*>(data.data()), data.size());
    flush(c);
  }
  template <class C>
  void on_writable(C& c) {
    flush(c);
  }
  template <class C>
  void on_peer_closed(C& c) {
    peer_done = true;
    flush(c);
  }
  template <class C>
  void on_closed(C&, close_reason why) {
    if (why == close_reason::closed) ++closed_cleanly;
    ++closed;
  }
  template <class C>
  void flush(C& c) {
    if (!pending.empty()) {
      if (auto taken = c.send(as_bytes(pending))) pending.erase(0, *taken);
    }
    if (pending.empty() && peer_done) (void)c.close();
  }
};

// Answers one HTTP request and closes.
struct http_app {
  std::string request;
  bool answered = false;
  template <class C>
  void on_data(C& c, bytes_view data) {
    request.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (answered || request.find("\r\n\r\n") == std::string::npos) return;
    answered = true;
    const std::string body = "hello from pystack\n";
    const std::string response = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body;
    (void)c.send(as_bytes(response));
    (void)c.close();
  }
};

// Sends `total` bytes of the pattern, reads the echo, closes when it is all back.
struct client_app {
  std::size_t total = 0;
  std::size_t offered = 0;
  std::string received;
  std::atomic<int> connected{0};
  std::atomic<int> done{0};
  std::atomic<int> reason{-1};

  template <class C>
  void on_connect(C& c) {
    connected = 1;
    push(c);
  }
  template <class C>
  void on_writable(C& c) {
    push(c);
  }
  template <class C>
  void on_data(C& c, bytes_view data) {
    received.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (received.size() >= total) (void)c.close();
  }
  template <class C>
  void on_closed(C&, close_reason why) {
    reason = static_cast<int>(why);
    done = 1;
  }
  template <class C>
  void push(C& c) {
    static const std::string data = pattern(300'000);
    while (offered < total) {
      auto taken = c.send(as_bytes(std::string_view(data).substr(offered, total - offered)));
      if (!taken || *taken == 0) return;
      offered += *taken;
    }
  }
};

using tcp_description = TCP<Listen<8080, echo_app>, Listen<8081, http_app>>;
using ip_description = IP<ICMP<>, tcp_description>;
using live_stack = Stack<Ethernet<>, ip_description, ARP<>>::on<pcap_live, steady_clock>;
using tcp_layer = tcp_description::bound<ip_description::bound<live_stack::link_layer>>;

template <class Condition>
bool wait_for(Condition&& condition, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

TEST_CASE("our TCP talks to the Linux kernel's both ways") {
  REQUIRE(::geteuid() == 0);  // network namespaces need root (CI and developers run as root)
  harness net;
  INFO("setup failed at: " << net.failed_step());
  REQUIRE(net.ready());
  auto device = net.open_device();
  INFO("device: " << (device ? std::string("open") : device.error().message));
  REQUIRE(device);

  interface_config config;
  config.mac = net.stack_mac();
  config.address = net.stack_ip();
  config.prefix_length = 24;
  live_stack stack(std::move(*device), steady_clock{}, config);
  REQUIRE(stack.run(false));
  struct stopper {
    live_stack& s;
    ~stopper() { s.stop(); }
  } stop_at_end{stack};

  const std::string ip = net.stack_ip().to_string();

  SECTION("(a) a kernel client sends 300 kB to our echo listener, half-closes, reads it all back") {
    echo_app::closed = 0;
    echo_app::closed_cleanly = 0;
    const std::string client = net.python("echo_client", R"(
import socket, threading
N = 300000
data = bytes(97 + (i * 7 + i // 251) % 26 for i in range(N))
s = socket.create_connection(("STACK_IP", 8080), timeout=10)
got = bytearray()
def reader():
    while True:
        b = s.recv(65536)
        if not b:
            break
        got.extend(b)
t = threading.Thread(target=reader)
t.start()
s.sendall(data)
s.shutdown(socket.SHUT_WR)
t.join(15)
s.close()
print("OK" if bytes(got) == data else "MISMATCH", len(got))
)");
    const std::string out = output_of(net.in_kernel(client, 25));
    INFO("client printed: " << out);
    CHECK(out.find("OK 300000") != std::string::npos);
    CHECK(wait_for([] { return echo_app::closed.load() == 1; }, 5000ms));
    CHECK(echo_app::closed_cleanly == 1);
  }

  SECTION("(a) curl GETs a page from our HTTP listener") {
    const std::string out = output_of(net.in_kernel("curl -s -m 8 http://" + ip + ":8081/hello", 10));
    INFO("curl printed: " << out);
    CHECK(out == "hello from pystack\n");
  }

  SECTION("(b) our client exchanges 300 kB with a kernel echo server") {
    const std::string server = net.python("echo_server", R"(
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("KERNEL_IP", 9000))
srv.listen(1)
print("READY", flush=True)
srv.settimeout(15)
c, _ = srv.accept()
c.settimeout(15)
n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    c.sendall(b)
    n += len(b)
c.close()
print("SERVED", n, flush=True)
)");
    FILE* pipe = ::popen((net.in_kernel(server, 30) + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    struct closer {
      FILE* p;
      std::string rest;
      ~closer() { ::pclose(p); }
    } server_process{pipe, {}};  // pclose waits for the server, which `timeout` bounds
    char line[256] = {};
    REQUIRE(std::fgets(line, sizeof line, pipe) != nullptr);
    REQUIRE(std::string(line).starts_with("READY"));

    client_app app;
    app.total = 300'000;
    std::atomic<int> connect_result{-1};
    stack.execute([&] {
      auto id = stack.layer<tcp_layer>().connect(net.kernel_ip(), 9000, app);
      connect_result = id ? 0 : static_cast<int>(id.error().what);
    });
    REQUIRE(wait_for([&] { return connect_result.load() != -1; }, 2000ms));
    REQUIRE(connect_result == 0);
    REQUIRE(wait_for([&] { return app.done.load() == 1; }, 20000ms));
    CHECK(app.connected == 1);
    CHECK(app.reason == static_cast<int>(close_reason::closed));
    CHECK(app.received == pattern(300'000));
    while (std::fgets(line, sizeof line, pipe) != nullptr) server_process.rest += line;
    INFO("server printed: " << server_process.rest);
    CHECK(server_process.rest.find("SERVED 300000") != std::string::npos);
  }

  // Whatever the section, the kernel's checksums were complete and nothing
  // arrived that our layer could not place. Read on the loop thread.
  std::atomic<int> checked{0};
  std::atomic<std::uint64_t> bad_checksum{1}, malformed{1};
  stack.execute([&] {
    bad_checksum = stack.layer<tcp_layer>().stats().bad_checksum;
    malformed = stack.layer<tcp_layer>().stats().malformed;
    checked = 1;
  });
  REQUIRE(wait_for([&] { return checked.load() == 1; }, 2000ms));
  CHECK(bad_checksum == 0);
  CHECK(malformed == 0);
}

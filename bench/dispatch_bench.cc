// Zero overhead, shown rather than claimed (issue 3): a frame taken from the
// bytes a device hands over to an application callback, three ways.
//
// - static:      `Stack<Ethernet<>, IP<ICMP<>, UDP<...>>, ARP<>>::on<null_device,
//                steady_clock>` (TCP<...> instead of UDP<...> for the TCP path),
//                fed with `stack.link().receive(headers<>(t), frame)`: no device
//                I/O inside the measurement.
// - facade:      the runtime facade's erased layers, put together as
//                `PyStack::compose` does it (runtime::ethernet_layer, ip_layer,
//                arp_layer, icmp_layer, udp_layer / the runtime TCP layer), fed
//                through the runtime Ethernet layer's `receive_frame`.
// - handwritten: the same work with no framework: the same checked views
//                (`eth::view`, `ipv4::view`, `udp::view`, `tcp::view`), the same
//                checksum verifications, the same destination filters (the
//                layers' default policies written out), the same demultiplexing
//                decisions in the same order, the same counters, and for TCP the
//                same sequence acceptance, ACK processing, window update and the
//                same ACK sent back (RFC 9293 §3.10.7.4), and the same
//                application body.
//
// Paths (`--path`):
// - udp: Ethernet -> IPv4 -> UDP -> port 7 -> the application's callback.
// - tcp: Ethernet -> IPv4 -> TCP -> 4-tuple -> an ESTABLISHED connection ->
//        in-order data -> the application's `on_data`, then the ACK the layer
//        sends for every segment (the default policy's ack_delay is zero).
//
// Frames: a ring of 64 frames to our MAC and address with 1 to 64 bytes of
// payload (i * 37 mod 64 + 1, mean 32.5), walked in order, one after another
// in memory at a placement that changes from one timed run to the next (see
// `ring`). UDP: to port 7 from 64 different source ports. TCP: data segments
// of one connection (set up by a scripted handshake: SYN, our SYN-ACK, ACK),
// whose sequence numbers the harness rewrites before each frame (with an
// RFC 1624 checksum update) so that every one is the next in order and is
// accepted and delivered. Small payloads are the strict test: the checksum
// over the payload is the same work in every variant, so larger ones only
// bring the ratios closer to 1.
//
// Before anything is measured, every variant is fed the same good and bad
// frames (wrong MAC or address, broadcast, bad checksums, truncations,
// fragments, unknown EtherType, protocol or port; for TCP old, partly old,
// out-of-order and out-of-window data, no ACK bit, an ACK of what was never
// sent, a broadcast destination), and the program refuses to run unless all
// variants deliver the same bytes, count the same drops at the same layer and
// send the same ACKs (byte for byte but the IPv4 identification and header
// checksum, which come from each stack's own counter).
//
// Each variant is compiled in its own translation unit (this file, once per
// `DISPATCH_PART`, see bench/BUILD.bazel), so that GCC's inlining decisions
// for one (how often a wire function is used, how large a function grew) do
// not change another's: in one unit, the facade's extra callers of
// `udp::view::verify_checksum` made GCC keep it out of line for the
// hand-written code too. Each variant is entered through a function pointer
// (`variant_ops`), the same call for all.
//
// Two modes:
//   dispatch_bench [--benchmark_...]                        Google Benchmark, ns per frame
//   dispatch_bench --variant=V --path=P --frames=N          N frames through variant V, once
// The second is for callgrind: bench/dispatch_compare.sh runs it with N and
// with 0 frames and divides the difference by N. Variant `none` runs the same
// loop over the same frames (sequence numbers rewritten) without receiving
// them: the harness's own cost, subtracted from the others.

#ifndef DISPATCH_PART
#error "compile this file once per part, -DDISPATCH_PART=0 (main) to 6 (see bench/BUILD.bazel)"
#endif
// The parts.
#define DISPATCH_MAIN 0
#define DISPATCH_STATIC_UDP 1
#define DISPATCH_FACADE_UDP 2
#define DISPATCH_HANDWRITTEN_UDP 3
#define DISPATCH_STATIC_TCP 4
#define DISPATCH_FACADE_TCP 5
#define DISPATCH_HANDWRITTEN_TCP 6

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pystack/layers/arp.hpp"
#include "pystack/layers/ethernet.hpp"
#include "pystack/layers/icmp.hpp"
#include "pystack/layers/ipv4.hpp"
#include "pystack/layers/tcp.hpp"
#include "pystack/layers/udp.hpp"
#include "pystack/stack/stack.hpp"
#include "pystack/wire/checksum.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"
#include "pystack/wire/udp.hpp"
#if DISPATCH_PART == DISPATCH_FACADE_UDP || DISPATCH_PART == DISPATCH_FACADE_TCP
#include "pystack/runtime/ethernet.hpp"
#include "pystack/runtime/header_set.hpp"
#include "pystack/runtime/layers.hpp"
#include "pystack/runtime/tcp.hpp"
#include "pystack/runtime/tcp_application.hpp"
#include "pystack/runtime/udp_application.hpp"
#endif
#if DISPATCH_PART == DISPATCH_MAIN
#include <benchmark/benchmark.h>
#endif

namespace dispatch {

using namespace pystack;

// ---------------------------------------------------------------------------
// Shared by every part: addresses, frames, what a variant exports.

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "dispatch_bench: %s\n", what.c_str());
  std::exit(1);
}

inline const mac_address our_mac = *mac_address::parse("02:00:00:00:00:01");
inline const mac_address peer_mac = *mac_address::parse("02:00:00:00:00:02");
inline const ipv4_address our_ip = *ipv4_address::parse("10.9.0.1");
inline const ipv4_address peer_ip = *ipv4_address::parse("10.9.0.2");
inline constexpr std::uint16_t udp_port = 7;

// The TCP connection: the peer's port and ISN, our port, and our ISN, which
// every variant uses (the static and facade stacks through a Session policy)
// so that they all see the same frames.
inline constexpr std::uint16_t tcp_port = 80;
inline constexpr std::uint16_t peer_tcp_port = 40000;
inline constexpr std::uint32_t peer_isn = 1000000;
inline constexpr std::uint32_t our_isn = 0x10000000;
inline constexpr std::uint16_t peer_mss = 1460;
inline constexpr std::uint16_t peer_window = 65535;

inline interface_config our_config() { return interface_config{.mac = our_mac, .address = our_ip, .prefix_length = 24}; }

using frame_bytes = std::vector<byte>;

inline frame_bytes ethernet_frame(mac_address destination, std::uint16_t ethertype, bytes_view payload) {
  frame_bytes f(eth::header_size + payload.size());
  std::copy(payload.begin(), payload.end(), f.begin() + eth::header_size);
  eth::repr{.destination = destination, .source = peer_mac, .ethertype = ethertype}.emit(f);
  return f;
}

inline frame_bytes ipv4_frame(std::uint8_t protocol, bytes_view transport, ipv4_address destination = our_ip,
                              mac_address link_destination = our_mac) {
  ipv4::repr ip{.source = peer_ip, .destination = destination};
  ip.protocol = protocol;
  frame_bytes datagram(ip.size() + transport.size());
  std::copy(transport.begin(), transport.end(), datagram.begin() + static_cast<std::ptrdiff_t>(ip.size()));
  ip.emit(datagram);
  return ethernet_frame(link_destination, eth::ethertype::ipv4, datagram);
}

inline frame_bytes payload_bytes(std::size_t size, std::size_t seed) {
  frame_bytes payload(size);
  for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<byte>(seed * 31 + i * 7);
  return payload;
}

inline frame_bytes udp_datagram(std::uint16_t source_port, std::uint16_t destination_port, bytes_view payload,
                                ipv4_address destination = our_ip) {
  frame_bytes d(udp::header_size + payload.size());
  std::copy(payload.begin(), payload.end(), d.begin() + udp::header_size);
  udp::repr{.source_port = source_port, .destination_port = destination_port}.emit(d, peer_ip, destination);
  return d;
}

// A segment from the peer to our port.
struct segment_spec {
  std::uint32_t seq = peer_isn + 1;
  std::uint32_t ack = our_isn + 1;
  tcp::flags flags = tcp::flags::ack;
  bytes_view payload{};
  bool mss_option = false;
  ipv4_address destination = our_ip;
  mac_address link_destination = our_mac;
  std::uint16_t destination_port = tcp_port;
};

inline frame_bytes tcp_frame(const segment_spec& s) {
  tcp::repr header{.source_port = peer_tcp_port,
                   .destination_port = s.destination_port,
                   .sequence_number = seq_number(s.seq),
                   .ack_number = seq_number(s.ack),
                   .flags = s.flags,
                   .window = peer_window};
  if (s.mss_option) static_cast<void>(header.options.push_mss(peer_mss));
  frame_bytes segment(header.size() + s.payload.size());
  std::copy(s.payload.begin(), s.payload.end(), segment.begin() + static_cast<std::ptrdiff_t>(header.size()));
  header.emit(segment, peer_ip, s.destination);
  return ipv4_frame(tcp::ip_protocol, segment, s.destination, s.link_destination);
}

// The handshake every TCP variant is put through when it is made: the
// peer's SYN (MSS option only, so no window scaling), then its ACK of our
// SYN-ACK.
inline frame_bytes tcp_syn() {
  return tcp_frame({.seq = peer_isn, .ack = 0, .flags = tcp::flags::syn, .mss_option = true});
}
inline frame_bytes tcp_handshake_ack() { return tcp_frame({}); }

// Where the harness rewrites a TCP frame's sequence number (no VLAN tag, no
// IPv4 options in these frames).
inline constexpr std::size_t tcp_offset = eth::header_size + ipv4::header_size;

// What every variant's application does with a delivery: the same few
// instructions everywhere, reading what a real application would (the
// sender's port, the payload).
struct delivery_sink {
  std::uint64_t deliveries = 0;
  std::uint64_t bytes = 0;
  std::uint64_t fold = 0;
  void take(std::uint16_t source_port, bytes_view payload) noexcept {
    ++deliveries;
    bytes += payload.size();
    fold += (payload.size() ^ source_port) + (payload.empty() ? 0u : payload.back());
  }
};

// The TCP counters the hand-written receiver keeps, as tcp_stats names them.
struct tcp_counts {
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;
  std::uint64_t bad_checksum = 0;
  std::uint64_t not_unicast = 0;
  std::uint64_t unacceptable = 0;
  std::uint64_t no_ack_flag = 0;
  std::uint64_t ack_too_new = 0;
  std::uint64_t ack_too_old = 0;
  std::uint64_t old_data = 0;
  std::uint64_t beyond_window = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t segments_sent = 0;
  friend bool operator==(const tcp_counts&, const tcp_counts&) = default;
};

inline tcp_counts counts_of(const tcp_stats& s) {
  return {s.received,    s.malformed,   s.bad_checksum, s.not_unicast, s.unacceptable,  s.no_ack_flag,
          s.ack_too_new, s.ack_too_old, s.old_data,     s.beyond_window, s.out_of_order, s.segments_sent};
}

// Every counter of the layers on the path, for comparing variants.
struct layer_counts {
  ethernet_stats ethernet{};
  ipv4_stats ip{};
  udp_stats udp{};
  tcp_counts tcp{};
};

// A device that never has a frame and accepts every frame it is given: the
// frames come straight from the benchmark. It records what is sent only
// when asked (the agreement checks).
struct null_device {
  device_stats counters;
  std::vector<frame_bytes>* log = nullptr;
  bool transmit(bytes_view frame) {
    ++counters.frames_sent;
    if (log != nullptr) log->emplace_back(frame.begin(), frame.end());
    return true;
  }
  template <class Handler>
  std::size_t receive(Handler&&, std::size_t) noexcept {
    return 0;
  }
  int wait_fd() const noexcept { return -1; }
  std::optional<instant> next_delivery() const noexcept { return std::nullopt; }
  const device_stats& stats() const noexcept { return counters; }
};
static_assert(device<null_device>);

// Our ISN fixed, so that every variant sees the same segments; otherwise the
// default policy (RFC 6528's ISN is the only point it changes).
struct fixed_isn_policy : tcp_default_policy {
  seq_number initial_sequence(const four_tuple&, instant) noexcept { return seq_number(our_isn); }
};

// What each translation unit exports: one variant on one path.
struct variant_ops {
  const char* name;
  void* (*create)();                    // set up (for TCP: the connection established)
  void (*destroy)(void*);
  void (*receive)(void*, bytes_view);   // one frame, bytes to application
  void (*run)(void*, void (*)(void*), void*);  // runs body(context) where the variant must be driven
  delivery_sink (*sink)(void*);
  layer_counts (*counts)(void*);
  void (*log_sent)(void*, std::vector<frame_bytes>*);  // record sent frames there (null: stop)
};

template <class T>
constexpr variant_ops ops_for(const char* name) {
  return {
      name,
      []() -> void* { return new T; },
      [](void* p) { delete static_cast<T*>(p); },
      [](void* p, bytes_view frame) { static_cast<T*>(p)->receive(frame); },
      [](void* p, void (*body)(void*), void* context) {
        if constexpr (requires(T& t) { t.run(body, context); }) {
          static_cast<T*>(p)->run(body, context);
        } else {
          body(context);
        }
      },
      [](void* p) { return static_cast<T*>(p)->sink(); },
      [](void* p) { return static_cast<T*>(p)->counts(); },
      [](void* p, std::vector<frame_bytes>* log) { static_cast<T*>(p)->log_sent(log); },
  };
}

extern const variant_ops static_udp_ops, facade_udp_ops, handwritten_udp_ops;
extern const variant_ops static_tcp_ops, facade_tcp_ops, handwritten_tcp_ops;

}  // namespace dispatch

// ===========================================================================
#if DISPATCH_PART == DISPATCH_STATIC_UDP || DISPATCH_PART == DISPATCH_STATIC_TCP
// Variant 1: the static stack.

namespace dispatch {
namespace {

struct static_udp_application {
  delivery_sink sink;
  template <class Headers, class Socket>
  void on_datagram(const Headers& headers, bytes_view payload, Socket&) noexcept {
    sink.take(headers.template get<udp::view>().source_port(), payload);
  }
};

struct static_tcp_application {
  delivery_sink sink;
  template <class Connection>
  void on_data(Connection& connection, bytes_view data) noexcept {
    sink.take(connection.remote().port, data);
  }
};

#if DISPATCH_PART == DISPATCH_STATIC_UDP
using transport = UDP<Port<udp_port, static_udp_application>>;
using application = static_udp_application;
#else
using transport = TCP<Session<fixed_isn_policy>, Listen<tcp_port, static_tcp_application, instance::shared>>;
using application = static_tcp_application;
#endif
using ip_description = IP<ICMP<>, transport>;
using stack_type = Stack<Ethernet<>, ip_description, ARP<>>::on<null_device, steady_clock>;
using ip_layer = ip_description::bound<stack_type::link_layer>;
using transport_layer = transport::bound<ip_layer>;
using arp_layer = ARP<>::bound<stack_type::link_layer>;

class static_instance {
 public:
  static_instance() : stack_(null_device{}, steady_clock{}, our_config()) {
#if DISPATCH_PART == DISPATCH_STATIC_TCP
    // The peer is a known neighbour (as after an ARP exchange), so that our
    // segments go out at once instead of waiting for resolution. The entry
    // lives 60 s (arp_default_policy), as the hand-written one does: keep
    // each timed run shorter than that.
    stack_.link().find<arp_layer>().insert(peer_ip, peer_mac);
    stack_.link().start();
    receive(tcp_syn());
    receive(tcp_handshake_ack());
    bool established = false;
    transport_().for_each_connection([&](auto& c) { established = c.state() == tcp_state::established; });
    if (!established) fail("static stack: the scripted handshake did not establish the connection");
#endif
  }

  void receive(bytes_view frame) { stack_.link().receive(headers<>(instant{}), frame); }

  delivery_sink sink() { return stack_.link().find<application>().sink; }
  layer_counts counts() {
    layer_counts c{.ethernet = stack_.link().stats(), .ip = stack_.link().find<ip_layer>().stats()};
#if DISPATCH_PART == DISPATCH_STATIC_TCP
    c.tcp = counts_of(transport_().stats());
#else
    c.udp = transport_().stats();
#endif
    return c;
  }
  void log_sent(std::vector<frame_bytes>* log) { stack_.device().log = log; }

 private:
  transport_layer& transport_() { return stack_.link().find<ip_layer>().find<transport_layer>(); }

  stack_type stack_;
};

}  // namespace

#if DISPATCH_PART == DISPATCH_STATIC_UDP
const variant_ops static_udp_ops = ops_for<static_instance>("static");
#else
const variant_ops static_tcp_ops = ops_for<static_instance>("static");
#endif

}  // namespace dispatch

#endif

// ===========================================================================
#if DISPATCH_PART == DISPATCH_FACADE_UDP
// Variant 2: the runtime facade, UDP.
//
// Put together as `PyStack::compose` does it ("Stack crafting"): a runtime
// Ethernet layer on the null device, IP and ARP registered on it, ICMP and
// UDP on IP, and a UDPApplication bound to port 7 whose `packet_received` is
// the same application body. Frames go in through the runtime Ethernet
// layer's `receive_frame` (the facade's entry for frames that do not come
// from its device; `receive` with a header_set is the same call), all from
// inside one `call()`, so that each runs inline as on the loop thread
// instead of taking the command lock.

namespace dispatch {
namespace {

class facade_udp_application final : public UDPApplication {
 public:
  ~facade_udp_application() override { static_cast<void>(close()); }
  void packet_received(bytes_view data, const runtime::header_set& headers) override {
    sink.take(headers.udp()->source_port(), data);
  }
  delivery_sink sink;
};

class facade_udp_instance {
 public:
  facade_udp_instance() : eth_(null_device{}, our_config()) {
    const bool composed = eth_.register_layer(ip_) && eth_.register_layer(arp_) && ip_.register_layer(icmp_) &&
                          ip_.register_layer(udp_) && udp_.register_layer(app_) && app_.bind(udp_port);
    if (!composed) fail("facade: the runtime stack could not be put together");
    eth_.start();
  }

  void run(void (*body)(void*), void* context) {
    auto command = [&] { body(context); };
    eth_.call(command);
  }
  void receive(bytes_view frame) { eth_.receive_frame(instant{}, frame); }

  delivery_sink sink() { return app_.sink; }
  layer_counts counts() { return {.ethernet = eth_.stats(), .ip = ip_.stats(), .udp = udp_.stats()}; }
  void log_sent(std::vector<frame_bytes>* log) {
    if (auto* device = eth_.device_if<null_device>()) device->log = log;
  }

 private:
  // In the order PyStack keeps them: the uppers are destroyed first.
  runtime::ethernet_layer eth_;
  runtime::ip_layer ip_;
  runtime::arp_layer arp_;
  runtime::icmp_layer icmp_;
  runtime::udp_layer udp_;
  facade_udp_application app_;
};

}  // namespace

const variant_ops facade_udp_ops = ops_for<facade_udp_instance>("facade");

}  // namespace dispatch

#endif

// ===========================================================================
#if DISPATCH_PART == DISPATCH_FACADE_TCP
// Variant 2: the runtime facade, TCP: as PyStack composes it, with
// `runtime::basic_tcp_layer<fixed_isn_policy>` (what set_custom_session
// installs) and a TCPApplication bound to port 80 in shared mode
// (`bind(80)`: the application serves every client), whose
// `packet_received` is the same application body. The peer's port, which
// the static application reads from the connection, is remembered when the
// connection is made.

namespace dispatch {
namespace {

class facade_tcp_application final : public TCPApplication {
 public:
  ~facade_tcp_application() override { release(); }
  delivery_sink sink;

 protected:
  void connection_made(connection_id) override { peer_port_ = get_conn_addr().second; }
  void packet_received(bytes_view data, connection_id) override { sink.take(peer_port_, data); }

 private:
  std::uint16_t peer_port_ = 0;
};

class facade_tcp_instance {
 public:
  facade_tcp_instance() : eth_(null_device{}, our_config()) {
    const bool composed = eth_.register_layer(ip_) && eth_.register_layer(arp_) && ip_.register_layer(icmp_) &&
                          ip_.register_layer(tcp_) && tcp_.register_layer(app_) && app_.bind(tcp_port);
    if (!composed) fail("facade: the runtime stack could not be put together");
    app_.listen(5);
    arp_.insert(peer_ip, peer_mac);  // as for the static stack: a known neighbour
    eth_.start();
    run_here([&] {
      receive(tcp_syn());
      receive(tcp_handshake_ack());
    });
    if (tcp_.tcp_connection_count() != 1 || !app_.connected()) {
      fail("facade: the scripted handshake did not establish the connection");
    }
  }

  void run(void (*body)(void*), void* context) {
    auto command = [&] { body(context); };
    eth_.call(command);
  }
  void receive(bytes_view frame) { eth_.receive_frame(instant{}, frame); }

  delivery_sink sink() { return app_.sink; }
  layer_counts counts() {
    return {.ethernet = eth_.stats(), .ip = ip_.stats(), .tcp = counts_of(tcp_.static_implementation().stats())};
  }
  void log_sent(std::vector<frame_bytes>* log) {
    if (auto* device = eth_.device_if<null_device>()) device->log = log;
  }

 private:
  template <class F>
  void run_here(F&& f) {
    eth_.call(f);
  }

  runtime::ethernet_layer eth_;
  runtime::ip_layer ip_;
  runtime::arp_layer arp_;
  runtime::icmp_layer icmp_;
  runtime::basic_tcp_layer<fixed_isn_policy> tcp_;
  facade_tcp_application app_;
};

}  // namespace

const variant_ops facade_tcp_ops = ops_for<facade_tcp_instance>("facade");

}  // namespace dispatch

#endif

// ===========================================================================
#if DISPATCH_PART == DISPATCH_HANDWRITTEN_UDP || DISPATCH_PART == DISPATCH_HANDWRITTEN_TCP
// Variant 3: hand-written parse-and-switch.
//
// Mirrors Ethernet<>::bound::receive, IP<>::bound::receive and
// UDP<>::bound::receive / TCP<>::bound::receive with the default policies
// written out (ethernet_default_policy, ipv4_default_policy,
// tcp_default_policy): the same views, the same checks in the same order, the
// same counters. What it does not have is everything the framework adds: no
// headers<> context, no layer objects reaching their configuration through
// references, no Hana fold, no policy objects, no frame pool, no hooks. The
// ARP and ICMP arms only count: the measured frames never take them.
//
// TCP: a receiver for an ESTABLISHED connection, following RFC 9293
// §3.10.7.4 as layers/tcp.hpp does for the steps a data segment takes: the
// 4-tuple looked up through the layer's one-entry cache of the last
// connection found (4.3BSD-Reno's tcp_last_inpcb), then the hash table; the
// acceptability test (four cases), SYN, the ACK checks of RFC 5961 §5.2 and
// the window update (SND.WL1/WL2), text trimmed to the window, in-order
// delivery, an ACK for every segment with the window field computed as the
// layer does, sent through the same IPv4 and Ethernet emit with the ARP
// entry's lifetime checked against the clock. Differences, none on the
// measured path: it knows one state (others are counted, not processed), it
// does not hold segments that arrive ahead of a gap (it counts them and
// asks for the gap with an ACK, as the layer does, but drops them, RFC 9293
// §3.10.7.4 allows either) and it sends no data.

namespace dispatch {
namespace {

class handwritten_instance {
 public:
  handwritten_instance() : config_(our_config()) {
#if DISPATCH_PART == DISPATCH_HANDWRITTEN_TCP
    // The state the layer reaches after the handshake (SYN with MSS 1460 and
    // no window scale; our SYN-ACK offered min(256 KiB, 0xffff); their ACK).
    neighbour_ = {peer_ip, peer_mac, clock_.now() + std::chrono::seconds(60)};
    auto made = std::make_unique<connection>();
    connection& c = *made;
    c.tuple = four_tuple{{our_ip, tcp_port}, {peer_ip, peer_tcp_port}};
    c.rcv_nxt = seq_number(peer_isn + 1);
    c.rcv_adv = c.rcv_nxt + 0xffff;
    c.snd_una = c.snd_nxt = c.snd_max = seq_number(our_isn + 1);
    c.snd_wnd = c.max_snd_wnd = peer_window;
    c.snd_wl1 = seq_number(peer_isn + 1);
    c.snd_wl2 = seq_number(our_isn + 1);
    index_[c.tuple] = &c;
    connection_ = std::move(made);
#endif
  }

  void receive(bytes_view bytes) {
    ++ethernet_.received;
    const auto frame = eth::view::checked(bytes);
    if (!frame) {
      ++ethernet_.malformed;
      return;
    }
    const mac_address destination = frame->destination();
    if (!(destination == config_.mac || destination.is_multicast())) {
      ++ethernet_.not_for_us;
      return;
    }
    switch (frame->ethertype()) {
      case eth::ethertype::ipv4:
        receive_ipv4(frame->payload());
        return;
      case eth::ethertype::arp:
        ++arp_frames_;
        return;
      default:
        ++ethernet_.unknown_ethertype;
        return;
    }
  }

  delivery_sink sink() const { return sink_; }
  layer_counts counts() const { return {ethernet_, ip_, udp_, tcp_}; }
  void log_sent(std::vector<frame_bytes>* log) { device_.log = log; }

 private:
  void receive_ipv4(bytes_view bytes) {
    ++ip_.received;
    const auto datagram = ipv4::view::checked(bytes);
    if (!datagram) {
      ++ip_.malformed;
      return;
    }
    if (!datagram->verify_checksum()) {
      ++ip_.bad_checksum;
      return;
    }
    const ipv4_address destination = datagram->destination();
    if (!(destination == config_.address || destination.is_broadcast() || destination == config_.subnet_broadcast())) {
      ++ip_.not_for_us;
      return;
    }
    if (datagram->is_fragment()) {
      ++ip_.fragments_dropped;
      return;
    }
    switch (datagram->protocol()) {
      case icmp::ip_protocol:
        ++icmp_messages_;
        return;
#if DISPATCH_PART == DISPATCH_HANDWRITTEN_UDP
      case udp::ip_protocol:
        receive_udp(*datagram, datagram->payload());
        return;
#else
      case tcp::ip_protocol:
        receive_tcp(*datagram, datagram->payload());
        return;
#endif
      default:
        ++ip_.unknown_protocol;
        return;
    }
  }

#if DISPATCH_PART == DISPATCH_HANDWRITTEN_UDP
  void receive_udp(const ipv4::view& ip, bytes_view bytes) {
    ++udp_.received;
    const auto datagram = udp::view::checked(bytes);
    if (!datagram) {
      ++udp_.malformed;
      return;
    }
    if (!datagram->verify_checksum(ip.source(), ip.final_destination())) {
      ++udp_.bad_checksum;
      return;
    }
    switch (datagram->destination_port()) {
      case udp_port:
        sink_.take(datagram->source_port(), datagram->payload());
        return;
      default:
        ++udp_.no_listener;
        return;
    }
  }
#else
  struct connection {
    four_tuple tuple;
    tcp_state state = tcp_state::established;
    seq_number snd_una, snd_nxt, snd_max, snd_wl1, snd_wl2;
    std::uint32_t snd_wnd = 0;
    std::uint32_t max_snd_wnd = 0;
    seq_number rcv_nxt, rcv_adv;
    std::uint8_t snd_scale = 0;
    std::uint8_t rcv_scale = 0;
    bool ack_now = false;
    std::uint64_t segments_received = 0;
    std::uint64_t bytes_received = 0;
  };

  // RFC 9293 §3.10.7.4: the connection's segment.
  void receive_tcp(const ipv4::view& ip, bytes_view bytes) {
    ++tcp_.received;
    const auto segment = tcp::view::checked(bytes);
    if (!segment) {
      ++tcp_.malformed;
      return;
    }
    if (!segment->verify_checksum(ip.source(), ip.final_destination())) {
      ++tcp_.bad_checksum;
      return;
    }
    const ipv4_address to = ip.destination();
    const ipv4_address from = ip.source();
    // RFC 1122 §4.2.3.10: no TCP to or from broadcast or multicast.
    if (to.is_broadcast() || to.is_multicast() || to == config_.subnet_broadcast() || from.is_broadcast() ||
        from.is_multicast() || from.is_unspecified()) {
      ++tcp_.not_unicast;
      return;
    }
    const four_tuple tuple{{to, segment->destination_port()}, {from, segment->source_port()}};
    // The layer's one-entry lookup cache (4.3BSD-Reno's tcp_last_inpcb),
    // tried first: the last connection found, compared by its 4-tuple.
    if (last_found_ != nullptr && last_found_->tuple == tuple) {
      process(*last_found_, *segment);
      return;
    }
    const auto found = index_.find(tuple);
    if (found == index_.end()) {
      ++no_connection_;
      return;
    }
    last_found_ = found->second;
    process(*found->second, *segment);
  }

  void process(connection& c, const tcp::view& segment) {
    ++c.segments_received;
    if (c.state != tcp_state::established) {
      ++other_state_;
      return;
    }
    const tcp::flags f = segment.flags();
    const seq_number seq = segment.sequence_number();
    bytes_view data = segment.payload();
    const bool syn = f.has(tcp::flags::syn);
    bool fin = f.has(tcp::flags::fin);
    const auto length = static_cast<std::uint32_t>(data.size() + syn + fin);
    if (f.has(tcp::flags::rst)) {
      ++rst_not_handled_;
      return;
    }
    // First: the acceptability test.
    const std::uint32_t window = window_now(c);
    if (!acceptable(seq, length, c.rcv_nxt, window)) {
      ++tcp_.unacceptable;
      send_ack(c);
      return;
    }
    // Fourth: SYN (RFC 5961 §4.2: a challenge ACK).
    if (syn) {
      send_ack(c);
      return;
    }
    // Fifth: ACK, acceptable when SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT (RFC 5961 §5.2).
    if (!f.has(tcp::flags::ack)) {
      ++tcp_.no_ack_flag;
      return;
    }
    const seq_number ack = segment.ack_number();
    if (ack > c.snd_max) {
      ++tcp_.ack_too_new;
      send_ack(c);
      return;
    }
    if (ack < c.snd_una - static_cast<std::int64_t>(std::max<std::uint32_t>(c.max_snd_wnd, 1))) {
      ++tcp_.ack_too_old;
      send_ack(c);
      return;
    }
    const std::uint32_t advertised = static_cast<std::uint32_t>(segment.window()) << c.snd_scale;
    const seq_number old_una = c.snd_una;
    if (ack > c.snd_una) {
      c.snd_una = ack;  // nothing of ours is outstanding: we send no data
      if (c.snd_nxt < ack) c.snd_nxt = ack;
    }
    if (old_una <= ack && (c.snd_wl1 < seq || (c.snd_wl1 == seq && c.snd_wl2 <= ack))) {
      c.snd_wnd = advertised;
      c.snd_wl1 = seq;
      c.snd_wl2 = ack;
      c.max_snd_wnd = std::max(c.max_snd_wnd, c.snd_wnd);
    }
    // Seventh: text, only the new part and only what fits the window.
    seq_number at = seq;
    if (at < c.rcv_nxt) {
      const auto old = static_cast<std::size_t>(c.rcv_nxt - at);
      if (old > data.size()) fin = false;
      if (old >= data.size() && !data.empty()) ++tcp_.old_data;
      data = data.subspan(std::min(old, data.size()));
      at = c.rcv_nxt;
    }
    const seq_number right = c.rcv_nxt + static_cast<std::int64_t>(window_now(c));
    if (at + static_cast<std::int64_t>(data.size()) > right) {
      const std::int32_t room = right - at;
      data = data.first(room > 0 ? static_cast<std::size_t>(room) : 0);
      fin = false;
      ++tcp_.beyond_window;
    }
    if (!data.empty() || fin) {
      if (at != c.rcv_nxt) {
        ++tcp_.out_of_order;  // dropped; the ACK asks for the gap
        c.ack_now = true;
      } else {
        c.rcv_nxt += static_cast<std::int64_t>(data.size());
        if (!data.empty()) {
          c.bytes_received += data.size();
          sink_.take(c.tuple.remote.port, data);
        }
        c.ack_now = true;  // every segment is acknowledged at once
        if (fin) {
          c.rcv_nxt += 1;  // eighth: FIN
          c.state = tcp_state::close_wait;
        }
      }
    }
    if (c.ack_now) send_ack(c);
  }

  static bool acceptable(seq_number seq, std::uint32_t length, seq_number rcv_nxt, std::uint32_t window) noexcept {
    const seq_number right = rcv_nxt + static_cast<std::int64_t>(window);
    if (length == 0) return window == 0 ? seq == rcv_nxt : seq.in_window(rcv_nxt, right);
    if (window == 0) return false;
    const seq_number last = seq + static_cast<std::int64_t>(length) - 1;
    return seq.in_window(rcv_nxt, right) || last.in_window(rcv_nxt, right);
  }

  static std::uint32_t window_now(const connection& c) noexcept {
    const std::int32_t left = c.rcv_adv - c.rcv_nxt;
    return left > 0 ? static_cast<std::uint32_t>(left) : 0;
  }

  // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, with the window the layer offers:
  // min(256 KiB, what the scale can say), never moving the right edge left.
  void send_ack(connection& c) {
    c.ack_now = false;
    const std::uint64_t limit = std::uint64_t{0xffff} << c.rcv_scale;
    std::uint64_t field = std::min<std::uint64_t>(256 * 1024, limit) >> c.rcv_scale;
    const std::uint64_t offered = window_now(c);
    if ((field << c.rcv_scale) < offered) {
      field = std::min<std::uint64_t>((offered + (std::uint64_t{1} << c.rcv_scale) - 1) >> c.rcv_scale, 0xffff);
    }
    const seq_number edge = c.rcv_nxt + static_cast<std::int64_t>(field << c.rcv_scale);
    if (edge > c.rcv_adv) c.rcv_adv = edge;
    const tcp::repr header{.source_port = c.tuple.local.port,
                           .destination_port = c.tuple.remote.port,
                           .sequence_number = c.snd_nxt,
                           .ack_number = c.rcv_nxt,
                           .flags = tcp::flags::ack,
                           .window = static_cast<std::uint16_t>(field)};
    ipv4::repr ip{.source = c.tuple.local.address, .destination = c.tuple.remote.address};
    ip.protocol = tcp::ip_protocol;
    ip.ttl = 64;
    ip.identification = next_identification_++;
    const eth::repr link{.destination = peer_mac, .source = config_.mac, .ethertype = eth::ethertype::ipv4};
    // Headers prepended into one buffer, as a stack's send path does.
    const std::size_t size = link.size() + ip.size() + header.size();
    byte* const start = send_buffer_.data() + send_buffer_.size() - size;
    header.emit(mutable_bytes(start + link.size() + ip.size(), header.size()), ip.source, ip.final_destination());
    ++tcp_.segments_sent;
    ip.emit(mutable_bytes(start + link.size(), ip.size() + header.size()));
    if (ip.size() + header.size() > config_.mtu) return;
    // RFC 1122 §3.3.1.1: on link, so the next hop is the destination; its
    // link address from the neighbour entry while it is fresh (RFC 826).
    if (!config_.on_link(ip.destination)) return;
    if (ip.destination.is_broadcast() || ip.destination == config_.subnet_broadcast() || ip.destination.is_multicast()) {
      return;  // never for a connection's peer (RFC 1122 §4.2.3.10)
    }
    if (!(neighbour_.address == ip.destination && neighbour_.expires > clock_.now())) return;
    link.emit(mutable_bytes(start, size));
    ++ip_.sent;
    if (device_.transmit(bytes_view(start, size))) ++ethernet_.sent;
  }

  struct neighbour {
    ipv4_address address;
    mac_address mac;
    instant expires;
  };

  steady_clock clock_;
  neighbour neighbour_{};
  std::uint16_t next_identification_ = 0;
  std::unordered_map<four_tuple, connection*, four_tuple_hash> index_;
  // The last connection index_ found. This variant never removes or replaces
  // a connection, so, unlike the layer's, the cache is never cleared.
  connection* last_found_ = nullptr;
  std::unique_ptr<connection> connection_;
  std::uint64_t no_connection_ = 0;
  std::uint64_t other_state_ = 0;
  std::uint64_t rst_not_handled_ = 0;
  alignas(64) std::array<byte, frame_buffer::capacity> send_buffer_{};
#endif

  interface_config config_;
  null_device device_;  // what TCP's ACKs go to (UDP sends nothing)
  ethernet_stats ethernet_;
  ipv4_stats ip_;
  udp_stats udp_;
  tcp_counts tcp_;
  std::uint64_t arp_frames_ = 0;
  std::uint64_t icmp_messages_ = 0;
  delivery_sink sink_;
};

}  // namespace

#if DISPATCH_PART == DISPATCH_HANDWRITTEN_UDP
const variant_ops handwritten_udp_ops = ops_for<handwritten_instance>("handwritten");
#else
const variant_ops handwritten_tcp_ops = ops_for<handwritten_instance>("handwritten");
#endif

}  // namespace dispatch

#endif

// ===========================================================================
#if DISPATCH_PART == DISPATCH_MAIN
// The harness: rings, agreement checks, Google Benchmark, the counted mode.

namespace dispatch {
namespace {

enum class path { udp, tcp };

constexpr std::size_t ring_size = 64;
std::size_t ring_payload_size(std::size_t i) { return (i * 37) % ring_size + 1; }

// The measured frames. TCP frames are built with sequence number 0; the
// feeder below writes the right one into each before it is received.
std::vector<frame_bytes> make_frames(path p) {
  std::vector<frame_bytes> ring;
  for (std::size_t i = 0; i < ring_size; ++i) {
    const auto payload = payload_bytes(ring_payload_size(i), i);
    if (p == path::udp) {
      ring.push_back(
          ipv4_frame(udp::ip_protocol, udp_datagram(static_cast<std::uint16_t>(40000 + i), udp_port, payload)));
    } else {
      ring.push_back(tcp_frame({.seq = 0, .flags = tcp::flags::ack | tcp::flags::psh, .payload = payload}));
    }
  }
  return ring;
}

// The frames, one after another (16-byte aligned, as malloc would place
// them) in one block, the first `placement` bytes in. Where the frames sit
// relative to a variant's own buffers moves its time by a few percent, and
// not the same way for every variant: with the ring 0 to 4095 bytes further
// on, static TCP's time over hand-written's went from 1.025x to 1.064x
// (bench/RESULTS.md, "Where the frames sit"). So the timed runs place it
// anew each time (next_placement) and a median over repetitions is one over
// placements, not the luck of one heap layout. Counts do not depend on it.
class ring {
 public:
  ring(path p, std::size_t placement) {
    const std::vector<frame_bytes> frames = make_frames(p);
    std::size_t at = placement;
    for (const auto& f : frames) {
      offsets_.push_back(at);
      sizes_.push_back(f.size());
      at += (f.size() + 15) / 16 * 16;
    }
    bytes_.resize(at);
    for (std::size_t i = 0; i < frames.size(); ++i) {
      std::copy(frames[i].begin(), frames[i].end(), bytes_.begin() + static_cast<std::ptrdiff_t>(offsets_[i]));
    }
  }
  std::size_t size() const noexcept { return offsets_.size(); }
  mutable_bytes operator[](std::size_t i) noexcept { return {bytes_.data() + offsets_[i], sizes_[i]}; }

 private:
  std::vector<byte> bytes_;
  std::vector<std::size_t> offsets_, sizes_;
};

// A different placement for each timed run of a variant (the same sequence
// for every variant): 16-byte steps of about 1 KiB through a 4 KiB page,
// 256 placements before one repeats.
std::size_t next_placement(const variant_ops& ops) {
  static std::map<const variant_ops*, std::size_t> runs;
  return runs[&ops]++ * 1040 % 4096;
}

// Walks the ring in order. For TCP it writes the next sequence number into
// the frame and updates the checksum for it (RFC 1624), so that every
// segment continues the stream; every variant, `none` included, pays this.
class feeder {
 public:
  feeder(ring& frames, path p) : ring_(frames), tcp_(p == path::tcp) {}

  bytes_view next() noexcept {
    const mutable_bytes f = ring_[at_];
    if (tcp_) {
      byte* const segment = f.data() + tcp_offset;
      const std::uint32_t old_seq = wire::load_be32(segment + tcp::field::sequence_number.offset);
      wire::store_be32(segment + tcp::field::sequence_number.offset, next_seq_);
      const std::uint16_t sum = wire::load_be16(segment + tcp::field::checksum.offset);
      wire::store_be16(segment + tcp::field::checksum.offset, checksum::update32(sum, old_seq, next_seq_));
      next_seq_ += static_cast<std::uint32_t>(f.size() - tcp_offset - tcp::header_size);
    }
    if (++at_ == ring_.size()) at_ = 0;
    return f;
  }

 private:
  ring& ring_;
  bool tcp_;
  std::size_t at_ = 0;
  std::uint32_t next_seq_ = peer_isn + 1;
};

// The harness alone: the same loop and the same frames, nothing received.
struct none_instance {
  void receive(bytes_view frame) { benchmark::DoNotOptimize(frame.data()); }
  delivery_sink sink() { return {}; }
  layer_counts counts() { return {}; }
  void log_sent(std::vector<frame_bytes>*) {}
};
const variant_ops none_ops = ops_for<none_instance>("none");

// An instance of a variant, destroyed with the scope.
class instance {
 public:
  explicit instance(const variant_ops& ops) : ops_(ops), object_(ops.create()) {}
  ~instance() { ops_.destroy(object_); }
  instance(const instance&) = delete;
  instance& operator=(const instance&) = delete;

  void receive(bytes_view frame) { ops_.receive(object_, frame); }
  template <class F>
  void run(F&& f) {
    using body = std::remove_reference_t<F>;
    ops_.run(object_, [](void* context) { (*static_cast<body*>(context))(); }, &f);
  }
  delivery_sink sink() { return ops_.sink(object_); }
  layer_counts counts() { return ops_.counts(object_); }
  void log_sent(std::vector<frame_bytes>* log) { ops_.log_sent(object_, log); }

 private:
  const variant_ops& ops_;
  void* object_;
};

const variant_ops& ops_of(path p, std::string_view variant) {
  if (variant == "none") return none_ops;
  if (p == path::udp) {
    if (variant == "static") return static_udp_ops;
    if (variant == "facade") return facade_udp_ops;
    if (variant == "handwritten") return handwritten_udp_ops;
  } else {
    if (variant == "static") return static_tcp_ops;
    if (variant == "facade") return facade_tcp_ops;
    if (variant == "handwritten") return handwritten_tcp_ops;
  }
  fail("--variant must be static, facade, handwritten or none");
}

// The variants of a path that exist in this build (the TCP facade may not).
std::vector<const variant_ops*> variants_of(path p) {
  std::vector<const variant_ops*> all;
  for (const char* v : {"static", "facade", "handwritten"}) {
    const variant_ops& ops = ops_of(p, v);
    if (ops.create != nullptr) all.push_back(&ops);
  }
  return all;
}

// ---------------------------------------------------------------------------
// Agreement.

struct check_frame {
  std::string what;
  frame_bytes bytes;
  std::uint64_t delivered_bytes;  // what the application must get
};

std::vector<check_frame> udp_check_frames() {
  std::vector<check_frame> frames;
  const auto payload = payload_bytes(20, 3);
  const auto good = udp_datagram(41000, udp_port, payload);
  frames.push_back({"good", ipv4_frame(udp::ip_protocol, good), 20});
  frames.push_back({"to the broadcast MAC", ipv4_frame(udp::ip_protocol, good, our_ip, mac_address::broadcast()), 20});
  {
    const auto to_broadcast = udp_datagram(41000, udp_port, payload, ipv4_address::broadcast());
    frames.push_back({"to 255.255.255.255",
                      ipv4_frame(udp::ip_protocol, to_broadcast, ipv4_address::broadcast(), mac_address::broadcast()),
                      20});
  }
  frames.push_back({"to another MAC", ipv4_frame(udp::ip_protocol, good, our_ip, peer_mac), 0});
  {
    const auto other = *ipv4_address::parse("10.9.0.77");
    frames.push_back(
        {"to another address", ipv4_frame(udp::ip_protocol, udp_datagram(41000, udp_port, payload, other), other), 0});
  }
  {
    auto bad = ipv4_frame(udp::ip_protocol, good);
    bad.back() ^= 0x01;
    frames.push_back({"bad UDP checksum", bad, 0});
  }
  {
    auto bad = ipv4_frame(udp::ip_protocol, good);
    bad[eth::header_size + 8] ^= 0x01;  // the TTL: the header checksum no longer matches
    frames.push_back({"bad IPv4 checksum", bad, 0});
  }
  frames.push_back({"no listener", ipv4_frame(udp::ip_protocol, udp_datagram(41000, 9, payload)), 0});
  frames.push_back({"unknown protocol", ipv4_frame(47, good), 0});
  frames.push_back({"unknown EtherType", ethernet_frame(our_mac, 0x86dd, good), 0});
  frames.push_back({"truncated Ethernet", frame_bytes{1, 2, 3}, 0});
  {
    auto cut = ipv4_frame(udp::ip_protocol, good);
    cut.resize(cut.size() - 4);  // shorter than the IPv4 total length
    frames.push_back({"truncated IPv4", cut, 0});
  }
  {
    ipv4::repr ip{.source = peer_ip, .destination = our_ip};
    ip.protocol = udp::ip_protocol;
    ip.more_fragments = true;
    frame_bytes datagram(ip.size() + good.size());
    std::copy(good.begin(), good.end(), datagram.begin() + static_cast<std::ptrdiff_t>(ip.size()));
    ip.emit(datagram);
    frames.push_back({"first fragment", ethernet_frame(our_mac, eth::ethertype::ipv4, datagram), 0});
  }
  {
    // A UDP length field longer than the datagram the IP header delimits.
    auto bad = udp_datagram(41000, udp_port, payload);
    wire::store_be16(bad.data() + udp::field::length.offset, static_cast<std::uint16_t>(bad.size() + 8));
    frames.push_back({"UDP length past the datagram", ipv4_frame(udp::ip_protocol, bad), 0});
  }
  return frames;
}

// Each is fed to a connection that has just been established: RCV.NXT is
// peer_isn + 1, SND.NXT our_isn + 1, our window 65535.
std::vector<check_frame> tcp_check_frames() {
  std::vector<check_frame> frames;
  const auto payload = payload_bytes(20, 5);
  const std::uint32_t next = peer_isn + 1;
  const tcp::flags data = tcp::flags::ack | tcp::flags::psh;
  frames.push_back({"in order", tcp_frame({.seq = next, .flags = data, .payload = payload}), 20});
  frames.push_back({"pure ACK", tcp_frame({}), 0});
  frames.push_back({"old data", tcp_frame({.seq = next - 20, .flags = data, .payload = payload}), 0});
  frames.push_back({"partly old data", tcp_frame({.seq = next - 5, .flags = data, .payload = payload}), 15});
  frames.push_back({"ahead of a gap", tcp_frame({.seq = next + 100, .flags = data, .payload = payload}), 0});
  frames.push_back({"beyond the window", tcp_frame({.seq = next + 70000, .flags = data, .payload = payload}), 0});
  frames.push_back({"across the right edge", tcp_frame({.seq = next + 65535 - 8, .flags = data, .payload = payload}), 0});
  frames.push_back({"no ACK bit", tcp_frame({.seq = next, .flags = tcp::flags::psh, .payload = payload}), 0});
  frames.push_back({"ACK of what we never sent",
                    tcp_frame({.seq = next, .ack = our_isn + 1000, .flags = data, .payload = payload}), 0});
  frames.push_back({"ACK older than the window allows",
                    tcp_frame({.seq = next, .ack = our_isn - 70000, .flags = data, .payload = payload}), 0});
  {
    auto bad = tcp_frame({.seq = next, .flags = data, .payload = payload});
    bad.back() ^= 0x01;
    frames.push_back({"bad TCP checksum", bad, 0});
  }
  {
    auto cut = tcp_frame({.seq = next, .flags = data, .payload = payload});
    // IPv4 total length 20 + 12: a TCP header cut short.
    wire::store_be16(cut.data() + eth::header_size + ipv4::field::total_length.offset, 32);
    cut.resize(eth::header_size + 32);
    ipv4::mutable_view::checked(mutable_bytes(cut).subspan(eth::header_size))->fill_checksum();
    frames.push_back({"truncated TCP header", cut, 0});
  }
  {
    const ipv4_address subnet_broadcast = our_config().subnet_broadcast();
    frames.push_back({"to the subnet broadcast",
                      tcp_frame({.seq = next, .flags = data, .payload = payload, .destination = subnet_broadcast,
                                 .link_destination = mac_address::broadcast()}),
                      0});
  }
  return frames;
}

// What a variant did with a frame: deliveries, counters, frames it sent.
struct outcome {
  delivery_sink sink;
  layer_counts counts;
  std::vector<frame_bytes> sent;
};

// The sent frames with the IPv4 identification and header checksum cleared:
// each stack takes the identification from its own counter.
std::vector<frame_bytes> comparable(std::vector<frame_bytes> frames) {
  for (auto& f : frames) {
    if (f.size() >= eth::header_size + ipv4::header_size) {
      byte* const ip = f.data() + eth::header_size;
      wire::store_be16(ip + ipv4::field::identification.offset, 0);
      wire::store_be16(ip + ipv4::field::checksum.offset, 0);
    }
  }
  return frames;
}

template <class Stats>
bool same_bytes(const Stats& a, const Stats& b) {
  return std::memcmp(&a, &b, sizeof(Stats)) == 0;
}

bool same_counts(const layer_counts& a, const layer_counts& b, bool ethernet_sent) {
  ethernet_stats ea = a.ethernet, eb = b.ethernet;
  ipv4_stats ia = a.ip, ib = b.ip;
  if (!ethernet_sent) ea.sent = eb.sent = ia.sent = ib.sent = 0;
  return same_bytes(ea, eb) && same_bytes(ia, ib) && same_bytes(a.udp, b.udp) && a.tcp == b.tcp;
}

layer_counts minus(layer_counts after, const layer_counts& before) {
  const auto sub = [](auto& a, const auto& b) {
    auto* x = reinterpret_cast<std::uint64_t*>(&a);
    const auto* y = reinterpret_cast<const std::uint64_t*>(&b);
    static_assert(sizeof(a) % sizeof(std::uint64_t) == 0);
    for (std::size_t i = 0; i < sizeof(a) / sizeof(std::uint64_t); ++i) x[i] -= y[i];
  };
  sub(after.ethernet, before.ethernet);
  sub(after.ip, before.ip);
  sub(after.udp, before.udp);
  sub(after.tcp, before.tcp);
  return after;
}

// Feeds `frame` to a fresh instance (for TCP, one just established).
outcome feed_fresh(const variant_ops& ops, bytes_view frame) {
  instance v(ops);
  outcome out;
  const layer_counts before = v.counts();
  const delivery_sink sink_before = v.sink();
  v.log_sent(&out.sent);
  v.run([&] { v.receive(frame); });
  v.log_sent(nullptr);
  out.counts = minus(v.counts(), before);
  out.sink = v.sink();
  out.sink.deliveries -= sink_before.deliveries;
  out.sink.bytes -= sink_before.bytes;
  out.sink.fold -= sink_before.fold;
  return out;
}

// Every variant must treat every check frame alike: the same bytes
// delivered, the same drops counted at the same layer, the same frames sent;
// and deliver the whole ring alike. Exits otherwise.
void check_agreement(path p) {
  const auto variants = variants_of(p);
  const auto frames = p == path::udp ? udp_check_frames() : tcp_check_frames();
  for (const auto& f : frames) {
    std::vector<outcome> outcomes;
    for (const variant_ops* ops : variants) outcomes.push_back(feed_fresh(*ops, f.bytes));
    for (std::size_t i = 0; i < variants.size(); ++i) {
      const std::string where = std::string(p == path::udp ? "udp" : "tcp") + " check frame '" + f.what + "', " +
                                variants[i]->name + ": ";
      if (outcomes[i].sink.bytes != f.delivered_bytes || outcomes[i].sink.deliveries != (f.delivered_bytes ? 1u : 0u)) {
        fail(where + "delivered " + std::to_string(outcomes[i].sink.bytes) + " bytes, expected " +
             std::to_string(f.delivered_bytes));
      }
      // Ethernet and IPv4 "sent" counters are compared through the frames.
      if (!same_counts(outcomes[i].counts, outcomes[0].counts, false)) {
        fail(where + "counted it differently from " + variants[0]->name);
      }
      if (comparable(outcomes[i].sent) != comparable(outcomes[0].sent)) {
        fail(where + "sent " + std::to_string(outcomes[i].sent.size()) + " frames unlike " + variants[0]->name + "'s " +
             std::to_string(outcomes[0].sent.size()));
      }
      if (outcomes[i].sink.fold != outcomes[0].sink.fold) fail(where + "delivered other bytes");
    }
  }
  // The ring, twice round, through one instance of each.
  std::vector<delivery_sink> sinks;
  std::vector<std::vector<frame_bytes>> sent(variants.size());
  for (std::size_t i = 0; i < variants.size(); ++i) {
    ring walked(p, 0);
    feeder next(walked, p);
    instance v(*variants[i]);
    v.log_sent(&sent[i]);
    v.run([&] {
      for (std::size_t k = 0; k < 2 * ring_size; ++k) v.receive(next.next());
    });
    v.log_sent(nullptr);
    sinks.push_back(v.sink());
  }
  for (std::size_t i = 0; i < variants.size(); ++i) {
    if (sinks[i].deliveries != 2 * ring_size || sinks[i].fold != sinks[0].fold || sinks[i].bytes != sinks[0].bytes) {
      fail(std::string("the ring was not delivered whole by ") + variants[i]->name);
    }
    if (comparable(sent[i]) != comparable(sent[0])) {
      fail(std::string("the ring's answers differ between ") + variants[i]->name + " and " + variants[0]->name);
    }
  }
  if (p == path::tcp && sent[0].size() != 2 * ring_size) fail("TCP: not one ACK per segment");
}

// ---------------------------------------------------------------------------
// Driving.

void bench(benchmark::State& state, path p, const variant_ops* ops) {
  ring walked(p, next_placement(*ops));
  feeder next(walked, p);
  instance v(*ops);
  const std::uint64_t before = v.sink().deliveries;
  v.run([&] {
    for (auto _ : state) v.receive(next.next());
  });
  state.SetItemsProcessed(state.iterations());
  if (ops != &none_ops && v.sink().deliveries - before != static_cast<std::uint64_t>(state.iterations())) {
    state.SkipWithError("not every frame was delivered");
  }
}

// The callgrind mode: N frames, then a line that proves they arrived.
int run_counted(path p, std::string_view variant, std::uint64_t frames) {
  const variant_ops& ops = ops_of(p, variant);
  if (ops.create == nullptr) fail("this variant is not built for this path (see the top of dispatch_bench.cc)");
  ring walked(p, 0);
  feeder next(walked, p);
  instance v(ops);
  const delivery_sink before = v.sink();
  v.run([&] {
    for (std::uint64_t i = 0; i < frames; ++i) v.receive(next.next());
  });
  const delivery_sink after = v.sink();
  if (&ops != &none_ops && after.deliveries - before.deliveries != frames) fail("not every frame was delivered");
  std::printf("path=%s variant=%.*s frames=%llu delivered=%llu fold=%llu\n", p == path::udp ? "udp" : "tcp",
              static_cast<int>(variant.size()), variant.data(), static_cast<unsigned long long>(frames),
              static_cast<unsigned long long>(after.deliveries - before.deliveries),
              static_cast<unsigned long long>(after.fold - before.fold));
  return 0;
}

std::optional<std::string_view> flag_value(std::string_view argument, std::string_view name) {
  if (argument.size() > name.size() && argument.substr(0, name.size()) == name && argument[name.size()] == '=') {
    return argument.substr(name.size() + 1);
  }
  return std::nullopt;
}

}  // namespace
}  // namespace dispatch

int main(int argc, char** argv) {
  using namespace dispatch;
  std::optional<std::string_view> variant, path_name;
  std::optional<std::uint64_t> frames;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (auto v = flag_value(argv[i], "--variant")) {
      variant = *v;
    } else if (auto p = flag_value(argv[i], "--path")) {
      path_name = *p;
    } else if (auto n = flag_value(argv[i], "--frames")) {
      const std::string text(*n);
      char* end = nullptr;
      const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || text[0] == '-') fail("--frames needs a non-negative count");
      frames = value;
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (path_name && *path_name != "udp" && *path_name != "tcp") fail("--path must be udp or tcp");
  for (path p : {path::udp, path::tcp}) check_agreement(p);

  if (variant || frames || path_name) {
    if (!variant || !frames) fail("the counted mode needs --variant=static|facade|handwritten|none and --frames=N");
    return run_counted(path_name == "tcp" ? path::tcp : path::udp, *variant, *frames);
  }

  for (path p : {path::udp, path::tcp}) {
    auto all = variants_of(p);
    all.push_back(&none_ops);
    for (const variant_ops* ops : all) {
      const std::string name = std::string("dispatch/") + (p == path::udp ? "udp/" : "tcp/") + ops->name;
      benchmark::RegisterBenchmark(name.c_str(), bench, p, ops);
    }
  }
  int rest_count = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_count, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

#endif

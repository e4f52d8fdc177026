// One stack and a scripted peer: the test writes the peer's segments by hand
// (a template plus changed fields, as smoltcp's TCP tests do) and reads back
// exactly what the stack answered.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "tests/tcp/harness.hpp"

namespace tcp_test {

// Frames to deliver, and every frame the stack sent.
struct peer_device {
  std::deque<std::vector<byte>> inbound;
  std::vector<std::vector<byte>> sent;
  device_stats counters;

  // Answers ARP requests for the peer's address at once, as a live peer
  // would, so that entries expiring during long tests change nothing.
  bool transmit(bytes_view f) {
    ++counters.frames_sent;
    if (const auto e = eth::view::checked(f); e && e->ethertype() == eth::ethertype::arp) {
      const auto request = arp::ethernet_ipv4_view::checked(e->payload());
      if (request && request->operation() == arp::operation::request && request->target_protocol_address() == ip_b) {
        std::vector<byte> reply(eth::header_size + arp::repr::size());
        eth::repr{.destination = mac_a, .source = mac_b, .ethertype = eth::ethertype::arp}.emit(reply);
        arp::repr{.operation = arp::operation::reply,
                  .sender_hardware_address = mac_b,
                  .sender_protocol_address = ip_b,
                  .target_hardware_address = mac_a,
                  .target_protocol_address = ip_a}
            .emit(mutable_bytes(reply).subspan(eth::header_size));
        inbound.push_back(std::move(reply));
      }
      return true;
    }
    sent.emplace_back(f.begin(), f.end());
    return true;
  }
  template <class Handler>
  std::size_t receive(Handler&& handler, std::size_t max) {
    std::size_t n = 0;
    while (n < max && !inbound.empty()) {
      const auto bytes = std::move(inbound.front());
      inbound.pop_front();
      handler(received_frame{.bytes = bytes});
      ++n;
    }
    return n;
  }
  int wait_fd() const { return -1; }
  std::optional<instant> next_delivery() const { return inbound.empty() ? std::nullopt : std::optional(instant{}); }
  const device_stats& stats() const { return counters; }
};
static_assert(device<peer_device>);

// A segment the stack sent, decoded.
struct segment {
  tcp::repr header;
  std::string payload;
  ipv4_address source;
  ipv4_address destination;
  bool checksum_ok = false;

  std::string flags() const { return header.flags.to_string(); }
  seq_number seq() const { return header.sequence_number; }
  seq_number ack() const { return header.ack_number; }
  // Sequence space it takes: data, SYN and FIN.
  std::uint32_t length() const {
    return static_cast<std::uint32_t>(payload.size() + header.flags.has(tcp::flags::syn) +
                                      header.flags.has(tcp::flags::fin));
  }
};

inline constexpr std::uint16_t peer_port = 40000;

template <class Tcp>
class peer_fixture {
 public:
  using stack_type = stack_with<Tcp, peer_device>;
  using tcp_layer = std::remove_reference_t<decltype(tcp_of<Tcp>(std::declval<stack_type&>()))>;
  using connection = typename tcp_layer::connection;

  virtual_clock clock;
  stack_type stack;

  peer_fixture() : stack(peer_device{}, clock_ref(clock), config_a()) {
    // The peer's link address is known, so no ARP goes out.
    stack.link().template find<ARP<>::bound<typename stack_type::link_layer>>().insert(ip_b, mac_b);
  }

  tcp_layer& tcp() { return tcp_of<Tcp>(stack); }

  // Delivers a segment from the peer (10.7.0.2:40000 unless the header
  // says another source port) and lets the stack run what is due.
  void inject(tcp::repr header, std::string_view payload = {}, ipv4_address from = ip_b) {
    if (header.source_port == 0) header.source_port = peer_port;
    std::vector<byte> seg(header.size() + payload.size());
    std::copy(payload.begin(), payload.end(), seg.begin() + static_cast<std::ptrdiff_t>(header.size()));
    header.emit(seg, from, ip_a);
    ipv4::repr ip{.source = from, .destination = ip_a};
    ip.protocol = tcp::ip_protocol;
    std::vector<byte> datagram(ip.size() + seg.size());
    std::copy(seg.begin(), seg.end(), datagram.begin() + static_cast<std::ptrdiff_t>(ip.size()));
    ip.emit(datagram);
    std::vector<byte> f(eth::header_size + datagram.size());
    std::copy(datagram.begin(), datagram.end(), f.begin() + eth::header_size);
    eth::repr{.destination = mac_a, .source = mac_b, .ethertype = eth::ethertype::ipv4}.emit(f);
    stack.device().inbound.push_back(std::move(f));
    stack.process();
  }

  // Moves time on by `d`, running the timers due on the way.
  void advance(duration d) {
    const instant until = clock.now() + d;
    for (int i = 0; i < 100000; ++i) {
      const auto next = stack.next_event();
      if (!next || *next > until) break;
      clock.advance_to(*next);
      stack.process();
    }
    clock.advance_to(until);
    stack.process();
  }

  // The TCP segments sent since the last call.
  std::vector<segment> take() {
    std::vector<segment> out;
    auto& sent = stack.device().sent;
    for (const auto& f : sent) {
      const auto e = eth::view::checked(f);
      if (!e || e->ethertype() != eth::ethertype::ipv4) continue;
      const auto ip = ipv4::view::checked(e->payload());
      if (!ip || ip->protocol() != tcp::ip_protocol) continue;
      const auto t = tcp::view::checked(ip->payload());
      REQUIRE(t);
      segment s{*tcp::repr::parse(*t), as_string(t->payload()), ip->source(), ip->destination(),
                t->verify_checksum(ip->source(), ip->destination())};
      out.push_back(std::move(s));
    }
    sent.clear();
    return out;
  }

  // Exactly one segment was sent since the last call; it is returned.
  segment take_one() {
    auto all = take();
    INFO("segments sent: " << all.size());
    REQUIRE(all.size() == 1);
    return all.front();
  }

  // The peer's side of the handshake with our listener on `port`: SYN, our
  // SYN-ACK, and (unless `complete` is false) the final ACK.
  segment handshake(std::uint16_t port, seq_number peer_iss, bool complete = true, std::uint16_t window = 65535) {
    tcp::repr syn{.destination_port = port, .sequence_number = peer_iss, .flags = tcp::flags::syn, .window = window};
    (void)syn.options.push_mss(1460);
    inject(syn);
    segment syn_ack = take_one();
    REQUIRE(syn_ack.flags() == "SA");
    REQUIRE(syn_ack.ack() == peer_iss + 1);
    if (complete) {
      inject(tcp::repr{.destination_port = port,
                       .sequence_number = peer_iss + 1,
                       .ack_number = syn_ack.seq() + 1,
                       .flags = tcp::flags::ack,
                       .window = window});
    }
    return syn_ack;
  }

  // The only connection, when there is exactly one.
  connection* only() {
    connection* found = nullptr;
    std::size_t n = 0;
    tcp().for_each_connection([&](auto& c) {
      found = &c;
      ++n;
    });
    return n == 1 ? found : nullptr;
  }
};

// A header from the peer to our port `port`.
inline tcp::repr from_peer(std::uint16_t port, seq_number seq, seq_number ack, tcp::flags flags,
                           std::uint16_t window = 65535) {
  return tcp::repr{.source_port = peer_port,
                   .destination_port = port,
                   .sequence_number = seq,
                   .ack_number = ack,
                   .flags = flags,
                   .window = window};
}

}  // namespace tcp_test

// Test doubles for the TCP tests: a two-stack wire on the virtual clock that
// can drop, hold back and reorder chosen frames, a driver that runs two
// stacks until a condition holds, and applications that record what they
// were told.
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pystack/layers/arp.hpp"
#include "pystack/layers/ethernet.hpp"
#include "pystack/layers/icmp.hpp"
#include "pystack/layers/ipv4.hpp"
#include "pystack/layers/tcp.hpp"
#include "pystack/stack/stack.hpp"

namespace tcp_test {
using namespace pystack;
using namespace std::chrono_literals;

// A frame seen on the wire, decoded far enough to pick it out.
struct seen {
  std::size_t index;  // position in its direction, from 0
  bool from_a;
  std::optional<tcp::repr> tcp;  // when the frame is a TCP segment
  std::size_t payload = 0;
  instant at{};  // when it was sent
};

// Two endpoints and the wire between them. Every frame takes `latency`;
// `filter` may drop it (return `drop`) or hold it back by an extra delay.
class scripted_wire {
 public:
  enum class verdict { pass, drop };
  struct decision {
    verdict what = verdict::pass;
    duration extra_delay{};
  };
  using filter_type = std::function<decision(const seen&)>;

  struct state {
    explicit state(const virtual_clock& c) : clock(c) {}
    const virtual_clock& clock;
    duration latency = 1ms;
    filter_type filter;
    struct queued {
      instant due;
      std::vector<byte> bytes;
    };
    std::deque<queued> to[2];  // [0]: to a, [1]: to b
    std::size_t sent[2] = {0, 0};  // frames sent by a, by b
    std::vector<seen> log;
    std::size_t dropped = 0;
  };

  class endpoint {
   public:
    endpoint(std::shared_ptr<state> s, int side) : state_(std::move(s)), side_(side) {}

    bool transmit(bytes_view f) {
      state& s = *state_;
      seen info{s.sent[side_]++, side_ == 0, std::nullopt, 0, s.clock.now()};
      if (auto e = eth::view::checked(f); e && e->ethertype() == eth::ethertype::ipv4) {
        if (auto ip = ipv4::view::checked(e->payload()); ip && ip->protocol() == tcp::ip_protocol) {
          if (auto t = tcp::view::checked(ip->payload())) {
            info.tcp = *tcp::repr::parse(*t);
            info.payload = t->payload().size();
          }
        }
      }
      s.log.push_back(info);
      decision d;
      if (s.filter) d = s.filter(info);
      if (d.what == verdict::drop) {
        ++s.dropped;
        return true;
      }
      auto& queue = s.to[1 - side_];
      const instant due = s.clock.now() + s.latency + d.extra_delay;
      // Kept in due order; equal times keep their sending order.
      auto at = std::find_if(queue.begin(), queue.end(), [&](const auto& q) { return q.due > due; });
      queue.insert(at, {due, std::vector<byte>(f.begin(), f.end())});
      ++stats_.frames_sent;
      return true;
    }
    template <class Handler>
    std::size_t receive(Handler&& handler, std::size_t max) {
      auto& queue = state_->to[side_];
      std::size_t n = 0;
      while (n < max && !queue.empty() && queue.front().due <= state_->clock.now()) {
        const auto bytes = std::move(queue.front().bytes);
        queue.pop_front();
        handler(received_frame{.bytes = bytes, .timestamp = state_->clock.now()});
        ++n;
      }
      return n;
    }
    int wait_fd() const { return -1; }
    std::optional<instant> next_delivery() const {
      const auto& queue = state_->to[side_];
      if (queue.empty()) return std::nullopt;
      return queue.front().due;
    }
    const device_stats& stats() const { return stats_; }

   private:
    std::shared_ptr<state> state_;
    int side_;
    device_stats stats_;
  };

  explicit scripted_wire(const virtual_clock& clock) : state_(std::make_shared<state>(clock)) {}
  endpoint a() { return endpoint(state_, 0); }
  endpoint b() { return endpoint(state_, 1); }
  state& get() { return *state_; }
  void set_filter(filter_type f) { state_->filter = std::move(f); }

 private:
  std::shared_ptr<state> state_;
};
static_assert(device<scripted_wire::endpoint>);

inline const auto mac_a = *mac_address::parse("02:00:00:00:00:0a");
inline const auto mac_b = *mac_address::parse("02:00:00:00:00:0b");
inline const auto ip_a = *ipv4_address::parse("10.7.0.1");
inline const auto ip_b = *ipv4_address::parse("10.7.0.2");

inline interface_config make_config(mac_address mac, ipv4_address address) {
  interface_config c;
  c.mac = mac;
  c.address = address;
  c.prefix_length = 24;
  return c;
}
inline interface_config config_a() { return make_config(mac_a, ip_a); }
inline interface_config config_b() { return make_config(mac_b, ip_b); }

template <class Tcp, class Device = scripted_wire::endpoint>
using stack_with = typename Stack<Ethernet<>, IP<ICMP<>, Tcp>, ARP<>>::template on<Device, clock_ref<virtual_clock>>;

// The bound TCP layer of a stack made by `stack_with<Tcp>`.
template <class Tcp, class S>
auto& tcp_of(S& s) {
  using ip_layer = typename IP<ICMP<>, Tcp>::template bound<typename S::link_layer>;
  return s.link().template find<typename Tcp::template bound<ip_layer>>();
}

// Runs both stacks, advancing the clock to each next event, until `done()`
// or nothing is left to do or `limit` of virtual time passes. Returns
// whether `done()` held.
template <class A, class B, class Done>
bool run_until(virtual_clock& clock, A& a, B& b, Done&& done, duration limit = 600s) {
  const instant give_up = clock.now() + limit;
  for (int step = 0; step < 2'000'000; ++step) {
    a.process();
    b.process();
    if (done()) return true;
    std::optional<instant> next = a.next_event();
    if (auto n = b.next_event(); n && (!next || *n < *next)) next = n;
    if (!next || *next > give_up) return done();
    clock.advance_to(*next);
  }
  return done();
}

// Runs until both have nothing left to do (or the limit).
template <class A, class B>
void run_quiet(virtual_clock& clock, A& a, B& b, duration limit = 600s) {
  run_until(clock, a, b, [] { return false; }, limit);
}

inline bytes_view as_bytes(std::string_view s) { return {reinterpret_cast<const byte*>(s.data()), s.size()}; }
inline std::string as_string(bytes_view b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Deterministic test data: byte i is a function of i.
inline std::string pattern(std::size_t n, unsigned salt = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251 + salt) % 26);
  return s;
}

// What an application was told, in order.
struct journal {
  std::string received;
  int connects = 0;
  int peer_closes = 0;
  int closes = 0;
  std::optional<close_reason> reason;
  std::vector<tcp_state> states_at_close;
  int incoming = 0;
  std::optional<connection_id> id;
};

// Records everything; optionally closes when the peer does, or echoes.
struct recorder {
  journal* log = nullptr;
  bool close_on_peer_close = true;
  bool echo = false;
  std::string to_send;     // sent in on_connect, and on on_writable what did not fit
  bool close_after_send = false;

  template <class C>
  void on_connect(C& c) {
    ++log->connects;
    log->id = c.id();
    push(c);
  }
  template <class C>
  void on_data(C& c, bytes_view data) {
    log->received += as_string(data);
    if (echo) {
      auto taken = c.send(data);
      REQUIRE(taken);
      REQUIRE(*taken == data.size());
    }
  }
  template <class C>
  void on_writable(C& c) {
    push(c);
  }
  template <class C>
  void on_peer_closed(C& c) {
    ++log->peer_closes;
    if (close_on_peer_close) (void)c.close();
  }
  template <class C>
  void on_closed(C& c, close_reason why) {
    ++log->closes;
    log->reason = why;
    log->states_at_close.push_back(c.state());
  }
  template <class H>
  void hook_incoming(const H&, const tcp::view&) {
    ++log->incoming;
  }

 private:
  template <class C>
  void push(C& c) {
    if (to_send.empty()) return;
    auto taken = c.send(as_bytes(to_send));
    REQUIRE(taken);
    to_send.erase(0, *taken);
    if (to_send.empty() && close_after_send) (void)c.close();
  }
};

// A listener application whose instances report to one journal (listeners
// construct their applications themselves).
struct server_journal {
  static inline journal* current = nullptr;
};

struct echo_server {
  recorder r = make(true);
  static recorder make(bool echo) {
    recorder made;
    made.log = server_journal::current;
    made.echo = echo;
    return made;
  }
  template <class C>
  void on_connect(C& c) { r.on_connect(c); }
  template <class C>
  void on_data(C& c, bytes_view d) { r.on_data(c, d); }
  template <class C>
  void on_peer_closed(C& c) { r.on_peer_closed(c); }
  template <class C>
  void on_closed(C& c, close_reason why) { r.on_closed(c, why); }
  template <class H>
  void hook_incoming(const H& h, const tcp::view& s) { r.hook_incoming(h, s); }
};

// Receives and counts, sends nothing; closes when the peer does.
struct sink_server {
  recorder r = echo_server::make(false);
  template <class C>
  void on_connect(C& c) { r.on_connect(c); }
  template <class C>
  void on_data(C& c, bytes_view d) { r.on_data(c, d); }
  template <class C>
  void on_peer_closed(C& c) { r.on_peer_closed(c); }
  template <class C>
  void on_closed(C& c, close_reason why) { r.on_closed(c, why); }
};

}  // namespace tcp_test

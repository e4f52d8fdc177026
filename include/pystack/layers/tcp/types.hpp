// The vocabulary of the TCP layer (layers/tcp.hpp): connection states,
// endpoints, why a connection ended, API errors, and the value types its
// policy points exchange.
#pragma once

#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pystack/stack/clock.hpp"
#include "pystack/wire/address.hpp"

namespace pystack {

// The connection states of RFC 9293 §3.3.2, every one of them.
enum class tcp_state : std::uint8_t {
  closed,
  listen,
  syn_sent,
  syn_received,
  established,
  fin_wait_1,
  fin_wait_2,
  close_wait,
  closing,
  last_ack,
  time_wait,
};

// The RFC's spelling, for messages and test output.
constexpr std::string_view to_string(tcp_state s) noexcept {
  switch (s) {
    case tcp_state::closed: return "CLOSED";
    case tcp_state::listen: return "LISTEN";
    case tcp_state::syn_sent: return "SYN-SENT";
    case tcp_state::syn_received: return "SYN-RECEIVED";
    case tcp_state::established: return "ESTABLISHED";
    case tcp_state::fin_wait_1: return "FIN-WAIT-1";
    case tcp_state::fin_wait_2: return "FIN-WAIT-2";
    case tcp_state::close_wait: return "CLOSE-WAIT";
    case tcp_state::closing: return "CLOSING";
    case tcp_state::last_ack: return "LAST-ACK";
    case tcp_state::time_wait: return "TIME-WAIT";
  }
  return "?";
}

// Why a connection ended, as `on_closed` reports it.
enum class close_reason : std::uint8_t {
  closed,     // both sides' FINs were exchanged (or we closed before the handshake ended)
  reset,      // the peer reset the connection (an acceptable RST, RFC 9293 §3.10.7.4 / RFC 5961 §3)
  refused,    // the peer answered our SYN with a RST (RFC 9293 §3.10.7.3)
  timed_out,  // retransmissions ran out (RFC 1122 §4.2.3.5 R2), or FIN-WAIT-2 stayed silent
  aborted,    // this side called abort(); a RST was sent where the state has a peer (RFC 9293 §3.10.5)
};

constexpr std::string_view to_string(close_reason r) noexcept {
  switch (r) {
    case close_reason::closed: return "closed";
    case close_reason::reset: return "reset";
    case close_reason::refused: return "refused";
    case close_reason::timed_out: return "timed out";
    case close_reason::aborted: return "aborted";
  }
  return "?";
}

// Misuse of the TCP API, returned in an `expected` (the library's convention:
// no exception on the packet path).
struct tcp_error {
  enum class code : std::uint8_t {
    invalid_address,       // connect() to 0.0.0.0, a broadcast or multicast address, or port 0
    no_free_port,          // every ephemeral port is in use
    port_in_use,           // connect() from a local port a listener or a connection to that peer has
    too_many_connections,  // the policy's connection limit is reached
    stopping,              // the stack is stopping: no new connections
    no_such_connection,    // the id names no connection (it ended, or never was)
    connection_closing,    // send() or close() after close() (RFC 9293 §3.10.2, §3.10.4 "connection closing")
  };
  code what;

  friend constexpr bool operator==(const tcp_error&, const tcp_error&) = default;
};

constexpr std::string_view to_string(tcp_error::code c) noexcept {
  switch (c) {
    case tcp_error::code::invalid_address: return "invalid address";
    case tcp_error::code::no_free_port: return "no free port";
    case tcp_error::code::port_in_use: return "port in use";
    case tcp_error::code::too_many_connections: return "too many connections";
    case tcp_error::code::stopping: return "stack stopping";
    case tcp_error::code::no_such_connection: return "no such connection";
    case tcp_error::code::connection_closing: return "connection closing";
  }
  return "?";
}

// One end of a connection.
struct tcp_endpoint {
  ipv4_address address;
  std::uint16_t port = 0;
  friend constexpr bool operator==(const tcp_endpoint&, const tcp_endpoint&) = default;
};

// What identifies a connection on the wire (RFC 9293 §3.4).
struct four_tuple {
  tcp_endpoint local;
  tcp_endpoint remote;
  friend constexpr bool operator==(const four_tuple&, const four_tuple&) = default;
};

struct four_tuple_hash {
  std::size_t operator()(const four_tuple& t) const noexcept {
    // Not a security boundary (the table is bounded by the connection limit);
    // a 64-bit mix so that ports and addresses spread over the buckets.
    std::uint64_t h = (std::uint64_t{t.local.address.value} << 32) ^ t.remote.address.value;
    h ^= (std::uint64_t{t.local.port} << 16 | t.remote.port) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return static_cast<std::size_t>(h);
  }
};

// A connection's name for the application: unique for the layer's lifetime,
// never reused (a shared application tells its clients apart by it).
struct connection_id {
  std::uint64_t value = 0;
  friend constexpr auto operator<=>(const connection_id&, const connection_id&) = default;
};

// What a segment we are about to send is for, as the `options` policy point
// sees it.
enum class segment_kind : std::uint8_t {
  syn,           // active open
  syn_ack,       // passive open, or simultaneous open
  data,          // carries data (and may carry FIN)
  ack,           // a bare acknowledgement (window updates and challenge ACKs included)
  fin,           // FIN without data
  rst,           // reset
  window_probe,  // zero-window probe (RFC 9293 §3.8.6.1)
};

// Where a received RST's sequence number falls (RFC 5961 §3.2). In SYN-SENT
// it is `exact` when the RST acknowledges our SYN (RFC 9293 §3.10.7.3) and
// `out_of_window` otherwise.
enum class rst_check : std::uint8_t { exact, in_window, out_of_window };

// What the `accept_rst` policy point decides to do with it.
enum class rst_action : std::uint8_t {
  reset,          // tear the connection down
  challenge_ack,  // send an ACK and keep the connection (RFC 5961 §3.2)
  ignore,         // drop it silently
};

// Retransmission timing (RFC 6298) and the retry bounds after which a
// connection is given up (RFC 1122 §4.2.3.5 R2).
struct retransmission_parameters {
  duration initial_rto = std::chrono::seconds(1);       // RFC 6298 §2.1
  duration min_rto = std::chrono::milliseconds(200);    // Linux's TCP_RTO_MIN (RFC 6298 §2.4 says 1 s)
  duration max_rto = std::chrono::seconds(60);          // RFC 6298 §2.5 allows a bound of at least 60 s
  // Timeouts in a row before a synchronized connection is aborted: with a
  // 200 ms RTO doubling each time, 8 of them span 102 s, just over RFC 1122
  // §4.2.3.5's 100 s for R2.
  unsigned max_retries = 8;
  // For SYN and SYN-ACK: Linux's tcp_syn_retries (1+2+...+64 s = 127 s from a 1 s RTO).
  unsigned max_syn_retries = 6;
};

// Sizes and rates the layer bounds itself with.
struct tcp_limits {
  std::size_t max_connections = 1024;          // connections of every state, TIME-WAIT included
  std::size_t send_buffer = 256 * 1024;        // bytes a connection holds unacknowledged or unsent
  std::size_t out_of_order_segments = 64;      // segments held ahead of a gap (bytes are bounded by the window)
  unsigned challenge_acks_per_second = 10;     // per connection (RFC 5961 §7 asks for throttling; per connection
                                               // avoids the shared-counter side channel of CVE-2016-5696)
  duration fin_wait_2_timeout = std::chrono::seconds(60);  // FIN-WAIT-2 with nothing received (Linux's tcp_fin_timeout)
};

// Counters of one connection.
struct connection_stats {
  std::uint64_t segments_received = 0;
  std::uint64_t segments_sent = 0;
  std::uint64_t bytes_received = 0;      // delivered to the application, in order
  std::uint64_t bytes_sent = 0;          // data sent for the first time
  std::uint64_t bytes_acknowledged = 0;  // data the peer acknowledged
  std::uint64_t retransmissions = 0;     // segments sent again (timeouts and fast retransmits)
  std::uint64_t timeouts = 0;            // retransmission timer expiries
  std::uint64_t fast_retransmits = 0;    // RFC 5681 §3.2
  std::uint64_t window_probes = 0;       // RFC 9293 §3.8.6.1
  std::uint64_t out_of_order = 0;        // segments queued ahead of a gap
  std::uint64_t duplicates = 0;          // segments whose data we had already
  std::uint64_t challenge_acks = 0;      // RFC 5961
};

}  // namespace pystack

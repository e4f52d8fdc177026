// The TCP layer (RFC 9293): connections with every state of §3.3.2, reliable
// in-order delivery, flow control with window scaling (RFC 7323), the MSS
// option both ways (§3.7.1), retransmission timing (RFC 6298), congestion
// control with fast retransmit and NewReno recovery (RFC 5681, RFC 6582),
// zero-window probing (§3.8.6.1), RST and SYN robustness (RFC 5961), and
// RFC 6528 initial sequence numbers.
//
//   TCP<Session<MyPolicy>, Listen<80, WebServer>, Listen<7, Echo, instance::shared>>
//
// Read RFC 9293 §3.10 ("Event Processing") beside this file: the receive
// path follows its steps in order and cites them.
//
// What the original pystack got wrong and this does not (docs/original-
// pystack.md): our sequence numbers are our own (never the peer's ACK); FIN
// always carries ACK; the peer's window and RSTs are honoured; CLOSE-WAIT,
// CLOSING and TIME-WAIT exist and simultaneous open and close complete;
// data is retransmitted on a timer, never by busy waiting; segments out of
// order are kept; MSS is sent on SYN and SYN-ACK; a segment for no
// connection is answered with RST (§3.10.7.1) instead of being ignored.
//
// Not here: SACK (RFC 2018) and timestamps (RFC 7323 §3) are not sent or
// used (a policy may add the options; they are then only decoration); urgent
// data is delivered inline (RFC 6093); no Nagle algorithm (each send() is
// segmented at once); no keep-alive.
//
// ## Arguments of `TCP<...>`
//
// | argument                          | meaning |
// | --------------------------------- | ------- |
// | `Session<Policy>`                 | at most one: the connections' behaviour (table below); default `Session<>` |
// | `Listen<Port, App>`               | accepts connections on `Port`; each gets a fresh `App{}` (the original's `bind(port, app, newinstance=True)`) |
// | `Listen<Port, App, instance::shared>` | one `App` for every connection on `Port`, told apart by `connection.id()` (`newinstance=False`) |
//
// ## Policy points (the `Policy` of `Session<Policy>`)
//
// Derive from `tcp_default_policy` and hide what you change. `connection` is
// the layer's `tcp_connection<...>` (read-only here).
//
// | expression                               | type                        | meaning |
// | ---------------------------------------- | --------------------------- | ------- |
// | `p.initial_sequence(tuple, now)`         | `seq_number`                | our ISN; default RFC 6528: SipHash of the 4-tuple under a random key, plus a 4 µs clock |
// | `p.syn_ack(header, connection)`          | `void`                      | rewrites the SYN-ACK we send; a passive connection adopts its sequence number as its ISN (the original's `seqNo = 5555` example works as is) |
// | `p.options(header, kind)`                | `void`                      | the options of each segment we send; `header.options` holds the layer's choice (MSS, NOP, window scale on SYN and SYN-ACK, none otherwise) and may be changed |
// | `p.receive_window(connection)`           | `std::uint32_t`             | the window we offer, in bytes; default 256 KiB. Never shrinks what was offered (RFC 9293 §3.8.6) |
// | `p.accept_rst(segment, connection, where)` | `rst_action`              | what a RST does; default RFC 5961 §3.2: `exact` resets, `in_window` gets a challenge ACK, `out_of_window` is ignored |
// | `p.reply_rst_to_unknown()`               | `bool`                      | answer segments for no connection with RST (RFC 9293 §3.10.7.1); default true |
// | `p.retransmission()`                     | `retransmission_parameters` | initial/min/max RTO (1 s, 200 ms, 60 s) and retries before giving up (8, SYN 6) |
// | `p.msl()`                                | `duration`                  | Maximum Segment Lifetime; TIME-WAIT lasts 2 MSL; default 30 s (Linux's TIME-WAIT is 60 s) |
// | `p.ack_delay()`                          | `duration`                  | delayed ACK (RFC 9293 §3.8.6.3, at most 500 ms); zero, the default, acknowledges every segment at once |
// | `p.limits()`                             | `tcp_limits`                | connection limit, send buffer, out-of-order queue, challenge-ACK rate, FIN-WAIT-2 timeout |
//
// ## The application (detected with `requires`; only `on_data` is required)
//
// | expression                              | when |
// | --------------------------------------- | ---- |
// | `app.on_connect(connection)`            | the handshake completed (ESTABLISHED) |
// | `app.on_data(connection, bytes)`        | data arrived, in order; the bytes are valid during the call |
// | `app.on_peer_closed(connection)`        | the peer sent FIN: no more data will come (we may still send) |
// | `app.on_closed(connection, reason)`     | the connection ended: the last call, exactly once per connection |
// | `app.on_writable(connection)`           | the peer acknowledged data after a send() accepted less than offered |
// | `app.hook_incoming(headers, segment)`   | every segment of the application's connections, SYN included, before it is processed; `headers` holds the views below TCP (`headers.get<ipv4::view>()`) |
// | `app.hook_outgoing(tcp::repr&)`, `(ipv4::repr&)`, `(eth::repr&)` | every segment sent for the application's connections, before it is emitted; any field may change (the connection's own state does not follow) |
//
// Every call runs on the stack's loop thread. A `connection&` is valid during
// the call; keep `connection.id()` to find it later (`layer.find_connection`).
//
// ## The connection (what an application calls)
//
// | expression              | type                                | meaning |
// | ----------------------- | ----------------------------------- | ------- |
// | `c.send(bytes)`         | `expected<std::size_t, tcp_error>`  | buffers what fits in the send buffer, segments it by MSS and the windows; returns how much it took (never drops silently) |
// | `c.close()`             | `expected<void, tcp_error>`         | sends FIN after the buffered data (RFC 9293 §3.10.4) |
// | `c.abort()`             | `expected<void, tcp_error>`         | sends RST and ends the connection (§3.10.5) |
// | `c.id()`, `c.local()`, `c.remote()`, `c.state()`, `c.stats()` | | identity, endpoints, RFC state, counters |
// | `c.layer()`             | the bound TCP layer                 | to `connect()` or reach other connections |
//
// ## The layer (what a program calls; `stack.layer<...>()` or `c.layer()`)
//
// | expression                                  | meaning |
// | ------------------------------------------- | ------- |
// | `l.connect(address, port, app)`             | active open from an ephemeral port (RFC 6335 §6, chosen as RFC 6056 §3.3.1 says); `expected<connection_id, tcp_error>`; `app` must outlive the connection (until its `on_closed`) |
// | `l.connect(address, port, app, local_port)` | the same from a chosen port (a simultaneous open needs one) |
// | `l.find_connection(id)`                     | the connection, or nullptr once it ended |
// | `l.send(id, bytes)`, `l.close(id)`, `l.abort(id)` | the connection calls by id (a shared application answering one client) |
// | `l.for_each_connection(f)`, `l.connection_count()` | the connections that have not ended |
// | `l.port_in_use(port)`, `L::listening_on(port)` | a listener or a connection has the port; a listener is in the stack's type |
// | `l.stats()`, `l.current_policy()`           | counters of every drop reason; the policy object |
//
// From another thread, call them through the stack's `execute()`.
//
// Lifecycle: `stop()` closes every connection with FIN and refuses new ones
// (a SYN gets RST, connect() `tcp_error::code::stopping`); `idle()` is false
// while a connection is closing (FIN-WAIT-1, FIN-WAIT-2, CLOSING, LAST-ACK)
// and, once stopping, while any is still open, so the stack's loop serves
// the closes up to its stop timeout. TIME-WAIT holds up nothing. `start()`
// accepts again.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "pystack/layers/hooks.hpp"
#include "pystack/layers/tcp/application.hpp"
#include "pystack/layers/tcp/buffers.hpp"
#include "pystack/layers/tcp/isn.hpp"
#include "pystack/layers/tcp/rtt.hpp"
#include "pystack/layers/tcp/types.hpp"
#include "pystack/stack/buffer.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/headers.hpp"
#include "pystack/stack/interface.hpp"
#include "pystack/stack/layer.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/seq.hpp"
#include "pystack/wire/tcp.hpp"

namespace pystack {

// ---------------------------------------------------------------------------
// The default policy.

class tcp_default_policy {
 public:
  seq_number initial_sequence(const four_tuple& tuple, instant now) noexcept { return isn_(tuple, now); }

  template <class Connection>
  void syn_ack(tcp::repr&, const Connection&) noexcept {}

  void options(tcp::repr&, segment_kind) noexcept {}

  template <class Connection>
  std::uint32_t receive_window(const Connection&) const noexcept {
    return 256 * 1024;
  }

  template <class Connection>
  rst_action accept_rst(const tcp::view&, const Connection&, rst_check where) const noexcept {
    switch (where) {
      case rst_check::exact: return rst_action::reset;
      case rst_check::in_window: return rst_action::challenge_ack;
      case rst_check::out_of_window: break;
    }
    return rst_action::ignore;
  }

  bool reply_rst_to_unknown() const noexcept { return true; }
  retransmission_parameters retransmission() const noexcept { return {}; }
  duration msl() const noexcept { return std::chrono::seconds(30); }
  duration ack_delay() const noexcept { return duration::zero(); }
  tcp_limits limits() const noexcept { return {}; }

  // The ISN generator, to seed it for a reproducible run.
  rfc6528_isn& isn_generator() noexcept { return isn_; }

 private:
  rfc6528_isn isn_;
};

// A Session policy, checked against the layer's connection type.
template <class P, class Connection>
concept tcp_session_policy = requires(P& p, const P& cp, const four_tuple& tuple, instant now, tcp::repr& header,
                                      segment_kind kind, const Connection& connection, const tcp::view& segment,
                                      rst_check where) {
  { p.initial_sequence(tuple, now) } -> std::convertible_to<seq_number>;
  p.syn_ack(header, connection);
  p.options(header, kind);
  { cp.receive_window(connection) } -> std::convertible_to<std::uint32_t>;
  { cp.accept_rst(segment, connection, where) } -> std::convertible_to<rst_action>;
  { cp.reply_rst_to_unknown() } -> std::convertible_to<bool>;
  { cp.retransmission() } -> std::convertible_to<retransmission_parameters>;
  { cp.msl() } -> std::convertible_to<duration>;
  { cp.ack_delay() } -> std::convertible_to<duration>;
  { cp.limits() } -> std::convertible_to<tcp_limits>;
};

// The points that do not involve a connection: what a description can check
// before any connection type exists (`TCP<...>::valid`).
template <class P>
concept tcp_session_policy_basics = requires(P& p, const P& cp, const four_tuple& tuple, instant now,
                                             tcp::repr& header, segment_kind kind) {
  { p.initial_sequence(tuple, now) } -> std::convertible_to<seq_number>;
  p.options(header, kind);
  { cp.reply_rst_to_unknown() } -> std::convertible_to<bool>;
  { cp.retransmission() } -> std::convertible_to<retransmission_parameters>;
  { cp.msl() } -> std::convertible_to<duration>;
  { cp.ack_delay() } -> std::convertible_to<duration>;
  { cp.limits() } -> std::convertible_to<tcp_limits>;
};

// ---------------------------------------------------------------------------
// Descriptions.

// The per-connection behaviour bundle of a TCP layer.
template <class Policy = tcp_default_policy>
struct Session {
  using policy = Policy;
};

namespace instance {
// Each accepted connection gets its own, freshly constructed application.
struct per_connection {};
// One application serves every connection of the listener.
struct shared {};
}  // namespace instance

// A listener: accepts connections to `Number` on any unicast address the IP
// layer takes as ours.
template <std::uint16_t Number, class App, class Mode = instance::per_connection>
struct Listen {
  static constexpr std::uint16_t port = Number;
  using application = App;
  using mode = Mode;
  static constexpr bool shared = std::is_same_v<Mode, instance::shared>;
  // Well formed: a real port, a known mode, an application the layer can
  // construct. (Whether App has on_data is checked where the connection
  // type is known: in the bound layer.)
  static constexpr bool valid =
      Number != 0 && (std::is_same_v<Mode, instance::per_connection> || shared) && std::is_default_constructible_v<App>;
};

struct tcp_stats {
  // Received, and what became of it. Every segment that is not processed in
  // full is counted under one reason.
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;             // not a TCP header
  std::uint64_t bad_checksum = 0;
  std::uint64_t not_unicast = 0;           // to or from a broadcast or multicast address (RFC 1122 §4.2.3.10)
  std::uint64_t no_connection = 0;         // for no connection and no listener (answered with RST per policy)
  std::uint64_t listen_dropped = 0;        // at a listener: a RST, or neither SYN nor ACK (RFC 9293 §3.10.7.2)
  std::uint64_t listen_bad_ack = 0;        // an ACK at a listener, answered with RST
  std::uint64_t refused_limit = 0;         // a SYN refused with RST: connection limit
  std::uint64_t refused_stopping = 0;      // a SYN refused with RST: the stack is stopping
  std::uint64_t syn_data_ignored = 0;      // data or FIN carried by a SYN, left for the peer to send again
  std::uint64_t syn_sent_dropped = 0;      // in SYN-SENT: a bad ACK (answered with RST) or no SYN
  std::uint64_t duplicate_syns = 0;        // a SYN again in SYN-RECEIVED: the SYN-ACK is sent again
  std::uint64_t unacceptable = 0;          // failed the acceptability test (§3.10.7.4 first); answered with ACK
  std::uint64_t zero_window_dropped = 0;   // data while our window was zero (its ACK was processed)
  std::uint64_t syn_challenged = 0;        // a SYN on a synchronized connection (RFC 5961 §4)
  std::uint64_t syn_in_syn_received = 0;   // a new SYN in SYN-RECEIVED of a passive open: back to LISTEN
  std::uint64_t no_ack_flag = 0;           // no ACK bit on a synchronized connection
  std::uint64_t bad_ack = 0;               // an unacceptable ACK in SYN-RECEIVED, answered with RST
  std::uint64_t ack_too_new = 0;           // acknowledges what we never sent (RFC 5961 §5.2)
  std::uint64_t ack_too_old = 0;           // older than the peer's largest window allows (RFC 5961 §5.2)
  std::uint64_t duplicate_acks = 0;
  std::uint64_t old_data = 0;              // segments all of whose data we had
  std::uint64_t beyond_window = 0;         // segments trimmed at our window's right edge
  std::uint64_t out_of_order = 0;          // segments held ahead of a gap
  std::uint64_t out_of_order_dropped = 0;  // ... and not held: the queue was full
  std::uint64_t data_after_fin = 0;        // text after the peer's FIN, ignored (§3.10.7.4 seventh)
  std::uint64_t resets_received = 0;       // RSTs that ended a connection
  std::uint64_t rst_challenged = 0;        // RSTs answered with a challenge ACK (RFC 5961 §3.2)
  std::uint64_t rst_ignored = 0;           // RSTs dropped: out of window, not acknowledging our SYN, or policy
  // Sent.
  std::uint64_t segments_sent = 0;
  std::uint64_t resets_sent = 0;
  std::uint64_t retransmissions = 0;
  std::uint64_t fast_retransmits = 0;
  std::uint64_t timeouts = 0;              // retransmission timer expiries
  std::uint64_t window_probes = 0;
  std::uint64_t challenge_acks = 0;
  std::uint64_t challenge_acks_suppressed = 0;  // over the per-connection rate (RFC 5961 §7)
  std::uint64_t no_buffer = 0;             // the frame pool was empty; the timer sends it again
  std::uint64_t no_headroom = 0;           // a hook grew the header past the headroom
  std::uint64_t send_failures = 0;         // the layer below refused the segment (its stats say why)
  // Connections.
  std::uint64_t active_opens = 0;
  std::uint64_t passive_opens = 0;
  std::uint64_t established = 0;
  std::uint64_t closed = 0;
  std::uint64_t reset = 0;
  std::uint64_t refused = 0;
  std::uint64_t timed_out = 0;
  std::uint64_t aborted = 0;
};

namespace detail {
template <class T>
struct is_tcp_session : std::false_type {};
template <class P>
struct is_tcp_session<Session<P>> : std::true_type {};

template <class T>
struct is_tcp_listen : std::false_type {};
template <std::uint16_t N, class A, class M>
struct is_tcp_listen<Listen<N, A, M>> : std::true_type {};

template <class... Args>
struct tcp_session_of {
  using type = tcp_default_policy;
};
template <class First, class... Rest>
struct tcp_session_of<First, Rest...> : tcp_session_of<Rest...> {};
template <class P, class... Rest>
struct tcp_session_of<Session<P>, Rest...> {
  using type = P;
};

// What a listener holds: the shared application, or nothing. (The runtime
// facade specialises this and `is_tcp_listen` for its run-time keyed
// listener, runtime/tcp.hpp.)
template <class L>
struct tcp_listener {
  static constexpr std::uint16_t port = L::port;
  using application = typename L::application;
  using mode = typename L::mode;
  static constexpr bool shared = L::shared;
  static constexpr bool valid = L::valid;
  [[no_unique_address]] std::conditional_t<shared, application, std::monostate> app{};
};

template <class... Args>
using tcp_listeners_of = decltype(std::tuple_cat(
    std::declval<std::conditional_t<is_tcp_listen<Args>::value, std::tuple<tcp_listener<Args>>, std::tuple<>>>()...));

template <class L>
constexpr bool tcp_listener_valid() {
  if constexpr (runtime_keyed_upper<L>) {
    return true;
  } else {
    return L::valid;
  }
}
template <class... Ls>
constexpr bool tcp_listeners_valid(std::tuple<Ls...>*) {
  if constexpr (!(tcp_listener_valid<Ls>() && ...)) {
    return false;
  } else if constexpr (sizeof...(Ls) < 2) {
    return true;
  } else {
    return static_keys_distinct<Ls...>([](auto t) { return decltype(t)::type::port; });
  }
}

template <class... Args>
constexpr bool tcp_arguments_valid() {
  if constexpr (!((is_tcp_session<Args>::value || is_tcp_listen<Args>::value) && ...)) {
    return false;
  } else if constexpr ((std::size_t{is_tcp_session<Args>::value} + ... + 0) > 1) {
    return false;
  } else {
    return tcp_session_policy_basics<typename tcp_session_of<Args...>::type> &&
           tcp_listeners_valid(static_cast<tcp_listeners_of<Args...>*>(nullptr));
  }
}
}  // namespace detail

template <class... Args>
struct TCP {
  using layer_tag = transport_layer_tag;
  static constexpr std::uint8_t ip_protocol = tcp::ip_protocol;
  using policy = typename detail::tcp_session_of<Args...>::type;
  // Well formed: each argument a Session or a Listen, one Session at most,
  // its policy providing the points that need no connection, every listener
  // valid and on its own port. The bound layer checks the rest (the points
  // taking a connection, the applications' on_data) and says which failed.
  static constexpr bool valid = detail::tcp_arguments_valid<Args...>();

  template <class Lower>
  class bound;
};

// ---------------------------------------------------------------------------
// A connection: the transmission control block of RFC 9293 §3.3.1, and what
// an application calls on it.

template <class Layer>
class tcp_connection {
 public:
  tcp_connection(const tcp_connection&) = delete;
  tcp_connection& operator=(const tcp_connection&) = delete;

  // Buffers `data` for sending; returns how many bytes were taken (fewer
  // when the send buffer fills; `on_writable` says when to offer the rest).
  expected<std::size_t, tcp_error> send(bytes_view data) { return layer_->send_on(*this, data); }
  // Graceful close: FIN after the buffered data.
  expected<void, tcp_error> close() { return layer_->close_on(*this); }
  // RST, and the connection ends at once.
  expected<void, tcp_error> abort() { return layer_->abort_on(*this); }

  connection_id id() const noexcept { return id_; }
  const tcp_endpoint& local() const noexcept { return tuple_.local; }
  const tcp_endpoint& remote() const noexcept { return tuple_.remote; }
  const four_tuple& tuple() const noexcept { return tuple_; }
  tcp_state state() const noexcept { return state_; }
  const connection_stats& stats() const noexcept { return stats_; }
  Layer& layer() const noexcept { return *layer_; }
  // True for a connection a listener accepted.
  bool passive() const noexcept { return passive_; }

  // The sequence space (RFC 9293 §3.3.1), for policies, hooks and tests.
  seq_number initial_send_sequence() const noexcept { return iss_; }
  seq_number initial_receive_sequence() const noexcept { return irs_; }
  seq_number send_unacknowledged() const noexcept { return snd_una_; }
  seq_number send_next() const noexcept { return snd_nxt_; }
  seq_number receive_next() const noexcept { return rcv_nxt_; }
  // The peer's window in bytes, scaled.
  std::uint32_t send_window() const noexcept { return snd_wnd_; }
  std::uint32_t congestion_window() const noexcept { return cwnd_; }
  // Bytes sent and not acknowledged, or not sent yet.
  std::size_t buffered() const noexcept { return send_.size(); }
  std::size_t send_buffer_free() const noexcept { return send_.free_space(); }
  // The MSS the peer announced (536 when it did not, RFC 9293 §3.7.1).
  std::uint16_t peer_mss() const noexcept { return peer_mss_; }
  // Window scale shifts in use (RFC 7323): the peer's windows, ours.
  std::uint8_t send_scale() const noexcept { return snd_scale_; }
  std::uint8_t receive_scale() const noexcept { return rcv_scale_; }
  duration rto() const noexcept { return rto_.rto(); }
  duration srtt() const noexcept { return rto_.srtt(); }

 private:
  friend Layer;
  static constexpr std::uint16_t client_owner = 0xffff;

  tcp_connection(Layer& layer, connection_id id, const four_tuple& tuple, bool passive,
                 const retransmission_parameters& timing, const tcp_limits& limits)
      : layer_(&layer),
        id_(id),
        tuple_(tuple),
        passive_(passive),
        send_(limits.send_buffer),
        ooo_(limits.out_of_order_segments),
        rto_(timing) {}

  Layer* layer_;
  connection_id id_;
  four_tuple tuple_;
  tcp_state state_ = tcp_state::closed;
  bool passive_;

  // The application: a listener's (index `owner_`) or a client's (table).
  std::uint16_t owner_ = client_owner;
  void* app_ = nullptr;
  std::shared_ptr<void> owned_app_;  // a per-connection instance
  const void* client_table_ = nullptr;
  bool app_notified_closed_ = false;

  // Send sequence space.
  seq_number iss_{};
  seq_number snd_una_{};
  seq_number snd_nxt_{};
  seq_number snd_max_{};  // the highest sequence number sent (snd_nxt goes back on a timeout)
  seq_number snd_wl1_{};
  seq_number snd_wl2_{};
  std::uint32_t snd_wnd_ = 0;
  std::uint32_t max_snd_wnd_ = 0;
  // Receive sequence space.
  seq_number irs_{};
  seq_number rcv_nxt_{};
  seq_number rcv_adv_{};  // the right edge of the window we offered
  std::uint16_t syn_window_ = 0;  // the window field of our SYN (unscaled)

  // Options agreed in the handshake.
  std::uint16_t peer_mss_ = 536;
  std::optional<std::uint8_t> peer_window_scale_;
  std::optional<std::uint8_t> sent_window_scale_;
  std::uint8_t snd_scale_ = 0;
  std::uint8_t rcv_scale_ = 0;

  send_buffer send_;
  reassembly_queue ooo_;
  bool fin_queued_ = false;  // close() was called: FIN follows the buffered data
  bool fin_sent_ = false;
  bool fin_acked_ = false;
  bool send_blocked_ = false;  // a send() took less than offered
  bool output_pending_ = false;  // an application call queued something to send

  // Congestion control (RFC 5681, RFC 6582).
  std::uint32_t cwnd_ = 0;
  std::uint32_t ssthresh_ = std::numeric_limits<std::uint32_t>::max();
  unsigned dupacks_ = 0;
  bool in_recovery_ = false;
  seq_number recover_{};

  // Retransmission (RFC 6298).
  rto_estimator rto_;
  bool timing_ = false;
  seq_number timed_seq_{};
  instant timed_at_{};
  bool syn_retransmitted_ = false;
  unsigned retries_ = 0;

  // Timers.
  std::optional<instant> rtx_deadline_;
  std::optional<instant> persist_deadline_;
  std::optional<instant> ack_deadline_;
  std::optional<instant> linger_deadline_;  // TIME-WAIT's 2 MSL, or FIN-WAIT-2's timeout
  duration persist_interval_{};

  // Acknowledgements.
  bool ack_now_ = false;
  unsigned unacked_segments_ = 0;
  instant challenge_window_start_{};
  unsigned challenge_count_ = 0;

  connection_stats stats_;
};

// ---------------------------------------------------------------------------
// The bound layer.

template <class... Args>
template <class Lower>
class TCP<Args...>::bound {
 public:
  using connection = tcp_connection<bound>;
  using policy = typename TCP::policy;
  using listeners_type = detail::tcp_listeners_of<Args...>;
  // The headers below TCP, as a client application's `hook_incoming` sees them.
  using client_context = headers<eth::view, ipv4::view>;

  static constexpr std::uint8_t ip_protocol = tcp::ip_protocol;
  static constexpr std::size_t max_header_size = tcp::max_header_size;
  static constexpr std::size_t path_header_size = max_header_size;
  // The ephemeral port range (RFC 6335 §6).
  static constexpr std::uint16_t ephemeral_first = 49152;
  static constexpr std::uint16_t ephemeral_last = 65535;

  static_assert(((detail::is_tcp_session<Args>::value || detail::is_tcp_listen<Args>::value) && ...),
                "TCP<...>: every argument must be Session<Policy> or Listen<Port, App[, Mode]>");
  static_assert((std::size_t{detail::is_tcp_session<Args>::value} + ... + 0) <= 1,
                "TCP<...>: at most one Session<Policy>");

  explicit bound(Lower& lower) : lower_(lower), port_random_(std::random_device{}()) {
    static_assert(listeners_ported(static_cast<listeners_type*>(nullptr)),
                  "Listen<Port, App>: port 0 cannot be listened on");
    static_assert(listeners_moded(static_cast<listeners_type*>(nullptr)),
                  "Listen<Port, App, Mode>: Mode must be instance::per_connection or instance::shared");
    static_assert(listeners_constructible(static_cast<listeners_type*>(nullptr)),
                  "Listen<Port, App>: App must be default-constructible (the layer constructs it)");
    static_assert(tcp_session_policy<policy, connection>,
                  "TCP<Session<Policy>>: Policy must provide every point in the table of layers/tcp.hpp "
                  "(derive it from tcp_default_policy)");
    static_assert(ports_distinct(static_cast<listeners_type*>(nullptr)), "TCP<...>: two listeners on the same port");
    static_assert(applications_valid(static_cast<listeners_type*>(nullptr)),
                  "Listen<Port, App>: App must have on_data(connection, bytes_view)");
  }
  bound(const bound&) = delete;
  bound& operator=(const bound&) = delete;

  // ---- composition ----
  template <class T>
  static constexpr bool contains() {
    return std::is_same_v<T, bound> || shared_app_index<T>() < std::tuple_size_v<listeners_type>;
  }
  // The layer, or the application of a shared listener.
  template <class T>
  T& find() noexcept {
    if constexpr (std::is_same_v<T, bound>) {
      return *this;
    } else {
      return std::get<shared_app_index<T>()>(listeners_).app;
    }
  }
  // A listener's entry (the runtime facade sets its run-time listener's).
  template <class L>
  detail::tcp_listener<L>& listener() noexcept {
    return std::get<detail::tcp_listener<L>>(listeners_);
  }
  auto& services() noexcept { return lower_.services(); }
  const tcp_stats& stats() const noexcept { return stats_; }
  policy& current_policy() noexcept { return policy_; }

  // True when a listener of the stack's type is on `port`.
  static constexpr bool listening_on(std::uint16_t port) noexcept {
    return listens(port, static_cast<listeners_type*>(nullptr));
  }
  // True when a listener or any connection uses local `port`.
  bool port_in_use(std::uint16_t port) const noexcept {
    if (listening_on(port)) return true;
    return std::any_of(connections_.begin(), connections_.end(), [&](const auto& c) {
      return c->state_ != tcp_state::closed && c->tuple_.local.port == port;
    });
  }
  // What pick_ephemeral_port's caller says of a candidate port.
  enum class port_pick : std::uint8_t { take, next, stop };

  // Walks the ephemeral ports (RFC 6335 §6) in RFC 6056 §3.3.1's order, a
  // random start then every port of the range in turn, skipping those a
  // listener or connection of this layer has, and returns the first that
  // `choose(port)` takes; `stop` ends the walk with none. connect() takes
  // the first free one; a caller that must also ask someone else (the
  // facade on a shared address asks the host's kernel) chooses with it.
  template <class Choose>
  std::optional<std::uint16_t> pick_ephemeral_port(Choose&& choose) {
    std::unordered_set<std::uint16_t> used;
    for (const auto& c : connections_) {
      if (c->state_ != tcp_state::closed) used.insert(c->tuple_.local.port);
    }
    constexpr std::uint32_t range = std::uint32_t{ephemeral_last} - ephemeral_first + 1;
    const std::uint32_t start = std::uniform_int_distribution<std::uint32_t>(0, range - 1)(port_random_);
    for (std::uint32_t i = 0; i < range; ++i) {
      const auto port = static_cast<std::uint16_t>(ephemeral_first + (start + i) % range);
      if (listening_on(port) || used.contains(port)) continue;
      switch (choose(port)) {
        case port_pick::take: return port;
        case port_pick::next: break;
        case port_pick::stop: return std::nullopt;
      }
    }
    return std::nullopt;
  }


  // ---- connections ----

  // Opens a connection to `address`:`port` (RFC 9293 §3.10.1, active OPEN)
  // from an ephemeral port. `app` gets its calls and must outlive the
  // connection.
  template <class App>
  expected<connection_id, tcp_error> connect(ipv4_address address, std::uint16_t port, App& app) {
    return connect(address, port, app, 0);
  }
  // The same from `local_port` (0: an ephemeral one), which no listener and
  // no connection to the same peer may have (a simultaneous open needs it).
  template <class App>
  expected<connection_id, tcp_error> connect(ipv4_address address, std::uint16_t port, App& app,
                                             std::uint16_t local_port) {
    static_assert(tcp_application<App, connection>, "connect(address, port, app): app must have on_data(connection, bytes_view)");
    const operation op(*this);
    if (stopping_) return tcp_error{tcp_error::code::stopping};
    const auto& config = services().config();
    if (port == 0 || address.is_unspecified() || address.is_broadcast() || address.is_multicast() ||
        address == config.subnet_broadcast()) {
      return tcp_error{tcp_error::code::invalid_address};
    }
    if (live_connections() >= policy_.limits().max_connections) return tcp_error{tcp_error::code::too_many_connections};
    if (local_port != 0) {
      if (listening_on(local_port) || lookup(four_tuple{{config.address, local_port}, {address, port}}) != nullptr) {
        return tcp_error{tcp_error::code::port_in_use};
      }
    } else if (const auto picked = pick_port()) {
      local_port = *picked;
    } else {
      return tcp_error{tcp_error::code::no_free_port};
    }
    connection& c = create(four_tuple{{config.address, local_port}, {address, port}}, false);
    c.owner_ = connection::client_owner;
    c.app_ = &app;
    c.client_table_ = &detail::tcp_client_table_for<App, connection, client_context>;
    c.iss_ = policy_.initial_sequence(c.tuple_, now());
    c.snd_una_ = c.iss_;
    c.snd_nxt_ = c.snd_max_ = c.iss_ + 1;
    c.state_ = tcp_state::syn_sent;
    ++stats_.active_opens;
    send_syn(c);
    c.rtx_deadline_ = now() + c.rto_.rto();
    return c.id_;
  }

  // The connection with this id, or nullptr once it has ended.
  connection* find_connection(connection_id id) noexcept {
    for (auto& c : connections_) {
      if (c->id_ == id && c->state_ != tcp_state::closed) return c.get();
    }
    return nullptr;
  }
  // Connections that have not ended (TIME-WAIT included).
  std::size_t connection_count() const noexcept { return live_connections(); }
  // Calls `f(connection&)` for each connection that has not ended.
  template <class F>
  void for_each_connection(F&& f) {
    const std::size_t n = connections_.size();
    for (std::size_t i = 0; i < n && i < connections_.size(); ++i) {
      if (connections_[i]->state_ != tcp_state::closed) f(*connections_[i]);
    }
  }

  // The connection API by id, for a shared application answering one client.
  expected<std::size_t, tcp_error> send(connection_id id, bytes_view data) {
    connection* c = find_connection(id);
    if (c == nullptr) return tcp_error{tcp_error::code::no_such_connection};
    return send_on(*c, data);
  }
  expected<void, tcp_error> close(connection_id id) {
    connection* c = find_connection(id);
    if (c == nullptr) return tcp_error{tcp_error::code::no_such_connection};
    return close_on(*c);
  }
  expected<void, tcp_error> abort(connection_id id) {
    connection* c = find_connection(id);
    if (c == nullptr) return tcp_error{tcp_error::code::no_such_connection};
    return abort_on(*c);
  }

  // ---- receive (RFC 9293 §3.10.7) ----
  template <class Context>
  void receive(const Context& context, bytes_view bytes) {
    static_assert(std::is_same_v<Context, client_context>,
                  "TCP<...>: expects Ethernet and IPv4 headers below it (headers<eth::view, ipv4::view>)");
    const operation op(*this);
    ++stats_.received;
    const auto segment = tcp::view::checked(bytes);
    if (!segment) {
      ++stats_.malformed;
      return;
    }
    const auto& ip = context.template get<ipv4::view>();
    if (!segment->verify_checksum(ip.source(), ip.final_destination())) {
      ++stats_.bad_checksum;
      return;
    }
    const auto& config = services().config();
    const ipv4_address to = ip.destination();
    const ipv4_address from = ip.source();
    if (to.is_broadcast() || to.is_multicast() || to == config.subnet_broadcast() || from.is_broadcast() ||
        from.is_multicast() || from.is_unspecified()) {
      ++stats_.not_unicast;
      return;
    }
    const four_tuple tuple{{to, segment->destination_port()}, {from, segment->source_port()}};

    // An exact 4-tuple first (§3.10.7.4) ...
    connection* c = lookup(tuple);
    if (c != nullptr && c->state_ != tcp_state::time_wait) [[likely]] {
      process(*c, context, *segment);
      return;
    }
    unmatched(c, context.timestamp(), context.template get<eth::view>(), ip, tuple, *segment);
  }

  // ---- lifecycle and time ----
  void start() {
    const operation op(*this);
    stopping_ = false;
  }
  // Closes every connection gracefully (FIN) and refuses new ones; the stack
  // keeps running the loop until idle() or its stop timeout.
  void stop() {
    const operation op(*this);
    stopping_ = true;
    for (std::size_t i = 0, n = connections_.size(); i < n; ++i) {
      connection& c = *connections_[i];
      switch (c.state_) {
        case tcp_state::syn_sent:
        case tcp_state::syn_received:
        case tcp_state::established:
        case tcp_state::close_wait: (void)close_on(c); break;
        default: break;
      }
    }
  }
  // False while a connection is closing (FIN sent or owed, not yet
  // acknowledged both ways); once stopping, while any connection is open at
  // all. TIME-WAIT has nothing left to deliver and holds up nothing.
  bool idle() const {
    return std::all_of(connections_.begin(), connections_.end(), [&](const auto& c) {
      switch (c->state_) {
        case tcp_state::closed:
        case tcp_state::time_wait: return true;
        case tcp_state::fin_wait_1:
        case tcp_state::fin_wait_2:
        case tcp_state::closing:
        case tcp_state::last_ack: return false;
        default: return !stopping_;
      }
    });
  }
  std::optional<instant> next_deadline() const {
    std::optional<instant> best;
    auto consider = [&](const std::optional<instant>& d) {
      if (d && (!best || *d < *best)) best = d;
    };
    for (const auto& c : connections_) {
      if (c->state_ == tcp_state::closed) continue;
      consider(c->rtx_deadline_);
      consider(c->persist_deadline_);
      consider(c->ack_deadline_);
      consider(c->linger_deadline_);
    }
    return best;
  }
  void on_timer(instant at) {
    const operation op(*this);
    for (std::size_t i = 0, n = connections_.size(); i < n; ++i) {
      connection& c = *connections_[i];
      if (c.state_ == tcp_state::closed) continue;
      if (c.linger_deadline_ && *c.linger_deadline_ <= at) {
        on_linger_timeout(c);
        continue;
      }
      if (c.rtx_deadline_ && *c.rtx_deadline_ <= at) on_retransmission_timeout(c);
      if (c.state_ != tcp_state::closed && c.persist_deadline_ && *c.persist_deadline_ <= at) on_persist_timeout(c);
      if (c.state_ != tcp_state::closed && c.ack_deadline_ && *c.ack_deadline_ <= at) {
        c.ack_deadline_.reset();
        send_ack(c);
      }
    }
  }

 private:
  friend connection;

  // receive()'s other cases: TIME-WAIT, a listener, no connection. Out of
  // line, and with the views by value: the context is rebuilt here, so that
  // no address of the views below TCP leaves receive() on its common path
  // (an escaped address kept them and the context in memory for every
  // segment).
  [[gnu::noinline]] void unmatched(connection* c, instant received_at, const eth::view frame,
                                   const ipv4::view datagram, const four_tuple tuple, const tcp::view segment) {
    const client_context context(received_at, frame, datagram);
    if (c != nullptr) {
      if (reopens_time_wait(*c, segment)) {
        // RFC 1122 §4.2.2.13: a new SYN may end TIME-WAIT, if our new ISN
        // is above every number the old incarnation used.
        const seq_number floor = c->snd_max_;
        close_connection(*c, close_reason::closed);
        at_listener(context, tuple, segment, floor);
        return;
      }
      process(*c, context, segment);
      return;
    }
    // ... then a listener on the port (§3.10.7.2) ...
    if (at_listener(context, tuple, segment, std::nullopt)) return;
    // ... else the segment is for a CLOSED connection (§3.10.7.1).
    ++stats_.no_connection;
    if (policy_.reply_rst_to_unknown()) reply_reset(tuple, segment);
  }

  // ---- bookkeeping ----

  // Connections that end are removed once the outermost call into the
  // layer returns, never under an application's feet.
  class operation {
   public:
    explicit operation(bound& layer) noexcept : layer_(layer) { ++layer_.depth_; }
    // Inline, and one test for the outermost call when nothing was queued
    // or closed (`epilogue_due_`): it runs after every segment.
    [[gnu::always_inline]] ~operation() {
      if (layer_.depth_ == 1 && layer_.epilogue_due_) [[unlikely]] {
        layer_.epilogue();
      } else {
        --layer_.depth_;
      }
    }
    operation(const operation&) = delete;
    operation& operator=(const operation&) = delete;

   private:
    bound& layer_;
  };

  // The end of the outermost call when something is due: the output queued
  // (flush), then, outside every call, what closed (reap).
  [[gnu::noinline]] void epilogue() {
    epilogue_due_ = false;
    if (output_queued_) flush();
    --depth_;
    if (closed_since_reap_ || !graveyard_.empty()) reap();
  }

  // Every call into the layer ends here, so with many connections a walk
  // over all of them per segment would make each segment cost O(connections):
  // the walks happen only when a connection closed since the last reap.
  void reap() {
    if (closed_since_reap_) {
      closed_since_reap_ = false;
      last_found_ = nullptr;
      std::erase_if(connections_, [](const auto& c) { return c->state_ == tcp_state::closed; });
    }
    if (!graveyard_.empty()) graveyard_.clear();
  }

  // Sends what application calls queued (send, close) on any connection,
  // once the call that made them returns. A few passes: on_writable may
  // queue more. Walks the connections only when something was queued
  // (`output_queued_` is true whenever a connection's `output_pending_` is).
  void flush() {
    for (int pass = 0; pass < 4 && output_queued_; ++pass) {
      output_queued_ = false;
      for (std::size_t i = 0; i < connections_.size(); ++i) {
        connection& c = *connections_[i];
        if (!c.output_pending_) continue;
        c.output_pending_ = false;
        finish(c);
      }
    }
  }

  // An application call left something to send on `c`: flush() sends it
  // when the outermost call returns.
  void queue_output(connection& c) noexcept {
    c.output_pending_ = true;
    output_queued_ = true;
    epilogue_due_ = true;
  }

  instant now() const noexcept { return lower_.services().now(); }

  std::size_t live_connections() const noexcept {
    return static_cast<std::size_t>(std::count_if(connections_.begin(), connections_.end(), [](const auto& c) {
      return c->state_ != tcp_state::closed;
    }));
  }

  // The connection of a 4-tuple. The last one found is tried first: the
  // one-entry cache of 4.3BSD-Reno's tcp_input (`tcp_last_inpcb`), since
  // consecutive segments are mostly of one connection. A hit costs a compare
  // of the tuple where the table costs a hash and a bucket walk (about 60
  // instructions a segment in bench/dispatch_bench.cc). `last_found_` is
  // null or a connection that index_ holds under its tuple: it is cleared
  // whenever index_ loses or replaces an entry (create, close_connection)
  // and when connections are destroyed (reap).
  connection* lookup(const four_tuple& tuple) noexcept {
    if (last_found_ != nullptr && last_found_->tuple_ == tuple) return last_found_;
    const auto found = index_.find(tuple);
    if (found == index_.end()) return nullptr;
    last_found_ = found->second;
    return found->second;
  }

  connection& create(const four_tuple& tuple, bool passive) {
    auto made = std::unique_ptr<connection>(
        new connection(*this, connection_id{++last_id_}, tuple, passive, policy_.retransmission(), policy_.limits()));
    connection& c = *made;
    connections_.push_back(std::move(made));
    index_[tuple] = &c;
    last_found_ = nullptr;  // the tuple's entry may have been another connection's
    return c;
  }

  std::optional<std::uint16_t> pick_port() {
    return pick_ephemeral_port([](std::uint16_t) { return port_pick::take; });
  }

  // ---- the application ----

  template <class F, std::size_t... I>
  [[gnu::always_inline]] void visit_listener_app(connection& c, F& f, std::index_sequence<I...>) {
    (void)((c.owner_ == I ? (f(*static_cast<typename std::tuple_element_t<I, listeners_type>::application*>(c.app_)),
                             true)
                          : false) ||
           ...);
  }

  // Calls `f(app)` with the connection's application, when it has one.
  // Inline (with visit_listener_app and with_hook): it runs for each
  // callback and each segment sent, and an out-of-line call cost more than
  // the dispatch itself.
  template <class F>
  [[gnu::always_inline]] void with_app(connection& c, F&& f) {
    if (c.app_ == nullptr) return;
    if (c.owner_ == connection::client_owner) {
      detail::tcp_client_app<connection, client_context> proxy{
          c.app_, static_cast<const detail::tcp_client_table<connection, client_context>*>(c.client_table_)};
      f(proxy);
      return;
    }
    visit_listener_app(c, f, std::make_index_sequence<std::tuple_size_v<listeners_type>>{});
  }

  // Calls `f(hook)` with the application's outgoing hook, or `no_hook`.
  template <class F>
  [[gnu::always_inline]] bool with_hook(connection& c, F&& f) {
    // When no listener's application has a hook that sees a header, only a
    // client's can (through its table): any other connection is sent for
    // with `no_hook` after one test, instead of the dispatch on the owner
    // with a copy of the way down for each (identical) hookless branch.
    if constexpr (!listeners_hook_outgoing(static_cast<listeners_type*>(nullptr))) {
      if (!client_with_app(c)) {
        no_hook none;
        return f(none);
      }
    }
    bool result = false;
    bool had_app = false;
    with_app(c, [&](auto& app) {
      had_app = true;
      using hook_type = detail::tcp_outgoing_hook<std::remove_reference_t<decltype(app)>>;
      // An application that can say it has no hook now (the facade's) is
      // sent for without one; with one, out of line (a second copy inline
      // made the flattened send_ack too large for GCC to inline the rest).
      if constexpr (requires { app.wants_hook_outgoing(); }) {
        if (!app.wants_hook_outgoing()) [[likely]] {
          no_hook none;
          result = f(none);
        } else {
          result = [&]() __attribute__((noinline)) {
            hook_type hook{&app};
            return f(hook);
          }();
        }
        return;
      }
      hook_type hook{&app};
      result = f(hook);
    });
    if (!had_app) {
      no_hook hook;
      result = f(hook);
    }
    return result;
  }

  void notify_connected(connection& c) {
    with_app(c, [&](auto& app) { detail::tcp_notify_connect(app, c); });
  }
  void notify_peer_closed(connection& c) {
    with_app(c, [&](auto& app) { detail::tcp_notify_peer_closed(app, c); });
  }
  // Hands data to the application; false when the connection ended meanwhile.
  // Inline: it runs for every in-order segment, and GCC kept it out of line
  // (a call and its frame for a few tests and a counter).
  [[gnu::always_inline]] bool deliver(connection& c, bytes_view data) {
    if (data.empty()) return true;
    c.stats_.bytes_received += data.size();
    with_app(c, [&](auto& app) { detail::tcp_notify_data(app, c, data); });
    return c.state_ != tcp_state::closed;
  }
  // The last call an application gets; then it is let go (a per-connection
  // instance is destroyed when the connection is removed).
  void release_app(connection& c, close_reason why) {
    if (c.app_notified_closed_) return;
    c.app_notified_closed_ = true;
    with_app(c, [&](auto& app) { detail::tcp_notify_closed(app, c, why); });
    c.app_ = nullptr;
    if (c.owned_app_) {
      graveyard_.push_back(std::move(c.owned_app_));
      epilogue_due_ = true;
    }
  }

  // ---- listeners (RFC 9293 §3.10.7.2) ----

  template <class Context>
  bool at_listener(const Context& context, const four_tuple& tuple, const tcp::view& segment,
                   std::optional<seq_number> iss_floor) {
    return dispatch_by_key(
        listeners_, tuple.local.port, [](auto& l) { return std::remove_reference_t<decltype(l)>::port; },
        [&](auto& listener) {
          constexpr std::uint16_t index = static_cast<std::uint16_t>(listener_index<std::remove_reference_t<decltype(listener)>>());
          listen(listener, index, context, tuple, segment, iss_floor);
        });
  }

  template <class Listener, class Context>
  void listen(Listener& listener, std::uint16_t index, const Context& context, const four_tuple& tuple,
              const tcp::view& segment, std::optional<seq_number> iss_floor) {
    using App = typename Listener::application;
    const tcp::flags f = segment.flags();
    if (f.has(tcp::flags::rst)) {  // first: an RST is ignored
      ++stats_.listen_dropped;
      ++stats_.rst_ignored;
      return;
    }
    if (f.has(tcp::flags::ack)) {  // second: an ACK is answered with <SEQ=SEG.ACK><CTL=RST>
      ++stats_.listen_bad_ack;
      reply_reset(tuple, segment);
      return;
    }
    if (!f.has(tcp::flags::syn)) {  // fourth, "other text or control": drop
      ++stats_.listen_dropped;
      return;
    }
    if (stopping_) {
      ++stats_.refused_stopping;
      reply_reset(tuple, segment);
      return;
    }
    if (live_connections() >= policy_.limits().max_connections) {
      ++stats_.refused_limit;
      reply_reset(tuple, segment);
      return;
    }
    // third: a SYN makes a connection in SYN-RECEIVED.
    connection& c = create(tuple, true);
    c.owner_ = index;
    if constexpr (Listener::shared) {
      c.app_ = &listener.app;
    } else {
      auto app = std::make_shared<App>();
      c.app_ = app.get();
      c.owned_app_ = std::move(app);
    }
    c.state_ = tcp_state::syn_received;
    ++stats_.passive_opens;
    ++c.stats_.segments_received;
    with_app(c, [&](auto& app) { detail::tcp_notify_incoming(app, context, segment); });
    if (c.state_ == tcp_state::closed) return;  // the hook aborted it
    c.irs_ = segment.sequence_number();
    c.rcv_nxt_ = c.rcv_adv_ = c.irs_ + 1;
    read_syn_options(c, segment);
    c.snd_wnd_ = c.max_snd_wnd_ = segment.window();  // never scaled in a SYN (RFC 7323 §2.2)
    c.snd_wl1_ = c.irs_;
    c.iss_ = policy_.initial_sequence(tuple, now());
    if (iss_floor && c.iss_ <= *iss_floor) c.iss_ = *iss_floor + 1;
    c.snd_una_ = c.iss_;
    c.snd_nxt_ = c.snd_max_ = c.iss_ + 1;
    c.snd_wl2_ = c.iss_;
    if (!segment.payload().empty() || f.has(tcp::flags::fin)) ++stats_.syn_data_ignored;
    send_syn_ack(c);
    c.rtx_deadline_ = now() + c.rto_.rto();
  }

  // ---- connection events ----

  // Inline into receive(), with the in-order case (in_order_data): that
  // segment then costs no call; every other one goes out of line.
  template <class Context>
  [[gnu::always_inline]] void process(connection& c, const Context& context, const tcp::view& segment) {
    ++c.stats_.segments_received;
    with_app(c, [&](auto& app) { detail::tcp_notify_incoming(app, context, segment); });
    if (c.state_ == tcp_state::closed) return;
    if (in_order_data(c, segment)) return;
    process_segment(c, segment);
  }

  // RFC 9293 §3.10.7.3 and §3.10.7.4 for a segment of `c`, after its hook.
  [[gnu::noinline]] void process_segment(connection& c, const tcp::view& segment) {
    if (c.state_ == tcp_state::fin_wait_2) c.linger_deadline_ = now() + policy_.limits().fin_wait_2_timeout;
    if (c.state_ == tcp_state::syn_sent) {
      in_syn_sent(c, segment);
      return;
    }
    const tcp::flags f = segment.flags();
    const seq_number seq = segment.sequence_number();
    const bytes_view payload = segment.payload();
    const bool syn = f.has(tcp::flags::syn);
    const bool fin = f.has(tcp::flags::fin);
    const auto length = static_cast<std::uint32_t>(payload.size() + syn + fin);

    // Our SYN-ACK was lost and the peer sent its SYN again: answer with the
    // SYN-ACK again, as Linux does, instead of waiting for our timer.
    if (c.state_ == tcp_state::syn_received && syn && !f.has(tcp::flags::ack) && !f.has(tcp::flags::rst) &&
        seq == c.irs_) {
      ++stats_.duplicate_syns;
      send_syn_ack(c);
      return;
    }
    // First and second: the RST bit, checked against the window (RFC 5961 §3.2).
    if (f.has(tcp::flags::rst)) {
      on_rst(c, segment);
      return;
    }
    // First: is the segment acceptable (§3.10.7.4, the table of four cases)?
    const std::uint32_t window = receive_window_now(c);
    bool zero_window_allowance = false;
    if (!acceptable(seq, length, c.rcv_nxt_, window)) {
      // "If the RCV.WND is zero, no segments will be acceptable, but special
      // allowance should be made to accept valid ACKs": one at RCV.NXT.
      if (window == 0 && seq == c.rcv_nxt_) {
        zero_window_allowance = true;
      } else {
        if (c.state_ == tcp_state::time_wait && fin && seq + static_cast<std::int64_t>(length) == c.rcv_nxt_) {
          // The peer's FIN again: our ACK was lost. Restart 2 MSL (eighth step).
          c.linger_deadline_ = now() + 2 * policy_.msl();
        }
        ++stats_.unacceptable;
        if (length > 0) ++c.stats_.duplicates;
        send_ack(c);
        return;
      }
    }
    // Fourth: SYN.
    if (syn) {
      if (c.state_ == tcp_state::syn_received && c.passive_) {
        ++stats_.syn_in_syn_received;
        close_connection(c, close_reason::reset);  // back to LISTEN: the listener is still there
        return;
      }
      ++stats_.syn_challenged;
      send_challenge_ack(c);  // RFC 5961 §4.2
      return;
    }
    // Fifth: ACK.
    if (!f.has(tcp::flags::ack)) {
      ++stats_.no_ack_flag;
      return;
    }
    if (!on_ack(c, segment) || c.state_ == tcp_state::closed) {
      finish(c);
      return;
    }
    if (zero_window_allowance) {
      if (length > 0) {
        ++stats_.zero_window_dropped;
        c.ack_now_ = true;
      }
      finish(c);
      return;
    }
    // Seventh and eighth: text and FIN.
    on_text(c, seq, payload, fin);
    finish(c);
  }

  // The segment an ESTABLISHED receiver gets most, processed with only the
  // tests that decide it ("header prediction": Van Jacobson's, in 4.4BSD's
  // tcp_input and Linux's tcp_rcv_established): the next data in order
  // (SEG.SEQ = RCV.NXT), all of it inside the window, no gap queued, ACK
  // without SYN, FIN or RST, and SEG.ACK = SND.UNA (nothing newly
  // acknowledged; data in it, so it is no duplicate ACK either). For such a
  // segment every step of §3.10.7.4 that process() runs gives a known answer:
  // it is acceptable, on_ack() only updates the window, on_text() trims
  // nothing and delivers all of it. Returns false, having done nothing, for
  // any other segment. tests/tcp/transfer_test.cc checks each edge of these
  // conditions against the outcome §3.10.7.4 gives.
  [[gnu::always_inline]] bool in_order_data(connection& c, const tcp::view& segment) {
    const tcp::flags f = segment.flags();
    const seq_number seq = segment.sequence_number();
    const seq_number ack = segment.ack_number();
    const bytes_view payload = segment.payload();
    if (c.state_ != tcp_state::established || f.any(tcp::flags::syn | tcp::flags::fin | tcp::flags::rst) ||
        !f.has(tcp::flags::ack) || seq != c.rcv_nxt_ || ack != c.snd_una_ || payload.empty() ||
        payload.size() > receive_window_now(c) || !c.ooo_.empty()) {
      return false;
    }
    update_send_window(c, seq, ack, static_cast<std::uint32_t>(segment.window()) << c.snd_scale_);
    c.rcv_nxt_ += static_cast<std::int64_t>(payload.size());
    if (deliver(c, payload)) schedule_ack(c, false);
    finish(c);
    return true;
  }

  // After a segment or an application call: send what may go, then tell an
  // application that was refused room that there is some. Inline: with the
  // sending itself out of line (send_queued) it is a few tests, which cost
  // less than the call did for every segment received.
  [[gnu::always_inline]] void finish(connection& c) {
    if (c.state_ == tcp_state::closed) return;
    output(c);
    if (c.send_blocked_ && c.send_.free_space() > 0 && c.state_ != tcp_state::closed) {
      c.send_blocked_ = false;
      with_app(c, [&](auto& app) { detail::tcp_notify_writable(app, c); });
    }
  }

  // RFC 9293 §3.10.7.4, first: the four cases of the acceptability test.
  static bool acceptable(seq_number seq, std::uint32_t length, seq_number rcv_nxt, std::uint32_t window) noexcept {
    const seq_number right = rcv_nxt + static_cast<std::int64_t>(window);
    if (length == 0) return window == 0 ? seq == rcv_nxt : seq.in_window(rcv_nxt, right);
    if (window == 0) return false;
    const seq_number last = seq + static_cast<std::int64_t>(length) - 1;
    return seq.in_window(rcv_nxt, right) || last.in_window(rcv_nxt, right);
  }

  // RFC 9293 §3.10.7.3.
  void in_syn_sent(connection& c, const tcp::view& segment) {
    const tcp::flags f = segment.flags();
    const seq_number ack = segment.ack_number();
    bool ack_acceptable = false;
    // First: the ACK bit.
    if (f.has(tcp::flags::ack)) {
      if (ack <= c.iss_ || ack > c.snd_max_) {
        ++stats_.syn_sent_dropped;
        if (!f.has(tcp::flags::rst)) send_reset(c, ack, std::nullopt);
        return;
      }
      ack_acceptable = true;
    }
    // Second: the RST bit; it counts only when it acknowledges our SYN.
    if (f.has(tcp::flags::rst)) {
      const rst_check where = ack_acceptable ? rst_check::exact : rst_check::out_of_window;
      const rst_action action = policy_.accept_rst(segment, c, where);
      if (ack_acceptable && action == rst_action::reset) {
        ++stats_.resets_received;
        close_connection(c, close_reason::refused);
      } else {
        ++stats_.rst_ignored;
      }
      return;
    }
    // Fourth: the SYN bit.
    if (!f.has(tcp::flags::syn)) {
      ++stats_.syn_sent_dropped;
      return;
    }
    const seq_number seq = segment.sequence_number();
    c.irs_ = seq;
    c.rcv_nxt_ = seq + 1;
    c.rcv_adv_ = c.rcv_nxt_ + c.syn_window_;
    read_syn_options(c, segment);
    agree_window_scale(c, c.sent_window_scale_);
    c.snd_wnd_ = c.max_snd_wnd_ = segment.window();  // not scaled in a SYN
    c.snd_wl1_ = seq;
    c.snd_wl2_ = ack;
    if (ack_acceptable) {
      // Our SYN is acknowledged: ESTABLISHED, and ACK their SYN.
      take_syn_ack(c, ack);
      c.state_ = tcp_state::established;
      ++stats_.established;
      c.ack_now_ = true;
      notify_connected(c);
      if (c.state_ == tcp_state::closed) return;
      // "If there are other controls or text in the segment, then continue
      // processing at the sixth step."
      on_text(c, seq + 1, segment.payload(), f.has(tcp::flags::fin));
      finish(c);
      return;
    }
    // A SYN without ACK: simultaneous open (§3.5, Figure 7).
    c.state_ = tcp_state::syn_received;
    if (!segment.payload().empty() || f.has(tcp::flags::fin)) ++stats_.syn_data_ignored;
    send_syn_ack(c);
  }

  // Our SYN was acknowledged by `ack` (in SYN-SENT or SYN-RECEIVED).
  void take_syn_ack(connection& c, seq_number ack) {
    c.snd_una_ = ack;
    if (c.snd_nxt_ < ack) c.snd_nxt_ = ack;
    if (c.timing_ && !c.syn_retransmitted_) c.rto_.sample(now() - c.timed_at_);
    c.timing_ = false;
    if (c.syn_retransmitted_) c.rto_.after_lost_syn();
    c.retries_ = 0;
    c.rtx_deadline_.reset();
    // RFC 5681 §3.1 with RFC 6928's initial window.
    const std::uint32_t mss = send_mss(c);
    c.cwnd_ = std::min(10 * mss, std::max(2 * mss, 14600u));
  }

  void on_rst(connection& c, const tcp::view& segment) {
    const seq_number seq = segment.sequence_number();
    const std::uint32_t window = receive_window_now(c);
    rst_check where = rst_check::out_of_window;
    if (seq == c.rcv_nxt_) {
      where = rst_check::exact;
    } else if (window > 0 && seq.in_window(c.rcv_nxt_, c.rcv_nxt_ + static_cast<std::int64_t>(window))) {
      where = rst_check::in_window;
    }
    switch (policy_.accept_rst(segment, c, where)) {
      case rst_action::reset:
        ++stats_.resets_received;
        // SYN-RECEIVED from a passive open goes back to LISTEN; from an active
        // one the connection was refused (§3.10.7.4 second).
        if (c.state_ == tcp_state::syn_received) {
          close_connection(c, c.passive_ ? close_reason::reset : close_reason::refused);
        } else {
          close_connection(c, close_reason::reset);
        }
        return;
      case rst_action::challenge_ack:
        ++stats_.rst_challenged;
        send_challenge_ack(c);
        return;
      case rst_action::ignore:
        ++stats_.rst_ignored;
        return;
    }
  }

  // Fifth step. Returns false when the segment is done with (dropped, or the
  // connection changed so that the rest does not apply).
  bool on_ack(connection& c, const tcp::view& segment) {
    const seq_number ack = segment.ack_number();
    const seq_number seq = segment.sequence_number();
    if (c.state_ == tcp_state::syn_received) {
      if (!(c.snd_una_ < ack && ack <= c.snd_max_)) {
        ++stats_.bad_ack;
        send_reset(c, ack, std::nullopt);
        return false;
      }
      take_syn_ack(c, ack);
      c.snd_wnd_ = static_cast<std::uint32_t>(segment.window()) << c.snd_scale_;
      c.max_snd_wnd_ = std::max(c.max_snd_wnd_, c.snd_wnd_);
      c.snd_wl1_ = seq;
      c.snd_wl2_ = ack;
      // A close() before the handshake ended was held until now (§3.10.4).
      c.state_ = c.fin_queued_ ? tcp_state::fin_wait_1 : tcp_state::established;
      ++stats_.established;
      notify_connected(c);
      return c.state_ != tcp_state::closed;
    }
    if (c.state_ == tcp_state::time_wait) return true;
    // RFC 5961 §5.2: acceptable when SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.NXT.
    if (ack > c.snd_max_) {
      ++stats_.ack_too_new;
      send_challenge_ack(c);
      return false;
    }
    if (ack < c.snd_una_ - static_cast<std::int64_t>(std::max<std::uint32_t>(c.max_snd_wnd_, 1))) {
      ++stats_.ack_too_old;
      send_challenge_ack(c);
      return false;
    }
    const std::uint32_t advertised = static_cast<std::uint32_t>(segment.window()) << c.snd_scale_;
    const seq_number old_una = c.snd_una_;
    if (ack > c.snd_una_) {
      acknowledge(c, ack);
    } else if (ack == c.snd_una_ && c.snd_max_ > c.snd_una_ && c.snd_wnd_ > 0 && segment.payload().empty() &&
               !segment.flags().any(tcp::flags::syn | tcp::flags::fin) && advertised == c.snd_wnd_) {
      on_duplicate_ack(c);  // RFC 5681 §2's five conditions
    }
    if (old_una <= ack) update_send_window(c, seq, ack, advertised);
    switch (c.state_) {
      case tcp_state::fin_wait_1:
        if (c.fin_acked_) {
          c.state_ = tcp_state::fin_wait_2;
          c.linger_deadline_ = now() + policy_.limits().fin_wait_2_timeout;
        }
        return true;
      case tcp_state::closing:
        if (c.fin_acked_) enter_time_wait(c);
        return false;  // "otherwise ignore the segment"
      case tcp_state::last_ack:
        if (c.fin_acked_) close_connection(c, close_reason::closed);
        return c.state_ != tcp_state::closed;
      default: return true;
    }
  }

  // The peer's window, from the newest segment only (§3.10.7.4 fifth,
  // SND.WL1/WL2), for a segment whose ACK did not go back (SND.UNA before
  // it was processed =< SEG.ACK).
  void update_send_window(connection& c, seq_number seq, seq_number ack, std::uint32_t advertised) {
    if (!(c.snd_wl1_ < seq || (c.snd_wl1_ == seq && c.snd_wl2_ <= ack))) return;
    c.snd_wnd_ = advertised;
    c.snd_wl1_ = seq;
    c.snd_wl2_ = ack;
    c.max_snd_wnd_ = std::max(c.max_snd_wnd_, c.snd_wnd_);
    if (c.snd_wnd_ > 0) {
      c.persist_deadline_.reset();
      c.persist_interval_ = duration::zero();
    }
  }

  // SND.UNA < ack =< SND.MAX: new data (or our FIN) acknowledged.
  void acknowledge(connection& c, seq_number ack) {
    const auto acked = static_cast<std::uint32_t>(ack - c.snd_una_);
    const auto data_acked = std::min<std::size_t>(acked, c.send_.size());
    c.send_.consume(data_acked);
    c.stats_.bytes_acknowledged += data_acked;
    if (c.fin_sent_ && acked > data_acked) c.fin_acked_ = true;  // the one number past the data is the FIN
    c.snd_una_ = ack;
    if (c.snd_nxt_ < ack) c.snd_nxt_ = ack;
    // RTT sample from a segment sent once (RFC 6298 §3, Karn).
    if (c.timing_ && ack >= c.timed_seq_) {
      c.rto_.sample(now() - c.timed_at_);
      c.timing_ = false;
    }
    c.retries_ = 0;
    const std::uint32_t mss = send_mss(c);
    if (c.in_recovery_) {
      if (ack >= c.recover_) {
        // RFC 6582 §3.2 step 3: full acknowledgement ends recovery.
        const auto flight = static_cast<std::uint32_t>(c.snd_max_ - c.snd_una_);
        c.cwnd_ = std::min(c.ssthresh_, std::max(flight, mss) + mss);
        c.in_recovery_ = false;
      } else {
        // Partial acknowledgement: the next hole is lost too; deflate.
        retransmit_first(c);
        c.cwnd_ = c.cwnd_ > acked ? c.cwnd_ - acked + (acked >= mss ? mss : 0) : mss;
      }
    } else if (c.cwnd_ < c.ssthresh_) {
      c.cwnd_ += std::min(acked, mss);  // slow start (RFC 5681 §3.1)
    } else {
      c.cwnd_ += std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::uint64_t{mss} * mss / c.cwnd_));
    }
    c.dupacks_ = 0;
    // RFC 6298 §5.2 and §5.3.
    if (c.snd_una_ == c.snd_max_) {
      c.rtx_deadline_.reset();
    } else {
      c.rtx_deadline_ = now() + c.rto_.rto();
    }
  }

  void on_duplicate_ack(connection& c) {
    ++stats_.duplicate_acks;
    ++c.dupacks_;
    const std::uint32_t mss = send_mss(c);
    if (c.in_recovery_) {
      c.cwnd_ += mss;  // RFC 5681 §3.2 step 4: each further duplicate means a segment left the network
    } else if (c.dupacks_ == 3) {
      // RFC 5681 §3.2 steps 2 and 3, with RFC 6582's recovery point.
      const auto flight = static_cast<std::uint32_t>(c.snd_max_ - c.snd_una_);
      c.ssthresh_ = std::max(flight / 2, 2 * mss);
      c.recover_ = c.snd_max_;
      c.in_recovery_ = true;
      ++stats_.fast_retransmits;
      ++c.stats_.fast_retransmits;
      retransmit_first(c);
      c.cwnd_ = c.ssthresh_ + 3 * mss;
    }
  }

  // Seventh (text) and eighth (FIN) steps. Inline into process(): a call
  // and its frame cost a quarter of what it does for a segment in order.
  [[gnu::always_inline]] void on_text(connection& c, seq_number seq, bytes_view data, bool fin) {
    switch (c.state_) {
      case tcp_state::established:
      case tcp_state::fin_wait_1:
      case tcp_state::fin_wait_2: break;
      default:
        // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: the peer's FIN came
        // already; "ignore the segment text".
        if (!data.empty() && seq + static_cast<std::int64_t>(data.size()) > c.rcv_nxt_) ++stats_.data_after_fin;
        return;
    }
    // Only the new part, and only what fits the window (§3.10.7.4 first).
    if (seq < c.rcv_nxt_) {
      const auto old = static_cast<std::size_t>(c.rcv_nxt_ - seq);
      if (old > data.size()) fin = false;  // the FIN is old as well
      if (old >= data.size() && !data.empty()) ++stats_.old_data;
      data = data.subspan(std::min(old, data.size()));
      seq = c.rcv_nxt_;
    }
    const seq_number right = c.rcv_nxt_ + static_cast<std::int64_t>(receive_window_now(c));
    if (seq + static_cast<std::int64_t>(data.size()) > right) {
      const std::int32_t room = right - seq;
      data = data.first(room > 0 ? static_cast<std::size_t>(room) : 0);
      fin = false;
      ++stats_.beyond_window;
    }
    if (data.empty() && !fin) return;
    if (seq != c.rcv_nxt_) {
      // Ahead of a gap: hold it, and say at once what we miss (RFC 5681 §4.2).
      switch (c.ooo_.insert(seq, data, fin)) {
        case reassembly_queue::outcome::queued:
          ++stats_.out_of_order;
          ++c.stats_.out_of_order;
          break;
        case reassembly_queue::outcome::duplicate: ++c.stats_.duplicates; break;
        case reassembly_queue::outcome::full: ++stats_.out_of_order_dropped; break;
      }
      c.ack_now_ = true;
      return;
    }
    const bool had_gap = !c.ooo_.empty();
    c.rcv_nxt_ += static_cast<std::int64_t>(data.size());
    if (!deliver(c, data)) return;
    if (!fin && had_gap) {
      fin = c.ooo_.drain(c.rcv_nxt_, [&](bytes_view more, bool) { return deliver(c, more); });
      if (c.state_ == tcp_state::closed) return;
    }
    schedule_ack(c, fin || had_gap);
    if (fin) on_fin(c);
  }

  // RFC 9293 §3.8.6.3: ACK at once, or within the policy's delay and for at
  // least every second segment.
  void schedule_ack(connection& c, bool at_once) {
    const duration delay = policy_.ack_delay();
    if (at_once || delay <= duration::zero() || ++c.unacked_segments_ >= 2) {
      c.ack_now_ = true;
    } else if (!c.ack_deadline_) {
      c.ack_deadline_ = now() + std::min<duration>(delay, std::chrono::milliseconds(500));
    }
  }

  // Eighth step: the peer's FIN, in order.
  void on_fin(connection& c) {
    c.rcv_nxt_ += 1;
    c.ooo_.clear();
    c.ack_now_ = true;
    // The state moves first, so that a close() from on_peer_closed sees it.
    switch (c.state_) {
      case tcp_state::established:
        c.state_ = tcp_state::close_wait;
        notify_peer_closed(c);
        return;
      case tcp_state::fin_wait_1:
        if (!c.fin_acked_) {
          c.state_ = tcp_state::closing;  // simultaneous close (§3.6, Figure 13)
          notify_peer_closed(c);
          return;
        }
        break;
      case tcp_state::fin_wait_2: break;
      default: return;
    }
    // Both FINs are acknowledged once we ACK this one: TIME-WAIT.
    notify_peer_closed(c);
    if (c.state_ == tcp_state::closed) return;
    send_ack(c);
    enter_time_wait(c);
  }

  void enter_time_wait(connection& c) {
    c.state_ = tcp_state::time_wait;
    c.rtx_deadline_.reset();
    c.persist_deadline_.reset();
    c.ack_deadline_.reset();
    c.ack_now_ = false;
    c.linger_deadline_ = now() + 2 * policy_.msl();
    ++stats_.closed;
    release_app(c, close_reason::closed);
  }

  // The connection ends (CLOSED; the TCB is deleted when the call returns).
  void close_connection(connection& c, close_reason why) {
    if (c.state_ == tcp_state::closed) return;
    const bool counted = c.state_ == tcp_state::time_wait;
    c.state_ = tcp_state::closed;
    closed_since_reap_ = true;
    epilogue_due_ = true;
    c.rtx_deadline_.reset();
    c.persist_deadline_.reset();
    c.ack_deadline_.reset();
    c.linger_deadline_.reset();
    if (const auto found = index_.find(c.tuple_); found != index_.end() && found->second == &c) index_.erase(found);
    if (last_found_ == &c) last_found_ = nullptr;
    if (!counted) {
      switch (why) {
        case close_reason::closed: ++stats_.closed; break;
        case close_reason::reset: ++stats_.reset; break;
        case close_reason::refused: ++stats_.refused; break;
        case close_reason::timed_out: ++stats_.timed_out; break;
        case close_reason::aborted: ++stats_.aborted; break;
      }
    }
    release_app(c, why);
  }

  bool reopens_time_wait(const connection& c, const tcp::view& segment) const {
    const tcp::flags f = segment.flags();
    return f.has(tcp::flags::syn) && !f.any(tcp::flags::ack | tcp::flags::rst) &&
           segment.sequence_number() > c.rcv_nxt_ && listening_on(c.tuple_.local.port);
  }

  // ---- application calls ----

  expected<std::size_t, tcp_error> send_on(connection& c, bytes_view data) {
    const operation op(*this);
    switch (c.state_) {
      case tcp_state::syn_sent:
      case tcp_state::syn_received:
      case tcp_state::established:
      case tcp_state::close_wait: break;
      case tcp_state::closed: return tcp_error{tcp_error::code::no_such_connection};
      default: return tcp_error{tcp_error::code::connection_closing};
    }
    if (c.fin_queued_) return tcp_error{tcp_error::code::connection_closing};
    const std::size_t taken = c.send_.push(data);
    if (taken < data.size()) c.send_blocked_ = true;
    if (taken > 0) queue_output(c);  // sent when the outermost call returns
    return taken;
  }

  expected<void, tcp_error> close_on(connection& c) {
    const operation op(*this);
    switch (c.state_) {
      case tcp_state::closed: return tcp_error{tcp_error::code::no_such_connection};
      case tcp_state::syn_sent:
        close_connection(c, close_reason::closed);  // §3.10.4: delete the TCB
        return {};
      case tcp_state::syn_received:
        if (c.fin_queued_) return tcp_error{tcp_error::code::connection_closing};
        c.fin_queued_ = true;  // sent once ESTABLISHED (see on_ack)
        return {};
      case tcp_state::established: c.state_ = tcp_state::fin_wait_1; break;
      case tcp_state::close_wait: c.state_ = tcp_state::last_ack; break;
      default: return tcp_error{tcp_error::code::connection_closing};
    }
    c.fin_queued_ = true;
    queue_output(c);
    return {};
  }

  expected<void, tcp_error> abort_on(connection& c) {
    const operation op(*this);
    switch (c.state_) {
      case tcp_state::closed: return tcp_error{tcp_error::code::no_such_connection};
      case tcp_state::syn_received:
      case tcp_state::established:
      case tcp_state::fin_wait_1:
      case tcp_state::fin_wait_2:
      case tcp_state::close_wait: send_reset(c, c.snd_nxt_, std::nullopt); break;  // §3.10.5
      default: break;  // SYN-SENT, CLOSING, LAST-ACK, TIME-WAIT: no RST
    }
    close_connection(c, close_reason::aborted);
    return {};
  }

  // ---- timers ----

  void on_retransmission_timeout(connection& c) {
    c.rtx_deadline_.reset();
    ++stats_.timeouts;
    ++c.stats_.timeouts;
    ++c.retries_;
    const auto& timing = policy_.retransmission();
    const bool handshake = c.state_ == tcp_state::syn_sent || c.state_ == tcp_state::syn_received;
    if (c.retries_ > (handshake ? timing.max_syn_retries : timing.max_retries)) {
      // RFC 1122 §4.2.3.5: past R2, close the connection; tell the peer.
      if (c.state_ != tcp_state::syn_sent) send_reset(c, c.snd_nxt_, std::nullopt);
      close_connection(c, close_reason::timed_out);
      return;
    }
    c.rto_.back_off();  // RFC 6298 §5.5
    c.timing_ = false;  // Karn: no sample across a retransmission
    if (c.state_ == tcp_state::syn_sent) {
      c.syn_retransmitted_ = true;
      ++c.stats_.retransmissions;
      ++stats_.retransmissions;
      send_syn(c);
    } else if (c.state_ == tcp_state::syn_received) {
      c.syn_retransmitted_ = true;
      ++c.stats_.retransmissions;
      ++stats_.retransmissions;
      send_syn_ack(c);
    } else if (c.snd_max_ > c.snd_una_) {
      // RFC 5681 §3.1 equation 4 on the first timeout, then one segment.
      const std::uint32_t mss = send_mss(c);
      if (c.retries_ == 1) c.ssthresh_ = std::max(static_cast<std::uint32_t>(c.snd_max_ - c.snd_una_) / 2, 2 * mss);
      c.cwnd_ = mss;
      c.in_recovery_ = false;
      c.dupacks_ = 0;
      c.snd_nxt_ = c.snd_una_;  // go back: everything unacknowledged is sent again
      output(c);
    }
    if (c.state_ != tcp_state::closed && (handshake || c.snd_max_ > c.snd_una_)) {
      c.rtx_deadline_ = now() + c.rto_.rto();  // §5.6
    }
  }

  // RFC 9293 §3.8.6.1: the peer's window is zero (or too small to use) and
  // nothing is in flight. Send what the window allows, or probe with one
  // byte beyond it, backing off up to the maximum RTO.
  void on_persist_timeout(connection& c) {
    c.persist_deadline_.reset();
    if (!can_send_data(c)) return;
    const seq_number data_end = c.snd_una_ + static_cast<std::int64_t>(c.send_.size());
    const std::int32_t unsent = data_end - c.snd_nxt_;
    const bool fin_pending = c.fin_queued_ && !c.fin_acked_ && c.snd_nxt_ <= data_end;
    if (unsent <= 0 && !fin_pending) return;
    const std::uint32_t usable = usable_window(c);
    if (usable > 0) {
      const std::size_t len = std::min<std::size_t>({static_cast<std::size_t>(std::max(unsent, 0)), usable, send_mss(c)});
      const bool fin = fin_pending && c.snd_nxt_ + static_cast<std::int64_t>(len) == data_end && usable > len;
      send_new(c, len, fin);
    } else {
      ++stats_.window_probes;
      ++c.stats_.window_probes;
      send_data(c, c.snd_nxt_, unsent > 0 ? 1 : 0, unsent <= 0 && fin_pending, true);
    }
    if (usable == 0) {
      // Still shut: probe again later, backing off (RFC 1122 §4.2.2.17).
      const duration max_rto = policy_.retransmission().max_rto;
      c.persist_interval_ =
          std::min(c.persist_interval_ == duration::zero() ? c.rto_.rto() : c.persist_interval_ * 2, max_rto);
      c.persist_deadline_ = now() + c.persist_interval_;
    }
  }

  void on_linger_timeout(connection& c) {
    if (c.state_ == tcp_state::time_wait) {
      close_connection(c, close_reason::closed);
    } else {
      close_connection(c, close_reason::timed_out);  // FIN-WAIT-2 with a silent peer
    }
  }

  // ---- output ----

  bool can_send_data(const connection& c) const noexcept {
    switch (c.state_) {
      case tcp_state::established:
      case tcp_state::close_wait:
      case tcp_state::fin_wait_1:
      case tcp_state::closing:
      case tcp_state::last_ack: return true;
      default: return false;
    }
  }

  std::uint32_t usable_window(const connection& c) const noexcept {
    const std::uint32_t window = std::min(c.snd_wnd_, c.cwnd_);
    const auto in_flight = static_cast<std::uint32_t>(std::max<std::int32_t>(c.snd_nxt_ - c.snd_una_, 0));
    return window > in_flight ? window - in_flight : 0;
  }

  // The largest segment we send: RFC 9293 §3.7.1's Eff.snd.MSS before our
  // options, also bounded by what a frame buffer holds.
  std::uint32_t send_mss(const connection& c) const noexcept {
    return std::min<std::uint32_t>(c.peer_mss_, our_mss());
  }
  std::uint16_t our_mss() const noexcept {
    constexpr std::size_t frame_room =
        frame_buffer::capacity - eth::header_size - eth::max_vlan_tags * eth::vlan_tag_size - ipv4::max_header_size -
        tcp::max_header_size;
    const std::size_t mtu = services_config().mtu;
    const std::size_t from_mtu = mtu > ipv4::header_size + tcp::header_size ? mtu - ipv4::header_size - tcp::header_size : 0;
    return static_cast<std::uint16_t>(std::min(from_mtu, frame_room));
  }
  const interface_config& services_config() const noexcept { return lower_.services().config(); }

  // Sends what the windows allow (RFC 9293 §3.8.6.2.1 for the sender's
  // silly window avoidance), then a bare ACK if one is still owed.
  //
  // Inline, and the sending out of line: a receiver with nothing queued
  // (every segment it gets) pays two tests before its ACK.
  [[gnu::always_inline]] void output(connection& c) {
    if (can_send_data(c) && pending_output(c).any()) send_queued(c);
    if (c.ack_now_) send_ack(c);
  }

  // What is left to send from SND.NXT: data not sent yet, and a FIN owed.
  struct pending {
    seq_number data_end;  // SND.UNA plus what the send buffer holds
    std::int32_t unsent;
    bool fin;
    bool any() const noexcept { return unsent > 0 || fin; }
  };
  pending pending_output(const connection& c) const noexcept {
    const seq_number data_end = c.snd_una_ + static_cast<std::int64_t>(c.send_.size());
    return {data_end, data_end - c.snd_nxt_, c.fin_queued_ && !c.fin_acked_ && c.snd_nxt_ <= data_end};
  }

  // output()'s sending: segments of what the windows allow, and the FIN.
  [[gnu::noinline]] void send_queued(connection& c) {
    // Bounded: each pass sends at least one byte or stops.
    for (std::size_t pass = 0; pass <= c.send_.capacity() / 64 + 2; ++pass) {
      const pending left = pending_output(c);
      if (!left.any()) break;
      const auto [data_end, unsent, fin_pending] = left;
      const std::uint32_t usable = usable_window(c);
      const std::uint32_t mss = send_mss(c);
      std::size_t len = std::min<std::size_t>(static_cast<std::size_t>(std::max(unsent, 0)), std::min(usable, mss));
      // Silly window avoidance: a short segment only when it empties the
      // buffer or uses half the largest window the peer offered.
      if (len < static_cast<std::size_t>(std::max(unsent, 0)) && len < mss && len < c.max_snd_wnd_ / 2) len = 0;
      const bool fin = fin_pending && c.snd_nxt_ + static_cast<std::int64_t>(len) == data_end && usable > len;
      if (len == 0 && !fin) {
        // Blocked by the window with nothing in flight: only the persist
        // timer will find out when it opens.
        if (c.snd_nxt_ == c.snd_una_ && !c.persist_deadline_) {
          c.persist_interval_ = c.rto_.rto();
          c.persist_deadline_ = now() + c.persist_interval_;
        }
        break;
      }
      if (send_new(c, len, fin) == 0) break;
    }
  }

  // Sends from SND.NXT and advances it.
  std::uint32_t send_new(connection& c, std::size_t len, bool fin) {
    const std::uint32_t covered = send_data(c, c.snd_nxt_, len, fin, false);
    c.snd_nxt_ += covered;
    if (c.snd_nxt_ > c.snd_max_) c.snd_max_ = c.snd_nxt_;
    return covered;
  }

  // The first unacknowledged segment again (fast retransmit, partial ACK).
  void retransmit_first(connection& c) {
    const seq_number data_end = c.snd_una_ + static_cast<std::int64_t>(c.send_.size());
    const auto len = std::min<std::size_t>(c.send_.size(), send_mss(c));
    const bool fin = c.fin_sent_ && !c.fin_acked_ && c.snd_una_ + static_cast<std::int64_t>(len) == data_end;
    if (len > 0 || fin) send_data(c, c.snd_una_, len, fin, false);
  }

  // Sends [seq, seq + len) from the send buffer, and FIN when asked and the
  // segment reaches the end. A probe starts no timer and no RTT sample.
  // Returns the sequence space covered (0: nothing was sent).
  std::uint32_t send_data(connection& c, seq_number seq, std::size_t len, bool fin, bool probe) {
    tcp::repr header = base_header(c, seq, tcp::flags::ack);
    policy_.options(header, len > 0 ? (probe ? segment_kind::window_probe : segment_kind::data) : segment_kind::fin);
    const std::size_t option_room = header.size() - tcp::header_size;
    const std::size_t room = send_mss(c) > option_room ? send_mss(c) - option_room : 0;
    if (len > room) {
      len = room;
      fin = false;
    }
    if (len == 0 && !fin) return 0;
    const seq_number data_end = c.snd_una_ + static_cast<std::int64_t>(c.send_.size());
    if (fin) header.flags |= tcp::flags::fin;
    if (len > 0 && seq + static_cast<std::int64_t>(len) == data_end) header.flags |= tcp::flags::psh;
    header.window = window_field(c);
    frame f = services().allocate_frame();
    if (!f) {
      ++stats_.no_buffer;
      arm_retransmission(c, probe);
      return 0;
    }
    const auto body = f->append(len);
    if (body.size() != len) {
      ++stats_.no_buffer;
      return 0;
    }
    c.send_.copy_out(static_cast<std::size_t>(seq - c.snd_una_), body);
    if (!transmit(c, std::move(f), header)) {
      arm_retransmission(c, probe);
      return 0;
    }
    const auto covered = static_cast<std::uint32_t>(len + (fin ? 1 : 0));
    const seq_number end = seq + static_cast<std::int64_t>(covered);
    if (seq < c.snd_max_ && !probe) {
      ++stats_.retransmissions;
      ++c.stats_.retransmissions;
      c.timing_ = false;  // Karn
    } else if (!probe && !c.timing_) {
      c.timing_ = true;
      c.timed_seq_ = end;
      c.timed_at_ = now();
    }
    if (end > c.snd_max_) {
      c.stats_.bytes_sent += static_cast<std::uint32_t>(end - std::max(seq, c.snd_max_)) - (fin ? 1 : 0);
      if (probe) c.snd_max_ = end;  // the probe's byte may be acknowledged
    }
    if (fin) c.fin_sent_ = true;
    arm_retransmission(c, probe);
    c.ack_now_ = false;
    c.ack_deadline_.reset();
    c.unacked_segments_ = 0;
    return covered;
  }

  // RFC 6298 §5.1: the timer runs whenever data is outstanding.
  void arm_retransmission(connection& c, bool probe) {
    if (!probe && !c.rtx_deadline_) c.rtx_deadline_ = now() + c.rto_.rto();
  }

  // A header from this connection with our ACK.
  tcp::repr base_header(const connection& c, seq_number seq, tcp::flags flags) const {
    tcp::repr header{.source_port = c.tuple_.local.port,
                     .destination_port = c.tuple_.remote.port,
                     .sequence_number = seq,
                     .ack_number = flags.has(tcp::flags::ack) ? c.rcv_nxt_ : seq_number{},
                     .flags = flags};
    return header;
  }

  // The window field of a segment that is not a SYN, in units of our scale;
  // the right edge it offers never moves left (RFC 9293 §3.8.6).
  std::uint16_t window_field(connection& c) {
    const std::uint64_t limit = std::uint64_t{0xffff} << c.rcv_scale_;
    const std::uint64_t wanted = std::min<std::uint64_t>(policy_.receive_window(c), limit);
    std::uint64_t field = wanted >> c.rcv_scale_;
    const std::uint64_t offered = receive_window_now(c);
    if ((field << c.rcv_scale_) < offered) field = std::min<std::uint64_t>((offered + (std::uint64_t{1} << c.rcv_scale_) - 1) >> c.rcv_scale_, 0xffff);
    const seq_number edge = c.rcv_nxt_ + static_cast<std::int64_t>(field << c.rcv_scale_);
    if (edge > c.rcv_adv_) c.rcv_adv_ = edge;
    return static_cast<std::uint16_t>(field);
  }

  // RCV.WND: what is left of the window we offered.
  static std::uint32_t receive_window_now(const connection& c) noexcept {
    const std::int32_t left = c.rcv_adv_ - c.rcv_nxt_;
    return left > 0 ? static_cast<std::uint32_t>(left) : 0;
  }

  // The shift we would offer for our receive window (RFC 7323 §2.3: at most 14).
  std::uint8_t wanted_scale(const connection& c) const {
    const std::uint64_t window = policy_.receive_window(c);
    std::uint8_t shift = 0;
    while (shift < 14 && (window >> shift) > 0xffff) ++shift;
    return shift;
  }

  void read_syn_options(connection& c, const tcp::view& segment) {
    const auto options = segment.options();
    // RFC 9293 §3.7.1: 536 when absent; a tiny one is raised to Linux's
    // floor of 48, which keeps a peer from making us send 1-byte segments.
    c.peer_mss_ = std::max<std::uint16_t>(options.mss().value_or(536), 48);
    if (const auto shift = options.window_scale()) {
      c.peer_window_scale_ = std::min<std::uint8_t>(*shift, 14);  // RFC 7323 §2.3
    }
  }

  // RFC 7323 §1.3: windows are scaled only when both SYNs carried the option.
  static void agree_window_scale(connection& c, std::optional<std::uint8_t> ours) {
    if (ours && c.peer_window_scale_) {
      c.rcv_scale_ = std::min<std::uint8_t>(*ours, 14);
      c.snd_scale_ = *c.peer_window_scale_;
    } else {
      c.rcv_scale_ = c.snd_scale_ = 0;
    }
  }

  void send_syn(connection& c) {
    tcp::repr header = base_header(c, c.iss_, tcp::flags::syn);
    header.window = static_cast<std::uint16_t>(std::min<std::uint32_t>(policy_.receive_window(c), 0xffff));
    (void)header.options.push_mss(our_mss());
    (void)header.options.push_nop();
    (void)header.options.push_window_scale(wanted_scale(c));
    policy_.options(header, segment_kind::syn);
    c.sent_window_scale_ = header.options.window_scale();
    c.syn_window_ = header.window;
    if (!c.timing_ && !c.syn_retransmitted_) {
      c.timing_ = true;
      c.timed_seq_ = c.iss_ + 1;
      c.timed_at_ = now();
    }
    send_control(c, header);
  }

  void send_syn_ack(connection& c) {
    tcp::repr header = base_header(c, c.iss_, tcp::flags::syn | tcp::flags::ack);
    header.window = static_cast<std::uint16_t>(std::min<std::uint32_t>(policy_.receive_window(c), 0xffff));
    (void)header.options.push_mss(our_mss());
    // Window scale only in answer to a SYN that had it (RFC 7323 §1.3); in
    // a simultaneous open, only if our SYN had it too.
    const bool scale = c.peer_window_scale_ && (c.passive_ || c.sent_window_scale_);
    if (scale) {
      (void)header.options.push_nop();
      (void)header.options.push_window_scale(c.passive_ ? wanted_scale(c) : *c.sent_window_scale_);
    }
    policy_.options(header, segment_kind::syn_ack);
    policy_.syn_ack(header, c);
    if (c.passive_) {
      // The SYN-ACK as the policy left it is what we announced: its
      // sequence number is our ISN, its options our MSS and scale.
      if (header.sequence_number != c.iss_) {
        c.iss_ = c.snd_una_ = c.snd_wl2_ = header.sequence_number;
        c.snd_nxt_ = c.snd_max_ = c.iss_ + 1;
      }
      agree_window_scale(c, header.options.window_scale());
      c.rcv_adv_ = c.rcv_nxt_ + header.window;
    }
    if (!c.timing_ && !c.syn_retransmitted_) {
      c.timing_ = true;
      c.timed_seq_ = c.iss_ + 1;
      c.timed_at_ = now();
    }
    send_control(c, header);
  }

  // Flattened: the bare ACK is the segment a receiver sends most (one for
  // every segment by default). With the whole way down (TCP, IPv4 and
  // Ethernet emit, ARP lookup, the device) in one function, the compiler
  // folds what the policy and an application without hooks leave constant
  // (no options, the flags, the fixed header words of both checksums), as
  // in code written for one ACK. ARP's hold() stays out of line.
  [[gnu::flatten]] void send_ack(connection& c) {
    c.ack_now_ = false;
    // Assigned empty rather than reset(): a store, where reset() tests
    // whether there is a deadline to clear first.
    c.ack_deadline_ = std::optional<instant>{};
    c.unacked_segments_ = 0;
    if (c.state_ == tcp_state::closed || c.state_ == tcp_state::syn_sent) return;
    send_control(c, [&] {
      tcp::repr header = base_header(c, c.snd_nxt_, tcp::flags::ack);
      policy_.options(header, segment_kind::ack);
      header.window = window_field(c);
      return header;
    });
  }

  void send_challenge_ack(connection& c) {
    const instant t = now();
    if (t - c.challenge_window_start_ >= std::chrono::seconds(1)) {
      c.challenge_window_start_ = t;
      c.challenge_count_ = 0;
    }
    if (c.challenge_count_ >= policy_.limits().challenge_acks_per_second) {
      ++stats_.challenge_acks_suppressed;
      return;
    }
    ++c.challenge_count_;
    ++stats_.challenge_acks;
    ++c.stats_.challenge_acks;
    send_ack(c);
  }

  // A RST on a connection: <SEQ=seq><CTL=RST>, with ACK when given.
  void send_reset(connection& c, seq_number seq, std::optional<seq_number> ack) {
    tcp::repr header = base_header(c, seq, tcp::flags::rst);
    if (ack) {
      header.flags |= tcp::flags::ack;
      header.ack_number = *ack;
    }
    policy_.options(header, segment_kind::rst);
    ++stats_.resets_sent;
    send_control(c, header);
  }

  // A segment without data for a connection.
  void send_control(connection& c, tcp::repr& header) {
    send_control(c, [&]() -> tcp::repr& { return header; });
  }
  // The same with the header made by `make_header()`, once, before the frame
  // is taken. It is made inside the dispatch to the application's hook, so
  // that where the hook cannot see it (a listener's application without
  // `hook_outgoing(tcp::repr&)`), the header never leaves the function:
  // inlined, GCC keeps it in registers and folds what the policy left
  // constant (no options, the flags) as in code written for one header.
  //
  // A hook that can see a header (a client application's, through its
  // function table, or a listener application's `hook_outgoing`) takes the
  // way down out of line, in `send_control_hooked`: its header lives in
  // memory, which made GCC give the whole flattened send_ack a stack
  // canary and a larger frame, paid by every ACK of a hookless application
  // too.
  //
  // When no listener's application has such a hook (see with_hook), only a
  // client's connection can: then its whole way is out of line, the header
  // made there too (`send_control_client`), so that no header lives in the
  // hookless way's frame at all. `make_header` goes to it by value: its
  // references, in registers (by reference, the closures were built in
  // memory before the owner test, on every ACK).
  template <std::invocable MakeHeader>
  [[gnu::always_inline]] void send_control(connection& c, MakeHeader&& make_header) {
    if constexpr (!listeners_hook_outgoing(static_cast<listeners_type*>(nullptr))) {
      if (client_with_app(c)) {
        send_control_client(c, make_header);
        return;
      }
    }
    send_control_with_hook(c, make_header);
  }
  template <class MakeHeader>
  [[gnu::noinline]] void send_control_client(connection& c, MakeHeader make_header) {
    send_control_with_hook(c, make_header);
  }
  template <class MakeHeader>
  [[gnu::always_inline]] void send_control_with_hook(connection& c, MakeHeader& make_header) {
    with_hook(c, [&](auto& hook) __attribute__((always_inline)) {
      decltype(auto) header = make_header();
      if constexpr (hook_sees_headers<std::remove_cvref_t<decltype(hook)>>) {
        return send_control_hooked(c, header, hook);
      } else {
        return send_control_frame(c, header, hook);
      }
    });
  }
  template <class Hook>
  static constexpr bool hook_sees_headers = std::is_invocable_v<Hook&, tcp::repr&> ||
                                            std::is_invocable_v<Hook&, ipv4::repr&> ||
                                            std::is_invocable_v<Hook&, eth::repr&>;
  // True when some listener's application has an outgoing hook that can
  // see a header (`hook_outgoing(tcp::repr&)` and the like).
  template <class... Ls>
  static constexpr bool listeners_hook_outgoing(std::tuple<Ls...>*) {
    return (hook_sees_headers<detail::tcp_outgoing_hook<typename Ls::application>> || ...);
  }
  // A client's connection with an application: then, when no listener's
  // application has such a hook, the only kind that may have one.
  static bool client_with_app(const connection& c) noexcept {
    return c.owner_ == connection::client_owner && c.app_ != nullptr;
  }
  template <class Hook>
  [[gnu::noinline, gnu::flatten]] bool send_control_hooked(connection& c, tcp::repr& header, Hook& hook) {
    return send_control_frame(c, header, hook);
  }
  template <class Hook>
  [[gnu::always_inline]] bool send_control_frame(connection& c, tcp::repr& header, Hook& hook) {
    frame f = services().allocate_frame();
    if (!f) {
      ++stats_.no_buffer;
      return false;
    }
    const bool sent = emit(std::move(f), header, c.tuple_, hook);
    if (sent) ++c.stats_.segments_sent;
    return sent;
  }

  // RFC 9293 §3.10.7.1: the answer to a segment for no connection.
  void reply_reset(const four_tuple& tuple, const tcp::view& segment) {
    if (segment.flags().has(tcp::flags::rst)) return;
    tcp::repr header{.source_port = tuple.local.port, .destination_port = tuple.remote.port};
    if (segment.flags().has(tcp::flags::ack)) {
      header.sequence_number = segment.ack_number();
      header.flags = tcp::flags::rst;
    } else {
      const auto length = segment.payload().size() + segment.flags().has(tcp::flags::syn) +
                          segment.flags().has(tcp::flags::fin);
      header.ack_number = segment.sequence_number() + static_cast<std::int64_t>(length);
      header.flags = tcp::flags::rst | tcp::flags::ack;
    }
    policy_.options(header, segment_kind::rst);
    frame f = services().allocate_frame();
    if (!f) {
      ++stats_.no_buffer;
      return;
    }
    ++stats_.resets_sent;
    no_hook hook;
    emit(std::move(f), header, tuple, hook);
  }

  // Hooks, emits and sends a segment of `c` whose payload is in `f`.
  [[gnu::always_inline]] bool transmit(connection& c, frame f, tcp::repr& header) {
    const bool sent = with_hook(c, [&](auto& hook) { return emit(std::move(f), header, c.tuple_, hook); });
    if (sent) ++c.stats_.segments_sent;
    return sent;
  }

  template <class Hook>
  [[gnu::always_inline]] bool emit(frame f, tcp::repr& header, const four_tuple& tuple, Hook& hook) {
    apply_hook(hook, header);
    if (f->prepend(header.size()).empty()) {
      ++stats_.no_headroom;
      return false;
    }
    auto finish = [&](ipv4::repr& ip) __attribute__((always_inline)) {
      ip.source = tuple.local.address;
      header.emit(f->bytes(), ip.source, ip.final_destination());
      ++stats_.segments_sent;
    };
    bool sent;
    if constexpr (requires { lower_.make_and_send(f, tuple.remote.address, tcp::ip_protocol, finish, hook); }) {
      // A lower that makes the IPv4 header, has it finished and sends it in
      // one call (runtime/adapters.hpp's direct_lower), so that the header's
      // constant fields reach the IPv4 emit as constants.
      sent = lower_.make_and_send(f, tuple.remote.address, tcp::ip_protocol, finish, hook);
    } else {
      ipv4::repr ip = lower_.make_header(tuple.remote.address, tcp::ip_protocol);
      finish(ip);
      sent = lower_.send(std::move(f), ip, hook);
    }
    if (!sent) {
      ++stats_.send_failures;
      return false;
    }
    return true;
  }

  // ---- compile-time facts about the listeners ----

  template <class... Ls>
  static constexpr bool ports_distinct(std::tuple<Ls...>*) {
    if constexpr (sizeof...(Ls) < 2) {
      return true;
    } else {
      return static_keys_distinct<Ls...>([](auto t) { return decltype(t)::type::port; });
    }
  }
  template <class L>
  static constexpr bool static_listener = !runtime_keyed_upper<L>;
  template <class... Ls>
  static constexpr bool listeners_ported(std::tuple<Ls...>*) {
    return ((!static_listener<Ls> || Ls::port != 0) && ...);
  }
  template <class L>
  static constexpr bool mode_known() {
    if constexpr (static_listener<L>) {
      return std::is_same_v<typename L::mode, instance::per_connection> || std::is_same_v<typename L::mode, instance::shared>;
    } else {
      return true;
    }
  }
  template <class... Ls>
  static constexpr bool listeners_moded(std::tuple<Ls...>*) {
    return (mode_known<Ls>() && ...);
  }
  template <class... Ls>
  static constexpr bool listeners_constructible(std::tuple<Ls...>*) {
    return (std::is_default_constructible_v<typename Ls::application> && ...);
  }
  template <class... Ls>
  static constexpr bool listens([[maybe_unused]] std::uint16_t port, std::tuple<Ls...>*) {
    return ((Ls::port == port) || ...);
  }
  template <class... Ls>
  static constexpr bool applications_valid(std::tuple<Ls...>*) {
    return (tcp_application<typename Ls::application, connection> && ...);
  }
  template <class L>
  static constexpr std::size_t listener_index() {
    return index_in(static_cast<L*>(nullptr), static_cast<listeners_type*>(nullptr));
  }
  template <class L, class... Ls>
  static constexpr std::size_t index_in(L*, std::tuple<Ls...>*) {
    const bool same[] = {false, std::is_same_v<L, Ls>...};
    for (std::size_t i = 1; i < sizeof(same) / sizeof(same[0]); ++i)
      if (same[i]) return i - 1;
    return sizeof...(Ls);
  }
  template <class T>
  static constexpr std::size_t shared_app_index() {
    return shared_index<T>(static_cast<listeners_type*>(nullptr));
  }
  template <class T, class... Ls>
  static constexpr std::size_t shared_index(std::tuple<Ls...>*) {
    const bool match[] = {false, (Ls::shared && std::is_same_v<T, typename Ls::application>)...};
    for (std::size_t i = 1; i < sizeof(match) / sizeof(match[0]); ++i)
      if (match[i]) return i - 1;
    return sizeof...(Ls);
  }

  Lower& lower_;
  [[no_unique_address]] policy policy_;
  tcp_stats stats_;
  listeners_type listeners_;
  std::vector<std::unique_ptr<connection>> connections_;
  std::unordered_map<four_tuple, connection*, four_tuple_hash> index_;
  connection* last_found_ = nullptr;  // lookup()'s one-entry cache
  std::vector<std::shared_ptr<void>> graveyard_;  // per-connection applications let go, destroyed at reap()
  std::uint64_t last_id_ = 0;
  std::minstd_rand port_random_;
  unsigned depth_ = 0;
  bool stopping_ = false;
  bool output_queued_ = false;     // some connection has output_pending_ (see flush)
  bool closed_since_reap_ = false;  // some connection in connections_ is CLOSED (see reap)
  // Set with output_queued_, closed_since_reap_ and every graveyard_ entry:
  // the outermost operation's end has something to do (epilogue).
  bool epilogue_due_ = false;
};

}  // namespace pystack

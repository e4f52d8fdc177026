// The static TCP layer (layers/tcp.hpp) as a runtime layer, and the
// interface through which the facade's TCP applications use it.
//
//     runtime::tcp_layer tcp;                 // TCP<Session<tcp_default_policy>, ...>
//     ip.register_layer(tcp);
//     runtime::basic_tcp_layer<MyPolicy> t2;  // TCP<Session<MyPolicy>, ...>: set_custom_session
//
// The static layer keeps every connection; what crosses the boundary is a
// connection's id. A runtime application is a `tcp_handler`; the static
// layer talks to a small `tcp_proxy` per connection, the application type it
// was given, which forwards each call to the handler (or to nobody once the
// handler has gone: a handler's destruction aborts its connections instead
// of leaving the layer a dangling pointer).
//
// - Active opens go through the static layer's `connect(address, port, app)`
//   with a proxy the adapter owns.
// - Passive opens on ports chosen at run time: the adapter instantiates the
//   static layer as `TCP<Session<Policy>, any_port_listener>`. The static
//   layer's listener dispatch (`dispatch_by_key`, stack/layer.hpp) asks a
//   run-time keyed listener whether it `accepts(port)` after its constant
//   ports, so a SYN to a port some handler `tcp_listen`ed on makes a
//   connection in SYN-RECEIVED with a fresh proxy, which asks that handler
//   (`tcp_accept`) which handler serves it: the listener itself, a shared
//   application, or a new instance (the original's four `bind` modes live in
//   TCPApplication). The listener's table is reached through the adapter
//   that is delivering the segment (a thread-local set around each call into
//   the static layer), since the static layer constructs listeners and
//   per-connection applications itself.
//
// | tcp_service                         | meaning |
// | ----------------------------------- | ------- |
// | `tcp_connect(address, port, h)`     | active open; `h` gets the connection's calls |
// | `tcp_listen(port, h)`, `tcp_unlisten(port)` | accept on `port`, asking `h` |
// | `tcp_send(id, bytes)`               | buffers what fits; returns how much it took |
// | `tcp_close(id)`, `tcp_abort(id)`    | FIN after the buffered data; RST |
// | `tcp_connection(id)`                | endpoints and state of a live connection |
// | `tcp_forget(h)`                     | `h` is going away: its listeners end, its connections are aborted |
//
// Everything here runs on the stack's thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "pystack/layers/tcp.hpp"
#include "pystack/runtime/adapters.hpp"
#include "pystack/runtime/header_set.hpp"
#include "pystack/runtime/host_sockets.hpp"
#include "pystack/runtime/layer.hpp"
#include "pystack/runtime/layers.hpp"
#include "pystack/runtime/shared_address.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"

namespace pystack::runtime {

// What a live connection is, seen from outside the static layer.
struct tcp_connection_info {
  connection_id id{};
  tcp_endpoint local{};
  tcp_endpoint remote{};
  tcp_state state = tcp_state::closed;
  bool passive = false;
};

template <class Connection>
tcp_connection_info info_of(const Connection& c) {
  return {c.id(), c.local(), c.remote(), c.state(), c.passive()};
}

// A TCP application of the facade. Every call comes on the stack's thread.
class tcp_handler {
 public:
  // ---- connection events, called with the static layer's connection ----
  template <class Connection>
  void on_connect(Connection& c) {
    tcp_connected(info_of(c));
  }
  template <class Connection>
  void on_data(Connection& c, bytes_view data) {
    tcp_data(data, c.id());
  }
  template <class Connection>
  void on_peer_closed(Connection& c) {
    tcp_peer_closed(c.id());
  }
  template <class Connection>
  void on_closed(Connection& c, close_reason why) {
    tcp_closed(c.id(), why);
  }
  template <class Connection>
  void on_writable(Connection& c) {
    tcp_writable(c.id());
  }
  // Called only when calls(callback::incoming) (tcp_proxy asks first).
  template <class Context>
  void hook_incoming(const Context& context, const tcp::view& segment) {
    header_set set = header_set::from(context);
    set.put(segment);
    tcp_incoming(set, segment.payload());
  }
  // Every segment sent on the handler's connections, before it is emitted.
  virtual void hook_outgoing(tcp::repr&) {}
  virtual void hook_outgoing(ipv4::repr&) {}
  virtual void hook_outgoing(eth::repr&) {}

  // ---- callbacks its class does not override (runtime::unused_callbacks) ----
  enum class callback : std::uint8_t {
    incoming = 1,       // tcp_incoming (TCPApplication: hook_incoming)
    outgoing_tcp = 2,   // hook_outgoing(tcp::repr&)
    outgoing_ipv4 = 4,  // hook_outgoing(ipv4::repr&)
    outgoing_eth = 8,   // hook_outgoing(eth::repr&)
  };
  static constexpr std::uint8_t all_outgoing = 2 | 4 | 8;
  static_assert((1 | all_outgoing) >> unused_callbacks::max_callbacks == 0);
  bool calls(callback which) const noexcept { return !unused_.skips(static_cast<std::uint8_t>(which), typeid(*this)); }
  // False when none of the three hook_outgoing is overridden.
  bool calls_hook_outgoing() const noexcept { return !unused_.skips(all_outgoing, typeid(*this)); }

  // ---- as a listener (tcp_listen) ----

  // A SYN came for the port: the handler that serves the connection, or
  // null to refuse it (it is reset once it would be established).
  virtual tcp_handler* tcp_accept(const tcp_endpoint& /*local*/, const tcp_endpoint& /*remote*/) { return nullptr; }
  // A connection it accepted is established; `server` is the handler that
  // tcp_accept chose.
  virtual void tcp_established(const tcp_connection_info& /*connection*/, tcp_handler& /*server*/) {}
  // Whether a SYN for its port is to be taken now (a full backlog says no:
  // the SYN is answered with RST at once).
  virtual bool tcp_can_accept() const { return true; }
  // The stack is stopping: no more connections will come.
  virtual void tcp_stopping() {}

 protected:
  tcp_handler() = default;
  ~tcp_handler() = default;

  virtual void tcp_connected(const tcp_connection_info& connection) = 0;
  // In packet_received's order (data, then id): TCPApplication's forwards
  // its arguments in the registers they came in, without moving them round.
  virtual void tcp_data(bytes_view data, connection_id id) = 0;
  virtual void tcp_peer_closed(connection_id id) = 0;
  virtual void tcp_closed(connection_id id, close_reason why) = 0;
  virtual void tcp_writable(connection_id id) = 0;
  // Every segment of the handler's connections, SYN included, with its headers.
  virtual void tcp_incoming(const header_set& headers, bytes_view payload) = 0;

  // The callbacks (a mask of `callback`) its class does not override.
  unused_callbacks unused_;
};

// What a layer offering `service::tcp` answers (layer::as_tcp()).
class tcp_service {
 public:
  virtual expected<connection_id, tcp_error> tcp_connect(ipv4_address address, std::uint16_t port,
                                                         tcp_handler& handler) = 0;
  // False when the port is taken (a listener or a connection has it).
  virtual bool tcp_listen(std::uint16_t port, tcp_handler& listener) = 0;
  virtual void tcp_unlisten(std::uint16_t port) = 0;
  virtual expected<std::size_t, tcp_error> tcp_send(connection_id id, bytes_view data) = 0;
  virtual expected<void, tcp_error> tcp_close(connection_id id) = 0;
  virtual expected<void, tcp_error> tcp_abort(connection_id id) = 0;
  virtual std::optional<tcp_connection_info> tcp_connection(connection_id id) = 0;
  virtual std::size_t tcp_connection_count() const = 0;
  virtual std::size_t tcp_listener_count() const = 0;
  virtual void tcp_forget(tcp_handler& handler) = 0;

 protected:
  tcp_service() = default;
  ~tcp_service() = default;
};

class tcp_proxy;

namespace detail {

// The adapter's side of a proxy, independent of the TCP policy.
class tcp_router {
 public:
  virtual tcp_handler* listener_for(std::uint16_t port) noexcept = 0;
  virtual void proxy_made(tcp_proxy& proxy) = 0;
  virtual void proxy_gone(tcp_proxy& proxy) noexcept = 0;
  virtual void proxy_finished(tcp_proxy& proxy) = 0;

 protected:
  ~tcp_router() = default;
};

// The adapter whose run-time listener has just accepted a SYN on this
// thread: set by `accepts` (below) and taken by the passive proxy the static
// layer then makes, so no segment has a scope to set and restore.
inline tcp_router*& current_router() noexcept {
  thread_local tcp_router* router = nullptr;
  return router;
}

}  // namespace detail

// The application the static layer sees for each runtime connection.
class tcp_proxy {
 public:
  // A passive connection's: made by the static layer in its listener, right
  // after the run-time listener's `accepts` named its adapter.
  tcp_proxy() : router_(std::exchange(detail::current_router(), nullptr)) {
    if (router_ != nullptr) router_->proxy_made(*this);
  }
  // An active connection's.
  tcp_proxy(detail::tcp_router& router, tcp_handler& handler) : router_(&router), handler_(&handler), resolved_(true) {
    router_->proxy_made(*this);
  }
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;
  ~tcp_proxy() {
    if (router_ != nullptr) router_->proxy_gone(*this);
  }

  template <class Connection>
  void on_connect(Connection& c) {
    id_ = c.id();
    resolve(c.local(), c.remote());
    if (handler_ == nullptr) {
      static_cast<void>(c.abort());  // refused, or its handler went away
      return;
    }
    handler_->on_connect(c);
    if (listener_ != nullptr && c.state() != tcp_state::closed) listener_->tcp_established(info_of(c), *handler_);
  }
  template <class Connection>
  void on_data(Connection& c, bytes_view data) {
    id_ = c.id();
    if (handler_ != nullptr) handler_->on_data(c, data);
  }
  template <class Connection>
  void on_peer_closed(Connection& c) {
    if (handler_ != nullptr) handler_->on_peer_closed(c);
  }
  template <class Connection>
  void on_closed(Connection& c, close_reason why) {
    tcp_handler* handler = std::exchange(handler_, nullptr);
    if (handler != nullptr) handler->on_closed(c, why);
    if (router_ != nullptr) router_->proxy_finished(*this);
  }
  template <class Connection>
  void on_writable(Connection& c) {
    if (handler_ != nullptr) handler_->on_writable(c);
  }
  // Inline, with the calls themselves out of line: for a handler whose
  // class does not override it, a segment pays two tests.
  template <class Context>
  [[gnu::always_inline]] void hook_incoming(const Context& context, const tcp::view& segment) {
    if (!resolved_) [[unlikely]]
      resolve_from(context, segment);
    if (handler_ != nullptr && handler_->calls(tcp_handler::callback::incoming)) call_hook_incoming(context, segment);
  }
  void hook_outgoing(tcp::repr& header) {
    if (handler_ != nullptr && handler_->calls(tcp_handler::callback::outgoing_tcp)) handler_->hook_outgoing(header);
  }
  void hook_outgoing(ipv4::repr& header) {
    if (handler_ != nullptr && handler_->calls(tcp_handler::callback::outgoing_ipv4)) handler_->hook_outgoing(header);
  }
  void hook_outgoing(eth::repr& header) {
    if (handler_ != nullptr && handler_->calls(tcp_handler::callback::outgoing_eth)) handler_->hook_outgoing(header);
  }
  // The static layer asks before each segment it sends: when false, the
  // segment goes down as for an application without hooks (layers/tcp.hpp).
  bool wants_hook_outgoing() const noexcept { return handler_ != nullptr && handler_->calls_hook_outgoing(); }

  tcp_handler* handler() const noexcept { return handler_; }
  tcp_handler* listener() const noexcept { return listener_; }
  std::optional<connection_id> id() const noexcept { return id_; }

 private:
  template <class Policy>
  friend class basic_tcp_layer;

  template <class Context>
  [[gnu::noinline]] void resolve_from(const Context& context, const tcp::view& segment) {
    const auto& ip = context.template get<ipv4::view>();
    resolve({ip.destination(), segment.destination_port()}, {ip.source(), segment.source_port()});
  }
  template <class Context>
  [[gnu::noinline]] void call_hook_incoming(const Context& context, const tcp::view& segment) {
    handler_->hook_incoming(context, segment);
  }

  // A passive connection learns its handler from the listener of its port,
  // on its first call (the SYN's hook_incoming).
  void resolve(const tcp_endpoint& local, const tcp_endpoint& remote) {
    if (resolved_) return;
    resolved_ = true;
    if (router_ == nullptr) return;
    listener_ = router_->listener_for(local.port);
    if (listener_ != nullptr) handler_ = listener_->tcp_accept(local, remote);
  }

  detail::tcp_router* router_ = nullptr;
  tcp_handler* handler_ = nullptr;
  tcp_handler* listener_ = nullptr;
  std::optional<connection_id> id_;
  bool resolved_ = false;
};

// The static layer's listener argument for ports chosen at run time.
struct any_port_listener {};

}  // namespace pystack::runtime

// The static layer learns of the run-time listener through its own listener
// traits: `any_port_listener` is a listener (`is_tcp_listen`) whose entry is
// run-time keyed (stack/layer.hpp's `runtime_keyed_upper`), so its
// `dispatch_by_key` asks `accepts(port)` after every constant port; each
// connection it accepts gets its own `tcp_proxy`.
namespace pystack::detail {
template <>
struct is_tcp_listen<runtime::any_port_listener> : std::true_type {};

template <>
struct tcp_listener<runtime::any_port_listener> {
  static constexpr std::uint16_t port = 0;  // no constant port: 0 is never a SYN's
  static constexpr bool shared = false;
  static constexpr bool runtime_keyed = true;
  using application = runtime::tcp_proxy;
  // Set by the adapter that owns the static layer (runtime::basic_tcp_layer).
  runtime::detail::tcp_router* router = nullptr;
  bool accepts(std::uint16_t p) const noexcept {
    if (router == nullptr) return false;
    runtime::tcp_handler* listener = router->listener_for(p);
    if (listener == nullptr || !listener->tcp_can_accept()) return false;
    runtime::detail::current_router() = router;  // for the proxy made next
    return true;
  }
};
}  // namespace pystack::detail

namespace pystack::runtime {

template <class Policy = tcp_default_policy>
class basic_tcp_layer : public layer, public tcp_service, private detail::tcp_router {
 public:
  // Its lower: the built-in IPv4 layer is called by name (runtime/adapters.hpp).
  using lower_type = direct_lower<basic_ip_layer<>>;
  using static_layer = typename TCP<Session<Policy>, any_port_listener>::template bound<lower_type>;

  basic_tcp_layer() : layer("TCP"), lower_(*this), tcp_(lower_) {
    tcp_.template listener<any_port_listener>().router = router();
  }
  ~basic_tcp_layer() override {
    detach();
    if (detail::current_router() == router()) detail::current_router() = nullptr;
    // The static layer (destroyed next) frees the passive proxies; they must
    // not call back into this half-destroyed adapter.
    for (tcp_proxy* p : proxies_) p->router_ = nullptr;
  }

  std::uint32_t key() const noexcept override { return tcp::ip_protocol; }
  service needs() const noexcept override { return service::network; }
  service offers() const noexcept override { return service::tcp; }
  tcp_service* as_tcp() noexcept override { return this; }

  // The static layer reads the Ethernet and IPv4 headers below it; a
  // segment without them is counted here instead of guessed at.
  void receive(const header_set& set, bytes_view payload) override {
    if (!set.ethernet() || !set.ip()) {
      ++missing_headers_;
      return;
    }
    receive_on_ipv4(ipv4_context(set.timestamp(), *set.ethernet(), *set.ip()), payload);
  }
  // Without a kernel guard, host sockets or anything waiting, the static
  // layer's receive is the last call (a jump): no claim can need giving back
  // after it (without a guard, giving back is a no-op; a proxy finished
  // during it is buried at the next call, as on the other path).
  void receive_on_ipv4(const ipv4_context& context, bytes_view payload) override {
    if (slow_receive_ != 0) [[unlikely]] {
      receive_with_housekeeping(context, payload);
      return;
    }
    tcp_.receive(context, payload);
  }
  [[gnu::noinline]] void receive_with_housekeeping(const ipv4_context& context, bytes_view payload) {
    // On an address shared with the host, a port that is not ours is the
    // host's: its kernel answers there (and may have connections there),
    // so the static layer must not answer for it (no RST, §3.10.7.1).
    if (host_sockets_ && payload.size() >= 4 && !owns_port(wire::load_be16(payload.data() + 2))) {
      ++left_to_host_;
      return;
    }
    if (housekeeping()) [[unlikely]]
      bury();
    tcp_.receive(context, payload);
    if (housekeeping()) [[unlikely]]
      settle_claims();  // a RST or the last ACK may have ended a connection
  }
  void start() override { tcp_.start(); }
  void stop() override {
    tcp_.stop();
    for (const auto& [port, listener] : listeners_) listener->tcp_stopping();
  }
  bool idle() const override { return tcp_.idle(); }
  std::optional<instant> next_deadline() const override { return tcp_.next_deadline(); }
  void on_timer(instant now) override {
    bury();
    tcp_.on_timer(now);
    settle_claims();  // TIME-WAIT may have ended
  }

  // ---- tcp_service ----
  expected<connection_id, tcp_error> tcp_connect(ipv4_address address, std::uint16_t port,
                                                 tcp_handler& handler) override {
    bury();
    auto proxy = std::make_unique<tcp_proxy>(static_cast<detail::tcp_router&>(*this), handler);
    // On a shared address the local port is claimed from the kernel before
    // the SYN leaves: the peer's SYN-ACK may come back within microseconds,
    // and the kernel would reset it.
    std::optional<std::uint16_t> claimed;
    if (guard_) {
      claimed = claim_ephemeral_port();
      if (!claimed) return tcp_error{tcp_error::code::no_free_port};
    }
    auto id = claimed ? tcp_.connect(address, port, *proxy, *claimed) : tcp_.connect(address, port, *proxy);
    if (claimed) {
      // Given back once no connection of ours uses the port any more (after
      // TIME-WAIT: a retransmitted FIN must not meet the kernel's RST).
      pending_release_.push_back(*claimed);
      set_housekeeping(true);
      settle_claims();
    }
    if (id) {
      proxy->id_ = *id;
      active_.push_back(std::move(proxy));
    }
    return id;
  }
  bool tcp_listen(std::uint16_t port, tcp_handler& listener) override {
    if (!upper_key_free(port)) return false;
    if (!claim_port(guard_.get(), kernel_guard::transport::tcp, port)) return false;
    listeners_.emplace(port, &listener);
    return true;
  }
  // The listener's claim also covers the connections it accepted (they share
  // its port): it is given back once the last of them has ended.
  void tcp_unlisten(std::uint16_t port) override {
    if (listeners_.erase(port) == 0) return;
    pending_release_.push_back(port);
    set_housekeeping(true);
    settle_claims();
  }
  expected<std::size_t, tcp_error> tcp_send(connection_id id, bytes_view data) override {
    return tcp_.send(id, data);
  }
  expected<void, tcp_error> tcp_close(connection_id id) override {
    auto closed = tcp_.close(id);
    settle_claims();
    return closed;
  }
  expected<void, tcp_error> tcp_abort(connection_id id) override {
    auto aborted = tcp_.abort(id);
    settle_claims();
    return aborted;
  }
  std::optional<tcp_connection_info> tcp_connection(connection_id id) override {
    if (auto* c = tcp_.find_connection(id)) return info_of(*c);
    return std::nullopt;
  }
  std::size_t tcp_connection_count() const override { return tcp_.connection_count(); }
  std::size_t tcp_listener_count() const override { return listeners_.size(); }
  void tcp_forget(tcp_handler& handler) override {
    std::erase_if(listeners_, [&](const auto& entry) {
      if (entry.second != &handler) return false;
      pending_release_.push_back(entry.first);
      set_housekeeping(true);
      return true;
    });
    // Connections that could still bring it data are reset; those it has
    // closed already finish their closing handshake without it.
    std::vector<connection_id> orphaned;
    for (tcp_proxy* p : proxies_) {
      if (p->listener_ == &handler) p->listener_ = nullptr;
      if (p->handler_ != &handler) continue;
      p->handler_ = nullptr;
      if (!p->id_) continue;
      if (auto* c = tcp_.find_connection(*p->id_)) {
        switch (c->state()) {
          case tcp_state::syn_sent:
          case tcp_state::syn_received:
          case tcp_state::established:
          case tcp_state::close_wait: orphaned.push_back(*p->id_); break;
          default: break;
        }
      }
    }
    for (const connection_id id : orphaned) static_cast<void>(tcp_.abort(id));
    settle_claims();
  }

  // A port is free when no listener or connection of this layer has it
  // and, in shared-address mode, no kernel socket holds it
  // (runtime/host_sockets.hpp). On the stack's thread.
  bool upper_key_free(std::uint32_t port) override {
    if (port == 0 || port > 0xffff) return false;
    const auto p = static_cast<std::uint16_t>(port);
    if (listeners_.contains(p) || tcp_.port_in_use(p)) return false;
    if (!host_sockets_) return true;
    const auto held = host_sockets_->port_in_use(transport::tcp, services().config().address, p);
    return held && !*held;
  }
  // Shared-address mode: also ask the host's kernel (these tables); null: do not.
  void set_host_sockets(std::shared_ptr<const host_socket_tables> tables) noexcept {
    host_sockets_ = std::move(tables);
    set_shared_address();
  }
  bool checks_host_sockets() const noexcept { return host_sockets_ != nullptr; }
  // Shared-address mode (host sockets set): listening and connecting ports
  // are claimed from the kernel through `guard` (host/kernel_guard.hpp; null
  // when the caller keeps the kernel out itself), and segments to other
  // ports are the host's business either way. Set before any listener or
  // connection exists.
  void set_kernel_guard(std::shared_ptr<kernel_guard> guard) noexcept {
    guard_ = std::move(guard);
    set_shared_address();
  }
  // Segments to ports of no listener or connection of ours, left to the host
  // (shared-address mode only).
  std::uint64_t left_to_host() const noexcept { return left_to_host_; }

  const tcp_stats& stats() const noexcept { return tcp_.stats(); }
  std::uint64_t missing_headers() const noexcept { return missing_headers_; }
  Policy& policy() noexcept { return tcp_.current_policy(); }
  static_layer& static_implementation() noexcept { return tcp_; }

 private:
  // ---- tcp_router ----
  tcp_handler* listener_for(std::uint16_t port) noexcept override {
    const auto found = listeners_.find(port);
    return found == listeners_.end() ? nullptr : found->second;
  }
  void proxy_made(tcp_proxy& proxy) override { proxies_.push_back(&proxy); }
  void proxy_gone(tcp_proxy& proxy) noexcept override { std::erase(proxies_, &proxy); }
  // An active connection's proxy is ours to free, but not while the static
  // layer is still inside its call: it goes at the next call into the layer.
  void proxy_finished(tcp_proxy& proxy) override {
    const auto owned = std::find_if(active_.begin(), active_.end(), [&](const auto& p) { return p.get() == &proxy; });
    if (owned != active_.end()) {
      finished_.push_back(std::move(*owned));
      set_housekeeping(true);
      active_.erase(owned);
    }
  }

  bool owns_port(std::uint16_t port) const noexcept {
    return listeners_.contains(port) || tcp_.port_in_use(port);
  }

  // An ephemeral port free here and in the kernel, claimed, in the static
  // layer's RFC 6056 order. A port the kernel holds is passed over; any
  // other refusal would refuse every port: give up.
  std::optional<std::uint16_t> claim_ephemeral_port() {
    using pick = typename static_layer::port_pick;
    return tcp_.pick_ephemeral_port([&](std::uint16_t port) {
      if (!upper_key_free(port)) return pick::next;  // a run-time listener's, or a kernel socket's
      const auto claimed = claim_port(guard_.get(), kernel_guard::transport::tcp, port);
      if (claimed) return pick::take;
      return claimed.error().what == guard_error::code::in_use ? pick::next : pick::stop;
    });
  }

  // Gives back the claims of ports that no listener or connection of ours
  // uses any more. Cheap when nothing waits: called after every event that
  // can end a connection.
  void settle_claims() {
    if (!pending_release_.empty()) {
      std::erase_if(pending_release_, [&](std::uint16_t port) {
        if (owns_port(port)) return false;
        release_port(guard_.get(), kernel_guard::transport::tcp, port);
        return true;
      });
    }
    set_housekeeping(!pending_release_.empty() || !finished_.empty());
  }
  void bury() {
    finished_.clear();
    settle_claims();
  }
  detail::tcp_router* router() noexcept { return this; }

  lower_type lower_;
  std::vector<tcp_proxy*> proxies_;                 // every live proxy, active and passive
  std::vector<std::unique_ptr<tcp_proxy>> active_;  // the active opens' proxies
  std::vector<std::unique_ptr<tcp_proxy>> finished_;
  std::map<std::uint16_t, tcp_handler*> listeners_;
  static_layer tcp_;  // after what its proxies reach while it is destroyed
  std::uint64_t missing_headers_ = 0;
  std::shared_ptr<const host_socket_tables> host_sockets_;
  std::shared_ptr<kernel_guard> guard_;
  std::vector<std::uint16_t> pending_release_;  // claimed ports to give back once unused (one entry per claim)
  // What sends a segment down receive_with_housekeeping, in one byte so
  // that receive_on_ipv4 tests it once: host sockets or a kernel guard
  // (shared_address), and housekeeping: finished_ or pending_release_
  // holds anything, so a segment buries and settles around its receive
  // (one test each way, not four).
  static constexpr std::uint8_t shared_address = 1;
  static constexpr std::uint8_t housekeeping_due = 2;
  std::uint8_t slow_receive_ = 0;
  bool housekeeping() const noexcept { return (slow_receive_ & housekeeping_due) != 0; }
  void set_housekeeping(bool due) noexcept { set_slow_receive(housekeeping_due, due); }
  void set_shared_address() noexcept { set_slow_receive(shared_address, host_sockets_ != nullptr || guard_ != nullptr); }
  void set_slow_receive(std::uint8_t bit, bool on) noexcept {
    slow_receive_ = static_cast<std::uint8_t>(on ? slow_receive_ | bit : slow_receive_ & ~bit);
  }
  std::uint64_t left_to_host_ = 0;
};

class tcp_layer : public basic_tcp_layer<> {
 public:
  using basic_tcp_layer::basic_tcp_layer;
};

}  // namespace pystack::runtime

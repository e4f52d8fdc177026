// pystack's TCPApplication: a TCP endpoint of the runtime facade with the
// original's API, its four `bind` modes and its callbacks.
//
//     pystack::TCPApplication conn;
//     stack.register_tcp_application(conn);
//     conn.connect("10.0.0.2", 80);           // blocks until established (or fails)
//     conn.send_packet("GET / HTTP/1.0\r\n\r\n");
//     auto reply = conn.fetch_data(0, 5s);
//
//     server.bind(8888);                      // conn itself serves every client
//     server.listen(5);
//     auto client = server.accept();          // blocks until a connection is established
//
// `bind(port, app, newinstance)` decides who serves each accepted client,
// with `conn` the application bound:
//
// | call                      | each client gets                         |
// | ------------------------- | ---------------------------------------- |
// | `bind(80, nullptr, true)` | a new fork of conn (`conn.fork()`)       |
// | `bind(80, &app, true)`    | a new fork of app; conn stays the listener |
// | `bind(80, nullptr, false)`| conn, shared by all clients              |
// | `bind(80, &app, false)`   | app, shared by all clients               |
//
// A fork is a fresh instance, constructed anew with no state copied: `fork()`
// returns a new TCPApplication; a subclass overrides it to return its own
// type (`return std::make_shared<MyApp>();`). A shared application gets each
// client's data tagged with the connection's id, answers one client with
// `send_packet(data, id)`, and `lastclient()` is the last one that sent.
//
// Callbacks (on the stack's loop thread): `packet_received(data, id)` (the
// default queues the data for fetch_data), `connection_made(id)`,
// `peer_closed(id)` (the peer sent FIN: no more data will come on `id`; a
// server that has answered everything calls `close(id)`),
// `connection_closed(id, reason)`, `hook_incoming(payload, headers)` for
// every segment of its connections (SYN included) with the decoded headers,
// and `hook_outgoing(tcp::repr&)`, `(ipv4::repr&)`, `(eth::repr&)` for every
// segment sent on them, where any field may be rewritten.
//
// Threads: every call may be made from any thread; connect, accept and
// fetch_data wait (bounded by their timeouts) on a condition the loop
// signals, except on the loop thread itself or with no loop running, where
// they do not wait. Commands (connect, bind, send_packet, close) run on the
// loop.
//
// What differs from the original, on purpose:
// - accept() takes established connections from a queue: two clients that
//   arrive before it are both returned, one per call (the original hung).
// - send_packet never drops: what the connection's send buffer cannot take
//   waits in the application's queue (bounded: `send_queue_limit`) and goes
//   out as the peer acknowledges.
// - fetch_data reports the end of the stream: `at_eof()` is true once every
//   connection's peer has closed and all data was fetched, and `peer_closed`
//   tells a callback-driven application which one (the original's recv
//   never reported EOF, and a shared application could not know).
// - set_custom_session (PyStack) applies to accepted connections as well.
//
// A subclass that overrides callbacks must call `release()` first in its own
// destructor if the stack may still be running: until then the loop thread
// may be inside one of its callbacks.
#pragma once

#include <algorithm>
#include <concepts>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pystack/runtime/header_set.hpp"
#include "pystack/runtime/layer.hpp"
#include "pystack/runtime/tcp.hpp"
#include "pystack/runtime/udp_application.hpp"
#include "pystack/wire/address.hpp"

namespace pystack {

// Data as fetch_data_from returns it: who sent it, on which connection.
struct tcp_payload {
  ipv4_address address;  // the peer's
  std::uint16_t port = 0;
  connection_id id{};
  std::vector<byte> data;
};

class TCPApplication : public runtime::layer, public runtime::tcp_handler {
 public:
  static constexpr std::size_t default_send_queue_limit = std::size_t{4} << 20;
  static constexpr std::size_t default_receive_limit = std::size_t{16} << 20;
  static constexpr duration default_connect_timeout = std::chrono::seconds(30);

  TCPApplication() : layer("TCPApplication") {}
  ~TCPApplication() override {
    release();
    children_.clear();
    detach();
  }

  // Ends every callback at once: the listener stops, connections that could
  // still bring data are reset (those already closing finish without the
  // application). When this returns the loop will not call the application
  // again; a subclass calls it first thing in its destructor.
  void release() noexcept {
    layer* transport = lower();
    if (transport == nullptr) return;
    auto forget = [&] {
      if (auto* tcp = transport->as_tcp()) tcp->tcp_forget(*this);
    };
    try {
      services().call(forget);
    } catch (...) {
      // tcp_forget throws nothing; a command cannot fail otherwise.
    }
    const std::lock_guard lock(mutex_);
    listening_ = false;
    closed_ = true;
    changed_.notify_all();
  }

  // ---- runtime::layer: a TCP application is reached by connection, not
  // by key, so it is never in a table and receives nothing this way ----
  std::uint32_t key() const noexcept override { return 0; }
  runtime::service needs() const noexcept override { return runtime::service::tcp; }
  void receive(const runtime::header_set&, bytes_view) override {}

  // Called by `register_layer` (and PyStack::register_tcp_application) with
  // the application's static type: which of the callbacks that do nothing
  // by default its class leaves alone, so that the stack need not call them
  // for this object while it is of exactly that class (tcp_handler::calls).
  // A callback is taken as overridden unless the declaration that `App::`
  // names is TCPApplication's (or tcp_handler's) own.
  template <class App>
  void learn_static_type() noexcept {
    using runtime::declaring_class;
    using handler = runtime::tcp_handler;
    using callback = handler::callback;
    std::uint8_t unused = 0;
    auto mark = [&](bool not_overridden, callback which) {
      if (not_overridden) unused |= static_cast<std::uint8_t>(which);
    };
    mark(requires {
      { declaring_class<bytes_view, const runtime::header_set&>::of(&App::hook_incoming) } -> std::same_as<TCPApplication*>;
      { declaring_class<const runtime::header_set&, bytes_view>::of(&App::tcp_incoming) } -> std::same_as<TCPApplication*>;
    }, callback::incoming);
    mark(requires {
      { declaring_class<tcp::repr&>::of(&App::hook_outgoing) } -> std::same_as<handler*>;
    }, callback::outgoing_tcp);
    mark(requires {
      { declaring_class<ipv4::repr&>::of(&App::hook_outgoing) } -> std::same_as<handler*>;
    }, callback::outgoing_ipv4);
    mark(requires {
      { declaring_class<eth::repr&>::of(&App::hook_outgoing) } -> std::same_as<handler*>;
    }, callback::outgoing_eth);
    unused_.learn(unused, typeid(App));
  }

  // A fresh instance for a client of a `newinstance` listener.
  virtual std::shared_ptr<TCPApplication> fork() const { return std::make_shared<TCPApplication>(); }

  // ---- client ----

  // Opens a connection and waits until it is established, refused, or
  // `timeout` passes (then it is aborted). On the loop thread it only starts
  // the handshake: connection_made says when it completed.
  expected<void, runtime::error> connect(std::string_view host, std::uint16_t port,
                                         duration timeout = default_connect_timeout) {
    auto address = runtime::parse_host(host);
    if (!address) return address.error();
    return connect(*address, port, timeout);
  }
  expected<void, runtime::error> connect(ipv4_address host, std::uint16_t port,
                                         duration timeout = default_connect_timeout) {
    if (lower() == nullptr) return runtime::error{runtime::errc::not_attached, "register the application first"};
    std::optional<connection_id> started;
    auto opened = runtime::in_stack(services(), [&]() -> expected<void, runtime::error> {
      runtime::tcp_service* tcp = service();
      if (tcp == nullptr) return runtime::error{runtime::errc::not_attached, "the TCP layer went away"};
      {
        const std::lock_guard lock(mutex_);
        if (listening_ || std::any_of(conns_.begin(), conns_.end(), [](const conn& c) { return !c.closed; })) {
          return runtime::error{runtime::errc::already_bound, "already connected or listening"};
        }
      }
      auto id = tcp->tcp_connect(host, port, *this);
      if (!id) return tcp_failure(id.error());
      const std::lock_guard lock(mutex_);
      closed_ = false;
      conn c;
      c.id = *id;
      c.remote = {host, port};
      if (auto info = tcp->tcp_connection(*id)) c.local = info->local;
      conns_.push_back(std::move(c));
      started = *id;
      return {};
    });
    if (!opened) return opened;
    if (services().in_stack_context()) return {};
    std::unique_lock lock(mutex_);
    const bool settled = changed_.wait_for(lock, timeout, [&] {
      const conn* c = find(*started);
      return c == nullptr || c->established || c->closed || stack_stopped_;
    });
    const conn* c = find(*started);
    if (c != nullptr && c->established) return {};
    const std::string why = c != nullptr && c->closed ? std::string(to_string(c->why)) : std::string("stack stopped");
    lock.unlock();
    if (!settled) {
      abort_connection(*started);
      return runtime::error{runtime::errc::timed_out, "no answer to the connection attempt"};
    }
    return runtime::error{runtime::errc::closed, "connection " + why};
  }

  // ---- server ----

  // Accepts connections on `port`; who serves each is in the table at the
  // top. `app` must outlive the listener.
  expected<void, runtime::error> bind(std::uint16_t port, TCPApplication* app = nullptr, bool newinstance = false) {
    if (lower() == nullptr) return runtime::error{runtime::errc::not_attached, "register the application first"};
    if (port == 0) return runtime::error{runtime::errc::bad_address, "port 0 cannot be listened on"};
    return runtime::in_stack(services(), [&]() -> expected<void, runtime::error> {
      runtime::tcp_service* tcp = service();
      if (tcp == nullptr) return runtime::error{runtime::errc::not_attached, "the TCP layer went away"};
      if (listening_) return runtime::error{runtime::errc::already_bound, "listening on " + std::to_string(port_)};
      if (!tcp->tcp_listen(port, *this)) {
        return runtime::error{runtime::errc::key_in_use, "TCP port " + std::to_string(port) + " is taken"};
      }
      const std::lock_guard lock(mutex_);
      listening_ = true;
      port_ = port;
      target_ = app;
      newinstance_ = newinstance;
      closed_ = false;
      stack_stopped_ = false;
      return {};
    });
  }

  // At most `backlog` established connections wait for accept(); more are
  // refused with RST (0: no limit but the TCP policy's connection limit).
  void listen(std::size_t backlog) {
    const std::lock_guard lock(mutex_);
    backlog_ = backlog;
  }

  // The next established connection's application: a fork, or the shared
  // application. Waits up to `timeout` (forever when absent) unless the
  // listener is closed or the stack stops.
  expected<std::shared_ptr<TCPApplication>, runtime::error> accept(std::optional<duration> timeout = std::nullopt) {
    const bool may_wait = !services().in_stack_context();
    std::unique_lock lock(mutex_);
    if (!listening_ && accept_queue_.empty()) return runtime::error{runtime::errc::not_bound, "bind() first"};
    const auto ready = [&] { return !accept_queue_.empty() || !listening_ || stack_stopped_; };
    if (may_wait) {
      if (timeout) {
        changed_.wait_for(lock, *timeout, ready);
      } else {
        changed_.wait(lock, ready);
      }
    }
    if (accept_queue_.empty()) {
      if (stack_stopped_ || !listening_) return runtime::error{runtime::errc::closed, "the listener closed or the stack stopped"};
      return runtime::error{runtime::errc::timed_out, "no connection came"};
    }
    auto next = std::move(accept_queue_.front());
    accept_queue_.pop_front();
    return next;
  }

  // ---- data ----

  // Sends on the application's connection (a shared application: on
  // connection `id`, or the last client's).
  expected<void, runtime::error> send_packet(bytes_view data, std::optional<connection_id> id = std::nullopt) {
    if (lower() == nullptr) return runtime::error{runtime::errc::not_attached, "register the application first"};
    return runtime::in_stack(services(), [&]() -> expected<void, runtime::error> {
      std::unique_lock lock(mutex_);
      conn* c = id ? find(*id) : default_connection();
      if (c == nullptr) return runtime::error{runtime::errc::not_bound, "no connection"};
      if (c->closed || c->closing) return runtime::error{runtime::errc::closed, "the connection is closed"};
      if (c->unsent.size() - c->unsent_offset + data.size() > send_queue_limit_) {
        return runtime::error{runtime::errc::send_failed, "the send queue is full"};
      }
      c->unsent.insert(c->unsent.end(), data.begin(), data.end());
      const connection_id target = c->id;
      lock.unlock();
      flush(target);
      return {};
    });
  }
  expected<void, runtime::error> send_packet(std::string_view text, std::optional<connection_id> id = std::nullopt) {
    return send_packet(bytes_view(reinterpret_cast<const byte*>(text.data()), text.size()), id);
  }

  // Received bytes, from the oldest: at most `size` (0: all that came in a
  // row from one connection). Waits up to `timeout` for some; nothing when
  // none came (see at_eof()).
  std::optional<std::vector<byte>> fetch_data(std::size_t size = 0, duration timeout = duration::zero()) {
    auto got = fetch_data_from(size, timeout);
    if (!got) return std::nullopt;
    return std::move(got->data);
  }
  std::optional<tcp_payload> fetch_data_from(std::size_t size = 0, duration timeout = duration::zero()) {
    const bool may_wait = timeout > duration::zero() && !services().in_stack_context();
    std::unique_lock lock(mutex_);
    if (may_wait) {
      changed_.wait_for(lock, timeout, [&] { return !received_.empty() || all_ended() || stack_stopped_; });
    }
    if (received_.empty()) return std::nullopt;
    tcp_payload out;
    out.id = received_.front().id;
    out.address = received_.front().remote.address;
    out.port = received_.front().remote.port;
    while (!received_.empty() && received_.front().id == out.id && (size == 0 || out.data.size() < size)) {
      chunk& front = received_.front();
      const std::size_t want = size == 0 ? front.data.size() : std::min(front.data.size(), size - out.data.size());
      out.data.insert(out.data.end(), front.data.begin(), front.data.begin() + static_cast<std::ptrdiff_t>(want));
      received_bytes_ -= want;
      if (want == front.data.size()) {
        received_.pop_front();
      } else {
        front.data.erase(front.data.begin(), front.data.begin() + static_cast<std::ptrdiff_t>(want));
      }
    }
    return out;
  }

  // True once nothing more will come: every connection ended or its peer
  // closed, and everything received was fetched.
  bool at_eof() const {
    const std::lock_guard lock(mutex_);
    return received_.empty() && !conns_.empty() && all_ended();
  }

  // ---- closing ----

  // Stops listening and closes the application's connections gracefully
  // (FIN after what is queued).
  expected<void, runtime::error> close() {
    if (lower() == nullptr) {
      const std::lock_guard lock(mutex_);
      closed_ = true;
      changed_.notify_all();
      return {};
    }
    return runtime::in_stack(services(), [&]() -> expected<void, runtime::error> {
      runtime::tcp_service* tcp = service();
      std::vector<connection_id> open;
      {
        const std::lock_guard lock(mutex_);
        if (listening_ && tcp != nullptr) tcp->tcp_unlisten(port_);
        listening_ = false;
        closed_ = true;
        for (conn& c : conns_) {
          if (!c.closed && !c.closing) {
            c.closing = true;
            open.push_back(c.id);
          }
        }
        changed_.notify_all();
      }
      for (const connection_id id : open) finish_or_close(id);
      return {};
    });
  }
  // Closes one connection gracefully.
  expected<void, runtime::error> close(connection_id id) {
    if (lower() == nullptr) return runtime::error{runtime::errc::not_attached, "register the application first"};
    return runtime::in_stack(services(), [&]() -> expected<void, runtime::error> {
      {
        const std::lock_guard lock(mutex_);
        conn* c = find(id);
        if (c == nullptr || c->closed) return runtime::error{runtime::errc::closed, "no such open connection"};
        c->closing = true;
      }
      finish_or_close(id);
      return {};
    });
  }

  // ---- addresses ----
  std::pair<ipv4_address, std::uint16_t> get_conn_addr() const {
    const std::lock_guard lock(mutex_);
    const conn* c = const_cast<TCPApplication*>(this)->default_connection();
    return c ? std::pair{c->remote.address, c->remote.port} : std::pair{ipv4_address{}, std::uint16_t{0}};
  }
  std::pair<ipv4_address, std::uint16_t> get_self_addr() {
    const std::lock_guard lock(mutex_);
    const conn* c = default_connection();
    if (c != nullptr) return {c->local.address, c->local.port};
    return {services().config().address, port_};
  }
  std::optional<connection_id> lastclient() const { return last_client(); }
  bool connected() const {
    const std::lock_guard lock(mutex_);
    return std::any_of(conns_.begin(), conns_.end(), [](const conn& c) { return c.established && !c.closed; });
  }
  std::size_t connection_count() const {
    const std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::count_if(conns_.begin(), conns_.end(), [](const conn& c) { return !c.closed; }));
  }
  bool listening() const {
    const std::lock_guard lock(mutex_);
    return listening_;
  }

  void set_send_queue_limit(std::size_t bytes) {
    const std::lock_guard lock(mutex_);
    send_queue_limit_ = bytes;
  }
  std::uint64_t dropped_bytes() const {
    const std::lock_guard lock(mutex_);
    return dropped_bytes_;
  }
  std::uint64_t callback_failures() const {
    const std::lock_guard lock(mutex_);
    return callback_failures_;
  }
  std::exception_ptr last_callback_failure() const {
    const std::lock_guard lock(mutex_);
    return last_failure_;
  }

 protected:
  // ---- callbacks (on the loop thread) ----
  virtual void packet_received(bytes_view data, connection_id id) { store(data, id); }
  virtual void connection_made(connection_id /*id*/) {}
  virtual void peer_closed(connection_id /*id*/) {}
  virtual void connection_closed(connection_id /*id*/, close_reason /*why*/) {}
  virtual void hook_incoming(bytes_view /*payload*/, const runtime::header_set& /*headers*/) {}

  // Queues data for fetch_data (what the default packet_received does).
  // Beyond the receive limit the data is dropped and counted.
  void store(bytes_view data, connection_id id) {
    const std::lock_guard lock(mutex_);
    const conn* c = find(id);
    if (received_bytes_ + data.size() > default_receive_limit) {
      dropped_bytes_ += data.size();
      return;
    }
    received_.push_back(chunk{id, c ? c->remote : tcp_endpoint{}, std::vector<byte>(data.begin(), data.end())});
    received_bytes_ += data.size();
    changed_.notify_all();
  }

  // ---- runtime::tcp_handler ----
  void tcp_connected(const runtime::tcp_connection_info& info) override {
    {
      const std::lock_guard lock(mutex_);
      conn* c = find(info.id);
      if (c == nullptr) {
        conns_.push_back(conn{});
        c = &conns_.back();
        c->id = info.id;
      }
      c->local = info.local;
      c->remote = info.remote;
      c->established = true;
      changed_.notify_all();
    }
    guarded([&] { connection_made(info.id); });
  }
  void tcp_data(bytes_view data, connection_id id) override {
    // Only the loop writes it, once per segment: an atomic, not the mutex.
    lastclient_.store(id.value, std::memory_order_release);
    guarded([&] { packet_received(data, id); });
  }
  void tcp_peer_closed(connection_id id) override {
    {
      const std::lock_guard lock(mutex_);
      if (conn* c = find(id)) c->peer_closed = true;
      changed_.notify_all();
    }
    guarded([&] { peer_closed(id); });
  }
  void tcp_closed(connection_id id, close_reason why) override {
    {
      const std::lock_guard lock(mutex_);
      if (conn* c = find(id)) {
        c->closed = true;
        c->why = why;
        c->unsent.clear();
        c->unsent_offset = 0;
      }
      // Keep only what fetch_data or addresses may still need: the closed
      // connections of a long-lived shared application would pile up.
      prune_connections();
      changed_.notify_all();
    }
    guarded([&] { connection_closed(id, why); });
  }
  void tcp_writable(connection_id id) override { flush(id); }
  void tcp_incoming(const runtime::header_set& headers, bytes_view payload) override {
    guarded([&] { hook_incoming(payload, headers); });
  }

  // ---- as a listener ----
  runtime::tcp_handler* tcp_accept(const tcp_endpoint&, const tcp_endpoint&) override {
    TCPApplication* server = target_ != nullptr ? target_ : this;
    if (!newinstance_) return server;
    std::shared_ptr<TCPApplication> child = server->fork();
    if (!child || lower() == nullptr || !lower()->register_layer(*child)) return nullptr;
    child->unused_.copy_from(server->unused_);  // holds if the fork is of the server's class
    prune_children();
    children_.push_back(child);
    return child.get();
  }
  void tcp_established(const runtime::tcp_connection_info&, runtime::tcp_handler& server) override {
    std::shared_ptr<TCPApplication> handle;
    for (const auto& child : children_) {
      if (static_cast<runtime::tcp_handler*>(child.get()) == &server) handle = child;
    }
    if (!handle) {
      // The shared application: not ours to own, so a handle that owns nothing.
      handle = std::shared_ptr<TCPApplication>(std::shared_ptr<void>(), static_cast<TCPApplication*>(&server));
    }
    const std::lock_guard lock(mutex_);
    accept_queue_.push_back(std::move(handle));
    changed_.notify_all();
  }
  bool tcp_can_accept() const override {
    const std::lock_guard lock(mutex_);
    return backlog_ == 0 || accept_queue_.size() < backlog_;
  }
  void tcp_stopping() override {
    const std::lock_guard lock(mutex_);
    stack_stopped_ = true;
    changed_.notify_all();
  }

 private:
  struct conn {
    connection_id id{};
    tcp_endpoint local{};
    tcp_endpoint remote{};
    bool established = false;
    bool peer_closed = false;
    bool closing = false;  // close() was asked: FIN once the queue is sent
    bool closed = false;
    close_reason why = close_reason::closed;
    std::vector<byte> unsent;
    std::size_t unsent_offset = 0;
  };
  struct chunk {
    connection_id id;
    tcp_endpoint remote;
    std::vector<byte> data;
  };

  std::optional<connection_id> last_client() const noexcept {
    const std::uint64_t last = lastclient_.load(std::memory_order_acquire);
    if (last == no_client) return std::nullopt;
    return connection_id{last};
  }

  runtime::tcp_service* service() noexcept {
    layer* transport = lower();
    return transport ? transport->as_tcp() : nullptr;
  }

  static runtime::error tcp_failure(const tcp_error& e) {
    switch (e.what) {
      case tcp_error::code::invalid_address: return {runtime::errc::bad_address, std::string(to_string(e.what))};
      case tcp_error::code::no_free_port: return {runtime::errc::no_free_port, std::string(to_string(e.what))};
      case tcp_error::code::stopping: return {runtime::errc::closed, std::string(to_string(e.what))};
      default: return {runtime::errc::send_failed, std::string(to_string(e.what))};
    }
  }

  // Under mutex_.
  conn* find(connection_id id) noexcept {
    for (conn& c : conns_)
      if (c.id == id) return &c;
    return nullptr;
  }
  const conn* find(connection_id id) const noexcept { return const_cast<TCPApplication*>(this)->find(id); }
  conn* default_connection() noexcept {
    if (const auto last = last_client()) {
      if (conn* c = find(*last); c != nullptr && !c->closed) return c;
    }
    for (conn& c : conns_)
      if (!c.closed) return &c;
    return conns_.empty() ? nullptr : &conns_.back();
  }
  bool all_ended() const noexcept {
    return closed_ || (!conns_.empty() && std::all_of(conns_.begin(), conns_.end(), [](const conn& c) {
                         return c.closed || c.peer_closed;
                       }));
  }
  void prune_connections() {
    // A connection stays while it is open or has data not yet fetched.
    std::erase_if(conns_, [&](const conn& c) {
      return c.closed && conns_.size() > 1 &&
             std::none_of(received_.begin(), received_.end(), [&](const chunk& k) { return k.id == c.id; });
    });
  }
  // Forks whose connection ended and that accept() already handed out (or
  // never will) are let go; the caller's handle keeps them alive as long as
  // it wants. On the stack's thread, never inside the child's own call.
  // A fork whose handshake never completed stays until the listener goes:
  // letting it go earlier would reset a handshake still under way.
  void prune_children() {
    std::vector<std::shared_ptr<TCPApplication>> queued;
    {
      const std::lock_guard lock(mutex_);
      queued.assign(accept_queue_.begin(), accept_queue_.end());
    }
    std::erase_if(children_, [&](const std::shared_ptr<TCPApplication>& child) {
      const bool waiting = std::find(queued.begin(), queued.end(), child) != queued.end();
      return !waiting && child->connection_count() == 0 && child->ever_connected();
    });
  }
  bool ever_connected() const {
    const std::lock_guard lock(mutex_);
    return !conns_.empty();
  }

  // Sends what the connection's send buffer takes; the rest waits for
  // tcp_writable. Then a requested close follows the data. On the stack's thread.
  void flush(connection_id id) {
    runtime::tcp_service* tcp = service();
    if (tcp == nullptr) return;
    // Bounded: each round sends something or stops.
    for (int round = 0; round < 1024; ++round) {
      std::vector<byte> pending;
      {
        const std::lock_guard lock(mutex_);
        conn* c = find(id);
        if (c == nullptr || c->closed || c->unsent_offset >= c->unsent.size()) break;
        pending.assign(c->unsent.begin() + static_cast<std::ptrdiff_t>(c->unsent_offset), c->unsent.end());
      }
      auto taken = tcp->tcp_send(id, pending);
      const std::lock_guard lock(mutex_);
      conn* c = find(id);
      if (c == nullptr) return;
      if (!taken || *taken == 0) break;
      c->unsent_offset += *taken;
      if (c->unsent_offset >= c->unsent.size()) {
        c->unsent.clear();
        c->unsent_offset = 0;
        break;
      }
    }
    finish_or_close(id);
  }

  // Closes a connection asked to close once its queue is sent.
  void finish_or_close(connection_id id) {
    runtime::tcp_service* tcp = service();
    bool now = false;
    {
      const std::lock_guard lock(mutex_);
      conn* c = find(id);
      now = c != nullptr && c->closing && !c->closed && c->unsent_offset >= c->unsent.size();
    }
    if (now && tcp != nullptr) static_cast<void>(tcp->tcp_close(id));
  }

  void abort_connection(connection_id id) {
    auto reset = [&] {
      if (auto* tcp = service()) static_cast<void>(tcp->tcp_abort(id));
    };
    services().call(reset);
  }

  // A callback must not unwind through the loop: the exception is kept.
  // (Kept out of line: the handler of every callback is then one call.)
  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (...) {
      keep_failure();
    }
  }
  [[gnu::noinline, gnu::cold]] void keep_failure() {
    const std::lock_guard lock(mutex_);
    ++callback_failures_;
    last_failure_ = std::current_exception();
  }

  mutable std::mutex mutex_;  // guards what the loop and other threads share, below
  std::condition_variable changed_;
  std::vector<conn> conns_;
  std::deque<chunk> received_;
  std::size_t received_bytes_ = 0;
  std::uint64_t dropped_bytes_ = 0;
  // The connection that last sent data, or no_client.
  static constexpr std::uint64_t no_client = ~std::uint64_t{0};
  std::atomic<std::uint64_t> lastclient_{no_client};
  std::deque<std::shared_ptr<TCPApplication>> accept_queue_;
  std::size_t backlog_ = 0;
  std::size_t send_queue_limit_ = default_send_queue_limit;
  bool listening_ = false;
  std::uint16_t port_ = 0;
  TCPApplication* target_ = nullptr;
  bool newinstance_ = false;
  bool closed_ = false;
  bool stack_stopped_ = false;
  std::uint64_t callback_failures_ = 0;
  std::exception_ptr last_failure_;
  // Forks for a newinstance listener; touched on the stack's thread only.
  std::vector<std::shared_ptr<TCPApplication>> children_;
};

}  // namespace pystack

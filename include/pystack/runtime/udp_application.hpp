// pystack's UDPApplication: a UDP endpoint of the runtime facade, with the
// original's API and callbacks.
//
//     pystack::UDPApplication app;
//     stack.register_udp_application(app);   // or udp.register_layer(app) by hand
//     app.bind(5353);                        // or app.connect("10.0.0.2", 53)
//     app.send_packet_to(bytes, peer, 53);
//     auto got = app.fetch_data_from(0, 1s); // the datagram and who sent it
//
// It is a runtime layer (runtime/layer.hpp) registered on a UDP layer under
// its port. Datagrams arrive on the stack's loop thread: `hook_incoming`
// sees each one with its headers, then `packet_received` gets it; the
// default `packet_received` queues it for `fetch_data`. Override either to
// act inside the loop (an echo server answers from `packet_received`).
// `hook_outgoing` sees the UDP, IPv4 and Ethernet headers of every datagram
// this application sends and may rewrite any field (pystack's
// `send_packet(data, **kwargs)` overrides).
//
// Threads: every call may be made from any thread. bind, connect, send and
// close are commands run on the loop (they wait until it has run them).
// fetch_data waits, up to its timeout, on a condition the loop signals; it
// never waits on the loop thread itself (it would wait for itself), nor when
// no loop runs.
//
// What differs from the original, on purpose:
// - `fetch_data_from` returns the SENDER's address and port (the original
//   returned our own).
// - The receive queue is bounded (`receive_queue_limit`); a datagram beyond
//   it is dropped and counted, as a socket's full receive buffer drops.
// - Names: `connect` takes a dotted-quad address; a host name is refused
//   with `errc::bad_address` (the facade has no DNS layer to resolve it).
// - A port already bound, by this stack or (in shared-address mode) by the
//   host's kernel, is refused with `errc::key_in_use` instead of stealing it.
//
// A subclass that overrides callbacks must call `close()` in its own
// destructor when the stack may still be running: until then the loop
// thread may be inside one of its callbacks.
#pragma once

#include <algorithm>
#include <concepts>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "pystack/runtime/header_set.hpp"
#include "pystack/runtime/layer.hpp"
#include "pystack/runtime/outgoing_hook.hpp"
#include "pystack/wire/address.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/udp.hpp"

namespace pystack {

namespace runtime {

// RFC 6335 §6: the Dynamic and/or Private Ports, 49152-65535, are what an
// endpoint that asked for no port gets.
inline constexpr std::uint16_t ephemeral_first = 49152;
inline constexpr std::uint16_t ephemeral_last = 65535;

// A free port of `transport` (a layer offering UDP or TCP) in the ephemeral
// range, starting at a random place (RFC 6056 §3.3.1 "simple port
// randomization"); each port is tried once. On the stack's thread.
inline std::optional<std::uint16_t> pick_ephemeral_port(layer& transport) {
  constexpr std::uint32_t count = std::uint32_t{ephemeral_last} - ephemeral_first + 1;
  thread_local std::minstd_rand generator{std::random_device{}()};
  const std::uint32_t start = static_cast<std::uint32_t>(generator()) % count;
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto port = static_cast<std::uint16_t>(ephemeral_first + (start + i) % count);
    if (transport.upper_key_free(port)) return port;
  }
  return std::nullopt;
}

// A dotted-quad address, or `errc::bad_address`.
inline expected<ipv4_address, error> parse_host(std::string_view host) {
  if (auto address = ipv4_address::parse(host)) return *address;
  return error{errc::bad_address, "'" + std::string(host) + "' is not a dotted-quad IPv4 address (no DNS layer)"};
}

}  // namespace runtime

// A datagram as `fetch_data_from` returns it.
struct udp_datagram {
  ipv4_address address;     // the sender's
  std::uint16_t port = 0;   // the sender's
  std::vector<byte> data;
};

class UDPApplication : public runtime::layer {
 public:
  static constexpr std::size_t default_receive_queue_limit = 1024;

  // The UDP layer's table calls its receive by name (runtime/adapters.hpp).
  static constexpr bool receive_by_name = true;

  UDPApplication() : layer("UDPApplication") { set_direct_kind(runtime::adapter_kind<UDPApplication>()); }
  ~UDPApplication() override {
    static_cast<void>(close());
    detach();
  }

  // Called by `register_layer` (and PyStack::register_udp_application) with
  // the application's static type: which of the callbacks that do nothing by
  // default its class leaves alone (runtime::unused_callbacks), so that they
  // are not called for this object while it is of exactly that class. A
  // callback is taken as overridden unless the declaration `App::` names is
  // UDPApplication's own.
  template <class App>
  void learn_static_type() noexcept {
    using runtime::declaring_class;
    std::uint8_t unused = 0;
    if constexpr (requires {
                    { declaring_class<bytes_view, const runtime::header_set&>::of(&App::hook_incoming) } -> std::same_as<UDPApplication*>;
                  }) {
      unused |= incoming;
    }
    if constexpr (requires {
                    { declaring_class<udp::repr&>::of(&App::hook_outgoing) } -> std::same_as<UDPApplication*>;
                    { declaring_class<ipv4::repr&>::of(&App::hook_outgoing) } -> std::same_as<UDPApplication*>;
                    { declaring_class<eth::repr&>::of(&App::hook_outgoing) } -> std::same_as<UDPApplication*>;
                  }) {
      unused |= all_outgoing;
    }
    unused_.learn(unused, typeid(App));
  }

  // ---- runtime::layer ----
  std::uint32_t key() const noexcept override { return local_port_; }
  runtime::service needs() const noexcept override { return runtime::service::udp; }

  void receive(const runtime::header_set& headers, bytes_view payload) final { take(headers, payload); }
  // From the built-in UDP layer: the header_set is made here, once.
  void receive_on_udp(const runtime::udp_context& context, bytes_view payload) final {
    take(runtime::header_set::from(context), payload);
  }
  void start() override {
    const std::lock_guard lock(mutex_);
    stack_stopped_ = false;
  }
  void stop() override {
    const std::lock_guard lock(mutex_);
    stack_stopped_ = true;
    arrived_.notify_all();
  }

  // ---- the original's API ----

  // Receives datagrams sent to `port` (0: a free ephemeral port).
  expected<void, runtime::error> bind(std::uint16_t port) {
    layer* transport = lower();
    if (transport == nullptr) return runtime::error{runtime::errc::not_attached, "register the application first"};
    return runtime::in_stack(services(), [&] { return bind_here(port); });
  }

  // Remembers the peer for send_packet; takes an ephemeral port if unbound.
  // Datagrams from other peers are still received, as in the original.
  expected<void, runtime::error> connect(std::string_view host, std::uint16_t port) {
    auto address = runtime::parse_host(host);
    if (!address) return address.error();
    return connect(*address, port);
  }
  expected<void, runtime::error> connect(ipv4_address host, std::uint16_t port) {
    if (lower() == nullptr) return runtime::error{runtime::errc::not_attached, "register the application first"};
    return runtime::in_stack(services(), [&]() -> expected<void, runtime::error> {
      if (local_port_ == 0) {
        if (auto bound = bind_here(0); !bound) return bound;
      }
      remote_address_ = host;
      remote_port_ = port;
      return {};
    });
  }

  // Sends to the connected peer.
  expected<void, runtime::error> send_packet(bytes_view data) {
    if (remote_port_ == 0) return runtime::error{runtime::errc::not_bound, "connect() first, or use send_packet_to"};
    return send_packet_to(data, remote_address_, remote_port_);
  }
  expected<void, runtime::error> send_packet(std::string_view text) { return send_packet(as_bytes(text)); }

  // Sends to `host`:`port`, from our port (an ephemeral one is taken on the
  // first send, as the original did).
  expected<void, runtime::error> send_packet_to(bytes_view data, ipv4_address host, std::uint16_t port) {
    if (lower() == nullptr) return runtime::error{runtime::errc::not_attached, "register the application first"};
    return runtime::in_stack(services(), [&]() -> expected<void, runtime::error> {
      if (local_port_ == 0) {
        if (auto bound = bind_here(0); !bound) return bound;
      }
      layer* transport = lower();
      if (transport == nullptr) return runtime::error{runtime::errc::not_attached, "the UDP layer went away"};
      outgoing_adapter adapter{this};
      const bool hooked = !unused_.skips(all_outgoing, typeid(*this));
      if (!transport->send_udp(local_port_, host, port, data,
                               hooked ? runtime::outgoing_hook(adapter) : runtime::outgoing_hook())) {
        return runtime::error{runtime::errc::send_failed, "no buffer, too big or no route (see the layers' stats)"};
      }
      return {};
    });
  }
  expected<void, runtime::error> send_packet_to(std::string_view text, ipv4_address host, std::uint16_t port) {
    return send_packet_to(as_bytes(text), host, port);
  }

  // The next datagram's data; with `size` > 0 at most `size` bytes of it,
  // the rest staying for the next call (the original's behaviour). Waits up
  // to `timeout` for one to arrive; nothing when none did.
  std::optional<std::vector<byte>> fetch_data(std::size_t size = 0, duration timeout = duration::zero()) {
    auto datagram = fetch_data_from(size, timeout);
    if (!datagram) return std::nullopt;
    return std::move(datagram->data);
  }

  // As fetch_data, with the sender's address and port.
  std::optional<udp_datagram> fetch_data_from(std::size_t size = 0, duration timeout = duration::zero()) {
    const bool may_wait = timeout > duration::zero() && !services().in_stack_context();
    std::unique_lock lock(mutex_);
    if (may_wait) {
      arrived_.wait_for(lock, timeout, [&] { return !queue_.empty() || closed_ || stack_stopped_; });
    }
    if (queue_.empty()) return std::nullopt;
    udp_datagram& front = queue_.front();
    if (size > 0 && size < front.data.size()) {
      udp_datagram part{front.address, front.port, std::vector<byte>(front.data.begin(), front.data.begin() + static_cast<std::ptrdiff_t>(size))};
      front.data.erase(front.data.begin(), front.data.begin() + static_cast<std::ptrdiff_t>(size));
      return part;
    }
    udp_datagram whole = std::move(front);
    queue_.pop_front();
    return whole;
  }

  // Stops receiving: the port is released. Queued data can still be fetched.
  expected<void, runtime::error> close() {
    if (lower() == nullptr) {
      mark_closed();
      return {};
    }
    return runtime::in_stack(services(), [&]() -> expected<void, runtime::error> {
      if (layer* transport = lower(); transport != nullptr && transport->upper(local_port_) == this) {
        static_cast<void>(transport->unregister_upper(local_port_));
      }
      local_port_ = 0;
      remote_port_ = 0;
      remote_address_ = ipv4_address::any();
      mark_closed();
      return {};
    });
  }

  // (remote address, remote port) and (local address, local port).
  std::pair<ipv4_address, std::uint16_t> get_conn_addr() const noexcept { return {remote_address_, remote_port_}; }
  std::pair<ipv4_address, std::uint16_t> get_self_addr() noexcept {
    return {services().config().address, local_port_};
  }
  std::uint16_t local_port() const noexcept { return local_port_; }

  // ---- inspection ----
  void set_receive_queue_limit(std::size_t datagrams) {
    const std::lock_guard lock(mutex_);
    queue_limit_ = datagrams;
  }
  std::size_t queued() const {
    const std::lock_guard lock(mutex_);
    return queue_.size();
  }
  std::uint64_t dropped() const {
    const std::lock_guard lock(mutex_);
    return dropped_;
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

  // Every datagram for this application, before packet_received.
  virtual void hook_incoming(bytes_view /*data*/, const runtime::header_set& /*headers*/) {}
  // A datagram's data; the default queues it, with its sender, for fetch_data.
  virtual void packet_received(bytes_view data, const runtime::header_set& headers) { store(data, headers); }
  // The headers of every datagram this application sends, to rewrite.
  virtual void hook_outgoing(udp::repr& /*header*/) {}
  virtual void hook_outgoing(ipv4::repr& /*header*/) {}
  virtual void hook_outgoing(eth::repr& /*header*/) {}

  // Queues a datagram for fetch_data (what the default packet_received does).
  void store(bytes_view data, const runtime::header_set& headers) {
    udp_datagram datagram;
    if (headers.ip()) datagram.address = headers.ip()->source();
    if (headers.udp()) datagram.port = headers.udp()->source_port();
    datagram.data.assign(data.begin(), data.end());
    const std::lock_guard lock(mutex_);
    if (queue_.size() >= queue_limit_) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(datagram));
    arrived_.notify_all();
  }

 private:
  // Bits of unused_: hook_incoming, the three hook_outgoing.
  static constexpr std::uint8_t incoming = 1;
  static constexpr std::uint8_t all_outgoing = 2;
  static_assert((incoming | all_outgoing) >> runtime::unused_callbacks::max_callbacks == 0);
  runtime::unused_callbacks unused_;

  // The application's hook_outgoing overloads as one hook (layers/hooks.hpp).
  struct outgoing_adapter {
    UDPApplication* app;
    void operator()(udp::repr& header) const { app->hook_outgoing(header); }
    void operator()(ipv4::repr& header) const { app->hook_outgoing(header); }
    void operator()(eth::repr& header) const { app->hook_outgoing(header); }
  };

  // A datagram for the application, through its callbacks.
  void take(const runtime::header_set& headers, bytes_view payload) {
    try {
      if (!unused_.skips(incoming, typeid(*this))) hook_incoming(payload, headers);
      packet_received(payload, headers);
    } catch (...) {
      // A callback must not unwind through the loop: the exception is kept
      // for the application to see (`last_callback_failure`).
      const std::lock_guard lock(mutex_);
      ++callback_failures_;
      last_failure_ = std::current_exception();
    }
  }

  static bytes_view as_bytes(std::string_view text) noexcept {
    return bytes_view(reinterpret_cast<const byte*>(text.data()), text.size());
  }

  // On the stack's thread.
  expected<void, runtime::error> bind_here(std::uint16_t port) {
    layer* transport = lower();
    if (transport == nullptr) return runtime::error{runtime::errc::not_attached, "the UDP layer went away"};
    if (local_port_ != 0 && transport->upper(local_port_) == this) {
      return runtime::error{runtime::errc::already_bound, "bound to port " + std::to_string(local_port_)};
    }
    if (port == 0) {
      auto free_port = runtime::pick_ephemeral_port(*transport);
      if (!free_port) return runtime::error{runtime::errc::no_free_port, "every port from 49152 to 65535 is taken"};
      port = *free_port;
    } else if (!transport->upper_key_free(port)) {
      return runtime::error{runtime::errc::key_in_use, "UDP port " + std::to_string(port) + " is taken"};
    }
    if (auto registered = transport->register_upper(port, *this); !registered) return registered;
    local_port_ = port;
    const std::lock_guard lock(mutex_);
    closed_ = false;
    return {};
  }

  void mark_closed() {
    const std::lock_guard lock(mutex_);
    closed_ = true;
    arrived_.notify_all();
  }

  std::uint16_t local_port_ = 0;
  ipv4_address remote_address_{};
  std::uint16_t remote_port_ = 0;

  mutable std::mutex mutex_;  // guards what both the loop and other threads touch, below
  std::condition_variable arrived_;
  std::deque<udp_datagram> queue_;
  std::size_t queue_limit_ = default_receive_queue_limit;
  std::uint64_t dropped_ = 0;
  std::uint64_t callback_failures_ = 0;
  std::exception_ptr last_failure_;
  bool closed_ = false;
  bool stack_stopped_ = false;
};

}  // namespace pystack

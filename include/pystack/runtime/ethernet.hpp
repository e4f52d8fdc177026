// The bottom of a runtime stack: the static Ethernet layer on a device, with
// the stack's loop, behind the facade's virtual interface.
//
//     runtime::ethernet_layer eth(pcap_live::open("eth0").value(), config);
//     eth.register_layer(ip);           // as the original's EthernetProtocol
//     eth.run();                        // reactor: blocks until stop()
//     eth.run(false);                   // thread: returns at once
//
// Inside is a static stack, `Stack<Ethernet<Policy, dynamic_uppers<...>>>`
// on the device and clock given at construction (so the loop, the command
// queue and the graceful stop are stack/stack.hpp's own); the device and
// clock types are erased behind one interface here. The layer is also the
// stack's `stack_services`: every layer registered above reaches the
// configuration, clock, buffers and loop through it.
//
// Threads (design.md, "One thread owns the stack"):
// - `run()` runs the loop in the caller's thread until `stop()`; `run(false)`
//   runs it in a thread of its own, which `stop()` joins.
// - `call(command)` runs a command where the stack's state may be touched:
//   inline on the loop thread, or when no loop runs (serialised by a mutex so
//   that the loop cannot start meanwhile), else queued to the loop while the
//   caller waits. When the loop ends, the commands still queued run before it
//   lets go, so a caller never waits for a loop that is gone.
// - `stop()` may be called from any thread and from callbacks on the loop
//   thread; `request_stop()` from a signal handler (it only stores a flag
//   and writes an eventfd).
// - Without a loop (virtual clock, tests), `start()`, `process()` and
//   `next_event()` drive it step by step, as a static stack's.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <typeinfo>
#include <utility>

#include "pystack/layers/ethernet.hpp"
#include "pystack/runtime/adapters.hpp"
#include "pystack/runtime/layer.hpp"
#include "pystack/runtime/layers.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/device.hpp"
#include "pystack/stack/headers.hpp"
#include "pystack/stack/stack.hpp"

namespace pystack::runtime {

// The uppers of the runtime Ethernet layer: the built-in IP and ARP layers
// are called by name (runtime/adapters.hpp, "Direct calls").
using link_uppers = dynamic_uppers<ethertype_key, basic_ip_layer<>, basic_arp_layer<>>;

namespace detail {

// The stack whose state the calling thread may touch right now (its loop
// thread, or a thread running a command inline), or null.
inline const void*& executing_stack() noexcept {
  thread_local const void* current = nullptr;
  return current;
}

class executing_guard {
 public:
  explicit executing_guard(const void* stack) noexcept : previous_(executing_stack()) { executing_stack() = stack; }
  ~executing_guard() { executing_stack() = previous_; }
  executing_guard(const executing_guard&) = delete;
  executing_guard& operator=(const executing_guard&) = delete;

 private:
  const void* previous_;
};

// The static stack under a runtime Ethernet layer, device and clock erased.
class link_backend {
 public:
  virtual ~link_backend() = default;
  // stack/stack.hpp's loop, in the calling thread.
  virtual expected<void, stack_error> run_loop() = 0;
  virtual void request_stop() noexcept = 0;
  virtual void execute(std::function<void()> command) = 0;
  virtual std::size_t process() = 0;
  virtual std::optional<instant> next_event() const = 0;
  virtual std::optional<instant> next_delivery() const = 0;
  virtual const device_stats& device_statistics() const = 0;
  virtual void* device_address(const std::type_info& type) noexcept = 0;

  virtual const interface_config& config() const noexcept = 0;
  virtual void set_config(const interface_config& config) noexcept = 0;
  virtual instant now() const noexcept = 0;
  // now() as a plain function and its argument, for stack_services::use_clock
  // (a null function: the stack's clock is steady_clock, read inline).
  struct clock_access {
    instant (*read)(const void*) noexcept;
    const void* clock;
  };
  virtual clock_access clock() const noexcept = 0;
  virtual buffer_pool& pool() noexcept = 0;
  virtual frame allocate_frame() noexcept = 0;
  // The room allocate_frame leaves in front of each frame.
  virtual std::size_t headroom() const noexcept = 0;

  virtual bool transmit(bytes_view frame) = 0;
  virtual bool send_frame(frame_buffer& f, mac_address destination, std::uint16_t ethertype,
                          const outgoing_hook& hook) = 0;
  virtual bool send_ipv4(frame&& datagram, ipv4_address next_hop, const outgoing_hook& hook) = 0;
  virtual void start_layers() = 0;
  virtual void stop_layers() = 0;
  virtual bool idle() const = 0;

  virtual upper_table& uppers() noexcept = 0;
  virtual const ethernet_stats& stats() const noexcept = 0;
  virtual std::uint64_t unresolved() const noexcept = 0;
};

template <class Description, class Device, class Clock>
class link_backend_for final : public link_backend {
 public:
  using static_stack = typename Stack<Description>::template on<Device, Clock>;
  using link_type = typename static_stack::link_layer;
  using table_type = typename link_uppers::template bound<link_type>;

  link_backend_for(Device device, Clock clock, const interface_config& config, const stack_options& options)
      : stack_(std::move(device), std::move(clock), config, options) {}

  expected<void, stack_error> run_loop() override { return stack_.run(true); }
  void request_stop() noexcept override { stack_.stop(); }
  void execute(std::function<void()> command) override { stack_.execute(std::move(command)); }
  std::size_t process() override { return stack_.process(); }
  std::optional<instant> next_event() const override { return stack_.next_event(); }
  std::optional<instant> next_delivery() const override {
    return const_cast<static_stack&>(stack_).device().next_delivery();
  }
  const device_stats& device_statistics() const override {
    return const_cast<static_stack&>(stack_).device().stats();
  }
  void* device_address(const std::type_info& type) noexcept override {
    return type == typeid(Device) ? static_cast<void*>(&stack_.device()) : nullptr;
  }

  const interface_config& config() const noexcept override { return stack_.config(); }
  void set_config(const interface_config& config) noexcept override { stack_.config() = config; }
  instant now() const noexcept override { return stack_.now(); }
  clock_access clock() const noexcept override {
    // steady_clock has no state: stack_services reads it itself.
    if constexpr (std::is_same_v<Clock, steady_clock>) {
      return {nullptr, nullptr};
    } else {
      return {[](const void* self) noexcept { return static_cast<const link_backend_for*>(self)->stack_.now(); }, this};
    }
  }
  buffer_pool& pool() noexcept override { return stack_.pool(); }
  frame allocate_frame() noexcept override { return stack_.allocate_frame(); }
  std::size_t headroom() const noexcept override { return static_stack::headroom; }

  // A frame up through the static stack, as a plain function (the runtime
  // Ethernet layer keeps its address: a jump, not a virtual call).
  static void receive_plain(void* self, instant timestamp, bytes_view frame) {
    static_cast<link_backend_for*>(self)->stack_.link().receive(headers<>(timestamp), frame);
  }
  bool transmit(bytes_view frame) override { return stack_.link().transmit(frame); }
  bool send_frame(frame_buffer& f, mac_address destination, std::uint16_t ethertype,
                  const outgoing_hook& hook) override {
    return stack_.link().send(f, destination, ethertype, hook);
  }
  // Flattened: the ARP look-up (by name, runtime/adapters.hpp), the header
  // and the device's send compile into this one function, as in the static
  // stack's inlined send path.
  // Without a hook (an application with no hook_outgoing) the Ethernet
  // layer skips what it does for one (the destination compared before and after).
  [[gnu::flatten]] bool send_ipv4(frame&& datagram, ipv4_address next_hop, const outgoing_hook& hook) override {
    if (hook.empty()) return send_ipv4_plain(this, std::move(datagram), next_hop);
    return stack_.link().send_ipv4(std::move(datagram), next_hop, hook);
  }
  // The same as a plain function (layer::set_ipv4_sink): the IPv4 layer
  // above reaches it in one indirect call, not two virtual ones.
  [[gnu::flatten]] static bool send_ipv4_plain(void* self, frame&& datagram, ipv4_address next_hop) {
    return static_cast<link_backend_for*>(self)->stack_.link().send_ipv4(std::move(datagram), next_hop, no_hook{});
  }
  void start_layers() override { stack_.link().start(); }
  void stop_layers() override { stack_.link().stop(); }
  bool idle() const override { return const_cast<static_stack&>(stack_).link().idle(); }

  upper_table& uppers() noexcept override { return stack_.link().template find<table_type>(); }
  const ethernet_stats& stats() const noexcept override { return const_cast<static_stack&>(stack_).link().stats(); }
  std::uint64_t unresolved() const noexcept override {
    return const_cast<static_stack&>(stack_).link().template find<table_type>().unresolved();
  }

 private:
  static_stack stack_;
};

}  // namespace detail

// What a simulation (stack/simulation.hpp) asks of a stack's device.
class device_view {
 public:
  explicit device_view(const detail::link_backend& backend) noexcept : backend_(&backend) {}
  std::optional<instant> next_delivery() const { return backend_->next_delivery(); }
  const device_stats& stats() const { return backend_->device_statistics(); }

 private:
  const detail::link_backend* backend_;
};

template <class Policy = ethernet_default_policy>
class basic_ethernet_layer : public layer, public stack_services {
 public:
  using description = Ethernet<Policy, link_uppers>;

  // A stack on `device` with the addresses of `config`. With a virtual clock
  // (clock_ref<virtual_clock>) nothing ever waits: drive it with process().
  template <device Device, clock_policy Clock = steady_clock>
  basic_ethernet_layer(Device device, const interface_config& config, Clock clock = {}, stack_options options = {})
      : layer("Ether"),
        backend_(std::make_unique<detail::link_backend_for<description, Device, Clock>>(
            std::move(device), std::move(clock), config, options)) {
    // The static stack's pool, used without a virtual call; its frames'
    // headroom is a constant (stack_services::frame_headroom).
    static_assert(detail::link_backend_for<description, Device, Clock>::static_stack::headroom == frame_headroom);
    use_pool(backend_->pool());
    // The static stack's own configuration, which lives as long as it does
    // (set_config assigns to the same object).
    use_config(std::as_const(*backend_).config());
    // The static stack's clock, read without the two virtual calls.
    const auto clock_of_stack = backend_->clock();
    use_clock(clock_of_stack.read, clock_of_stack.clock);
    set_own_services(*this);
    // Datagrams without hook go straight to the backend's flattened send
    // (send_ipv4_unhooked below is final and comes to the same function).
    using backend_type = detail::link_backend_for<description, Device, Clock>;
    set_ipv4_sink(&backend_type::send_ipv4_plain, static_cast<backend_type*>(backend_.get()));
    receive_plain_ = &backend_type::receive_plain;
    backend_->uppers().on_start(&loop_started, this);
  }

  ~basic_ethernet_layer() override {
    stop();
    detach();
  }

  // ---- layer ----
  std::uint32_t key() const noexcept override { return 0; }
  service needs() const noexcept override { return service::none; }
  service offers() const noexcept override { return service::link; }

  // A frame from outside the device (a test, a replay): handled as if the
  // device had received it.
  void receive(const header_set& headers, bytes_view whole_frame) override {
    receive_frame(headers.timestamp(), whole_frame);
  }
  // The same without a header_set: a frame and when it was received.
  void receive_frame(instant timestamp, bytes_view whole_frame) {
    if (detail::executing_stack() == this) {
      receive_plain_(backend_.get(), timestamp, whole_frame);  // on the loop thread: no command to make
      return;
    }
    receive_from_elsewhere(timestamp, whole_frame);
  }

  bool transmit(bytes_view whole_frame) override { return backend_->transmit(whole_frame); }
  bool send_frame(frame_buffer& f, mac_address destination, std::uint16_t ethertype,
                  const outgoing_hook& hook) override {
    return backend_->send_frame(f, destination, ethertype, hook);
  }
  bool send_ipv4(frame datagram, ipv4_address next_hop, const outgoing_hook& hook) override {
    return backend_->send_ipv4(std::move(datagram), next_hop, hook);
  }
  bool send_ipv4_unhooked(frame datagram, ipv4_address next_hop) final {
    return backend_->send_ipv4(std::move(datagram), next_hop, outgoing_hook());
  }
  bool idle() const override { return backend_->idle(); }
  std::optional<instant> next_deadline() const override { return backend_->next_event(); }

  // ---- stack_services ----
  // config() and now() are stack_services' (set at construction).
  // pool() and allocate_frame() are stack_services' (use_pool, at construction).
  bool in_stack_context() const noexcept override {
    return detail::executing_stack() == this || !active_.load(std::memory_order_acquire);
  }

  void call(command_ref command) override {
    if (detail::executing_stack() == this) {
      command();
      return;
    }
    std::unique_lock lock(state_mutex_);
    if (!active_.load(std::memory_order_acquire)) {
      detail::executing_guard inline_here(this);
      command();
      return;
    }
    completion done;
    backend_->execute([&done, command] {
      std::exception_ptr failure;
      try {
        command();
      } catch (...) {
        failure = std::current_exception();
      }
      // Notified under the lock: the waiter owns `done` and may destroy it
      // as soon as it sees `finished`.
      const std::lock_guard finished(done.mutex);
      done.failure = failure;
      done.finished = true;
      done.changed.notify_all();
    });
    lock.unlock();
    std::unique_lock wait(done.mutex);
    done.changed.wait(wait, [&] { return done.finished; });
    if (done.failure) std::rethrow_exception(done.failure);
  }

  // ---- the loop ----

  // Reactor mode (`reactor`): runs the loop in this thread until stop().
  // Thread mode: starts it in a new thread and returns.
  expected<void, error> run(bool reactor = true) {
    {
      const std::lock_guard lock(state_mutex_);
      if (active_.load(std::memory_order_acquire) || detail::executing_stack() == this) {
        return error{errc::already_running, "the stack's loop is running"};
      }
      join_ended_thread();
      stop_requested_.store(false, std::memory_order_release);
      loop_error_.reset();
      ++generation_;
      active_.store(true, std::memory_order_release);
      if (!reactor) {
        thread_ = std::thread([this] { loop(); });
        return {};
      }
    }
    loop();
    const std::lock_guard lock(state_mutex_);
    if (loop_error_) return *loop_error_;
    return {};
  }

  // Stops the loop: layers close what they have open (a bounded wait,
  // stack_options::stop_timeout), then the loop returns; from another thread
  // this waits for it (and joins a thread-mode loop). From a callback on the
  // loop thread it only asks: the loop ends when the callback returns.
  // Without a loop, stops the layers (the graceful close of a stepped stack).
  void stop() {
    if (detail::executing_stack() == this) {
      if (active_.load(std::memory_order_acquire)) {
        request_stop();
      } else {
        backend_->stop_layers();
      }
      return;
    }
    std::unique_lock lock(state_mutex_);
    if (!active_.load(std::memory_order_acquire)) {
      join_ended_thread();
      return;
    }
    const std::uint64_t generation = generation_;
    stop_requested_.store(true, std::memory_order_release);
    backend_->request_stop();
    std::thread loop_thread = std::move(thread_);
    if (loop_thread.joinable()) {
      lock.unlock();
      loop_thread.join();
      return;
    }
    state_changed_.wait(lock, [&] { return !active_.load(std::memory_order_acquire) || generation_ != generation; });
  }

  // Asks the loop to stop and returns at once. Async-signal-safe.
  void request_stop() noexcept {
    if (!active_.load(std::memory_order_acquire)) return;
    stop_requested_.store(true, std::memory_order_release);
    backend_->request_stop();
  }

  bool running() const noexcept { return active_.load(std::memory_order_acquire); }
  // Why the last loop ended early (its eventfd could not be made), if it did.
  std::optional<error> last_error() const {
    const std::lock_guard lock(state_mutex_);
    return loop_error_;
  }

  // ---- stepping without a loop (virtual clock) ----

  // Starts the layers, as run() does before its loop.
  void start() override {
    auto begin = [&] { backend_->start_layers(); };
    call(begin);
  }
  // Does what is ready now: frames, commands, due timers. Returns the frames
  // received; 0 while a loop runs (the loop owns the stack then).
  std::size_t process() {
    if (detail::executing_stack() == this) return backend_->process();
    std::unique_lock lock(state_mutex_);
    if (active_.load(std::memory_order_acquire)) return 0;
    detail::executing_guard inline_here(this);
    return backend_->process();
  }
  std::optional<instant> next_event() const { return backend_->next_event(); }

  // ---- inspection ----
  device_view device() const noexcept { return device_view(*backend_); }
  // The device, when it is of type Device (tests reach a scripted device).
  template <class Device>
  Device* device_if() noexcept {
    return static_cast<Device*>(backend_->device_address(typeid(Device)));
  }
  const ethernet_stats& stats() const noexcept { return backend_->stats(); }
  // IPv4 frames dropped because no resolver (ARP) was registered.
  std::uint64_t unresolved() const noexcept { return backend_->unresolved(); }
  // Replaces the addresses (a stack that learns its address later).
  void set_config(const interface_config& config) {
    auto replace = [&] { backend_->set_config(config); };
    call(replace);
  }

 protected:
  upper_table* uppers() noexcept override { return &backend_->uppers(); }

 private:
  struct completion {
    std::mutex mutex;
    std::condition_variable changed;
    bool finished = false;
    std::exception_ptr failure;
  };

  // Off the loop thread: as a command. Out of line, so that the loop
  // thread's way above does not set up the command's captures (three stores
  // a frame, in bench/dispatch_bench.cc's facade paths).
  [[gnu::noinline]] void receive_from_elsewhere(instant timestamp, bytes_view whole_frame) {
    auto inject = [&] { receive_plain_(backend_.get(), timestamp, whole_frame); };
    call(inject);
  }

  // The static stack starts its layers after resetting its stop flag: a
  // stop() that came in between is applied again here.
  static void loop_started(void* self) {
    auto& me = *static_cast<basic_ethernet_layer*>(self);
    if (me.stop_requested_.load(std::memory_order_acquire)) me.backend_->request_stop();
  }

  void loop() {
    detail::executing_guard loop_thread(this);
    std::optional<error> failed;
    auto ran = backend_->run_loop();
    if (!ran) {
      failed = error{errc::already_running, ran.error().what == stack_error::code::system_error
                                                ? "the loop's eventfd could not be created"
                                                : "the static stack's loop is running"};
    }
    const std::lock_guard lock(state_mutex_);
    // Commands queued while the loop ran its last round: run them now, still
    // as the stack's owner, so that their callers are released.
    backend_->process();
    loop_error_ = failed;
    active_.store(false, std::memory_order_release);
    state_changed_.notify_all();
  }

  // A thread-mode loop that ended without stop() (it failed, or a callback
  // stopped it) is joined before another starts. Under state_mutex_.
  void join_ended_thread() {
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  std::unique_ptr<detail::link_backend> backend_;
  // The backend's receive_plain: how frames go up.
  void (*receive_plain_)(void*, instant, bytes_view) = nullptr;
  mutable std::mutex state_mutex_;
  std::condition_variable state_changed_;
  std::atomic<bool> active_{false};
  std::atomic<bool> stop_requested_{false};
  std::uint64_t generation_ = 0;
  std::optional<error> loop_error_;
  std::thread thread_;
};

// The runtime Ethernet layer with the default policy (IEEE 802.3 address
// recognition: our address, broadcast and multicast).
class ethernet_layer : public basic_ethernet_layer<> {
 public:
  using basic_ethernet_layer::basic_ethernet_layer;
};

}  // namespace pystack::runtime

// A stack is a type: `Stack<Ethernet<>, IP<UDP<Port<7, Echo>>>, ARP<>>`.
//
// `Stack<Link, Uppers...>` names the link layer and the layers above it;
// `Stack<...>::on<Device, Clock>` is the object that runs them on a device.
//
// One thread owns the stack (design.md): every layer, cache and connection
// is touched only by the loop thread, so the packet path takes no lock.
// Other threads talk to the stack through `execute()`, a command queue that
// wakes the loop through an eventfd, which also makes `stop()` safe to call
// from a signal handler.
//
// The loop:
// - `run()` (reactor mode) runs in the caller's thread until `stop()`;
// - `run(false)` (thread mode) starts the loop in its own thread and returns
//   at once; `stop()` then joins it;
// - with a virtual clock there is no waiting at all: `process()` does what is
//   ready now and `next_event()` says when the next thing happens, which is
//   how `simulation` (simulation.hpp) drives several stacks and links.
// It never busy-waits: it sleeps in ppoll() on the device's descriptor and
// the command eventfd until the nearest deadline.
#pragma once

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "pystack/stack/buffer.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/device.hpp"
#include "pystack/stack/headers.hpp"
#include "pystack/stack/interface.hpp"
#include "pystack/stack/layer.hpp"
#include "pystack/wire/address.hpp"
#include "pystack/wire/error.hpp"

namespace pystack {

struct stack_options {
  std::size_t buffers = 256;  // frames that can be in flight or waiting at once
  std::size_t receive_batch = 64;  // frames taken from the device per wake-up
  duration stop_timeout = std::chrono::seconds(5);  // graceful close before stop() gives up
};

// Errors of the stack's own API (not of parsing).
struct stack_error {
  enum class code : std::uint8_t { already_running, not_running, system_error };
  code what;
  int system_errno = 0;
};

// A well-formed stack: a link layer whose description accepts these upper
// layers, every layer in it well formed (see `valid_description`).
template <class Link, class... Uppers>
concept valid_stack = layer_description<Link> && std::same_as<typename Link::layer_tag, link_layer_tag> &&
                      (layer_description<Uppers> && ...) && requires {
                        requires Link::template valid_with<Uppers...>;
                      };

template <class Link, class... Uppers>
struct Stack {
  template <device Device, clock_policy Clock = steady_clock>
  class on;
};

template <class Link, class... Uppers>
template <device Device, clock_policy Clock>
class Stack<Link, Uppers...>::on {
  static_assert(layer_description<Link> && std::same_as<typename Link::layer_tag, link_layer_tag>,
                "Stack<Link, Uppers...>: the first argument must be a link layer such as Ethernet<>");
  static_assert((layer_description<Uppers> && ...),
                "Stack<Link, Uppers...>: every argument after the link layer must be a layer description");

 public:
  using device_type = Device;
  using clock_type = Clock;
  using link_layer = typename Link::template bound<on, Uppers...>;

  // Headroom every frame gets: enough for the deepest header stack.
  static constexpr std::size_t headroom = link_layer::send_headroom;

  on(Device device, Clock clock, interface_config config, stack_options options = {})
      : device_(std::move(device)),
        clock_(std::move(clock)),
        config_(config),
        options_(options),
        pool_(options.buffers),
        wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
        link_(*this) {}

  on(const on&) = delete;
  on& operator=(const on&) = delete;

  ~on() {
    stop();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  // ---- what layers reach through their lower handle ----
  on& services() noexcept { return *this; }
  const Clock& clock() const noexcept { return clock_; }
  instant now() const noexcept { return clock_.now(); }
  buffer_pool& pool() noexcept { return pool_; }
  // A frame with room in front for every header below any layer.
  frame allocate_frame() noexcept { return pool_.acquire(headroom); }
  const interface_config& config() const noexcept { return config_; }
  interface_config& config() noexcept { return config_; }

  // Sends a finished frame on the device.
  bool transmit(bytes_view frame) noexcept { return device_.transmit(frame); }

  Device& device() noexcept { return device_; }
  link_layer& link() noexcept { return link_; }
  // The bound layer of description type D, found in the composition.
  template <class BoundLayer>
  BoundLayer& layer() noexcept {
    return link_.template find<BoundLayer>();
  }

  // ---- the loop ----

  // Reactor mode (`reactor == true`): runs the loop in this thread until
  // stop(). Thread mode: starts the loop in a new thread and returns.
  expected<void, stack_error> run(bool reactor = true) {
    if (running_.exchange(true)) return stack_error{stack_error::code::already_running};
    if (wake_fd_ < 0) {
      running_ = false;
      return stack_error{stack_error::code::system_error, errno};
    }
    stopping_ = false;
    link_.start();
    if (reactor) {
      loop();
      finish();
    } else {
      thread_ = std::thread([this] {
        loop();
        finish();
      });
    }
    return {};
  }

  // Asks the loop to close what it has open and return. Safe from a signal
  // handler and from any thread; in thread mode (from another thread) it also
  // waits for the loop thread to end.
  void stop() noexcept {
    stopping_.store(true, std::memory_order_release);
    wake();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  bool running() const noexcept { return running_.load(std::memory_order_acquire); }

  // Runs `command` on the loop thread. From any thread.
  void execute(std::function<void()> command) {
    {
      std::lock_guard lock(commands_mutex_);
      commands_.push_back(std::move(command));
    }
    wake();
  }

  // Does everything that is ready now, without waiting: frames the device
  // has, commands, timers that are due. Returns the frames received.
  std::size_t process() {
    std::size_t frames = device_.receive(
        [this](const received_frame& f) { link_.receive(headers<>(f.timestamp), f.bytes); },
        options_.receive_batch);
    run_commands();
    const instant now = clock_.now();
    if (auto d = link_.next_deadline(); d && *d <= now) link_.on_timer(now);
    return frames;
  }

  // When something next needs doing: a layer's deadline or a frame the
  // device holds back. Nothing when all waits on outside events.
  std::optional<instant> next_event() const {
    std::optional<instant> best = link_.next_deadline();
    if (auto d = device_.next_delivery(); d && (!best || *d < *best)) best = d;
    return best;
  }

 private:
  void wake() noexcept {
    if (wake_fd_ >= 0) {
      const std::uint64_t one = 1;
      // eventfd writes are async-signal-safe; a full counter still wakes.
      [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    }
  }

  void drain_wake_fd() noexcept {
    std::uint64_t count;
    while (::read(wake_fd_, &count, sizeof count) > 0) {
    }
  }

  void run_commands() {
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard lock(commands_mutex_);
      ready.swap(commands_);
    }
    for (auto& command : ready) command();
  }

  // Sleeps until the device may have frames, a command or stop() arrives, or
  // the next deadline; with a virtual clock, never sleeps.
  // `limit`: wake by then at the latest (the graceful close's deadline,
  // which no layer's timer may push back).
  void wait_for_work(std::optional<instant> limit = std::nullopt) {
    pollfd fds[2];
    nfds_t count = 0;
    fds[count++] = pollfd{wake_fd_, POLLIN, 0};
    if (const int fd = device_.wait_fd(); fd >= 0) fds[count++] = pollfd{fd, POLLIN, 0};
    timespec timeout{};
    timespec* timeout_ptr = nullptr;
    std::optional<instant> next = next_event();
    if (limit && (!next || *limit < *next)) next = limit;
    if (next) {
      const duration left = std::max(duration::zero(), *next - clock_.now());
      timeout.tv_sec = static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(left).count());
      timeout.tv_nsec = static_cast<long>((left - std::chrono::seconds(timeout.tv_sec)).count());
      timeout_ptr = &timeout;
    }
    if (::ppoll(fds, count, timeout_ptr, nullptr) > 0 && (fds[0].revents & POLLIN)) drain_wake_fd();
  }

  void loop() {
    while (!stopping_.load(std::memory_order_acquire)) {
      process();
      if constexpr (!Clock::is_virtual) wait_for_work();
      else if (!next_event()) break;  // a virtual stack run alone: nothing left to do
    }
    // Graceful close: layers send what closing needs (FIN, pending replies),
    // and the loop keeps serving them until they are idle or time runs out.
    link_.stop();
    const instant give_up = clock_.now() + options_.stop_timeout;
    while (!link_.idle() && clock_.now() < give_up) {
      process();
      if constexpr (!Clock::is_virtual) wait_for_work(give_up);
      else break;
    }
  }

  void finish() { running_.store(false, std::memory_order_release); }

  Device device_;
  Clock clock_;
  interface_config config_;
  stack_options options_;
  buffer_pool pool_;
  int wake_fd_ = -1;
  std::mutex commands_mutex_;
  std::vector<std::function<void()>> commands_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  link_layer link_;  // last: constructed after the services it uses
};

}  // namespace pystack

// An in-process Ethernet link between two stacks: two endpoints, each a
// device, and a wire between them that can delay, lose, reorder, duplicate
// and corrupt frames, from a seed (smoltcp's loopback and fault-injector
// devices, in one piece).
//
//     pystack::virtual_clock clock;
//     pystack::in_process_link<pystack::virtual_clock> wire(clock, {.a_to_b = {.loss = 0.1, .seed = 7}});
//     auto& a = wire.a();   // give to one stack
//     auto& b = wire.b();   // and this to the other
//
// With the virtual clock (design.md: time is a policy) nothing ever blocks:
// wait_fd() is -1 and next_delivery() tells the simulation how far to
// advance the clock. With steady_clock the two endpoints may run on two
// threads: the queues are guarded by a mutex, and each endpoint has an
// eventfd, its wait_fd(), that is signalled whenever a frame is queued for
// it.
//
// Frames are copied onto the wire: the sender's buffer is free again as soon
// as transmit() returns, as with a real NIC.
//
// Endpoints are handles (they share the link's state, which lives as long
// as any handle does). One endpoint is used by one thread at a time.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "pystack/device/error.hpp"
#include "pystack/device/impair.hpp"
#include "pystack/stack/buffer.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/device.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"

namespace pystack {

struct link_options {
  impairment a_to_b{};  // frames a transmits and b receives
  impairment b_to_a{};
  // Frames each direction holds at once (delayed, reordered, not yet
  // received); a transmit beyond it is refused and counted.
  std::size_t queue_limit = 1024;
  // Frames outside [min_frame_size, max_frame_size] are refused, as a NIC
  // refuses them: 14 is the Ethernet header; the upper bound is the stack's
  // frame buffer.
  std::size_t min_frame_size = 14;
  std::size_t max_frame_size = frame_buffer::capacity;
};

template <clock_policy Clock>
class in_process_link {
  struct direction {
    direction(const impairment& config, std::uint64_t stream, std::size_t limit) : engine(config, stream, limit) {}
    std::mutex mutex;
    detail::impairment_engine engine;  // guarded by mutex
  };

  struct side {
    device_stats stats;   // touched only by the thread that uses this endpoint
    queued_frame scratch;  // the frame being handed to this side's receive handler
    int event_fd = -1;    // readable when a frame was queued for this side
  };

  struct state {
    state(const Clock& c, const link_options& o)
        : clock(c), options(o), to_b(o.a_to_b, 0, o.queue_limit), to_a(o.b_to_a, 1, o.queue_limit) {}
    ~state() {
      for (auto& s : sides) {
        if (s.event_fd >= 0) ::close(s.event_fd);
      }
    }
    state(const state&) = delete;
    state& operator=(const state&) = delete;

    detail::stored_clock<Clock> clock;
    link_options options;
    direction to_b;
    direction to_a;
    side sides[2];  // [0] = a, [1] = b
  };

 public:
  // One end of the link. A device (see stack/device.hpp).
  class endpoint {
   public:
    bool transmit(bytes_view frame) {
      state& s = *state_;
      side& me = s.sides[index_];
      if (frame.size() < s.options.min_frame_size || frame.size() > s.options.max_frame_size) {
        ++me.stats.frames_dropped;
        return false;
      }
      direction& out = index_ == 0 ? s.to_b : s.to_a;
      admission result;
      {
        const std::lock_guard lock(out.mutex);
        result = out.engine.admit(frame, s.clock.now(), static_cast<std::uint32_t>(frame.size()));
      }
      switch (result) {
        case admission::overflow:
          ++me.stats.send_failures;
          return false;
        case admission::lost:
          // The sender put it on the wire; the wire lost it.
          ++me.stats.frames_sent;
          me.stats.bytes_sent += frame.size();
          ++me.stats.frames_dropped;
          return true;
        case admission::queued:
          break;
      }
      ++me.stats.frames_sent;
      me.stats.bytes_sent += frame.size();
      signal(s.sides[1 - index_].event_fd);
      return true;
    }

    // Delivers the frames due now, oldest first. The handler is called
    // without the link's lock held, so it may transmit (answer) at once.
    template <class Handler>
    std::size_t receive(Handler&& handler, std::size_t max) {
      state& s = *state_;
      side& me = s.sides[index_];
      direction& in = index_ == 0 ? s.to_a : s.to_b;
      drain(me.event_fd);
      const instant now = s.clock.now();
      std::size_t delivered = 0;
      while (delivered < max) {
        {
          const std::lock_guard lock(in.mutex);
          if (!in.engine.pop_due(now, me.scratch)) break;
        }
        ++delivered;
        ++me.stats.frames_received;
        me.stats.bytes_received += me.scratch.bytes.size();
        handler(received_frame{bytes_view(me.scratch.bytes), me.scratch.due, me.scratch.original_length});
      }
      // Stopped at `max` with more due: stay readable, so a loop that waits
      // on the descriptor comes back for them.
      if (delivered == max && me.event_fd >= 0) {
        const std::lock_guard lock(in.mutex);
        if (in.engine.has_due(now)) signal(me.event_fd);
      }
      return delivered;
    }

    int wait_fd() const noexcept { return state_->sides[index_].event_fd; }

    std::optional<instant> next_delivery() const {
      direction& in = index_ == 0 ? state_->to_a : state_->to_b;
      const std::lock_guard lock(in.mutex);
      return in.engine.next_due();
    }

    const device_stats& stats() const noexcept { return state_->sides[index_].stats; }

    // What the wire does to the frames this endpoint transmits, and the
    // seed to replay it with.
    const impairment& transmit_impairment() const noexcept {
      return index_ == 0 ? state_->options.a_to_b : state_->options.b_to_a;
    }
    impairment_counters transmit_counters() const {
      direction& out = index_ == 0 ? state_->to_b : state_->to_a;
      const std::lock_guard lock(out.mutex);
      return out.engine.counters();
    }
    // Frames on the wire towards this endpoint, not yet received.
    std::size_t pending() const {
      direction& in = index_ == 0 ? state_->to_a : state_->to_b;
      const std::lock_guard lock(in.mutex);
      return in.engine.size();
    }

   private:
    friend class in_process_link;
    endpoint(std::shared_ptr<state> s, int index) noexcept : state_(std::move(s)), index_(index) {}

    static void signal(int fd) noexcept {
      if (fd < 0) return;
      const std::uint64_t one = 1;
      // Only EAGAIN (counter at its maximum) can fail here, and then the
      // descriptor is readable already.
      [[maybe_unused]] const auto n = ::write(fd, &one, sizeof one);
    }
    static void drain(int fd) noexcept {
      if (fd < 0) return;
      std::uint64_t count = 0;
      // Non-blocking: EAGAIN when nothing was signalled.
      [[maybe_unused]] const auto n = ::read(fd, &count, sizeof count);
    }

    std::shared_ptr<state> state_;
    int index_;
  };

  // A link on a virtual clock, which is held by reference and must outlive
  // the link and its endpoints. Nothing here can fail.
  explicit in_process_link(const Clock& clock, const link_options& options = {})
    requires(Clock::is_virtual)
      : in_process_link(std::make_shared<state>(clock, options)) {}

  // Any clock. With a real clock each endpoint gets an eventfd, which the
  // system may refuse (descriptor limit): that is the error.
  static expected<in_process_link, device_error> open(const Clock& clock, const link_options& options = {}) {
    auto s = std::make_shared<state>(clock, options);
    if constexpr (!Clock::is_virtual) {
      for (auto& side : s->sides) {
        side.event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (side.event_fd < 0) {
          return device_error{device_error::code::system, std::string("eventfd: ") + std::strerror(errno)};
        }
      }
    }
    return in_process_link(std::move(s));
  }

  endpoint& a() noexcept { return a_; }
  endpoint& b() noexcept { return b_; }

  // The seed of the a-to-b direction (the one most tests set); both are in
  // describe().
  std::uint64_t seed() const noexcept { return state_->options.a_to_b.seed; }
  const link_options& options() const noexcept { return state_->options; }

  // "a->b: loss=0.1,seed=7; b->a: seed=1", for a failing test to print so
  // that the run can be replayed.
  std::string describe() const {
    return "a->b: " + state_->options.a_to_b.to_string() + "; b->a: " + state_->options.b_to_a.to_string();
  }

 private:
  explicit in_process_link(std::shared_ptr<state> s) : state_(s), a_(s, 0), b_(s, 1) {}

  std::shared_ptr<state> state_;
  endpoint a_;
  endpoint b_;
};

static_assert(device<in_process_link<virtual_clock>::endpoint>);
static_assert(device<in_process_link<steady_clock>::endpoint>);

}  // namespace pystack

// Several stacks on one virtual clock, run as one deterministic system.
//
// Each step does everything that is ready at the current instant in every
// stack (frames, commands, timers) until nothing more happens, then moves the
// clock to the earliest next event of any stack (a deadline, a frame the link
// delays). A 30 s timeout takes no real time, and the same seeds replay the
// same run exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>

#include "pystack/stack/clock.hpp"

namespace pystack {

struct simulation_result {
  bool condition_met = false;
  instant ended_at{};
  std::uint64_t steps = 0;
  // True when the run stopped because the same instant kept producing work
  // (a livelock between stacks), which a correct stack never does.
  bool stalled = false;
};

template <class... Stacks>
class simulation {
 public:
  // The most rounds of work at one instant before the run counts as stalled.
  static constexpr std::uint64_t max_rounds_per_instant = 100000;

  simulation(virtual_clock& clock, Stacks&... stacks) noexcept : clock_(clock), stacks_(stacks...) {}

  // Runs until `done()` holds, nothing is left to happen, or `limit` of
  // virtual time has passed.
  template <class Condition>
  simulation_result run_until(Condition&& done, duration limit) {
    simulation_result result;
    const instant deadline = clock_.now() + limit;
    while (true) {
      std::uint64_t rounds = 0;
      while (step_all() && ++rounds < max_rounds_per_instant) {
      }
      result.steps += rounds + 1;
      if (rounds >= max_rounds_per_instant) {
        result.stalled = true;
        break;
      }
      if (done()) {
        result.condition_met = true;
        break;
      }
      const std::optional<instant> next = next_event();
      if (!next || *next > deadline) {
        clock_.advance_to(deadline);
        break;
      }
      // An event due now that did no work (a deadline another stack's
      // frame will satisfy) must not spin: time moves at least a nanosecond.
      clock_.advance_to(*next > clock_.now() ? *next : clock_.now() + duration(1));
    }
    result.ended_at = clock_.now();
    result.condition_met = result.condition_met || done();
    return result;
  }

  // Runs for `span` of virtual time, whatever happens.
  simulation_result run_for(duration span) {
    return run_until([] { return false; }, span);
  }

 private:
  // One round: each stack does what is ready; true if any received a frame
  // or has something due now.
  bool step_all() {
    bool worked = false;
    std::apply([&](auto&... stack) { ((worked = stack.process() > 0 || worked), ...); }, stacks_);
    const auto next = next_event();
    return worked || (next && *next <= clock_.now() && due_work_pending());
  }

  // Whether something is due now that a further round could still change;
  // frames queued for delivery now count, deadlines already past do not
  // (their on_timer ran in this round).
  bool due_work_pending() const {
    bool pending = false;
    std::apply([&](auto&... stack) {
      ((pending = pending || (stack.device().next_delivery() && *stack.device().next_delivery() <= clock_.now())), ...);
    }, stacks_);
    return pending;
  }

  std::optional<instant> next_event() const {
    std::optional<instant> best;
    std::apply(
        [&](auto&... stack) {
          (
              [&](std::optional<instant> t) {
                if (t && (!best || *t < *best)) best = t;
              }(stack.next_event()),
              ...);
        },
        stacks_);
    return best;
  }

  virtual_clock& clock_;
  std::tuple<Stacks&...> stacks_;
};

}  // namespace pystack

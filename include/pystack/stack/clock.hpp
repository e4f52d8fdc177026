// Time is a policy (design.md): a steady clock for live use, a virtual clock
// for tests and the in-process link, so that a 30 s reassembly timeout or a
// TIME_WAIT takes no real time and every run replays exactly from its seed.
//
// A clock policy C must provide:
//
// | expression      | type      | meaning                                         |
// | --------------- | --------- | ----------------------------------------------- |
// | `c.now()`       | `instant` | the current time; never goes backwards          |
// | `C::is_virtual` | `bool`    | true when time moves only when told to          |
//
// `instant` is nanoseconds since the clock's own epoch; only differences mean
// anything, so a steady and a virtual clock share the type.
#pragma once

#include <chrono>
#include <concepts>

namespace pystack {

using duration = std::chrono::nanoseconds;

// A point in time: nanoseconds since the clock's epoch.
struct instant {
  duration since_epoch{};

  friend constexpr auto operator<=>(instant, instant) = default;
  friend constexpr instant operator+(instant t, duration d) noexcept { return {t.since_epoch + d}; }
  friend constexpr instant operator-(instant t, duration d) noexcept { return {t.since_epoch - d}; }
  friend constexpr duration operator-(instant a, instant b) noexcept { return a.since_epoch - b.since_epoch; }
  static constexpr instant max() noexcept { return {duration::max()}; }
};

template <class C>
concept clock_policy = requires(const C& c) {
  { c.now() } -> std::same_as<instant>;
  { C::is_virtual } -> std::convertible_to<bool>;
};

// The monotonic clock of the system (CLOCK_MONOTONIC): immune to changes of
// the wall clock, which must never make a retransmission timer fire early.
struct steady_clock {
  static constexpr bool is_virtual = false;
  instant now() const noexcept {
    return {std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch())};
  }
};

// Time that moves only when a test or a simulation says so. Shared by
// reference between the stacks and links of one simulation.
class virtual_clock {
 public:
  static constexpr bool is_virtual = true;
  instant now() const noexcept { return now_; }
  // Moves time forward to `t`; a `t` in the past is ignored, time never goes back.
  void advance_to(instant t) noexcept {
    if (t > now_) now_ = t;
  }
  void advance(duration d) noexcept { now_ = now_ + d; }

 private:
  instant now_{};
};

// A clock policy held by reference, for objects that share one virtual clock.
template <clock_policy C>
class clock_ref {
 public:
  static constexpr bool is_virtual = C::is_virtual;
  explicit clock_ref(const C& clock) noexcept : clock_(&clock) {}
  instant now() const noexcept { return clock_->now(); }

 private:
  const C* clock_;
};

static_assert(clock_policy<steady_clock>);
static_assert(clock_policy<virtual_clock>);
static_assert(clock_policy<clock_ref<virtual_clock>>);

}  // namespace pystack

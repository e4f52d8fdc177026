// Network impairments: what they are (`impairment`, parsed from the
// `--impair` flag) and a wrapper that applies them to any device
// (`impaired<Device, Clock>`).
//
// This machine has no netem (netns-harness.md: "Specified qdisc kind is
// unknown"), so loss, reordering, duplication, corruption and delay are
// injected in-process, between a stack and its device, with a seed so that a
// failing run can be replayed exactly. The in-process link (link.hpp) uses
// the same `impairment` per direction and the same decision code
// (`detail::impairment_engine`).
//
// What happens to one frame, in this order, each decision drawn from the
// direction's own seeded generator (std::mt19937_64):
//
// | step      | probability | effect |
// | --------- | ----------- | ------ |
// | loss      | `loss`      | the frame is dropped (counted in `frames_dropped`) |
// | corrupt   | `corrupt`   | one random bit of one random byte is flipped (past the Ethernet header when there is one: see below) |
// | duplicate | `duplicate` | a second copy follows the first |
// | delay     |             | the frame is due `delay` plus a uniform draw in [0, `jitter`] later, never before the frame ahead of it |
// | reorder   | `reorder`   | the frame is held back until the next frame of the same direction has gone ahead of it, or at most `hold` |
//
// Corruption flips a bit past the 14-byte Ethernet header: a flipped bit in
// an IPv4 header, or in a TCP/UDP/ICMP segment, always changes the Internet
// checksum (RFC 1071: one's-complement addition sees any single-bit error),
// so the receiver's checksum checks are what the corruption exercises. A bit
// flipped in a MAC address would only make a frame look like someone else's.
// ARP has no checksum; a corrupted ARP packet is the exception.
#pragma once

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "pystack/device/error.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/device.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"

namespace pystack {

// What happens to the frames of one direction. Probabilities are in [0, 1].
// The default is no impairment at all.
struct impairment {
  double loss = 0.0;       // probability that a frame is dropped
  double reorder = 0.0;    // probability that a frame is held back behind the next one
  double duplicate = 0.0;  // probability that a frame is delivered twice
  double corrupt = 0.0;    // probability that one bit of a frame is flipped
  duration delay{};        // added to every frame
  duration jitter{};       // a further uniform delay in [0, jitter]; never reorders by itself
  // The longest a reordered frame waits for a successor to overtake it, so
  // that the last frame of a burst is late rather than lost.
  duration hold = std::chrono::milliseconds(10);
  std::uint64_t seed = 1;

  friend bool operator==(const impairment&, const impairment&) = default;

  // True when frames pass untouched and undelayed.
  bool is_none() const noexcept {
    return loss == 0.0 && reorder == 0.0 && duplicate == 0.0 && corrupt == 0.0 && delay == duration::zero() &&
           jitter == duration::zero();
  }

  // Parses "key=value" pairs separated by commas, e.g.
  // "loss=0.05,reorder=0.05,dup=0.01,corrupt=0.01,delay=2ms,seed=7".
  // Keys: loss, reorder, dup (or duplicate), corrupt, delay, jitter, hold,
  // seed. Durations take a unit: ns, us, ms or s (decimals allowed: 1.5ms).
  // An empty spec is no impairment. On failure the message names the key
  // (or the piece of text) and says why.
  static expected<impairment, std::string> parse(std::string_view spec);

  // The spec that parses back to this value: every field that differs from
  // the default, and the seed always, so that a logged line replays a run.
  std::string to_string() const;
};

namespace detail {

inline std::string_view trim_spaces(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

inline std::optional<double> parse_decimal(std::string_view text) noexcept {
  if (text.empty() || text.front() == '+') return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

// "2ms", "1.5s", "250us", "100ns": a non-negative number and a unit.
inline expected<duration, std::string> parse_duration(std::string_view key, std::string_view text) {
  struct unit_entry {
    std::string_view suffix;
    double nanoseconds;
  };
  // "ns", "us" and "ms" before "s", so that the longest suffix wins.
  static constexpr unit_entry units[] = {{"ns", 1.0}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
  for (const auto& u : units) {
    if (text.size() <= u.suffix.size() || text.substr(text.size() - u.suffix.size()) != u.suffix) continue;
    const auto number = parse_decimal(text.substr(0, text.size() - u.suffix.size()));
    if (!number) return std::string(key) + ": '" + std::string(text) + "' is not a duration (e.g. 2ms, 1.5s)";
    if (*number < 0) return std::string(key) + ": " + std::string(text) + " is negative";
    const double ns = *number * u.nanoseconds;
    // Past about 292 years the nanosecond count no longer fits in 64 bits.
    if (ns >= 9.2e18) return std::string(key) + ": " + std::string(text) + " is too long";
    return duration(static_cast<std::int64_t>(std::llround(ns)));
  }
  return std::string(key) + ": '" + std::string(text) + "' needs a unit: ns, us, ms or s";
}

inline expected<double, std::string> parse_probability(std::string_view key, std::string_view text) {
  const auto value = parse_decimal(text);
  if (!value) return std::string(key) + ": '" + std::string(text) + "' is not a number";
  if (*value < 0.0 || *value > 1.0) {
    return std::string(key) + ": " + std::string(text) + " is not a probability in [0, 1]";
  }
  return *value;
}

inline std::string format_double(double v) {
  char text[64];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, v);  // shortest form that reads back
  return ec == std::errc{} ? std::string(text, end) : std::to_string(v);
}

inline std::string format_duration(duration d) {
  const auto n = d.count();
  if (n != 0 && n % 1'000'000'000 == 0) return std::to_string(n / 1'000'000'000) + "s";
  if (n != 0 && n % 1'000'000 == 0) return std::to_string(n / 1'000'000) + "ms";
  if (n != 0 && n % 1'000 == 0) return std::to_string(n / 1'000) + "us";
  return std::to_string(n) + "ns";
}

}  // namespace detail

inline expected<impairment, std::string> impairment::parse(std::string_view spec) {
  impairment result;
  spec = detail::trim_spaces(spec);
  if (spec.empty()) return result;
  // Each key may appear once: "loss=0.1,loss=0.2" is a typo, not an intent.
  std::vector<std::string_view> seen;
  // Bounded: every pass consumes at least one character of `spec`.
  while (true) {
    const std::size_t comma = spec.find(',');
    const std::string_view item = detail::trim_spaces(spec.substr(0, comma));
    const std::size_t equals = item.find('=');
    if (item.empty()) return std::string("empty item in impairment spec (two commas, or a trailing comma)");
    if (equals == std::string_view::npos) {
      return std::string(item) + ": expected key=value";
    }
    const std::string_view key = detail::trim_spaces(item.substr(0, equals));
    const std::string_view value = detail::trim_spaces(item.substr(equals + 1));
    const std::string_view canonical = key == "duplicate" ? std::string_view("dup") : key;
    for (const auto k : seen) {
      if (k == canonical) return std::string(key) + ": given more than once";
    }
    seen.push_back(canonical);
    if (value.empty()) return std::string(key) + ": missing value";

    if (key == "loss" || key == "reorder" || key == "dup" || key == "duplicate" || key == "corrupt") {
      const auto p = detail::parse_probability(key, value);
      if (!p) return p.error();
      (key == "loss"      ? result.loss
       : key == "reorder" ? result.reorder
       : key == "corrupt" ? result.corrupt
                          : result.duplicate) = *p;
    } else if (key == "delay" || key == "jitter" || key == "hold") {
      const auto d = detail::parse_duration(key, value);
      if (!d) return d.error();
      (key == "delay" ? result.delay : key == "jitter" ? result.jitter : result.hold) = *d;
    } else if (key == "seed") {
      std::uint64_t seed = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seed, 10);
      if (ec == std::errc::result_out_of_range) return std::string("seed: ") + std::string(value) + " does not fit in 64 bits";
      if (ec != std::errc{} || end != value.data() + value.size()) {
        return std::string("seed: '") + std::string(value) + "' is not an unsigned decimal integer";
      }
      result.seed = seed;
    } else {
      return std::string(key) +
             ": unknown key (known: loss, reorder, dup, corrupt, delay, jitter, hold, seed)";
    }
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  return result;
}

inline std::string impairment::to_string() const {
  const impairment defaults;
  std::string s;
  const auto add = [&s](std::string_view key, const std::string& value) {
    if (!s.empty()) s += ',';
    s += key;
    s += '=';
    s += value;
  };
  if (loss != defaults.loss) add("loss", detail::format_double(loss));
  if (reorder != defaults.reorder) add("reorder", detail::format_double(reorder));
  if (duplicate != defaults.duplicate) add("dup", detail::format_double(duplicate));
  if (corrupt != defaults.corrupt) add("corrupt", detail::format_double(corrupt));
  if (delay != defaults.delay) add("delay", detail::format_duration(delay));
  if (jitter != defaults.jitter) add("jitter", detail::format_duration(jitter));
  if (hold != defaults.hold) add("hold", detail::format_duration(hold));
  add("seed", std::to_string(seed));
  return s;
}

namespace detail {

// A uniform double in [0, 1) from the top 53 bits of one draw. Not
// std::uniform_real_distribution: its algorithm is unspecified, and a seed
// must replay the same run with any standard library.
inline double unit_interval(std::mt19937_64& generator) noexcept {
  return static_cast<double>(generator() >> 11) * 0x1.0p-53;
}

// A uniform integer in [0, n) by multiply-and-shift (Lemire); the bias is
// below n / 2^64, far under anything a test can see. n must be positive.
inline std::uint64_t uniform_below(std::mt19937_64& generator, std::uint64_t n) noexcept {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(generator()) * n) >> 64);
}

// t + d, or the end of time when that would not fit: a delay of centuries
// (which the spec allows) must not overflow the clock's 64 bits.
inline instant later_by(instant t, duration d) noexcept {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(t.since_epoch.count(), d.count(), &sum)) return instant::max();
  return instant{duration(sum)};
}

}  // namespace detail

// What an impairment did to the frames of one direction.
struct impairment_counters {
  std::uint64_t offered = 0;     // frames handed to the direction
  std::uint64_t lost = 0;        // dropped by `loss`
  std::uint64_t corrupted = 0;   // one bit flipped
  std::uint64_t duplicated = 0;  // a second copy queued
  std::uint64_t reordered = 0;   // held back behind a later frame
  std::uint64_t overflowed = 0;  // refused because the queue was full (a duplicate copy included)

  friend bool operator==(const impairment_counters&, const impairment_counters&) = default;
};

// A frame inside an impairment queue or a link, with the time it is due.
struct queued_frame {
  std::vector<byte> bytes;
  instant due{};
  std::uint32_t original_length = 0;
};

// What became of a frame offered to an impairment engine.
enum class admission : std::uint8_t {
  queued,    // it (and perhaps a duplicate) will be delivered
  lost,      // dropped on purpose by `loss`
  overflow,  // the queue was full: refused, nothing was drawn from the generator
};

namespace detail {

// One direction of impairment: a seeded generator, a FIFO of frames in due
// order, and at most one group of frames held back for reordering. Not
// thread-safe: the link guards it with a mutex, the wrapper uses it from one
// thread.
class impairment_engine {
 public:
  // `stream` separates the directions of one link or wrapper, so that the
  // same seed on both sides does not make their losses coincide.
  impairment_engine(const impairment& config, std::uint64_t stream, std::size_t queue_limit)
      : config_(config), queue_limit_(queue_limit) {
    // std::seed_seq's mixing is specified by the standard: the same seed
    // gives the same sequence everywhere.
    std::seed_seq sequence{static_cast<std::uint32_t>(config.seed), static_cast<std::uint32_t>(config.seed >> 32),
                           static_cast<std::uint32_t>(stream)};
    generator_.seed(sequence);
  }

  const impairment& config() const noexcept { return config_; }
  const impairment_counters& counters() const noexcept { return counters_; }
  std::size_t size() const noexcept { return queue_.size() + held_.size(); }
  bool empty() const noexcept { return size() == 0; }

  admission admit(bytes_view frame, instant now, std::uint32_t original_length) {
    ++counters_.offered;
    if (size() >= queue_limit_) {
      ++counters_.overflowed;
      return admission::overflow;
    }
    // Every frame draws the same values in the same order, whatever the
    // probabilities, so changing one probability does not shift the others'
    // outcomes for a given seed.
    const double loss_draw = unit_interval(generator_);
    if (loss_draw < config_.loss) {
      ++counters_.lost;
      return admission::lost;
    }
    const double corrupt_draw = unit_interval(generator_);
    const double duplicate_draw = unit_interval(generator_);
    const double reorder_draw = unit_interval(generator_);
    const std::uint64_t jitter_draw = uniform_below(generator_, static_cast<std::uint64_t>(config_.jitter.count()) + 1);

    queued_frame first{std::vector<byte>(frame.begin(), frame.end()), {}, original_length};
    if (corrupt_draw < config_.corrupt && !first.bytes.empty()) {
      // Past the Ethernet header when there is more (see the top of this file).
      constexpr std::size_t ethernet_header = 14;
      const std::size_t start = first.bytes.size() > ethernet_header ? ethernet_header : 0;
      const std::uint64_t bit = uniform_below(generator_, (first.bytes.size() - start) * 8);
      first.bytes[start + bit / 8] ^= static_cast<byte>(1u << (bit % 8));
      ++counters_.corrupted;
    }
    // Jitter never overtakes: a frame is due no earlier than the one before it.
    instant due = later_by(later_by(now, config_.delay), duration(static_cast<std::int64_t>(jitter_draw)));
    if (due < last_due_) due = last_due_;
    last_due_ = due;
    first.due = due;

    std::vector<queued_frame> group;
    group.reserve(2);
    group.push_back(std::move(first));
    if (duplicate_draw < config_.duplicate) {
      if (size() + 2 <= queue_limit_) {
        group.push_back(group.front());
        ++counters_.duplicated;
      } else {
        ++counters_.overflowed;
      }
    }

    if (reorder_draw < config_.reorder && held_.empty()) {
      held_ = std::move(group);
      held_until_ = later_by(due, config_.hold);
      ++counters_.reordered;
      return admission::queued;
    }
    for (auto& f : group) queue_.push_back(std::move(f));
    // A held group goes right behind the frame that overtook it.
    if (!held_.empty()) release_held(due);
    return admission::queued;
  }

  // When the next frame becomes due, if any.
  std::optional<instant> next_due() const noexcept {
    std::optional<instant> next;
    if (!queue_.empty()) next = queue_.front().due;
    if (!held_.empty() && (!next || held_until_ < *next)) next = held_until_;
    return next;
  }

  // Moves the first frame due at `now` or earlier into `out`.
  bool pop_due(instant now, queued_frame& out) {
    // A held group that nothing overtook in time is released as it is.
    if (!held_.empty() && held_until_ <= now) {
      if (last_due_ < held_until_) last_due_ = held_until_;
      release_held(held_until_);
    }
    if (queue_.empty() || queue_.front().due > now) return false;
    out = std::move(queue_.front());
    queue_.pop_front();
    return true;
  }

  // Whether a frame is due at `now` (without moving it).
  bool has_due(instant now) const noexcept {
    const auto next = next_due();
    return next && *next <= now;
  }

 private:
  void release_held(instant due) {
    for (auto& f : held_) {
      if (f.due < due) f.due = due;
      queue_.push_back(std::move(f));
    }
    held_.clear();
  }

  impairment config_;
  std::size_t queue_limit_;
  std::mt19937_64 generator_;
  std::deque<queued_frame> queue_;
  std::vector<queued_frame> held_;
  instant held_until_{};
  instant last_due_{};
  impairment_counters counters_;
};

}  // namespace detail

// The two directions of an impairment wrapper.
struct impaired_options {
  impairment outbound;  // frames the stack transmits
  impairment inbound;   // frames the device receives
  // Frames each direction may hold at once (delayed or reordered); beyond
  // it a transmitted frame is refused and a received one dropped.
  std::size_t queue_limit = 1024;
};

// Wraps any device and impairs the frames going through it, both ways.
// Delayed and reordered frames are released through next_delivery(): the
// stack's loop calls receive() when that time comes, which both delivers
// due inbound frames and hands due outbound frames to the device.
//
// `Device` may be a reference type (the wrapper then borrows the device).
// A virtual clock is held by reference; other clocks by value.
template <class Device, clock_policy Clock = steady_clock>
  requires device<std::remove_reference_t<Device>>
class impaired {
 public:
  impaired(Device inner, const Clock& clock, const impaired_options& options)
      : inner_(std::forward<Device>(inner)),
        clock_(clock),
        outbound_(options.outbound, 0, options.queue_limit),
        inbound_(options.inbound, 1, options.queue_limit) {}

  // The same impairment both ways (each direction draws its own stream).
  impaired(Device inner, const Clock& clock, const impairment& both, std::size_t queue_limit = 1024)
      : impaired(std::forward<Device>(inner), clock, impaired_options{both, both, queue_limit}) {}

  // Returns false when the frame was refused (queue full) or when the device
  // refused a frame handed to it now; a frame lost on purpose returns true,
  // as a real network does not tell the sender.
  bool transmit(bytes_view frame) {
    const instant now = clock_.now();
    bool ok = flush_outbound(now);
    switch (outbound_.admit(frame, now, static_cast<std::uint32_t>(frame.size()))) {
      case admission::overflow:
        ++stats_.send_failures;
        return false;
      case admission::lost:
        ++stats_.frames_dropped;
        return ok;
      case admission::queued:
        break;
    }
    return flush_outbound(now) && ok;
  }

  template <class Handler>
  std::size_t receive(Handler&& handler, std::size_t max) {
    const instant now = clock_.now();
    flush_outbound(now);
    if (max == 0) return 0;
    inner_.receive(
        [this, now](const received_frame& f) {
          if (inbound_.admit(f.bytes, now, f.original_length) != admission::queued) ++stats_.frames_dropped;
        },
        max);
    std::size_t delivered = 0;
    while (delivered < max && inbound_.pop_due(now, scratch_)) {
      ++delivered;
      ++stats_.frames_received;
      stats_.bytes_received += scratch_.bytes.size();
      handler(received_frame{bytes_view(scratch_.bytes), scratch_.due, scratch_.original_length});
    }
    return delivered;
  }

  int wait_fd() const { return inner_.wait_fd(); }

  std::optional<instant> next_delivery() const {
    std::optional<instant> next = inner_.next_delivery();
    for (const auto candidate : {outbound_.next_due(), inbound_.next_due()}) {
      if (candidate && (!next || *candidate < *next)) next = candidate;
    }
    return next;
  }

  // Frames that reached the stack or the device; drops by the impairment
  // (loss, full queues) are in frames_dropped, refusals in send_failures.
  const device_stats& stats() const noexcept { return stats_; }

  const impairment_counters& outbound_counters() const noexcept { return outbound_.counters(); }
  const impairment_counters& inbound_counters() const noexcept { return inbound_.counters(); }
  const impairment& outbound_impairment() const noexcept { return outbound_.config(); }
  const impairment& inbound_impairment() const noexcept { return inbound_.config(); }

  std::remove_reference_t<Device>& inner() noexcept { return inner_; }
  const std::remove_reference_t<Device>& inner() const noexcept { return inner_; }

 private:
  // Hands every outbound frame due by `now` to the device, oldest first.
  // False when the device refused one of them.
  bool flush_outbound(instant now) {
    bool ok = true;
    while (outbound_.pop_due(now, outbound_scratch_)) {
      if (inner_.transmit(bytes_view(outbound_scratch_.bytes))) {
        ++stats_.frames_sent;
        stats_.bytes_sent += outbound_scratch_.bytes.size();
      } else {
        ++stats_.send_failures;
        ok = false;
      }
    }
    return ok;
  }

  Device inner_;
  detail::stored_clock<Clock> clock_;
  detail::impairment_engine outbound_;
  detail::impairment_engine inbound_;
  queued_frame scratch_;
  queued_frame outbound_scratch_;
  device_stats stats_;
};

}  // namespace pystack

// A device that plays the frames of a capture file to a stack as if they
// arrived from a network, and records what the stack sends back.
//
//     auto replay = pystack::pcap_replay<pystack::virtual_clock>::open(
//         "session.pcap", clock, {.pace = pystack::replay_pace::recorded, .output = "answers.pcap"});
//
// Two paces:
// - `as_fast_as_possible`: every remaining frame is ready now; next_delivery()
//   is now while frames remain, so a loop drains the file without waiting.
// - `recorded`: frame i is due at start + (t_i - t_0), t being the capture's
//   timestamps and start the clock's time at open(); next_delivery() is when
//   the next one is due. On a virtual clock that takes no real time.
// In both, the timestamp a handler sees is start + (t_i - t_0): the
// capture's spacing on the stack's clock. A capture whose timestamps go
// backwards is delivered in file order, each frame no earlier than the last.
//
// There is no descriptor to wait on (wait_fd() is -1): a file is always
// readable; the schedule is all in next_delivery().
//
// transmit() counts each frame and, with an output file, writes it there,
// stamped on the capture's own time line (t_0 + (now - start)), so that the
// answers sort between the frames that caused them.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pystack/device/error.hpp"
#include "pystack/pcap/file.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/device.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"

namespace pystack {

enum class replay_pace : std::uint8_t { as_fast_as_possible, recorded };

struct pcap_replay_options {
  replay_pace pace = replay_pace::as_fast_as_possible;
  // Where transmitted frames are written (an Ethernet pcap); empty for none.
  std::string output{};
};

template <clock_policy Clock = steady_clock>
class pcap_replay {
 public:
  // Fails when the file is missing or damaged, is not an Ethernet capture,
  // or the output cannot be created. A virtual clock is held by reference.
  static expected<pcap_replay, device_error> open(const std::string& path, const Clock& clock,
                                                  const pcap_replay_options& options = {}) {
    auto file = pcap::reader::open(path);
    if (!file) return device_error{device_error::code::capture_file, file.error().message};
    if (file->link() != pcap::link_type::ethernet) {
      return device_error{device_error::code::unsupported_link_type,
                          path + ": link type " + pcap::to_string(file->link()) + "; a device replays Ethernet frames"};
    }
    std::optional<pcap::writer> output;
    if (!options.output.empty()) {
      auto w = pcap::writer::create(options.output, pcap::link_type::ethernet, pcap::timestamp_precision::nanoseconds);
      if (!w) return device_error{device_error::code::capture_file, w.error().message};
      output.emplace(std::move(*w));
    }
    pcap_replay replay(std::move(*file), std::move(output), clock, options.pace);
    // A file that fails at its very first record is refused here, rather than
    // looking like an empty capture.
    if (replay.read_error_) return *replay.read_error_;
    return replay;
  }

  static expected<pcap_replay, device_error> open(const std::string& path, const pcap_replay_options& options = {})
    requires(!Clock::is_virtual && std::is_default_constructible_v<Clock>)
  {
    return open(path, Clock{}, options);
  }

  // Counts the frame, and writes it to the output file if there is one.
  // False only when that write failed.
  bool transmit(bytes_view frame) {
    if (output_) {
      const duration since_start = clock_.now() - start_;
      const auto stamp = std::chrono::nanoseconds(saturating_add(first_timestamp_.count(), since_start.count()));
      if (!output_->write(frame, stamp) || !output_->flush()) {
        ++stats_.send_failures;
        return false;
      }
    }
    ++stats_.frames_sent;
    stats_.bytes_sent += frame.size();
    return true;
  }

  template <class Handler>
  std::size_t receive(Handler&& handler, std::size_t max) {
    const instant now = clock_.now();
    std::size_t delivered = 0;
    while (delivered < max && pending_ && (pace_ == replay_pace::as_fast_as_possible || pending_due_ <= now)) {
      // The next record is read before the handler runs, so the bytes it
      // sees (a copy) stay valid whatever it does.
      current_.swap(pending_bytes_);
      const received_frame frame{bytes_view(current_), pending_due_, pending_original_length_};
      advance();
      ++delivered;
      ++stats_.frames_received;
      stats_.bytes_received += frame.bytes.size();
      handler(frame);
    }
    return delivered;
  }

  int wait_fd() const noexcept { return -1; }

  std::optional<instant> next_delivery() const {
    if (!pending_) return std::nullopt;
    if (pace_ == replay_pace::as_fast_as_possible) return clock_.now();
    return pending_due_;
  }

  const device_stats& stats() const noexcept { return stats_; }

  // True when every frame was delivered, or the file stopped with an error.
  bool finished() const noexcept { return !pending_; }
  // Set when the file ended inside a record (the frames before it were delivered).
  const std::optional<device_error>& read_error() const noexcept { return read_error_; }
  // The clock's time at open(): frame i is stamped start() + (t_i - t_0).
  instant start() const noexcept { return start_; }

 private:
  pcap_replay(pcap::reader file, std::optional<pcap::writer> output, const Clock& clock, replay_pace pace)
      : file_(std::move(file)), output_(std::move(output)), clock_(clock), pace_(pace), start_(clock_.now()) {
    advance();
  }

  static std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? INT64_MAX : INT64_MIN;
    return sum;
  }

  // Reads the next record into the pending slot, or marks the end.
  void advance() {
    auto next = file_.next();
    if (!next) {
      read_error_ = device_error{device_error::code::capture_file, next.error().message};
      pending_ = false;
      return;
    }
    if (!*next) {
      pending_ = false;
      return;
    }
    const pcap::frame& f = **next;
    if (!have_first_) {
      first_timestamp_ = f.timestamp;
      have_first_ = true;
    }
    // A damaged file can hold any timestamp (pcap::reader clamps them to the
    // ends of 64-bit nanoseconds): saturate rather than overflow.
    const std::int64_t offset = saturating_add(f.timestamp.count(), -std::max(first_timestamp_.count(), -INT64_MAX));
    instant due{duration(saturating_add(start_.since_epoch.count(), offset))};
    if (due < last_due_) due = last_due_;
    last_due_ = due;
    pending_bytes_.assign(f.bytes.begin(), f.bytes.end());
    pending_due_ = due;
    pending_original_length_ = f.original_length;
    pending_ = true;
  }

  pcap::reader file_;
  std::optional<pcap::writer> output_;
  detail::stored_clock<Clock> clock_;
  replay_pace pace_;
  instant start_;
  bool have_first_ = false;
  std::chrono::nanoseconds first_timestamp_{};
  instant last_due_{};
  bool pending_ = false;
  std::vector<byte> pending_bytes_;
  instant pending_due_{};
  std::uint32_t pending_original_length_ = 0;
  std::vector<byte> current_;
  std::optional<device_error> read_error_;
  device_stats stats_;
};

static_assert(device<pcap_replay<steady_clock>>);
static_assert(device<pcap_replay<virtual_clock>>);

}  // namespace pystack

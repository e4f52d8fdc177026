// A device that records every frame going through another device into a
// pcap file, and otherwise passes everything on (smoltcp's `Tracer` and
// tcpdump's `-w`, as a device).
//
//     auto traced = pystack::pcap_tee<pystack::pcap_live>::create(std::move(live), "run.pcap");
//
// The file is an Ethernet pcap (not pcapng) with nanosecond timestamps, which
// tcpdump, tshark, Wireshark and pcap::reader all read. It is flushed at most
// `flush_interval` after a frame is written: the tee asks for that wake-up
// through next_delivery(), so a live file is complete within the interval
// even when the traffic stops, and Wireshark can open it while the stack
// still runs.
//
// A failed write to the file never stops the traffic: it is counted in
// capture_failures() and the first error is kept in capture_error().
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "pystack/device/error.hpp"
#include "pystack/pcap/file.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/device.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"

namespace pystack {

// The time of day (CLOCK_REALTIME), for stamping capture files so that a
// reader shows the real date. Only for timestamps: unlike steady_clock it can
// jump, so no timer should run on it.
struct wall_clock {
  static constexpr bool is_virtual = false;
  instant now() const noexcept {
    return {std::chrono::duration_cast<duration>(std::chrono::system_clock::now().time_since_epoch())};
  }
};
static_assert(clock_policy<wall_clock>);

struct tee_options {
  // The longest a written frame may wait in libpcap's buffer; zero flushes
  // after every frame.
  duration flush_interval = std::chrono::milliseconds(100);
  std::uint32_t snapshot_length = pcap::writer::default_snapshot_length;
};

// `Device` may be a reference type: the tee then borrows the device.
// `Clock` stamps the file: the wall clock by default, or the simulation's
// virtual clock (held by reference) for files that are the same every run.
template <class Device, clock_policy Clock = wall_clock>
  requires device<std::remove_reference_t<Device>>
class pcap_tee {
 public:
  static expected<pcap_tee, device_error> create(Device inner, const std::string& path, const Clock& clock,
                                            const tee_options& options = {}) {
    auto file = pcap::writer::create(path, pcap::link_type::ethernet, pcap::timestamp_precision::nanoseconds,
                                     options.snapshot_length);
    if (!file) return device_error{device_error::code::capture_file, file.error().message};
    return pcap_tee(std::forward<Device>(inner), std::move(*file), clock, options);
  }

  static expected<pcap_tee, device_error> create(Device inner, const std::string& path, const tee_options& options = {})
    requires(!Clock::is_virtual && std::is_default_constructible_v<Clock>)
  {
    return create(std::forward<Device>(inner), path, Clock{}, options);
  }

  // Records the frame when the device took it.
  bool transmit(bytes_view frame) {
    const bool sent = inner_.transmit(frame);
    if (sent) record(frame, static_cast<std::uint32_t>(frame.size()));
    return sent;
  }

  template <class Handler>
  std::size_t receive(Handler&& handler, std::size_t max) {
    const std::size_t n = inner_.receive(
        [this, &handler](const received_frame& f) {
          record(f.bytes, f.original_length != 0 ? f.original_length : static_cast<std::uint32_t>(f.bytes.size()));
          handler(f);
        },
        max);
    flush_if_due();
    return n;
  }

  int wait_fd() const { return inner_.wait_fd(); }

  std::optional<instant> next_delivery() const {
    std::optional<instant> next = inner_.next_delivery();
    if (unflushed_ > 0) {
      const instant flush_at = first_unflushed_at_ + options_.flush_interval;
      if (!next || flush_at < *next) next = flush_at;
    }
    return next;
  }

  // The wrapped device's counts: the tee adds and drops nothing.
  const device_stats& stats() const { return inner_.stats(); }

  // Pushes every recorded frame to the file now.
  expected<void, device_error> flush() {
    unflushed_ = 0;
    if (auto r = file_.flush(); !r) {
      note_failure(r.error().message);
      return device_error{device_error::code::capture_file, r.error().message};
    }
    return {};
  }

  std::uint64_t frames_recorded() const noexcept { return recorded_; }
  std::uint64_t capture_failures() const noexcept { return capture_failures_; }
  const std::optional<device_error>& capture_error() const noexcept { return capture_error_; }

  std::remove_reference_t<Device>& inner() noexcept { return inner_; }
  const std::remove_reference_t<Device>& inner() const noexcept { return inner_; }

 private:
  pcap_tee(Device inner, pcap::writer file, const Clock& clock, const tee_options& options)
      : inner_(std::forward<Device>(inner)), file_(std::move(file)), clock_(clock), options_(options) {}

  void record(bytes_view frame, std::uint32_t original_length) {
    const instant now = clock_.now();
    if (auto r = file_.write(frame, now.since_epoch, original_length); !r) {
      note_failure(r.error().message);
      return;
    }
    ++recorded_;
    if (unflushed_++ == 0) first_unflushed_at_ = now;
    flush_if_due();
  }

  void flush_if_due() {
    if (unflushed_ > 0 && clock_.now() - first_unflushed_at_ >= options_.flush_interval) {
      // A failure is counted by flush() itself.
      [[maybe_unused]] const auto ignored = flush();
    }
  }

  void note_failure(const std::string& message) {
    ++capture_failures_;
    if (!capture_error_) capture_error_ = device_error{device_error::code::capture_file, message};
  }

  Device inner_;
  pcap::writer file_;
  detail::stored_clock<Clock> clock_;
  tee_options options_;
  std::uint64_t unflushed_ = 0;
  instant first_unflushed_at_{};
  std::uint64_t recorded_ = 0;
  std::uint64_t capture_failures_ = 0;
  std::optional<device_error> capture_error_;
};

}  // namespace pystack

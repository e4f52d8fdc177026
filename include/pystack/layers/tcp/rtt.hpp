// The retransmission timeout of RFC 6298: a smoothed round-trip time and its
// variation from samples, exponential back-off on expiry, and bounds.
#pragma once

#include <algorithm>
#include <chrono>

#include "pystack/layers/tcp/types.hpp"
#include "pystack/stack/clock.hpp"

namespace pystack {

class rto_estimator {
 public:
  // G of RFC 6298 §2: the clock granularity. The clocks here count
  // nanoseconds; 1 ms keeps the variance term from vanishing on a LAN with
  // microsecond round trips, as Linux's jiffy-based estimator effectively does.
  static constexpr duration granularity = std::chrono::milliseconds(1);

  explicit rto_estimator(const retransmission_parameters& p) noexcept
      : min_(p.min_rto), max_(p.max_rto), rto_(std::clamp(p.initial_rto, p.min_rto, p.max_rto)) {}

  duration rto() const noexcept { return rto_; }
  bool has_sample() const noexcept { return has_sample_; }
  duration srtt() const noexcept { return srtt_; }
  duration rttvar() const noexcept { return rttvar_; }

  // A round-trip measurement R (RFC 6298 §2.2, §2.3): only from segments
  // sent once (Karn's algorithm, §3; the caller enforces it).
  void sample(duration r) noexcept {
    if (r < duration::zero()) r = duration::zero();
    if (!has_sample_) {
      srtt_ = r;
      rttvar_ = r / 2;
      has_sample_ = true;
    } else {
      // beta = 1/4, alpha = 1/8.
      const duration delta = srtt_ > r ? srtt_ - r : r - srtt_;
      rttvar_ = (3 * rttvar_ + delta) / 4;
      srtt_ = (7 * srtt_ + r) / 8;
    }
    // RTO = SRTT + max(G, K*RTTVAR), K = 4; then §2.4 and §2.5's bounds.
    rto_ = std::clamp(srtt_ + std::max(granularity, 4 * rttvar_), min_, max_);
  }

  // The timer expired: RTO = RTO * 2, up to the maximum (RFC 6298 §5.5).
  void back_off() noexcept { rto_ = std::min(rto_ * 2, max_); }

  // RFC 6298 §5.7: after a SYN was retransmitted, data transmission starts
  // with an RTO of 3 s unless a sample says otherwise.
  void after_lost_syn() noexcept {
    if (!has_sample_ && rto_ < std::chrono::seconds(3)) rto_ = std::min<duration>(std::chrono::seconds(3), max_);
  }

 private:
  duration min_;
  duration max_;
  duration rto_;
  duration srtt_{};
  duration rttvar_{};
  bool has_sample_ = false;
};

}  // namespace pystack

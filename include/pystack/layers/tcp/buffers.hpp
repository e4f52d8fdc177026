// The two byte stores of a TCP connection:
// - `send_buffer`: what the application gave and the peer has not yet
//   acknowledged, so that any of it can be sent again (RFC 9293 §3.8.1);
// - `reassembly_queue`: segments that arrived ahead of a gap, held until the
//   gap fills so that data reaches the application in order (RFC 9293
//   §3.10.7.4, "seventh, process the segment text").
// Both are bounded; neither loses data without saying so.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pystack/wire/bytes.hpp"
#include "pystack/wire/seq.hpp"

namespace pystack {

// A ring of bytes with a fixed capacity, grown on demand up to it, so that
// an idle connection costs little and a busy one never reallocates in the
// steady state.
class send_buffer {
 public:
  explicit send_buffer(std::size_t capacity) noexcept : capacity_(capacity) {}

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t free_space() const noexcept { return capacity_ - size_; }
  bool empty() const noexcept { return size_ == 0; }

  // Appends as much of `data` as fits; returns how much that was.
  std::size_t push(bytes_view data) {
    const std::size_t n = std::min(data.size(), free_space());
    if (n == 0) return 0;
    reserve(size_ + n);
    const std::size_t cap = storage_.size();
    std::size_t tail = (head_ + size_) % cap;
    const std::size_t first = std::min(n, cap - tail);
    std::copy_n(data.begin(), first, storage_.begin() + static_cast<std::ptrdiff_t>(tail));
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(first), n - first, storage_.begin());
    size_ += n;
    return n;
  }

  // Drops `n` bytes from the front (the peer acknowledged them).
  void consume(std::size_t n) noexcept {
    n = std::min(n, size_);
    if (n == 0) return;
    head_ = (head_ + n) % storage_.size();
    size_ -= n;
    if (size_ == 0) head_ = 0;
  }

  // Copies the bytes [offset, offset + out.size()) into `out`; returns how
  // many there were.
  std::size_t copy_out(std::size_t offset, mutable_bytes out) const noexcept {
    if (offset >= size_) return 0;
    const std::size_t n = std::min(out.size(), size_ - offset);
    const std::size_t cap = storage_.size();
    const std::size_t start = (head_ + offset) % cap;
    const std::size_t first = std::min(n, cap - start);
    std::copy_n(storage_.begin() + static_cast<std::ptrdiff_t>(start), first, out.begin());
    std::copy_n(storage_.begin(), n - first, out.begin() + static_cast<std::ptrdiff_t>(first));
    return n;
  }

 private:
  // Grows the ring (doubling, capped at the capacity) and lays the bytes out
  // from index 0 again.
  void reserve(std::size_t needed) {
    if (needed <= storage_.size()) return;
    std::size_t grown = std::max<std::size_t>(storage_.size() * 2, 4096);
    while (grown < needed) grown *= 2;
    grown = std::min(std::max(grown, needed), capacity_);
    std::vector<byte> bigger(grown);
    copy_out(0, mutable_bytes(bigger.data(), size_));
    storage_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<byte> storage_;
  std::size_t capacity_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// Out-of-order segments, sorted by sequence number, at most `limit` of them.
class reassembly_queue {
 public:
  struct piece {
    seq_number sequence;
    std::vector<byte> data;
    bool fin = false;
    seq_number end() const noexcept { return sequence + static_cast<std::int64_t>(data.size()); }
  };

  explicit reassembly_queue(std::size_t limit) noexcept : limit_(limit) {}

  std::size_t size() const noexcept { return pieces_.size(); }
  bool empty() const noexcept { return pieces_.empty(); }
  std::size_t bytes() const noexcept {
    std::size_t n = 0;
    for (const piece& p : pieces_) n += p.data.size();
    return n;
  }

  enum class outcome : std::uint8_t { queued, duplicate, full };

  // Holds a segment that starts after the next expected byte. One already
  // covered by a held piece is a duplicate; pieces it covers are replaced.
  outcome insert(seq_number sequence, bytes_view data, bool fin) {
    const seq_number end = sequence + static_cast<std::int64_t>(data.size());
    for (const piece& p : pieces_) {
      if (p.sequence <= sequence && end <= p.end() && (!fin || p.fin)) return outcome::duplicate;
    }
    std::erase_if(pieces_, [&](const piece& p) { return sequence <= p.sequence && p.end() <= end && (fin || !p.fin); });
    if (pieces_.size() >= limit_) return outcome::full;
    auto at = std::find_if(pieces_.begin(), pieces_.end(), [&](const piece& p) { return sequence < p.sequence; });
    pieces_.insert(at, piece{sequence, std::vector<byte>(data.begin(), data.end()), fin});
    return outcome::queued;
  }

  // Hands `deliver(bytes, fin)` the held data that now continues at `next`,
  // trimming what overlaps, and advances `next` past it (the FIN is not
  // counted: the caller does that). Stops at the first gap or after a FIN.
  // Returns true when a FIN was reached.
  template <class Deliver>
  bool drain(seq_number& next, Deliver&& deliver) {
    bool fin = false;
    while (!pieces_.empty() && pieces_.front().sequence <= next && !fin) {
      piece p = std::move(pieces_.front());
      pieces_.erase(pieces_.begin());
      if (p.end() < next || (p.end() == next && !p.fin)) continue;  // wholly old
      const auto skip = static_cast<std::size_t>(next - p.sequence);
      const bytes_view fresh = bytes_view(p.data).subspan(skip);
      next += static_cast<std::int64_t>(fresh.size());
      fin = p.fin;
      if (!deliver(fresh, p.fin)) return false;  // the connection ended during delivery
    }
    return fin;
  }

  void clear() noexcept { pieces_.clear(); }

 private:
  std::vector<piece> pieces_;
  std::size_t limit_;
};

}  // namespace pystack

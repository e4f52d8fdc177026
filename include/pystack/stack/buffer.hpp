// Frame buffers for the send path, and the pool they come from.
//
// Design (design.md, "The send path prepends into one buffer"): an upper
// layer writes its payload into a buffer that has enough headroom for the
// largest header stack below it; each lower layer then prepends its header
// in place. The headroom is a compile-time constant of the stack's type.
// Buffers come from a pool owned by the stack, so a segment in steady state
// allocates nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "pystack/wire/bytes.hpp"
#include "pystack/wire/ethernet.hpp"

namespace pystack {

// One frame's bytes, [head, tail) of a fixed array, with room before head
// for headers still to come.
class frame_buffer {
 public:
  // Ethernet's 1500-byte MTU, two VLAN tags and the Ethernet header fit with
  // room to spare; jumbo frames are not supported.
  static constexpr std::size_t capacity = 2048;

  // Empties the buffer and leaves `headroom` bytes in front.
  void reset(std::size_t headroom) noexcept {
    head_ = tail_ = static_cast<offset>(headroom < capacity ? headroom : capacity);
  }

  std::size_t headroom() const noexcept { return head_; }
  std::size_t tailroom() const noexcept { return capacity - tail_; }
  std::size_t size() const noexcept { return tail_ - head_; }

  // Grows the frame at the front by `n` bytes and returns them, or an empty
  // span when there is not that much headroom (the frame is unchanged).
  [[nodiscard]] mutable_bytes prepend(std::size_t n) noexcept {
    if (n > head_) return {};
    head_ -= static_cast<offset>(n);
    return mutable_bytes(storage_.data() + head_, n);
  }

  // Grows the frame at the back by `n` bytes and returns them, or an empty
  // span when they do not fit (the frame is unchanged).
  [[nodiscard]] mutable_bytes append(std::size_t n) noexcept {
    if (n > tailroom()) return {};
    const std::size_t at = tail_;
    tail_ += static_cast<offset>(n);
    return mutable_bytes(storage_.data() + at, n);
  }

  // Drops `n` bytes from the back (a hook that shortened a payload).
  void trim(std::size_t n) noexcept { tail_ = n < size() ? static_cast<offset>(tail_ - n) : head_; }

  mutable_bytes bytes() noexcept { return mutable_bytes(storage_.data() + head_, size()); }
  bytes_view bytes() const noexcept { return bytes_view(storage_.data() + head_, size()); }

 private:
  // The bounds as 32-bit offsets, not std::size_t: the layers' counters
  // are std::uint64_t, the same type to GCC's type-based alias analysis as
  // std::size_t, so every `++stats_.x` between two prepends made it load
  // the bounds again and test them at run time. As a type of their own
  // among the send path's stores, the bounds a fresh frame starts with
  // stay known through the whole way down (a frame's headers then go to
  // fixed offsets and the prepends' headroom tests fold away when the
  // header sizes are constants too).
  using offset = std::uint32_t;
  static_assert(capacity <= UINT32_MAX);
  alignas(64) std::array<byte, capacity> storage_;
  offset head_ = 0;
  offset tail_ = 0;
};

// An interface's MTU when a stack can use it: at least IPv4's 68 (RFC 791
// §3.2) and small enough that a frame with the Ethernet header fits a
// frame_buffer; otherwise nothing, and the stack keeps interface_config's
// default of 1500.
constexpr std::optional<std::uint16_t> usable_mtu(std::uint32_t interface_mtu) noexcept {
  if (interface_mtu < 68 || interface_mtu > frame_buffer::capacity - eth::header_size) return std::nullopt;
  return static_cast<std::uint16_t>(interface_mtu);
}

class buffer_pool;

// A buffer on loan from a pool; returns itself when destroyed. Move-only.
class frame {
 public:
  frame() noexcept = default;
  frame(frame&& other) noexcept
      : buffer_(std::exchange(other.buffer_, nullptr)), pool_(std::exchange(other.pool_, nullptr)) {}
  frame& operator=(frame&& other) noexcept {
    if (this != &other) {
      release();
      buffer_ = std::exchange(other.buffer_, nullptr);
      pool_ = std::exchange(other.pool_, nullptr);
    }
    return *this;
  }
  ~frame() { release(); }

  explicit operator bool() const noexcept { return buffer_ != nullptr; }
  frame_buffer& operator*() const noexcept { return *buffer_; }
  frame_buffer* operator->() const noexcept { return buffer_; }

 private:
  friend class buffer_pool;
  frame(frame_buffer* buffer, buffer_pool* pool) noexcept : buffer_(buffer), pool_(pool) {}
  inline void release() noexcept;

  frame_buffer* buffer_ = nullptr;
  buffer_pool* pool_ = nullptr;
};

// A fixed set of buffers, allocated once. When all are on loan, `acquire`
// returns an empty frame and counts it: the caller drops what it was about
// to send, and the drop is visible in `exhausted()`.
class buffer_pool {
 public:
  explicit buffer_pool(std::size_t count = 256)
      : storage_(std::make_unique<frame_buffer[]>(count)), free_(std::make_unique<frame_buffer*[]>(count)) {
    for (std::size_t i = count; i-- > 0;) free_[free_count_++] = &storage_[i];
    size_ = count;
  }
  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;

  // A buffer with `headroom` bytes in front, or an empty frame.
  frame acquire(std::size_t headroom) noexcept {
    if (free_count_ == 0) {
      ++exhausted_;
      return {};
    }
    frame_buffer* b = free_[--free_count_];
    b->reset(headroom);
    return frame(b, this);
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t available() const noexcept { return free_count_; }
  std::uint64_t exhausted() const noexcept { return exhausted_; }

 private:
  friend class frame;
  // Every buffer given back was lent out, so the stack of free buffers has
  // room: no capacity check, no allocation (a vector's push_back costs an
  // out-of-line call per frame sent).
  void give_back(frame_buffer* b) noexcept { free_[free_count_++] = b; }

  std::unique_ptr<frame_buffer[]> storage_;
  std::unique_ptr<frame_buffer*[]> free_;  // free_[0, free_count_): the buffers not on loan
  std::size_t free_count_ = 0;
  std::size_t size_ = 0;
  std::uint64_t exhausted_ = 0;
};

inline void frame::release() noexcept {
  if (buffer_ != nullptr) pool_->give_back(buffer_);
  buffer_ = nullptr;
  pool_ = nullptr;
}

}  // namespace pystack

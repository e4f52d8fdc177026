// What a stack needs from a device: the contract every device models.
//
// A device moves whole link-layer frames. It never blocks: the stack's loop
// waits on the device's file descriptor (live capture) or until its next
// delivery time (in-process link, impairment delays, replay), then asks it
// for what is ready. Frames are handed to a template handler, so the receive
// path has no virtual call and no std::function.
//
// A device D must provide:
//
// | expression                | type                       | meaning |
// | ------------------------- | -------------------------- | ------- |
// | `d.transmit(bytes)`       | `bool`                     | send one frame now; false when it was dropped (counted in `stats()`) |
// | `d.receive(handler, max)` | `std::size_t`              | call `handler(const received_frame&)` for up to `max` frames that are ready now; return how many; never blocks |
// | `d.wait_fd()`             | `int`                      | a descriptor that becomes readable when frames may be ready, or -1 |
// | `d.next_delivery()`       | `std::optional<instant>`   | when a frame held back (delay, replay time) becomes ready, if any |
// | `d.stats()`               | `const device_stats&`      | frames and bytes in and out, drops |
//
// The bytes a handler sees are valid only during the call.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "pystack/stack/clock.hpp"
#include "pystack/wire/bytes.hpp"

namespace pystack {

struct received_frame {
  bytes_view bytes;
  instant timestamp{};
  // Bytes on the wire, when the device captured fewer (snapshot length).
  std::uint32_t original_length = 0;
};

struct device_stats {
  std::uint64_t frames_received = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t frames_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t send_failures = 0;  // the device refused a frame (full queue, error)
  std::uint64_t frames_dropped = 0;  // dropped on purpose: impairment, oversize
};

namespace detail {
// A handler of the shape receive() is called with, for checking the concept.
struct frame_handler_archetype {
  void operator()(const received_frame&) const noexcept {}
};
}  // namespace detail

template <class D>
concept device = requires(D& d, const D& cd, bytes_view frame, detail::frame_handler_archetype handler) {
  { d.transmit(frame) } -> std::same_as<bool>;
  { d.receive(handler, std::size_t{}) } -> std::same_as<std::size_t>;
  { cd.wait_fd() } -> std::same_as<int>;
  { cd.next_delivery() } -> std::same_as<std::optional<instant>>;
  { cd.stats() } -> std::same_as<const device_stats&>;
};

}  // namespace pystack

// What can go wrong when a device is opened or used, as a typed value, and
// the small pieces every device of include/pystack/device/ shares.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "pystack/stack/clock.hpp"

namespace pystack {

struct device_error {
  enum class code : std::uint8_t {
    no_such_device,             // the interface does not exist (in this network namespace)
    permission_denied,          // capturing needs CAP_NET_RAW (root)
    promiscuous_not_permitted,  // capture is allowed, promiscuous mode is not
    interface_down,             // the interface exists but is not up
    bad_filter,                 // the BPF filter does not compile or cannot be set
    unsupported_link_type,      // not Ethernet: the stacks speak Ethernet frames
    capture_file,               // a capture file cannot be opened, read or written
    invalid_argument,           // an option out of range (zero snapshot length, ...)
    system,                     // any other failure reported by libpcap or the OS
  };
  code what = code::system;
  std::string message;
};

inline const char* to_string(device_error::code c) noexcept {
  using enum device_error::code;
  switch (c) {
    case no_such_device: return "no such device";
    case permission_denied: return "permission denied";
    case promiscuous_not_permitted: return "promiscuous mode not permitted";
    case interface_down: return "interface down";
    case bad_filter: return "bad filter";
    case unsupported_link_type: return "unsupported link type";
    case capture_file: return "capture file";
    case invalid_argument: return "invalid argument";
    case system: return "system error";
  }
  return "unknown";
}

namespace detail {
// How a device keeps its clock: a virtual clock is shared by every stack and
// link of a simulation, so it is held by reference (it must outlive the
// device); any other clock policy is a small value and is held by copy.
template <clock_policy C>
using stored_clock = std::conditional_t<std::is_same_v<C, virtual_clock>, clock_ref<virtual_clock>, C>;
}  // namespace detail

}  // namespace pystack

// What the runtime transports do on an address the stack shares with the
// host: claim each port they take from the host's kernel, and let it go
// when they are done (host/kernel_guard.hpp says what a claim holds back).
#pragma once

#include <cstdint>
#include <string>

#include "pystack/host/kernel_guard.hpp"
#include "pystack/runtime/layer.hpp"

namespace pystack::runtime {

// Claims `port` through `guard`; nothing to do without one (the stack has an
// address of its own). `in_use`: a socket of the host's kernel holds it.
inline expected<void, guard_error> claim_port(kernel_guard* guard, kernel_guard::transport protocol,
                                              std::uint32_t port) {
  if (guard == nullptr || port == 0 || port > 0xffff) return {};
  return guard->claim(protocol, static_cast<std::uint16_t>(port));
}

// A failed claim as the facade's error: a port the host holds is a port in use.
inline error claim_failure(const guard_error& e) {
  if (e.what == guard_error::code::in_use) return error{errc::key_in_use, e.message};
  return error{errc::host, "the kernel's answers cannot be held back: " + e.message};
}

// Undoes claim_port. A release that fails leaves the rule in place until the
// guard goes (the kernel then stays quiet on a port nobody uses): not worth
// failing the caller over.
inline void release_port(kernel_guard* guard, kernel_guard::transport protocol, std::uint32_t port) noexcept {
  if (guard == nullptr || port == 0 || port > 0xffff) return;
  static_cast<void>(guard->release(protocol, static_cast<std::uint16_t>(port)));
}

}  // namespace pystack::runtime

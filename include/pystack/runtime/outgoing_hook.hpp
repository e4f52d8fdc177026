// An outgoing hook that crosses the facade's virtual boundary.
//
// A static layer takes its hook (layers/hooks.hpp) as a template argument and
// hands it down to the layer below, which applies it to its own header. A
// virtual function cannot take a template, so at an erased boundary the hook
// travels as an `outgoing_hook`: a reference to the caller's hook object and
// one function pointer per header type it accepts (null for the others). It
// is itself a hook: `apply_hook(erased, ipv4_header)` calls the original's
// overload for `ipv4::repr&`, or nothing. It refers to the hook, so it lives
// only as long as the call that sends.
#pragma once

#include <memory>
#include <type_traits>

#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"
#include "pystack/wire/udp.hpp"

namespace pystack::runtime {

class outgoing_hook {
 public:
  // No hook: every header goes out as its layer made it.
  constexpr outgoing_hook() noexcept = default;

  // Refers to `hook`, which must outlive this object.
  template <class Hook>
    requires(!std::is_same_v<std::remove_cvref_t<Hook>, outgoing_hook>)
  explicit outgoing_hook(Hook& hook) noexcept
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(hook)))),
        ethernet_(thunk<Hook, eth::repr>()),
        ip_(thunk<Hook, ipv4::repr>()),
        udp_(thunk<Hook, udp::repr>()),
        tcp_(thunk<Hook, tcp::repr>()) {}

  void operator()(eth::repr& header) const {
    if (ethernet_ != nullptr) ethernet_(object_, header);
  }
  void operator()(ipv4::repr& header) const {
    if (ip_ != nullptr) ip_(object_, header);
  }
  void operator()(udp::repr& header) const {
    if (udp_ != nullptr) udp_(object_, header);
  }
  void operator()(tcp::repr& header) const {
    if (tcp_ != nullptr) tcp_(object_, header);
  }

  // True when the hook rewrites no header at all.
  bool empty() const noexcept { return !ethernet_ && !ip_ && !udp_ && !tcp_; }

 private:
  template <class Repr>
  using function = void (*)(void*, Repr&);

  template <class Hook, class Repr>
  static constexpr function<Repr> thunk() noexcept {
    if constexpr (std::is_invocable_v<Hook&, Repr&>) {
      return [](void* object, Repr& header) { (*static_cast<Hook*>(object))(header); };
    } else {
      return nullptr;
    }
  }

  void* object_ = nullptr;
  function<eth::repr> ethernet_ = nullptr;
  function<ipv4::repr> ip_ = nullptr;
  function<udp::repr> udp_ = nullptr;
  function<tcp::repr> tcp_ = nullptr;
};

// The hook as an `outgoing_hook`: itself when it is one already, so that a
// hook crossing several erased boundaries is wrapped once.
template <class Hook>
outgoing_hook erase_hook(Hook& hook) noexcept {
  if constexpr (std::is_same_v<std::remove_cvref_t<Hook>, outgoing_hook>) {
    return hook;
  } else {
    return outgoing_hook(hook);
  }
}

}  // namespace pystack::runtime

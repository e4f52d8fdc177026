// Outgoing hooks: how an application rewrites any header of a frame it sends.
//
// pystack's `kw["IP"]` / `kw["TCP"]` overrides made typed (design.md): as a
// frame goes down, each layer builds its header as a `repr` and passes it,
// mutable, to the hook before emitting it. A hook is any callable object that
// accepts the reprs it cares about; the others are ignored at compile time:
//
//   auto hook = overloaded{
//       [](ipv4::repr& ip) { ip.ttl = 7; ip.identification = covert_bits(); },
//       [](tcp::repr& tcp) { tcp.window = 1234; },
//   };
//
// `no_hook` costs nothing: each call compiles to nothing.
#pragma once

#include <type_traits>
#include <utility>

namespace pystack {

// Calls `hook(repr)` when the hook accepts that repr type, else does nothing.
template <class Hook, class Repr>
constexpr void apply_hook(Hook& hook, Repr& repr) {
  if constexpr (std::is_invocable_v<Hook&, Repr&>) hook(repr);
}

struct no_hook {};

// Combines lambdas into one overloaded callable.
template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

}  // namespace pystack

// How layers compose: descriptions, binding, and the compile-time tables
// that dispatch between them.
//
// A layer is written twice over, on purpose:
// - a *description*, the class template a user names in a stack's type
//   (`IP<UDP<Echo>>`): its arguments are its upper layers and at most one
//   policy, told apart by concept;
// - a *bound layer*, `Description::bound<Lower>`, the object that runs. It
//   holds a reference to its lower layer (given at composition, never looked
//   up at run time) and owns its upper layers as members.
// Dispatch between a layer and its uppers (EtherType, IP protocol, port) is a
// Boost.Hana fold over the uppers' compile-time keys, which the compiler turns
// into the same compare chain a hand-written switch gives: no virtual call,
// no std::function, no table at run time.
//
// A bound layer L with lower layer `Lower` provides:
//
// | expression                   | meaning |
// | ---------------------------- | ------- |
// | `L(lower)`                   | construct, keeping `Lower&` |
// | `l.receive(ctx, payload)`    | a frame for this layer; `ctx` is the typed `headers<...>` of the layers below |
// | `l.next_deadline()`          | `std::optional<instant>`: when this layer (or an upper) next needs `on_timer` |
// | `l.on_timer(now)`            | run what is due at `now` |
// | `l.start()`, `l.stop()`      | the stack started or is stopping |
// | `L::max_header_size`         | the most bytes this layer prepends (for the send path's headroom) |
#pragma once

#include <algorithm>
#include <boost/hana.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>

#include "pystack/stack/clock.hpp"
#include "pystack/wire/bytes.hpp"

namespace pystack {

namespace hana = boost::hana;

// Marks a layer description. A description D has `using layer_tag = ...;`
// and a nested template `D::bound<Lower>`.
struct link_layer_tag {};
struct network_layer_tag {};
struct transport_layer_tag {};
struct application_tag {};

template <class D>
concept layer_description = requires { typename D::layer_tag; };

// An upper layer of a link layer that carries EtherType `D::ethertype`.
template <class D>
concept ethernet_upper = layer_description<D> && requires {
  { D::ethertype } -> std::convertible_to<std::uint16_t>;
};

// An upper layer of IP that carries IP protocol number `D::ip_protocol`.
template <class D>
concept ip_upper = layer_description<D> && requires {
  { D::ip_protocol } -> std::convertible_to<std::uint8_t>;
};

// An upper whose keys are decided at run time: the runtime facade's table of
// erased layers (runtime/adapters.hpp, `dynamic_uppers`). Its description
// and its bound layer say `runtime_keyed = true` and carry no constant key;
// the bound layer's `accepts(key)` says whether something is registered for
// `key` (a bool, or what it found, which then takes the payload: see
// dispatch_by_key). Composition checks and dispatch treat it as matching any
// key that no constant-keyed sibling claims.
template <class U>
concept runtime_keyed_upper = requires { requires U::runtime_keyed; };

// A type list for the descriptions a layer was given.
template <class... Ts>
struct type_list {
  static constexpr std::size_t size = sizeof...(Ts);
};

// True when no two descriptions in the list share a key: two uppers that
// both claim EtherType 0x0800 would make dispatch ambiguous.
template <class... Keys>
constexpr bool all_distinct(Keys... keys) {
  constexpr std::size_t n = sizeof...(Keys);
  const std::uint32_t values[n == 0 ? 1 : n] = {static_cast<std::uint32_t>(keys)...};
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j)
      if (values[i] == values[j]) return false;
  return true;
}

// True when no two uppers with a constant key share it (a run-time keyed
// upper has none). `key_of(std::type_identity<T>{})` gives bound type T's key.
template <class... Ts, class KeyOf>
constexpr bool static_keys_distinct(KeyOf key_of) {
  std::uint32_t values[sizeof...(Ts) + 1] = {};
  std::size_t n = 0;
  (
      [&] {
        if constexpr (!runtime_keyed_upper<Ts>) values[n++] = static_cast<std::uint32_t>(key_of(std::type_identity<Ts>{}));
      }(),
      ...);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j)
      if (values[i] == values[j]) return false;
  return true;
}

namespace detail {

template <class... Ts>
constexpr auto layer_descriptions_in(type_list<Ts...>) {
  return hana::filter(hana::tuple_t<Ts...>, [](auto t) {
    return hana::bool_c<layer_description<typename decltype(t)::type>>;
  });
}

template <class... Ts>
constexpr auto non_layers_in(type_list<Ts...>) {
  return hana::remove_if(hana::tuple_t<Ts...>, [](auto t) {
    return hana::bool_c<layer_description<typename decltype(t)::type>>;
  });
}

template <class HanaTypes>
using to_type_list = typename decltype(hana::unpack(std::declval<HanaTypes>(), hana::template_<type_list>))::type;

template <class List, class Default>
struct policy_or_default;
template <class Default>
struct policy_or_default<type_list<>, Default> {
  using type = Default;
};
template <class Policy, class Default>
struct policy_or_default<type_list<Policy>, Default> {
  using type = Policy;
};
// Two or more policies for one layer: no policy concept accepts this type,
// so the description is reported invalid rather than failing to compile.
struct ambiguous_policy {};
template <class P1, class P2, class... Ps, class Default>
struct policy_or_default<type_list<P1, P2, Ps...>, Default> {
  using type = ambiguous_policy;
};

}  // namespace detail

// The upper-layer descriptions among a description's arguments, in order.
template <class... Args>
using uppers_of = detail::to_type_list<decltype(detail::layer_descriptions_in(type_list<Args...>{}))>;

// The arguments that are not layers: the layer's policy, if any.
template <class... Args>
using policies_of = detail::to_type_list<decltype(detail::non_layers_in(type_list<Args...>{}))>;

// The one policy among the arguments, or `Default`.
template <class Default, class... Args>
using policy_of = typename detail::policy_or_default<policies_of<Args...>, Default>::type;

// A description says whether it is well formed through `D::valid`, a
// constant computed from its arguments without failing to compile, so that
// a bad composition can be detected (and tested) by the concepts below; the
// bound layers repeat each check as a static_assert with a message naming
// the layer and what it lacks.
template <class D>
concept valid_description = layer_description<D> && requires {
  requires D::valid;
};

namespace detail {
template <class... Us>
constexpr bool link_uppers_valid(type_list<Us...>) {
  if constexpr (sizeof...(Us) == 0) {
    return false;
  } else if constexpr (!((ethernet_upper<Us> || runtime_keyed_upper<Us>) && ...)) {
    return false;
  } else {
    return static_keys_distinct<Us...>([](auto t) { return decltype(t)::type::ethertype; }) &&
           (valid_description<Us> && ...);
  }
}
template <class... Us>
constexpr bool ip_uppers_valid(type_list<Us...>) {
  if constexpr (!((ip_upper<Us> || runtime_keyed_upper<Us>) && ...)) {
    return false;
  } else {
    return static_keys_distinct<Us...>([](auto t) { return decltype(t)::type::ip_protocol; }) &&
           (valid_description<Us> && ...);
  }
}
}  // namespace detail

// Bound layers of a list of descriptions, stored as a tuple owned by their
// lower layer.
template <class Lower, class List>
struct bound_uppers;
template <class Lower, class... Ds>
struct bound_uppers<Lower, type_list<Ds...>> {
  using type = std::tuple<typename Ds::template bound<Lower>...>;
};
template <class Lower, class List>
using bound_uppers_t = typename bound_uppers<Lower, List>::type;

namespace detail {
template <class Lower, class... Ts>
std::tuple<Ts...> construct_uppers(Lower& lower, std::tuple<Ts...>*) {
  return std::tuple<Ts...>((static_cast<void>(sizeof(Ts)), lower)...);
}
}  // namespace detail

// Each upper in a tuple of bound layers, constructed from `lower`.
// (Layers hold references and are neither copied nor moved: the tuple is
// built in place through guaranteed copy elision.)
template <class Tuple, class Lower>
Tuple make_uppers(Lower& lower) {
  return detail::construct_uppers(lower, static_cast<Tuple*>(nullptr));
}

// Calls `f(upper)` on each upper in order.
template <class Tuple, class F>
constexpr void for_each_upper(Tuple& uppers, F&& f) {
  std::apply([&](auto&... each) { (f(each), ...); }, uppers);
}

// The earliest of the uppers' deadlines.
template <class Tuple>
std::optional<instant> earliest_deadline(const Tuple& uppers, std::optional<instant> mine = std::nullopt) {
  std::optional<instant> best = mine;
  std::apply(
      [&](const auto&... each) {
        (
            [&](const std::optional<instant>& d) {
              if (d && (!best || *d < *best)) best = d;
            }(each.next_deadline()),
            ...);
      },
      uppers);
  return best;
}

// Runs on_timer on every upper whose deadline has come.
template <class Tuple>
void fire_due(Tuple& uppers, instant now) {
  for_each_upper(uppers, [&](auto& each) {
    if (auto d = each.next_deadline(); d && *d <= now) each.on_timer(now);
  });
}

// Compile-time facts about a tuple of bound layers: the deepest header
// stack above, whether a bound layer (or application) type is in it, and
// where. Every layer answers `contains<T>()` and `find<T>()` through these.
template <class Tuple>
struct uppers_meta;
template <class... Ts>
struct uppers_meta<std::tuple<Ts...>> {
  static constexpr std::size_t max_path_header_size = std::max({std::size_t{0}, Ts::path_header_size...});

  template <class T>
  static constexpr bool contains = (Ts::template contains<T>() || ...);

  // Index of the first upper that is or holds T.
  template <class T>
  static constexpr std::size_t index_of() {
    std::size_t index = 0;
    const bool found[] = {false, Ts::template contains<T>()...};
    for (std::size_t i = 1; i < sizeof(found) / sizeof(found[0]); ++i) {
      if (found[i]) return i - 1;
    }
    return index + sizeof...(Ts);
  }

  // Index of the first upper with `resolves_ipv4` (ARP), or size.
  static constexpr std::size_t resolver_index() {
    const bool is_resolver[] = {false, resolves_ipv4_v<Ts>...};
    for (std::size_t i = 1; i < sizeof(is_resolver) / sizeof(is_resolver[0]); ++i) {
      if (is_resolver[i]) return i - 1;
    }
    return sizeof...(Ts);
  }

 private:
  template <class U>
  static constexpr bool resolves_ipv4_v = requires { requires U::resolves_ipv4; };
};

// `find<T>()` for a layer whose uppers are `uppers`.
template <class T, class Tuple>
T& find_in(Tuple& uppers) noexcept {
  constexpr std::size_t index = uppers_meta<Tuple>::template index_of<T>();
  static_assert(index < std::tuple_size_v<Tuple>, "find<T>(): no layer or application of type T in this stack");
  return std::get<index>(uppers).template find<T>();
}

// start(), stop() and idle() over every upper.
template <class Tuple>
void start_all(Tuple& uppers) {
  for_each_upper(uppers, [](auto& upper) { upper.start(); });
}
template <class Tuple>
void stop_all(Tuple& uppers) {
  for_each_upper(uppers, [](auto& upper) { upper.stop(); });
}
template <class Tuple>
bool all_idle(const Tuple& uppers) {
  return std::apply([](const auto&... upper) { return (upper.idle() && ...); }, uppers);
}

// A layer's hand-over of a payload to its upper layer, for dispatch_by_key
// (Ethernet's). Inline for an upper named in the stack's type, so that the
// layers of a frame's way up are one function: left to GCC (-O3 with
// Bazel's flags) the Ethernet-to-IPv4 hand-over was a call, which cost
// static TCP about 20 instructions a segment in bench/dispatch_bench.cc. A
// run-time keyed upper (the facade's table) is left to GCC: forced inline,
// it cost the facade's UDP path 12. (IPv4's hand-over to TCP forced inline
// cost static TCP 4 more: GCC inlines it already; not used there.)
template <class Context>
struct hand_over {
  const Context& context;
  bytes_view payload;
  template <class Upper>
    requires(!runtime_keyed_upper<Upper>)
  [[gnu::always_inline]] void operator()(Upper& upper) const {
    upper.receive(context, payload);
  }
  template <class Upper>
    requires runtime_keyed_upper<Upper>
  void operator()(Upper& upper) const {
    upper.receive(context, payload);
  }
};

// Dispatch: hands the payload to the first upper whose key matches, and says
// whether one did. `key_of` maps a bound layer type to its key. This is the
// compile-time table: a fold over the uppers' constant keys. A run-time keyed
// upper is asked afterwards, so a constant key always wins; a stack without
// one pays nothing for it.
template <class Tuple, class Key, class KeyOf, class Deliver>
constexpr bool dispatch_by_key(Tuple& uppers, Key key, KeyOf key_of, Deliver&& deliver) {
  bool delivered = false;
  const auto try_static = [&](auto& each) {
    if constexpr (!runtime_keyed_upper<std::remove_cvref_t<decltype(each)>>) {
      if (!delivered && key == key_of(each)) {
        deliver(each);
        delivered = true;
      }
    }
  };
  // A run-time keyed upper's `accepts(key)` answers yes or no (the upper
  // itself takes the payload), or with what it found for the key, which
  // then takes the payload (runtime/adapters.hpp's tables).
  const auto try_runtime = [&](auto& each) {
    if constexpr (runtime_keyed_upper<std::remove_cvref_t<decltype(each)>>) {
      if (delivered) return;
      if constexpr (std::is_same_v<decltype(each.accepts(key)), bool>) {
        if (each.accepts(key)) {
          deliver(each);
          delivered = true;
        }
      } else if (auto found = each.accepts(key)) {
        deliver(found);
        delivered = true;
      }
    }
  };
  std::apply([&](auto&... each) { (try_static(each), ...); }, uppers);
  std::apply([&](auto&... each) { (try_runtime(each), ...); }, uppers);
  return delivered;
}

}  // namespace pystack

// The typed header context that goes up the receive path.
//
// pystack's `kwargs` dictionary made static (design.md): a layer passes up,
// with its payload, the checked views of every header below it, e.g.
// `headers<eth::view, ipv4::view, udp::view>`. An application or a hook sees
// exactly the headers its position in the stack implies; asking for one that
// is not there does not compile.
//
// The context refers to the views, which live in the frames of the layers'
// `receive` calls below; like the views themselves (which point into the
// received frame), it is valid only during the call it is passed to. Holding
// pointers rather than copies keeps each `push` to one pointer: copies of
// every view at every layer cost the static stack 18 instructions per UDP
// datagram in bench/dispatch_bench.cc, stored to the stack because each
// layer passes the context on by reference (bench/RESULTS.md, "Dispatch").
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>

#include "pystack/stack/clock.hpp"

namespace pystack {

template <class... Views>
class headers {
 public:
  constexpr explicit headers(instant received_at, const Views&... views) noexcept
      : received_at_(received_at), views_(&views...) {}

  // True when a header of this view type is in the context.
  template <class View>
  static constexpr bool contains = (std::is_same_v<View, Views> || ...);

  static constexpr std::size_t depth = sizeof...(Views);

  // The view of the header of that type.
  template <class View>
    requires contains<View>
  constexpr const View& get() const noexcept {
    return *std::get<const View*>(views_);
  }

  // When the device received the frame.
  constexpr instant timestamp() const noexcept { return received_at_; }

  // The context one layer up: these headers and `view`.
  template <class View>
  constexpr headers<Views..., View> push(const View& view) const noexcept {
    return std::apply([&](const Views*... below) { return headers<Views..., View>(received_at_, *below..., view); },
                      views_);
  }
  // The context keeps a pointer to the view: a temporary would dangle at
  // the end of the full expression, so it is refused at compile time.
  template <class View>
  headers<Views..., View> push(const View&& view) const = delete;

 private:
  instant received_at_;
  std::tuple<const Views*...> views_;
};

}  // namespace pystack

// What lets a static layer run behind the facade's virtual boundary: an
// upper description that dispatches at run time, and a lower that forwards
// through the virtual interface.
//
// A static layer names its uppers at compile time (`IP<ICMP<>, UDP<...>>`)
// and reaches its lower through a reference (stack/layer.hpp). To put the
// same layer into a stack built at run time, runtime/layers.hpp instantiates
// it as
//
//     IP<Policy, dynamic_uppers<ip_protocol_key, udp_layer>>::bound<dynamic_lower>
//
// - `dynamic_uppers<Key, Direct...>` is one upper description whose bound
//   object is a run-time table (`upper_table`) from key to `runtime::layer*`.
//   The static layer's dispatch asks it (`accepts(key)`) once no
//   constant-keyed upper matched, and hands it the payload with the typed
//   context. It calls the layer it found: by name, with the static context
//   as it is, when that layer is of one of the `Direct...` adapter classes
//   (below, "Direct calls"); else through the virtual `receive_on_link`,
//   `receive_on_ipv4` or `receive_on_udp` (runtime/layer.hpp), whose default
//   makes the `header_set` a layer written for the facade reads. `Key` says
//   what the key is and where it is read.
// - `dynamic_lower` has the members a static layer calls on its lower
//   (`services`, `send`, `send_ipv4`, `make_header`, `transmit`) and forwards
//   each through the virtual interface of the runtime layer below. Hooks
//   cross as `outgoing_hook`. `direct_lower<Direct>` calls a lower of
//   adapter class `Direct` by name instead, with the caller's own hook.
//
// So an adapted layer runs the static layer's own code; only the two edges
// differ, and between two built-in layers the edges cost a table look-up and
// a compare (bench/RESULTS.md, "The facade: where its cost goes").
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "pystack/layers/hooks.hpp"
#include "pystack/runtime/header_set.hpp"
#include "pystack/runtime/layer.hpp"
#include "pystack/runtime/outgoing_hook.hpp"
#include "pystack/stack/buffer.hpp"
#include "pystack/stack/layer.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"
#include "pystack/wire/udp.hpp"

namespace pystack::runtime {

// ---------------------------------------------------------------------------
// Keys: what a layer dispatches by, and where in the context it is read.
//
// A key policy K provides:
//
// | expression             | meaning |
// | ---------------------- | ------- |
// | `K::type`              | the key's type |
// | `K::of(context)`       | the key of the packet whose typed context (ending with this layer's header) is given |
// | `K::resolves_ipv4`     | true when the table also answers for ARP (the link's table) |
// | `K::headroom_above`    | the most header bytes the layers above may prepend |

struct ethertype_key {
  using type = std::uint16_t;
  static constexpr bool resolves_ipv4 = true;
  static constexpr std::size_t headroom_above = ipv4::max_header_size + tcp::max_header_size;
  template <class Context>
  static type of(const Context& context) noexcept {
    return context.template get<eth::view>().ethertype();
  }
};

struct ip_protocol_key {
  using type = std::uint8_t;
  static constexpr bool resolves_ipv4 = false;
  static constexpr std::size_t headroom_above = tcp::max_header_size;
  template <class Context>
  static type of(const Context& context) noexcept {
    return context.template get<ipv4::view>().protocol();
  }
};

struct udp_port_key {
  using type = std::uint16_t;
  static constexpr bool resolves_ipv4 = false;
  static constexpr std::size_t headroom_above = 0;
  template <class Context>
  static type of(const Context& context) noexcept {
    return context.template get<udp::view>().destination_port();
  }
};

// The layer tag of a run-time table: an upper of any kind.
struct dynamic_tag {};

// ---------------------------------------------------------------------------
// Direct calls to the built-in adapters.
//
// An adapter class D whose receive functions are final marks its objects
// with `adapter_kind<D>()` (runtime/layer.hpp). A table that lists D
// among its `Direct...` classes checks the registered layer's mark and, on
// a match, calls D's receive for the context by name (when D says
// `receive_by_name`) or its lookup (when D says `resolves_by_name`; then
// its `lookup_in_place`, the same answer without an optional): no virtual
// call, and the compiler may inline the static layer behind it into the one
// below, as in a static stack. Any other layer, or a D registered somewhere
// else, gets the virtual call; what runs is the same function either way.

// `target.receive_on_link/ipv4/udp(context, payload)` for the context's
// place: a virtual call through `layer`, or by name through an adapter
// class; false when the context is of none of those places.
template <class Layer, class Context>
bool receive_typed(Layer& target, const Context& context, bytes_view payload) {
  constexpr bool by_name = !std::is_same_v<Layer, layer>;
  if constexpr (std::is_same_v<Context, link_context>) {
    if constexpr (by_name) {
      target.Layer::receive_on_link(context, payload);
    } else {
      target.receive_on_link(context, payload);
    }
  } else if constexpr (std::is_same_v<Context, ipv4_context>) {
    if constexpr (by_name) {
      target.Layer::receive_on_ipv4(context, payload);
    } else {
      target.receive_on_ipv4(context, payload);
    }
  } else if constexpr (std::is_same_v<Context, udp_context>) {
    if constexpr (by_name) {
      target.Layer::receive_on_udp(context, payload);
    } else {
      target.receive_on_udp(context, payload);
    }
  } else {
    return false;
  }
  return true;
}

// Whether a table calls D's receive by name: D says so with
// `receive_by_name`. (ARP's receive is rare and out of line in the static
// layer; called by name it would only grow the link's receive function.)
template <class D>
constexpr bool receives_by_name = requires { requires D::receive_by_name; };

// ---------------------------------------------------------------------------
// dynamic_uppers<Key, Direct...>: a static layer's uppers, registered at run time.

template <class Key, class... Direct>
struct dynamic_uppers {
  using layer_tag = dynamic_tag;
  static constexpr bool runtime_keyed = true;
  static constexpr bool valid = true;

  template <class Lower>
  class bound : public upper_table {
   public:
    static constexpr bool runtime_keyed = true;
    static constexpr bool resolves_ipv4 = Key::resolves_ipv4;
    static constexpr std::size_t max_header_size = 0;
    static constexpr std::size_t path_header_size = Key::headroom_above;

    explicit bound(Lower&) noexcept {}
    bound(const bound&) = delete;
    bound& operator=(const bound&) = delete;

    template <class T>
    static constexpr bool contains() {
      return std::is_same_v<T, bound>;
    }
    template <class T>
    T& find() noexcept {
      return *this;
    }

    // What `accepts(key)` found: the layer registered for the key, handed
    // the payload by `receive`. The static layer's dispatch asks `accepts`
    // and, when the answer is not empty, gives it the payload at once
    // (stack/layer.hpp, dispatch_by_key), so the key is looked up once and
    // nothing is kept between the two calls.
    class registered_layer {
     public:
      static constexpr bool runtime_keyed = true;

      explicit operator bool() const noexcept { return target_ != nullptr; }

      // The erased boundary: one virtual call to the layer, with the static
      // context when it is one the built-in layers take as it is
      // (layer::receive_on_link and the others), or by name for the
      // `Direct...` adapter classes.
      template <class Context>
      void receive(const Context& context, bytes_view payload) const {
        const void* kind = target_->direct_kind();
        const bool direct = ((receives_by_name<Direct> && kind == adapter_kind<Direct>() &&
                              receive_typed<Direct>(static_cast<Direct&>(*target_), context, payload)) ||
                             ...);
        if (!direct && !receive_typed<layer>(*target_, context, payload)) {
          target_->receive(header_set::from(context), payload);
        }
      }

     private:
      friend class bound;
      explicit registered_layer(layer* target) noexcept : target_(target) {}
      layer* target_;
    };
    registered_layer accepts(typename Key::type key) const noexcept { return registered_layer(registered(key)); }

    // As the link's resolver (Ethernet asks its uppers for one at compile
    // time): forwarded to the registered layer that resolves IPv4, if any.
    // The answer is a plain struct, made an optional once, where the link
    // asks (its send_ipv4), and a built-in ARP layer's entry is read in
    // place (lookup_in_place): an optional<mac_address> handed up from
    // ARP's lookup through this one was copied byte by byte through several
    // stack slots for every datagram sent (GCC kept the optionals, unions,
    // in memory), about 37 instructions a TCP segment.
    struct resolution {
      mac_address mac;
      bool found = false;
      [[gnu::always_inline]] operator std::optional<mac_address>() const noexcept {
        if (!found) return std::nullopt;
        return mac;
      }
    };
    resolution lookup(ipv4_address address) const {
      const layer* arp = resolver();
      if (arp == nullptr) return {};
      const void* kind = arp->direct_kind();
      resolution found;
      const bool direct = ((kind == adapter_kind<Direct>() && lookup_by_name<Direct>(*arp, address, found)) || ...);
      if (!direct) found = lookup_virtual(*arp, address);
      return found;
    }
    void hold(ipv4_address address, frame held) {
      layer* arp = resolver();
      if (arp == nullptr || !arp->hold(address, std::move(held))) ++unresolved_;
    }
    // IPv4 frames dropped because no resolver was registered.
    std::uint64_t unresolved() const noexcept { return unresolved_; }

    void start() { start_all(); }
    void stop() { stop_all(); }
    bool idle() const { return all_idle(); }
    std::optional<instant> next_deadline() const { return earliest_deadline(); }
    void on_timer(instant now) { fire_due(now); }

   private:
    // `D::lookup_in_place` by name, for an adapter class whose lookup is
    // final (it says so with `resolves_by_name`); false for the others,
    // which get the virtual lookup (out of line, with its optional).
    template <class D>
    [[gnu::always_inline]] static bool lookup_by_name(const layer& arp, ipv4_address address, resolution& found) {
      if constexpr (requires { requires D::resolves_by_name; }) {
        if (const mac_address* mac = static_cast<const D&>(arp).lookup_in_place(address)) found = {*mac, true};
        return true;
      } else {
        return false;
      }
    }
    [[gnu::noinline]] static resolution lookup_virtual(const layer& arp, ipv4_address address) {
      const std::optional<mac_address> mac = arp.lookup(address);
      if (!mac) return {};
      return {*mac, true};
    }

    std::uint64_t unresolved_ = 0;
  };
};

// ---------------------------------------------------------------------------
// dynamic_lower: the lower of a static layer behind the facade.

// What a static layer behind the facade has as its services()
// (dynamic_lower::services): its owner's stack_services, with what they
// read the configuration, the pool and the clock from copied beside them, so
// that the configuration the static layer reads several times per packet
// (and the clock, and the pool for each frame) is one load from here, as in
// a static stack, not one more through the services. The members a static
// layer calls on its services, as stack_services does them.
class adapted_services {
 public:
  const interface_config& config() const noexcept { return *copy_.config; }
  instant now() const noexcept { return stack_services::read_clock(copy_.read_clock, copy_.clock); }
  buffer_pool& pool() noexcept { return *copy_.pool; }
  [[gnu::always_inline]] frame allocate_frame() noexcept {
    return copy_.pool->acquire(stack_services::frame_headroom);
  }
  // The stack_services themselves.
  stack_services& stack() noexcept { return *copy_.services; }

 private:
  friend class dynamic_lower;
  lower_copy copy_;  // kept by the owner (layer::mirror_lower)
};

class dynamic_lower {
 public:
  // What ARP leaves in front of its packets: the largest Ethernet header.
  static constexpr std::size_t max_header_size = eth::header_size + eth::max_vlan_tags * eth::vlan_tag_size;

  // Forwards to whatever `owner` (the runtime layer that holds the static
  // one) has as its lower at the time of each call.
  explicit dynamic_lower(layer& owner) noexcept : owner_(owner) { owner_.mirror_lower(&services_.copy_); }
  dynamic_lower(const dynamic_lower&) = delete;
  dynamic_lower& operator=(const dynamic_lower&) = delete;
  ~dynamic_lower() { owner_.mirror_lower(nullptr); }

  // The owner's services(), from the copy the owner keeps here
  // (layer::mirror_lower): the static layer reads the configuration, the
  // clock and the pool through it several times per packet, and this way
  // they are one or two loads from here, not three through the owner.
  adapted_services& services() noexcept { return services_; }

  bool transmit(bytes_view whole_frame) {
    layer* below = lower();
    return below != nullptr && below->transmit(whole_frame);
  }

  template <class Hook = no_hook>
  bool send(frame_buffer& frame_to_send, mac_address destination, std::uint16_t ethertype, Hook&& hook = {}) {
    layer* below = lower();
    return below != nullptr && below->send_frame(frame_to_send, destination, ethertype, erase_hook(hook));
  }

  template <class Hook = no_hook>
  [[gnu::always_inline]] bool send_ipv4(frame datagram, ipv4_address next_hop, Hook&& hook = {}) {
    if constexpr (std::is_same_v<std::remove_cvref_t<Hook>, no_hook>) {
      // The lower's sink (layer::set_ipv4_sink) when it gave one, read from
      // the copy (one load and a test, not the lower's and its test first),
      // else its virtual send_ipv4_unhooked.
      const lower_copy& copy = services_.copy_;
      if (copy.lower_sink != nullptr) return copy.lower_sink(copy.lower_sink_self, std::move(datagram), next_hop);
      layer* below = lower();
      return below != nullptr && below->send_ipv4_unhooked(std::move(datagram), next_hop);
    } else {
      layer* below = lower();
      return below != nullptr && below->send_ipv4(std::move(datagram), next_hop, erase_hook(hook));
    }
  }

  ipv4::repr make_header(ipv4_address destination, std::uint8_t protocol) {
    if (layer* below = lower()) return below->make_ipv4_header(destination, protocol);
    ipv4::repr header{.source = ipv4_address::any(), .destination = destination};
    header.protocol = protocol;
    return header;
  }

  template <class Hook = no_hook>
  bool send(frame datagram, ipv4::repr header, Hook&& hook = {}) {
    layer* below = lower();
    return below != nullptr && below->send_datagram(std::move(datagram), header, erase_hook(hook));
  }

 protected:
  layer& owner() noexcept { return owner_; }
  // owner().lower() and its direct_kind(), from the copy.
  layer* lower() const noexcept { return services_.copy_.lower; }
  const void* lower_kind() const noexcept { return services_.copy_.lower_kind; }

 private:
  layer& owner_;
  adapted_services services_;
};

// A dynamic_lower that, when the runtime layer below is of adapter class
// `Direct` (runtime/layers.hpp's basic_ip_layer<>), calls Direct's static
// layer by name with the caller's own hook: the send path's counterpart of
// dynamic_uppers' direct calls, with no virtual call and no erased hook
// between a transport and the IPv4 layer. Any other lower is called
// virtually, as by dynamic_lower.
template <class Direct>
class direct_lower : public dynamic_lower {
 public:
  using dynamic_lower::dynamic_lower;

  ipv4::repr make_header(ipv4_address destination, std::uint8_t protocol) {
    if (Direct* below = direct()) return below->static_implementation().make_header(destination, protocol);
    return dynamic_lower::make_header(destination, protocol);
  }

  template <class Hook = no_hook>
  bool send(frame datagram, ipv4::repr header, Hook&& hook = {}) {
    Direct* below = direct();
    if (below == nullptr) return dynamic_lower::send(std::move(datagram), header, hook);
    return send_through(*below, std::move(datagram), header, hook);
  }
  using dynamic_lower::send;

  // make_header, then `finish(header)` (the transport emits its own header
  // for it), then send, with one test of the lower: the header the IPv4
  // layer made reaches its emit with its constant fields known, as in a
  // static stack (layers/tcp.hpp's emit uses this when its lower has it).
  template <class Finish, class Hook>
  [[gnu::always_inline]] bool make_and_send(frame& datagram, ipv4_address destination, std::uint8_t protocol,
                                            Finish&& finish, Hook& hook) {
    if (Direct* below = direct()) [[likely]] {
      if constexpr (!std::is_invocable_v<Hook&, ipv4::repr&>) {
        // Nothing here to do between the header and the send: the IPv4
        // layer's own make_and_send, which keeps the header in one place.
        // (Made here and sent by value, without_options' copy was written
        // field by field and read back 16 bytes at a time, a load that waits
        // for the narrow stores before it: 6 ns a segment.)
        return below->static_implementation().make_and_send(datagram, destination, protocol, finish, hook);
      } else {
        ipv4::repr header = below->static_implementation().make_header(destination, protocol);
        finish(header);
        return send_through(*below, std::move(datagram), header, hook);
      }
    }
    ipv4::repr header = dynamic_lower::make_header(destination, protocol);
    finish(header);
    return dynamic_lower::send(std::move(datagram), header, hook);
  }

 private:
  template <class Hook>
  [[gnu::always_inline]] static bool send_through(Direct& below, frame datagram, ipv4::repr header, Hook& hook) {
    if constexpr (std::is_invocable_v<Hook&, ipv4::repr&>) {
      // The IPv4 layer corrects the transport checksum when a hook moved the
      // addresses, which it finds out by walking the options of the header
      // before and after. A facade application always has an IPv4 hook (a
      // virtual function) that rarely moves anything: the hook is applied
      // here, once, and the IPv4 layer gets a hook without it when the
      // addresses stayed (no options, so the final destination is the
      // destination), or one that replays its result when they did not.
      ipv4::repr hooked = header;
      hook(hooked);
      if (hooked.options_length == 0 && header.options_length == 0 && hooked.source == header.source &&
          hooked.destination == header.destination) {
        return below.static_implementation().send(std::move(datagram), hooked, hook_without_ipv4<Hook>{hook});
      }
      return below.static_implementation().send(std::move(datagram), header,
                                                 hook_replaying_ipv4<Hook>{hook, hooked});
    } else {
      if (header.options_length == 0) [[likely]] {
        // The header made again without options: the IPv4 layer's emit and
        // checksum then compile for a header of fixed size, as in a static
        // stack, where make_header and send are inlined together (here the
        // header may also come from a lower called virtually).
        return below.static_implementation().send(std::move(datagram), without_options(header), hook);
      }
      return below.static_implementation().send(std::move(datagram), header, hook);
    }
  }

  // `Hook` for every header but IPv4's.
  template <class Hook>
  struct hook_without_ipv4 {
    Hook& hook;
    template <class Repr>
      requires(!std::is_same_v<Repr, ipv4::repr> && std::is_invocable_v<Hook&, Repr&>)
    void operator()(Repr& header) const {
      hook(header);
    }
  };
  // `Hook`, with IPv4's header set to what it made of it already.
  template <class Hook>
  struct hook_replaying_ipv4 {
    Hook& hook;
    const ipv4::repr& result;
    void operator()(ipv4::repr& header) const { header = result; }
    template <class Repr>
      requires(!std::is_same_v<Repr, ipv4::repr> && std::is_invocable_v<Hook&, Repr&>)
    void operator()(Repr& header) const {
      hook(header);
    }
  };

  static ipv4::repr without_options(const ipv4::repr& h) noexcept {
    return ipv4::repr{.dscp = h.dscp,
                      .ecn = h.ecn,
                      .identification = h.identification,
                      .reserved_flag = h.reserved_flag,
                      .dont_fragment = h.dont_fragment,
                      .more_fragments = h.more_fragments,
                      .fragment_offset = h.fragment_offset,
                      .ttl = h.ttl,
                      .protocol = h.protocol,
                      .source = h.source,
                      .destination = h.destination};
  }

  // The kind is null without a lower, so one compare tells both.
  Direct* direct() noexcept {
    if (lower_kind() != adapter_kind<Direct>()) return nullptr;
    return static_cast<Direct*>(lower());
  }
};

}  // namespace pystack::runtime

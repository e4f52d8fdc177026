// The runtime facade's layer: a small virtual interface that each static
// layer is adapted to (runtime/adapters.hpp, runtime/layers.hpp), so that
// stacks can be put together while the program runs, as the original's
// "Stack crafting" does:
//
//     runtime::ethernet_layer eth(device, config);
//     runtime::ip_layer ip;
//     runtime::arp_layer arp;
//     runtime::udp_layer udp;
//     eth.register_layer(ip);
//     eth.register_layer(arp);
//     ip.register_layer(udp);
//
// Types are erased at layer boundaries only (design.md, "The runtime facade
// wraps the static stack"): inside an adapted layer the code is the static
// layer's own, and crossing from one layer to the next is one table look-up
// and a virtual call, or a call by name between two built-in layers
// (runtime/adapters.hpp, "Direct calls").
//
// A runtime layer L provides:
//
// | expression                         | meaning |
// | ---------------------------------- | ------- |
// | `l.name()`                         | "Ethernet", "IP", "UDP", ... as in the original |
// | `l.key()`                          | the EtherType, IP protocol or port its lower dispatches to it by |
// | `l.needs()`, `l.offers()`          | the service it needs from its lower and offers its uppers (`service`) |
// | `l.register_upper(key, upper)`     | dispatch frames with `key` to `upper` (original: `register_upper_layer`) |
// | `l.register_lower(lower)`          | send through `lower` (original: `register_lower_layer`) |
// | `l.register_layer(upper)`          | both at once, under `upper.key()` (original: `register_layer`) |
// | `l.unregister_upper(key)`          | stop dispatching `key` (original: `unregister_upper_layer`) |
// | `l.receive(headers, payload)`      | a packet for this layer, with the `header_set` of the layers below |
// | `l.receive_on_link(context, payload)`, `receive_on_ipv4`, `receive_on_udp` | the same from a built-in lower, with its static context; the default makes the `header_set` and calls `receive` |
// | `l.start()`, `l.stop()`, `l.idle()`, `l.next_deadline()`, `l.on_timer(now)` | as for static layers (stack/layer.hpp) |
// | `l.services()`                     | the stack it belongs to: configuration, clock, buffers, loop |
//
// and, depending on what it offers, the send entry points its uppers call
// (`transmit`, `send_frame`, `send_ipv4`, `make_ipv4_header`,
// `send_datagram`, `send_udp`). Those a layer does not offer answer false.
//
// Threads: like the static stack, a runtime stack belongs to its loop thread.
// The composition calls above may be made from any thread: while the loop
// runs they are commands run on it (`stack_services::call`), so a table is
// never changed under a frame being dispatched.
//
// Errors: API misuse returns `expected<..., runtime::error>` (the library's
// convention, stack/stack.hpp); nothing here throws on the packet path.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "pystack/runtime/header_set.hpp"
#include "pystack/runtime/outgoing_hook.hpp"
#include "pystack/stack/buffer.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/headers.hpp"
#include "pystack/stack/interface.hpp"
#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"
#include "pystack/wire/udp.hpp"

namespace pystack::runtime {

// ---------------------------------------------------------------------------
// Errors of the facade's API

enum class errc : std::uint8_t {
  key_in_use,          // something is registered under that key already (a port bound twice)
  no_such_upper,       // nothing is registered under that key
  takes_no_uppers,     // ARP, ICMP and applications carry nothing above them
  incompatible_lower,  // the lower does not offer what this layer needs (UDP on Ethernet)
  not_attached,        // the layer is on no stack: register it first
  already_running,     // run() while the loop runs
  already_bound,       // bind() or connect() on an application that has a port
  not_bound,           // an operation that needs a bound or connected application
  no_free_port,        // every ephemeral port is taken
  bad_address,         // not a dotted-quad address (names need a DNS layer)
  send_failed,         // the stack dropped it (no buffer, too big, no route); see the layers' stats
  timed_out,           // a blocking call's time ran out
  closed,              // the application or connection was closed, or the stack stopped
  busy,                // the layer has connections or listeners: close them first
  device,              // the device could not be opened
  host,                // the host's facts could not be read
  unsupported,         // a capability this stack was built without
};

inline const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::key_in_use: return "key in use";
    case errc::no_such_upper: return "no such upper layer";
    case errc::takes_no_uppers: return "layer takes no upper layers";
    case errc::incompatible_lower: return "incompatible lower layer";
    case errc::not_attached: return "not attached to a stack";
    case errc::already_running: return "already running";
    case errc::already_bound: return "already bound";
    case errc::not_bound: return "not bound";
    case errc::no_free_port: return "no free port";
    case errc::bad_address: return "bad address";
    case errc::send_failed: return "send failed";
    case errc::timed_out: return "timed out";
    case errc::closed: return "closed";
    case errc::busy: return "busy";
    case errc::device: return "device error";
    case errc::host: return "host error";
    case errc::unsupported: return "unsupported";
  }
  return "unknown";
}

struct error {
  errc code = errc::unsupported;
  std::string detail{};

  std::string message() const { return detail.empty() ? to_string(code) : std::string(to_string(code)) + ": " + detail; }
  friend bool operator==(const error& e, errc c) noexcept { return e.code == c; }
};

// ---------------------------------------------------------------------------
// What a layer needs from its lower and offers its uppers

enum class service : std::uint8_t {
  none,     // nothing (ARP and ICMP offer nothing; applications neither)
  link,     // Ethernet: frames to a MAC address, IPv4 to a next hop, address resolution
  network,  // IPv4: headers and datagrams to an address
  udp,      // UDP: datagrams from a port
  tcp,      // TCP: connections
};

inline const char* to_string(service s) noexcept {
  switch (s) {
    case service::none: return "nothing";
    case service::link: return "a link layer";
    case service::network: return "a network layer";
    case service::udp: return "UDP";
    case service::tcp: return "TCP";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// The stack a layer belongs to

// A non-owning reference to a `void()` callable, valid during the call it
// is passed to (a command run on the loop thread while its caller waits).
class command_ref {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, command_ref>)
  command_ref(F& f) noexcept  // NOLINT: implicit, as a parameter type
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o) { (*static_cast<F*>(o))(); }) {}
  void operator()() const { call_(object_); }

 private:
  void* object_;
  void (*call_)(void*);
};

// What every layer reaches through its lower: the configuration, the clock,
// the frame buffers and the loop. The link layer at the bottom of a runtime
// stack (runtime::ethernet_layer) is the one that implements it.
class stack_services {
 public:
  // Not virtual: the static layers behind the facade read it for every
  // packet, and it is one object for the stack's life.
  const interface_config& config() const noexcept { return *config_; }
  // Not virtual either: one call to the clock the implementation gave
  // (use_clock), read by TCP and ARP several times per segment. The host's
  // steady clock (what a stack on a real device runs on) is read here
  // without the call through a pointer: a function that forwards to it is
  // not compiled as a jump (GCC does not tail-call a function returning a
  // struct made from another's), so it paid a call, a frame and a return
  // more than the static stack's inlined read for every segment.
  instant now() const noexcept { return read_clock(read_clock_, clock_); }
  using clock_reader = instant (*)(const void*) noexcept;
  [[gnu::always_inline]] static instant read_clock(clock_reader read, const void* clock) noexcept {
    if (read == nullptr) [[likely]]
      return steady_clock{}.now();
    return read(clock);
  }
  // Not virtual: the pool the implementation gave (use_pool).
  buffer_pool& pool() noexcept { return *pool_; }
  // The room allocate_frame leaves in front of each frame: the most header
  // bytes a runtime stack prepends (Ethernet with two VLAN tags, IPv4 and
  // TCP with options; runtime/ethernet.hpp checks that its static stack's
  // headroom is this). A constant, as in a static stack: the frame's bounds
  // are then known where it is taken and the prepends' headroom tests fold.
  static constexpr std::size_t frame_headroom = eth::header_size + eth::max_vlan_tags * eth::vlan_tag_size +
                                                ipv4::max_header_size + tcp::max_header_size;
  static_assert(frame_headroom <= frame_buffer::capacity);
  // A frame with room in front for every header a runtime stack can have.
  // Not virtual: every segment or datagram sent takes one.
  [[gnu::always_inline]] frame allocate_frame() noexcept { return pool_->acquire(frame_headroom); }
  // Runs `command` where the stack's state may be touched: inline on the
  // loop thread (or when no loop runs), else as a command queued to the loop,
  // waiting until it has run. An exception it throws reaches the caller.
  virtual void call(command_ref command) = 0;
  // True when the calling thread may touch the stack now (it is the loop's,
  // or no loop runs): blocking here would wait for itself.
  virtual bool in_stack_context() const noexcept = 0;

 protected:
  stack_services() = default;
  ~stack_services() = default;
  stack_services(const stack_services&) = delete;
  stack_services& operator=(const stack_services&) = delete;

  friend class layer;  // copies config_, pool_ and the clock (layer::mirror_lower)

  // The configuration config() returns; set by the implementation before
  // any layer can ask, and not changed after (set_config assigns to the
  // object): the adapters keep its address (runtime/adapters.hpp,
  // layer::mirror_lower), as they keep the pool and the clock (use_pool,
  // use_clock: the same, once before any layer is attached).
  void use_config(const interface_config& config) noexcept { config_ = &config; }
  // What now() returns: `read(clock)`, or steady_clock's time when `read`
  // is null.
  void use_clock(clock_reader read, const void* clock) noexcept {
    read_clock_ = read;
    clock_ = clock;
  }
  // What pool() and allocate_frame() use: `pool` (frames with
  // frame_headroom in front).
  void use_pool(buffer_pool& pool) noexcept { pool_ = &pool; }

 private:
  buffer_pool* pool_ = nullptr;
  const interface_config* config_ = nullptr;
  clock_reader read_clock_ = [](const void*) noexcept { return instant{}; };
  const void* clock_ = nullptr;
};

// Runs `f` through `services.call` and returns its result.
template <class F>
auto in_stack(stack_services& services, F&& f) -> std::invoke_result_t<F&> {
  using result = std::invoke_result_t<F&>;
  if constexpr (std::is_void_v<result>) {
    services.call(f);
  } else {
    std::optional<result> out;
    auto command = [&] { out.emplace(f()); };
    services.call(command);
    return std::move(*out);
  }
}

// The services of a layer on no stack: nothing to send with (no buffers),
// time stands still (stack_services' clock before use_clock), commands run
// at once.
class detached_services final : public stack_services {
 public:
  detached_services() : pool_(0) {
    use_config(config_);
    use_pool(pool_);
  }
  void call(command_ref command) override { command(); }
  bool in_stack_context() const noexcept override { return true; }

 private:
  interface_config config_{};
  buffer_pool pool_;
};

class layer;
class tcp_service;  // runtime/tcp.hpp

// What a layer copies into the dynamic_lower inside it whenever its lower
// changes (layer::mirror_lower, runtime/adapters.hpp): its services(), what
// they read the configuration, the pool and the clock from, its lower(), and
// that lower's direct_kind() and ipv4 sink (null without a lower).
struct lower_copy {
  stack_services* services = nullptr;
  // What services' config(), pool() and now() read, set once by the
  // implementation (stack_services::use_config, use_pool, use_clock).
  const interface_config* config = nullptr;
  buffer_pool* pool = nullptr;
  stack_services::clock_reader read_clock = nullptr;
  const void* clock = nullptr;
  layer* lower = nullptr;
  const void* lower_kind = nullptr;
  // The lower's ipv4 sink and its argument (layer::set_ipv4_sink), null
  // when it has none.
  bool (*lower_sink)(void* self, frame&& datagram, ipv4_address next_hop) = nullptr;
  void* lower_sink_self = nullptr;
};

// A mark unique to the class `Adapter` (layer::direct_kind).
template <class Adapter>
const void* adapter_kind() noexcept {
  static constexpr char kind = 0;
  return &kind;
}

// Which class declares the member function `&T::f` with parameters `Args`
// (the overload of the name that lookup in T finds): `declaring_class<Args...>
// ::of(&T::f)` has type `C*` for the class C whose declaration it is. An
// application registered with its static type (layer::register_layer's
// template) tells the stack this way which callbacks it overrides.
template <class... Args>
struct declaring_class {
  template <class C, class R>
  static C* of(R (C::*)(Args...));
};

// Which of an application's callbacks (bits of a mask the application
// defines) its class is known not to override, so that those which only do
// nothing by default need not be called. It is learnt from the class an
// application was registered as (learn_static_type) and holds only for an
// object of that very class: `skips` is given the object's dynamic type
// each time, so an object of a class derived further (or one registered
// from a base class's constructor, before its own class was complete) gets
// every call.
//
// The answer is kept for every set of callbacks (`max_callbacks` bits): the
// learnt type for a set wholly unused, else null, so that a test (TCP makes
// two per segment) is one load and one compare beside the dynamic type.
class unused_callbacks {
 public:
  static constexpr std::size_t max_callbacks = 4;

  bool skips(std::uint8_t callbacks, const std::type_info& dynamic_type) const noexcept {
    return callbacks < sets && &dynamic_type == type_if_unused_[callbacks];
  }
  void learn(std::uint8_t mask, const std::type_info& type) noexcept {
    for (std::size_t set = 0; set < sets; ++set) type_if_unused_[set] = (mask & set) == set ? &type : nullptr;
  }
  // What `other` knows, for an object of the same class (a fork).
  void copy_from(const unused_callbacks& other) noexcept {
    if (other.type_if_unused_[0] != nullptr) *this = other;
  }

 private:
  static constexpr std::size_t sets = std::size_t{1} << max_callbacks;
  std::array<const std::type_info*, sets> type_if_unused_{};  // [0]: the learnt type, if any
};

// What `upper` learns from its static type `Upper` as it is registered
// (layer::register_layer's template), on the stack's thread: the loop may
// be reading what it learnt before.
template <class Upper>
void learn_static_type(stack_services& services, Upper& upper) {
  if constexpr (requires { upper.template learn_static_type<Upper>(); }) {
    in_stack(services, [&] { upper.template learn_static_type<Upper>(); });
  }
}

// The static contexts the built-in layers pass up (layer::receive_on_link,
// receive_on_ipv4, receive_on_udp).
using link_context = headers<eth::view>;
using ipv4_context = headers<eth::view, ipv4::view>;
using udp_context = headers<eth::view, ipv4::view, udp::view>;

// ---------------------------------------------------------------------------
// A run-time dispatch table: key -> layer

// The uppers of a layer, by key (EtherType, IP protocol, port). Kept sorted
// for a binary search; changed only by registration, never per frame.
class upper_table {
 public:
  struct entry {
    std::uint32_t key;
    layer* target;
  };

  // False when `key` is taken.
  bool add(std::uint32_t key, layer& target) {
    auto at = lower_bound(key);
    if (at != entries_.end() && at->key == key) return false;
    entries_.insert(at, entry{key, &target});
    fill_slots();
    find_resolver();
    return true;
  }
  // The layer that was registered under `key`, now removed, or null.
  layer* remove(std::uint32_t key) noexcept {
    auto at = lower_bound(key);
    if (at == entries_.end() || at->key != key) return nullptr;
    layer* removed = at->target;
    entries_.erase(at);
    fill_slots();
    find_resolver();
    return removed;
  }
  // Removes every key `target` is registered under.
  void remove_all(const layer& target) noexcept {
    std::erase_if(entries_, [&](const entry& e) { return e.target == &target; });
    fill_slots();
    find_resolver();
  }
  void clear() noexcept {
    entries_.clear();
    fill_slots();
    resolver_ = nullptr;
  }

  // Asked for every packet that crosses the boundary, so it is one load and
  // a compare: each key has a slot by its low byte, which tells an IP
  // protocol, the EtherTypes of IPv4 and ARP and most sets of bound ports
  // apart. Keys that share a slot are found by a binary search.
  [[gnu::always_inline]] layer* registered(std::uint32_t key) const noexcept {
    const slot& s = slots_[key & slot_mask];
    if (s.key == key) {
      // A slot holds a key only with its layer (fill_slots): said here, the
      // caller's test of the answer folds into the key compare.
      if (s.target == nullptr) __builtin_unreachable();
      return s.target;
    }
    if (!s.shared) return nullptr;
    const auto at = std::lower_bound(entries_.begin(), entries_.end(), key,
                                     [](const entry& e, std::uint32_t k) { return e.key < k; });
    return at != entries_.end() && at->key == key ? at->target : nullptr;
  }
  const std::vector<entry>& entries() const noexcept { return entries_; }
  std::size_t size() const noexcept { return entries_.size(); }

  // ---- forwarding to the registered layers (defined after `layer`) ----
  inline void start_all();
  inline void stop_all();
  inline bool all_idle() const;
  inline std::optional<instant> earliest_deadline() const;
  inline void fire_due(instant now);
  // The registered layer that resolves IPv4 next hops (ARP), or null: found
  // when the table changes, since the link asks for it on every IPv4 send.
  layer* resolver() const noexcept { return resolver_; }

  // Called by `start_all` before the uppers start: the link layer learns
  // that its loop is running (runtime/ethernet.hpp).
  void on_start(void (*hook)(void*), void* context) noexcept {
    start_hook_ = hook;
    start_context_ = context;
  }

 private:
  inline void find_resolver() noexcept;

  std::vector<entry>::iterator lower_bound(std::uint32_t key) {
    return std::lower_bound(entries_.begin(), entries_.end(), key,
                            [](const entry& e, std::uint32_t k) { return e.key < k; });
  }

  struct slot {
    std::uint32_t key = no_key;
    bool shared = false;  // another registered key has this slot: search
    layer* target = nullptr;
  };
  static constexpr std::uint32_t no_key = ~std::uint32_t{0};  // above every EtherType, protocol and port
  static constexpr std::size_t slot_mask = 0xff;

  // After every change to the entries (registration only).
  void fill_slots() noexcept {
    slots_.fill(slot{});
    for (const entry& e : entries_) {
      slot& s = slots_[e.key & slot_mask];
      if (s.target == nullptr && !s.shared) {
        s = slot{e.key, false, e.target};
      } else {
        s = slot{no_key, true, nullptr};
      }
    }
  }

  std::vector<entry> entries_;
  std::array<slot, slot_mask + 1> slots_{};
  layer* resolver_ = nullptr;
  void (*start_hook_)(void*) = nullptr;
  void* start_context_ = nullptr;
};

// ---------------------------------------------------------------------------
// The layer

class layer {
 public:
  layer(const layer&) = delete;
  layer& operator=(const layer&) = delete;
  virtual ~layer() = default;

  std::string_view name() const noexcept { return name_; }
  // The key the lower dispatches to this layer by.
  virtual std::uint32_t key() const noexcept = 0;
  virtual service needs() const noexcept = 0;
  virtual service offers() const noexcept { return service::none; }

  // ---- composition ----

  expected<void, error> register_upper(std::uint32_t key, layer& upper) {
    return in_stack(services(), [&]() -> expected<void, error> { return add_upper(key, upper); });
  }

  expected<void, error> register_lower(layer& lower) {
    if (lower.offers() != needs() || needs() == service::none) {
      return error{errc::incompatible_lower, std::string(name()) + " needs " + to_string(needs()) + ", " +
                                                 std::string(lower.name()) + " offers " + to_string(lower.offers())};
    }
    return in_stack(lower.services(), [&]() -> expected<void, error> {
      set_lower(&lower);
      return {};
    });
  }

  // Registers `upper` under its own key and makes this layer its lower. A
  // key of 0 means "none yet" (an application before bind: 0 is no
  // EtherType, and no port a datagram may be sent to): such a layer only
  // gets its lower, and registers itself once it has a key.
  // The same, knowing the upper's static type: an upper that can learn
  // something from it (`upper.learn_static_type<Upper>()`: a TCP application
  // learns which of its callbacks its class overrides) does so first.
  template <class Upper>
    requires(std::is_base_of_v<layer, Upper> && !std::is_same_v<Upper, layer>)
  expected<void, error> register_layer(Upper& upper) {
    learn_static_type(services(), upper);
    return register_layer(static_cast<layer&>(upper));
  }
  expected<void, error> register_layer(layer& upper) {
    if (upper.needs() != offers() || offers() == service::none) {
      return error{errc::incompatible_lower, std::string(upper.name()) + " needs " + to_string(upper.needs()) +
                                                 ", " + std::string(name()) + " offers " + to_string(offers())};
    }
    return in_stack(services(), [&]() -> expected<void, error> {
      if (upper.key() == 0) {
        upper.set_lower(this);
        return {};
      }
      if (auto added = add_upper(upper.key(), upper); !added) return added;
      upper.set_lower(this);
      return {};
    });
  }

  expected<void, error> unregister_upper(std::uint32_t key) {
    return in_stack(services(), [&]() -> expected<void, error> {
      upper_table* table = uppers();
      if (table == nullptr) return error{errc::takes_no_uppers, std::string(name())};
      if (table->remove(key) == nullptr) {
        return error{errc::no_such_upper, std::string(name()) + " has nothing under " + std::to_string(key)};
      }
      key_released(key);
      return {};
    });
  }

  layer* lower() const noexcept { return lower_; }

  // Makes every layer that sends through this one send through `successor`
  // instead (a layer being replaced: set_custom_session). On the stack's thread.
  void hand_over_dependents(layer& successor) {
    const std::vector<layer*> moving = dependents_;
    for (layer* dependent : moving) dependent->set_lower(&successor);
  }
  // The layer registered under `key`, or null. On the stack's thread.
  layer* upper(std::uint32_t key) noexcept {
    upper_table* table = uppers();
    return table ? table->registered(key) : nullptr;
  }
  // True when an upper may take `key`: nothing is registered under it (a
  // transport layer also asks the host's kernel, see runtime/host_sockets.hpp).
  // On the stack's thread.
  virtual bool upper_key_free(std::uint32_t key) { return uppers() != nullptr && upper(key) == nullptr; }

  // The stack this layer belongs to, through its lower; a detached layer has
  // services of its own that send nothing. Kept when the lowers change rather
  // than asked down the chain: a static layer behind the facade reads the
  // configuration and the clock several times per packet.
  stack_services& services() noexcept { return *services_; }

  // ---- receive path and lifecycle ----

  virtual void receive(const header_set& headers, bytes_view payload) = 0;

  // The same, from a lower adapted from a static layer, with the static
  // context it built (one overload per place in a stack: on a link, on IPv4
  // over a link, on UDP). A layer adapted from a static one overrides the
  // one for its place and hands the context to its static layer as it is,
  // so that a packet crossing between two built-in layers costs one virtual
  // call, without a header_set made and read back. The others get the
  // header_set, as from any lower.
  virtual void receive_on_link(const link_context& context, bytes_view payload) {
    receive(header_set::from(context), payload);
  }
  virtual void receive_on_ipv4(const ipv4_context& context, bytes_view payload) {
    receive(header_set::from(context), payload);
  }
  virtual void receive_on_udp(const udp_context& context, bytes_view payload) {
    receive(header_set::from(context), payload);
  }

  // Which adapter class this layer is, for a table that calls that class's
  // receive directly (dynamic_uppers' `Direct...`); null for the others.
  const void* direct_kind() const noexcept { return direct_kind_; }

  virtual void start() {}
  virtual void stop() {}
  virtual bool idle() const { return true; }
  virtual std::optional<instant> next_deadline() const { return std::nullopt; }
  virtual void on_timer(instant) {}

  // ---- what a layer offers its uppers on the send path ----

  // link: a complete frame; a frame to a MAC address; an IPv4 datagram to a
  // next hop (resolved through the resolver registered on the link).
  virtual bool transmit(bytes_view) { return false; }
  virtual bool send_frame(frame_buffer&, mac_address, std::uint16_t, const outgoing_hook&) { return false; }
  virtual bool send_ipv4(frame, ipv4_address, const outgoing_hook&) { return false; }
  // The same without a hook (what most datagrams have): no hook to erase
  // and test on the way down.
  virtual bool send_ipv4_unhooked(frame datagram, ipv4_address next_hop) {
    return send_ipv4(std::move(datagram), next_hop, outgoing_hook());
  }
  // resolver (ARP, registered on a link).
  virtual bool resolves_ipv4() const noexcept { return false; }
  virtual std::optional<mac_address> lookup(ipv4_address) const { return std::nullopt; }
  virtual bool hold(ipv4_address, frame) { return false; }
  // network: a header for a datagram to `destination`, and the datagram.
  virtual ipv4::repr make_ipv4_header(ipv4_address destination, std::uint8_t protocol) {
    ipv4::repr header{.source = services().config().address, .destination = destination};
    header.protocol = protocol;
    return header;
  }
  virtual bool send_datagram(frame, const ipv4::repr&, const outgoing_hook&) { return false; }
  // udp: a datagram from `source_port`.
  virtual bool send_udp(std::uint16_t, ipv4_address, std::uint16_t, bytes_view, const outgoing_hook&) {
    return false;
  }
  // tcp: connections by id (runtime/tcp.hpp); null for a layer without.
  virtual tcp_service* as_tcp() noexcept { return nullptr; }

 protected:
  explicit layer(std::string name) : name_(std::move(name)) {}

  // Set by an adapter class whose receive functions are final, so that a
  // table that knows the class may call them without the virtual call and
  // have them inlined (runtime/adapters.hpp).
  // (Its uppers' dynamic_lowers keep a copy of it, refreshed here: it is set
  // in the adapter's constructor, before any upper, but need not be.)
  void set_direct_kind(const void* kind) noexcept {
    direct_kind_ = kind;
    for (layer* dependent : dependents_) dependent->refresh_mirror();
  }
  // For a layer whose send_ipv4_unhooked is final and comes to
  // `sink(self, datagram, next_hop)`: the built-in Ethernet layer's
  // flattened backend send, which an upper's dynamic_lower then reaches in
  // one indirect call (runtime/adapters.hpp, send_ipv4).
  using ipv4_sink = bool (*)(void* self, frame&& datagram, ipv4_address next_hop);
  // (Its uppers' dynamic_lowers keep a copy, refreshed here.)
  void set_ipv4_sink(ipv4_sink sink, void* self) noexcept {
    ipv4_sink_ = sink;
    ipv4_sink_self_ = self;
    for (layer* dependent : dependents_) dependent->refresh_mirror();
  }
  // For the layer at the bottom of a stack, which is its stack's services.
  void set_own_services(stack_services& own) noexcept {
    own_services_ = &own;
    refresh_services();
  }

  // The layer's table of uppers, or null for a layer that takes none.
  virtual upper_table* uppers() noexcept { return nullptr; }
  virtual const upper_table* uppers() const noexcept { return const_cast<layer*>(this)->uppers(); }

  // Takes the layer out of its stack: out of its lower's table, and its
  // uppers lose it as their lower. Every destructor of a layer with a table
  // or a lower calls it while the derived object still exists.
  void detach() noexcept {
    auto unlink = [&] {
      if (lower_ != nullptr) {
        if (upper_table* table = lower_->uppers()) {
          for (const auto& e : table->entries()) {
            if (e.target == this) lower_->key_released(e.key);
          }
          table->remove_all(*this);
        }
      }
      set_lower(nullptr);
      if (upper_table* table = uppers()) {
        for (const auto& e : table->entries()) key_released(e.key);
        table->clear();
      }
      for (layer* dependent : dependents_) {
        dependent->lower_ = nullptr;
        dependent->refresh_services();
      }
      dependents_.clear();
    };
    try {
      services().call(unlink);
    } catch (...) {
      // `call` throws only what the command throws, and unlink does not.
    }
  }

  // Registers under `key` without the thread hop (already in the stack).
  expected<void, error> add_upper(std::uint32_t key, layer& upper) {
    upper_table* table = uppers();
    if (table == nullptr) return error{errc::takes_no_uppers, std::string(name())};
    if (&upper == this) return error{errc::incompatible_lower, "a layer cannot be its own upper"};
    if (const layer* holder = table->registered(key)) {
      return error{errc::key_in_use,
                   std::string(name()) + " already has " + std::string(holder->name()) + " under " + std::to_string(key)};
    }
    if (auto taken = key_taken(key); !taken) return taken;
    table->add(key, upper);
    return {};
  }

  // A key is about to be taken by an upper, or was let go: a transport layer
  // on an address it shares with the host claims the port from the kernel
  // then (host/kernel_guard.hpp), so that the kernel does not answer for it.
  // A refusal refuses the registration. On the stack's thread.
  virtual expected<void, error> key_taken(std::uint32_t /*key*/) { return {}; }
  virtual void key_released(std::uint32_t /*key*/) noexcept {}

 private:
  // Changes the lower, keeping each lower's list of the layers that send
  // through it (registered under a key or not), so that a lower going away
  // can tell them all. On the stack's thread.
  void set_lower(layer* lower) {
    if (lower_ == lower) return;
    if (lower_ != nullptr) std::erase(lower_->dependents_, this);
    lower_ = lower;
    if (lower_ != nullptr) lower_->dependents_.push_back(this);
    refresh_services();
  }

  // This layer's services and those of every layer above it, after a lower
  // changed somewhere below. The chains are short (application, transport,
  // network, link) and change only by registration.
  void refresh_services() noexcept {
    services_ = lower_ != nullptr ? lower_->services_ : own_services_;
    refresh_mirror();
    for (layer* dependent : dependents_) dependent->refresh_services();
  }

  // Where services_, lower_ and the lower's direct_kind() are copied to
  // whenever they change (null: nowhere): the adapter's dynamic_lower
  // (runtime/adapters.hpp), which the static layer behind it asks for the
  // services several times per packet and sends through, keeps its own copy
  // so that they are one load from it rather than two or three (through the
  // owner, and its lower for the kind). Set and cleared by that
  // dynamic_lower, which lives inside the layer.
  void mirror_lower(lower_copy* mirror) noexcept {
    lower_mirror_ = mirror;
    refresh_mirror();
  }
  void refresh_mirror() noexcept {
    if (lower_mirror_ != nullptr) {
      *lower_mirror_ = {services_,
                        services_->config_,
                        services_->pool_,
                        services_->read_clock_,
                        services_->clock_,
                        lower_,
                        lower_ != nullptr ? lower_->direct_kind_ : nullptr,
                        lower_ != nullptr ? lower_->ipv4_sink_ : nullptr,
                        lower_ != nullptr ? lower_->ipv4_sink_self_ : nullptr};
    }
  }

  friend class upper_table;
  friend class dynamic_lower;

  std::string name_;
  layer* lower_ = nullptr;
  std::vector<layer*> dependents_;  // the layers whose lower this is
  detached_services detached_;
  stack_services* own_services_ = &detached_;  // what it offers its uppers without a lower
  stack_services* services_ = &detached_;
  lower_copy* lower_mirror_ = nullptr;
  const void* direct_kind_ = nullptr;
  ipv4_sink ipv4_sink_ = nullptr;
  void* ipv4_sink_self_ = nullptr;
};

// ---------------------------------------------------------------------------
// upper_table's forwarding, now that `layer` is complete. Iteration is by
// index so that a layer may (un)register others from inside the call (a
// timer that closes a connection): the table is read afresh each step.

inline void upper_table::start_all() {
  if (start_hook_ != nullptr) start_hook_(start_context_);
  for (std::size_t i = 0; i < entries_.size(); ++i) entries_[i].target->start();
}

inline void upper_table::stop_all() {
  for (std::size_t i = 0; i < entries_.size(); ++i) entries_[i].target->stop();
}

inline bool upper_table::all_idle() const {
  return std::all_of(entries_.begin(), entries_.end(), [](const entry& e) { return e.target->idle(); });
}

inline std::optional<instant> upper_table::earliest_deadline() const {
  std::optional<instant> best;
  for (const entry& e : entries_) {
    if (auto d = e.target->next_deadline(); d && (!best || *d < *best)) best = d;
  }
  return best;
}

inline void upper_table::fire_due(instant now) {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    layer* target = entries_[i].target;
    if (auto d = target->next_deadline(); d && *d <= now) target->on_timer(now);
  }
}

inline void upper_table::find_resolver() noexcept {
  resolver_ = nullptr;
  for (const entry& e : entries_) {
    if (e.target->resolves_ipv4()) {
      resolver_ = e.target;
      return;
    }
  }
}

}  // namespace pystack::runtime

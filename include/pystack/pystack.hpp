// `pystack::PyStack`: the original's facade, type-erased, over the static
// layers.
//
//     pystack::PyStack stack;                       // the default route's interface
//     pystack::UDPApplication app;
//     stack.register_udp_application(app);
//     stack.run(false);                             // thread mode: returns at once
//     app.bind(5353);
//     ...
//     stack.stop();
//
// A PyStack is a runtime stack (runtime/layer.hpp) put together exactly as
// the original's "Stack crafting" does it by hand: an Ethernet layer on the
// device, IP and ARP registered on it, ICMP, UDP and TCP on IP. Each of those
// is the static layer adapted (runtime/layers.hpp, runtime/tcp.hpp), so the
// behaviour is the static stack's; what the facade adds is that the pieces
// can be changed while the program runs (`register_layer`,
// `set_custom_session`). Applications: UDPApplication
// (runtime/udp_application.hpp) and TCPApplication
// (runtime/tcp_application.hpp).
//
// Why erase at every layer boundary and not put one static stack behind a
// single virtual interface (design.md's first idea, or its variant: the
// built-in Ethernet/IP/UDP/TCP fused into one runtime piece, erased only at
// the applications)? `register_layer` and `set_custom_session` replace a
// layer at run time, and the facade's layers are objects a user reaches
// (`ip()`, `udp()`, `tcp()`) and registers on; a fused piece would make them
// views into it and replacing one a special case. What fusion would buy is
// speed, and the boundaries now cost little where the built-in layers meet:
// a lower's table finds the layer registered for a key with one load
// (runtime/layer.hpp), and when it is the built-in adapter class the lower
// was compiled with (IP on Ethernet, UDP on IP, a UDPApplication on UDP; ARP
// for lookups), it calls that layer's static code by name with the static
// context, so that the compiler puts Ethernet's, IPv4's and UDP's receive
// together as in a static stack (runtime/adapters.hpp, "Direct calls"); TCP
// sends through the built-in IPv4 layer the same way. A layer a user
// registers gets the virtual call and a `header_set`, as before; the table
// chooses per packet, so replacing a built-in layer needs nothing more.
// Measured (bench/RESULTS.md, "Dispatch"): a UDP datagram costs the facade
// 1.39x the hand-written code's instructions (3.2x with a virtual call and a
// header_set per layer) and 1.44x its time; a TCP segment with its ACK 1.43x
// and 1.33x, about 259 instructions more than the static stack (2026-12-05). Callbacks that do nothing by default
// and that the application's class does not override (hook_incoming, the
// three hook_outgoing) are not called: registration learns them from the
// application's static type (TCPApplication::learn_static_type), and the
// ACK of an application without hooks goes down as the static stack's does.
// What is left is mostly function boundaries the static stack does not have
// (into a TCP layer whose policy is chosen at run time, from IPv4 down to the
// link's device-erased static stack, the application's virtual
// packet_received) and code GCC leaves out of line in this larger unit.
//
// No singleton: each PyStack owns its device, layers and loop, and several
// live in one process (tests run two over an in-process link).
// `default_stack()` is a convenience that makes one on the default interface
// on first use.
//
// Port checks are correct (the original's always said "free"): a port is
// free when no application of this stack holds it and, when the stack shares
// its IPv4 address with the host (`pystack_options::shares_host_address`,
// the default for a PyStack opened on an interface's own address), no socket
// of the host's kernel holds it either (runtime/host_sockets.hpp: the
// kernel's tables of the network namespace the PyStack was made in).
//
// In that mode the kernel sees the stack's traffic as its own, so the stack
// keeps it out (host/kernel_guard.hpp): every port a TCP or UDP application
// takes is claimed from the kernel, whose RSTs and port unreachables for it
// are then dropped, and the kernel's echo replies give way to the stack's
// ICMP. The original did this with iptables rules that a crash left behind;
// the guard's nftables table is deleted by the kernel however the process
// ends. The other way round, the stack answers only for its own ports: a
// segment to a port of no application of ours is the host's business (its
// kernel may have a connection there), so no RST goes out for it. On an
// address of its own the stack needs none of this.
//
// Errors: construction cannot return an error, so a PyStack that could not
// open its interface says why in `status()`, and every operation that needs
// the stack returns that error. `PyStack::open` returns it directly.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "pystack/device/pcap_live.hpp"
#include "pystack/host.hpp"
#include "pystack/host/kernel_guard.hpp"
#include "pystack/runtime/ethernet.hpp"
#include "pystack/runtime/host_sockets.hpp"
#include "pystack/runtime/layer.hpp"
#include "pystack/runtime/layers.hpp"
#include "pystack/runtime/tcp.hpp"
#include "pystack/runtime/tcp_application.hpp"
#include "pystack/runtime/udp_application.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/device.hpp"
#include "pystack/stack/interface.hpp"
#include "pystack/stack/stack.hpp"

namespace pystack {

struct pystack_options {
  // The address and prefix to use instead of the interface's own (its first
  // IPv4 address). Only for PyStack(iface).
  std::optional<ipv4_interface_address> address{};
  std::optional<ipv4_address> gateway{};
  // Whether the host's kernel uses the same IPv4 address, so that its
  // sockets' ports are not free for the stack. Unset: true for a PyStack on
  // an interface's own address, false for one given a device and an address.
  std::optional<bool> shares_host_address{};
  // Shared-address mode: keep the kernel's answers out of the stack's ports
  // (host/kernel_guard.hpp; needs CAP_NET_ADMIN in the interface's network
  // namespace). False leaves that to the caller, who then owns the firewall.
  bool guard_kernel = true;
  // The index of the interface the device is on, so that the guard's rules
  // touch only what the kernel sends there (not the host's loopback traffic
  // to its own address). PyStack(iface) knows it; for a device, say it.
  std::optional<unsigned> interface_index{};
  bool promiscuous = false;
  stack_options stack{};
};

class PyStack {
 public:
  // A stack on `iface` (empty: the default route's interface), with the
  // interface's MAC, address, prefix and MTU and the default route's gateway,
  // read from the host (host.hpp), over a live capture (device/pcap_live.hpp)
  // that reads only the stack's own traffic. Opening needs CAP_NET_RAW.
  explicit PyStack(std::string_view iface = {}, pystack_options options = {}) {
    auto opened = open_live(iface, options);
    if (!opened) status_ = opened.error();
  }

  // A stack on any device (an in-process link, a replay, a tee) with the
  // given addresses; nothing is read from the host.
  template <device Device, clock_policy Clock = steady_clock>
  PyStack(Device device, const interface_config& config, pystack_options options = {}, Clock clock = {}) {
    eth_ = std::make_unique<runtime::ethernet_layer>(std::move(device), config, std::move(clock), options.stack);
    compose(options.shares_host_address.value_or(false), options.guard_kernel, options.interface_index);
  }

  // As the first constructor, with the error returned instead of kept.
  static expected<std::unique_ptr<PyStack>, runtime::error> open(std::string_view iface = {},
                                                                 pystack_options options = {}) {
    auto stack = std::make_unique<PyStack>(iface, std::move(options));
    if (stack->status_) return *stack->status_;
    return stack;
  }

  PyStack(const PyStack&) = delete;
  PyStack& operator=(const PyStack&) = delete;
  ~PyStack() { stop(); }

  // Why the stack could not be opened, or success.
  expected<void, runtime::error> status() const {
    if (status_) return *status_;
    return {};
  }

  // ---- applications ----

  // Gives the application this stack's TCP layer; it then connects, or
  // binds and accepts. With its class: callbacks the class does not
  // override are not called (TCPApplication::learn_static_type).
  template <std::derived_from<TCPApplication> App>
  expected<void, runtime::error> register_tcp_application(App& app) {
    if (status_) return *status_;
    return tcp_->register_layer(app);
  }

  // Gives the application this stack's UDP layer; it takes a port with
  // bind() or connect() (or its first send). With its class: callbacks the
  // class does not override are not called (UDPApplication::learn_static_type).
  template <std::derived_from<UDPApplication> App>
  expected<void, runtime::error> register_udp_application(App& app) {
    if (status_) return *status_;
    return udp_.register_layer(app);
  }

  // ---- the loop ----

  // Reactor mode (`doreactor`): runs in this thread until stop(); callbacks
  // run here. Thread mode: runs in a thread of its own and returns at once.
  expected<void, runtime::error> run(bool doreactor = true) {
    if (status_) return *status_;
    // On a shared address our ICMP answers ping while the loop runs, so the
    // kernel's echo replies are held back for exactly that long.
    if (auto silenced = silence_kernel_echo(true); !silenced) return silenced;
    auto ran = eth_->run(doreactor);
    if (doreactor || !ran) static_cast<void>(silence_kernel_echo(false));
    return ran;
  }

  // Closes what the layers have open (bounded by stack_options::stop_timeout)
  // and stops the loop; from another thread, waits until it has.
  void stop() {
    if (!eth_) return;
    eth_->stop();
    if (!eth_->running()) static_cast<void>(silence_kernel_echo(false));
  }
  // Asks the loop to stop and returns at once; safe in a signal handler.
  void request_stop() noexcept {
    if (eth_) eth_->request_stop();
  }
  bool running() const noexcept { return eth_ && eth_->running(); }

  // ---- ports ----

  // True when a TCP application could bind `port` now: no listener or
  // connection of this stack has it, nor (shared-address mode) the kernel.
  bool is_tcp_port_free(std::uint16_t port) {
    if (status_) return false;
    return runtime::in_stack(*eth_, [&] { return tcp_->upper_key_free(port); });
  }

  // True when a UDP application could bind `port` now (see the top).
  bool is_udp_port_free(std::uint16_t port) {
    if (status_) return false;
    return runtime::in_stack(*eth_, [&] { return udp_.upper_key_free(port); });
  }

  // ---- the TCP session ----

  // Makes every connection from now on, accepted ones included, follow
  // `Policy` (layers/tcp.hpp's table of policy points; derive it from
  // tcp_default_policy): the original's set_custom_session(TCPSession
  // subclass), e.g. a policy whose syn_ack() sets the sequence number to
  // 5555. The TCP layer is replaced by TCP<Session<Policy>>; registered TCP
  // applications move to it. Refused while connections or listeners exist.
  template <class Policy>
  expected<void, runtime::error> set_custom_session() {
    if (status_) return *status_;
    return runtime::in_stack(*eth_, [&]() -> expected<void, runtime::error> {
      runtime::tcp_service* current = tcp_->as_tcp();
      if (current->tcp_connection_count() != 0 || current->tcp_listener_count() != 0) {
        return runtime::error{runtime::errc::busy, "close the TCP connections and listeners first"};
      }
      auto next = std::make_unique<runtime::basic_tcp_layer<Policy>>();
      next->set_host_sockets(host_sockets_);
      next->set_kernel_guard(kernel_guard_);
      if (auto removed = ip_.unregister_upper(tcp::ip_protocol); !removed) return removed;
      if (auto added = ip_.register_layer(*next); !added) {
        static_cast<void>(ip_.register_layer(*tcp_));
        return added;
      }
      tcp_->hand_over_dependents(*next);
      tcp_ = std::move(next);
      return {};
    });
  }

  // ---- stack crafting ----

  // Adds a layer where it fits: on the layer that offers what it needs
  // (Ethernet for a network layer, IP for a transport, UDP or TCP for an
  // application), under its key. A layer with the key of a built-in one
  // (a custom IP, a custom UDP) replaces it: the built-in one is
  // unregistered first, and the new one takes its place.
  // The same, knowing the layer's class (runtime::layer::register_layer's template).
  template <class Upper>
    requires(std::is_base_of_v<runtime::layer, Upper> && !std::is_same_v<Upper, runtime::layer>)
  expected<void, runtime::error> register_layer(Upper& upper) {
    if (status_) return *status_;
    runtime::learn_static_type(*eth_, upper);
    return register_layer(static_cast<runtime::layer&>(upper));
  }
  expected<void, runtime::error> register_layer(runtime::layer& upper) {
    if (status_) return *status_;
    runtime::layer* lower = nullptr;
    switch (upper.needs()) {
      case runtime::service::link: lower = eth_.get(); break;
      case runtime::service::network: lower = &ip_; break;
      case runtime::service::udp: lower = &udp_; break;
      case runtime::service::tcp: lower = tcp_.get(); break;
      default:
        return runtime::error{runtime::errc::incompatible_lower,
                              std::string(upper.name()) + " needs " + runtime::to_string(upper.needs()) +
                                  ", which this stack has no layer for"};
    }
    return runtime::in_stack(*eth_, [&]() -> expected<void, runtime::error> {
      runtime::layer* previous = upper.key() != 0 ? lower->upper(upper.key()) : nullptr;
      if (previous != nullptr && previous != &upper) {
        if (auto removed = lower->unregister_upper(upper.key()); !removed) return removed;
      }
      auto added = lower->register_layer(upper);
      if (!added && previous != nullptr && previous != &upper) static_cast<void>(lower->register_upper(upper.key(), *previous));
      return added;
    });
  }

  // ---- the layers, for inspection and hand-made changes ----
  runtime::ethernet_layer& ethernet() noexcept { return *eth_; }
  runtime::ip_layer& ip() noexcept { return ip_; }
  runtime::arp_layer& arp() noexcept { return arp_; }
  runtime::icmp_layer& icmp() noexcept { return icmp_; }
  runtime::udp_layer& udp() noexcept { return udp_; }
  // The TCP layer: a runtime::basic_tcp_layer<Policy> (see set_custom_session).
  runtime::layer& tcp() noexcept { return *tcp_; }
  const interface_config& config() const noexcept { return eth_ ? eth_->config() : unopened_config_; }
  // The interface's name (empty for a stack given a device).
  const std::string& interface_name() const noexcept { return interface_name_; }
  bool shares_host_address() const noexcept { return shares_host_address_; }

 private:
  expected<void, runtime::error> open_live(std::string_view iface, const pystack_options& options) {
    auto facts = host::read();
    if (!facts) return runtime::error{runtime::errc::host, facts.error().message()};
    std::string name(iface);
    if (name.empty()) {
      auto default_name = facts->default_interface();
      if (!default_name) return runtime::error{runtime::errc::host, "no default route: name an interface"};
      name = *default_name;
    }
    const interface_info* info = facts->find(name);
    if (info == nullptr) return runtime::error{runtime::errc::host, "no interface named '" + name + "'"};
    interface_config config;
    config.mac = info->mac;
    bool own_address = true;
    if (options.address) {
      config.address = options.address->address;
      config.prefix_length = options.address->prefix_length;
      own_address = std::any_of(info->addresses.begin(), info->addresses.end(),
                                [&](const ipv4_interface_address& a) { return a.address == config.address; });
    } else if (!info->addresses.empty()) {
      config.address = info->addresses.front().address;
      config.prefix_length = info->addresses.front().prefix_length;
    } else {
      return runtime::error{runtime::errc::host, "interface '" + name + "' has no IPv4 address: give one"};
    }
    if (auto mtu = usable_mtu(info->mtu)) config.mtu = *mtu;
    if (options.gateway) {
      config.gateway = options.gateway;
    } else if (auto route = facts->default_route(info->index); route && route->gateway) {
      config.gateway = route->gateway;
    }
    auto device = pcap_live::open(name, {.promiscuous = options.promiscuous,
                                         .filter = pcap_live::filter_for(config.mac, config.address)});
    if (!device) return runtime::error{runtime::errc::device, device.error().message};
    interface_name_ = name;
    eth_ = std::make_unique<runtime::ethernet_layer>(std::move(*device), config, steady_clock{}, options.stack);
    compose(options.shares_host_address.value_or(own_address), options.guard_kernel,
            static_cast<unsigned>(info->index));
    return {};
  }

  expected<void, runtime::error> silence_kernel_echo(bool silence) {
    if (!kernel_guard_) return {};
    if (auto done = kernel_guard_->silence_echo_replies(silence); !done) {
      return runtime::error{runtime::errc::host, "cannot hold back the kernel's echo replies: " + done.error().message};
    }
    return {};
  }

  // The original PyStack's layers, registered as its "Stack crafting" does.
  // In shared-address mode the kernel's socket tables are opened here, in
  // the constructing thread's network namespace: the interface's.
  void compose(bool shares_host_address, bool guard_kernel, std::optional<unsigned> interface_index) {
    shares_host_address_ = shares_host_address;
    if (shares_host_address) {
      auto tables = runtime::host_socket_tables::open();
      if (tables) {
        host_sockets_ = std::make_shared<const runtime::host_socket_tables>(std::move(*tables));
      } else {
        status_ = tables.error();  // port checks could not be right: refuse to run
      }
    }
    // A stack that cannot run must not change the host's firewall either.
    if (shares_host_address && guard_kernel && !status_) {
      auto guard = kernel_guard::open(eth_->config().address, interface_index);
      if (guard) {
        kernel_guard_ = std::make_shared<kernel_guard>(std::move(*guard));
      } else {
        // The kernel would reset our connections: refuse to run.
        status_ = runtime::error{runtime::errc::host, "cannot keep the kernel out of the shared address " +
                                                          eth_->config().address.to_string() + ": " +
                                                          guard.error().message};
      }
    }
    udp_.set_host_sockets(host_sockets_);
    udp_.set_kernel_guard(kernel_guard_);
    auto tcp = std::make_unique<runtime::tcp_layer>();
    tcp->set_host_sockets(host_sockets_);
    tcp->set_kernel_guard(kernel_guard_);
    tcp_ = std::move(tcp);
    // Nothing here can fail: fresh layers, distinct keys, matching services.
    static_cast<void>(eth_->register_layer(ip_));
    static_cast<void>(eth_->register_layer(arp_));
    static_cast<void>(ip_.register_layer(icmp_));
    static_cast<void>(ip_.register_layer(udp_));
    static_cast<void>(ip_.register_layer(*tcp_));
  }

  std::optional<runtime::error> status_;
  std::string interface_name_;
  bool shares_host_address_ = false;
  std::shared_ptr<const runtime::host_socket_tables> host_sockets_;
  // Shared-address mode only; the layers that claim ports hold it too.
  std::shared_ptr<kernel_guard> kernel_guard_;
  interface_config unopened_config_{};
  // Destroyed in reverse: the layers above first, each leaving the stack
  // while the Ethernet layer (whose loop ~PyStack stopped) still exists.
  std::unique_ptr<runtime::ethernet_layer> eth_;
  runtime::ip_layer ip_;
  runtime::arp_layer arp_;
  runtime::icmp_layer icmp_;
  runtime::udp_layer udp_;
  std::unique_ptr<runtime::layer> tcp_;
};

// A PyStack on the default route's interface, made on first use and kept
// until the program ends. Check `default_stack().status()`.
inline PyStack& default_stack() {
  static PyStack stack;
  return stack;
}

}  // namespace pystack

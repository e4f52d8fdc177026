// The static IPv4, ARP, ICMP and UDP layers as runtime layers.
//
// Each adapter holds the static layer itself, instantiated with
// `dynamic_lower` below it and (for a layer that carries others)
// `dynamic_uppers` above it (runtime/adapters.hpp). A packet that reaches
// the adapter through the virtual `receive` is given to the static layer's
// own `receive` with the typed context it expects; what the static layer
// sends goes down through `dynamic_lower`. Policies are the static layers'
// own: `basic_ip_layer<MyIpPolicy>` is IP<MyIpPolicy> at run time.
//
// | runtime layer          | static layer                                 | key (in its lower) | needs   | offers  |
// | ---------------------- | -------------------------------------------- | ------------------ | ------- | ------- |
// | `ip_layer`             | `IP<Policy, dynamic_uppers<ip_protocol_key, udp_layer>>` | EtherType 0x0800 | link | network |
// | `arp_layer`            | `ARP<Policy>`                                | EtherType 0x0806   | link    | (resolves IPv4 for the link) |
// | `icmp_layer`           | `ICMP<Policy>`                               | IP protocol 1      | network | nothing |
// | `udp_layer`            | `UDP<dynamic_uppers<udp_port_key, UDPApplication>>` | IP protocol 17 | network | udp |
// | `tcp_layer` (runtime/tcp.hpp) | `TCP<Session<Policy>, any_port_listener>` | IP protocol 6   | network | tcp     |
//
// The IP, ARP and UDP adapters' receive functions are final and their
// lowers call them by name (runtime/adapters.hpp, "Direct calls"): a
// subclass cannot change what a packet does, only what the policies do.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "pystack/layers/arp.hpp"
#include "pystack/layers/icmp.hpp"
#include "pystack/layers/ipv4.hpp"
#include "pystack/layers/udp.hpp"
#include "pystack/runtime/adapters.hpp"
#include "pystack/runtime/host_sockets.hpp"
#include "pystack/runtime/layer.hpp"
#include "pystack/runtime/shared_address.hpp"
#include "pystack/runtime/udp_application.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/icmp.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/udp.hpp"

namespace pystack::runtime {

// ---------------------------------------------------------------------------
// UDP

class udp_layer : public layer {
 public:
  // Its applications: UDPApplication's receive is called by name.
  using uppers_description = dynamic_uppers<udp_port_key, UDPApplication>;
  using static_layer = UDP<uppers_description>::bound<dynamic_lower>;
  using table_type = uppers_description::bound<static_layer>;

  // Its lower's table calls its receive by name (runtime/adapters.hpp).
  static constexpr bool receive_by_name = true;

  udp_layer() : layer("UDP"), lower_(*this), udp_(lower_) { set_direct_kind(adapter_kind<udp_layer>()); }
  ~udp_layer() override { detach(); }

  std::uint32_t key() const noexcept override { return udp::ip_protocol; }
  service needs() const noexcept override { return service::network; }
  service offers() const noexcept override { return service::udp; }

  // UDP's checksum covers the IPv4 pseudo-header (RFC 768): without the
  // IPv4 header the datagram cannot be checked, so it is counted, not taken.
  void receive(const header_set& headers, bytes_view payload) final {
    if (!headers.with_static_context<ipv4::view>([&](const auto& context) { udp_.receive(context, payload); })) {
      ++missing_headers_;
    }
  }
  void receive_on_ipv4(const ipv4_context& context, bytes_view payload) final { udp_.receive(context, payload); }
  void start() override { udp_.start(); }
  void stop() override { udp_.stop(); }
  bool idle() const override { return udp_.idle(); }
  std::optional<instant> next_deadline() const override { return udp_.next_deadline(); }
  void on_timer(instant now) override { udp_.on_timer(now); }

  bool send_udp(std::uint16_t source_port, ipv4_address destination, std::uint16_t destination_port,
                bytes_view payload, const outgoing_hook& hook) override {
    return udp_.send(source_port, destination, destination_port, payload, hook);
  }

  // True when an application may bind `port`: none is registered on it and,
  // when the stack shares its address with the host, no kernel socket holds
  // it (runtime/host_sockets.hpp; a table that cannot be read counts as
  // "held"). On the stack's thread.
  bool upper_key_free(std::uint32_t port) override {
    if (port == 0 || port > 0xffff || upper(port) != nullptr) return false;
    if (!host_sockets_) return true;
    const auto held = host_sockets_->port_in_use(transport::udp, services().config().address,
                                                 static_cast<std::uint16_t>(port));
    return held && !*held;
  }
  // Shared-address mode: also ask the host's kernel (these tables) before
  // binding a port; null: do not.
  void set_host_sockets(std::shared_ptr<const host_socket_tables> tables) noexcept { host_sockets_ = std::move(tables); }
  bool checks_host_sockets() const noexcept { return host_sockets_ != nullptr; }
  // Shared-address mode: every bound port is claimed from the kernel, which
  // would otherwise answer datagrams to it with port unreachable (RFC 1122
  // §4.1.3.1); null: nothing is claimed.
  void set_kernel_guard(std::shared_ptr<kernel_guard> guard) noexcept { guard_ = std::move(guard); }

  const udp_stats& stats() const noexcept { return udp_.stats(); }
  std::uint64_t missing_headers() const noexcept { return missing_headers_; }
  static_layer& static_implementation() noexcept { return udp_; }

 protected:
  upper_table* uppers() noexcept override { return &udp_.find<table_type>(); }

  expected<void, error> key_taken(std::uint32_t port) override {
    if (auto claimed = claim_port(guard_.get(), kernel_guard::transport::udp, port); !claimed) {
      return claim_failure(claimed.error());
    }
    return {};
  }
  void key_released(std::uint32_t port) noexcept override {
    release_port(guard_.get(), kernel_guard::transport::udp, port);
  }

 private:
  dynamic_lower lower_;
  static_layer udp_;
  std::uint64_t missing_headers_ = 0;
  std::shared_ptr<const host_socket_tables> host_sockets_;
  std::shared_ptr<kernel_guard> guard_;
};

// ---------------------------------------------------------------------------
// IPv4

template <class Policy = ipv4_default_policy>
class basic_ip_layer : public layer {
 public:
  // Its transports: the built-in UDP layer's receive is called by name.
  using uppers_description = dynamic_uppers<ip_protocol_key, udp_layer>;
  using static_layer = typename IP<Policy, uppers_description>::template bound<dynamic_lower>;
  using table_type = typename uppers_description::template bound<static_layer>;

  // Its lower's table calls its receive by name (runtime/adapters.hpp).
  static constexpr bool receive_by_name = true;

  basic_ip_layer() : layer("IP"), lower_(*this), ip_(lower_) { set_direct_kind(adapter_kind<basic_ip_layer>()); }
  ~basic_ip_layer() override { detach(); }

  std::uint32_t key() const noexcept override { return eth::ethertype::ipv4; }
  service needs() const noexcept override { return service::link; }
  service offers() const noexcept override { return service::network; }

  void receive(const header_set& headers, bytes_view payload) final {
    headers.with_static_context<>([&](const auto& context) { ip_.receive(context, payload); });
  }
  // Flattened: the static IPv4 layer, and the built-in UDP layer and its
  // dispatch that it calls by name, are compiled into this one function as
  // a static stack's layers are into its link's receive; the virtual calls
  // to the applications end it.
  [[gnu::flatten]] void receive_on_link(const link_context& context, bytes_view payload) final {
    ip_.receive(context, payload);
  }
  void start() override { ip_.start(); }
  void stop() override { ip_.stop(); }
  bool idle() const override { return ip_.idle(); }
  std::optional<instant> next_deadline() const override { return ip_.next_deadline(); }
  void on_timer(instant now) override { ip_.on_timer(now); }

  ipv4::repr make_ipv4_header(ipv4_address destination, std::uint8_t protocol) override {
    return ip_.make_header(destination, protocol);
  }
  bool send_datagram(frame datagram, const ipv4::repr& header, const outgoing_hook& hook) override {
    return ip_.send(std::move(datagram), header, hook);
  }

  const ipv4_stats& stats() const noexcept { return ip_.stats(); }
  Policy& policy() noexcept { return ip_.current_policy(); }
  static_layer& static_implementation() noexcept { return ip_; }

 protected:
  upper_table* uppers() noexcept override { return &ip_.template find<table_type>(); }

 private:
  dynamic_lower lower_;
  static_layer ip_;
};

class ip_layer : public basic_ip_layer<> {
 public:
  using basic_ip_layer::basic_ip_layer;
};

// ---------------------------------------------------------------------------
// ARP: the link's resolver

template <class Policy = arp_default_policy>
class basic_arp_layer : public layer {
 public:
  using static_layer = typename ARP<Policy>::template bound<dynamic_lower>;

  // The link's table calls its lookup by name, as lookup_in_place
  // (runtime/adapters.hpp).
  static constexpr bool resolves_by_name = true;

  basic_arp_layer() : layer("ARP"), lower_(*this), arp_(lower_) { set_direct_kind(adapter_kind<basic_arp_layer>()); }
  ~basic_arp_layer() override { detach(); }

  std::uint32_t key() const noexcept override { return eth::ethertype::arp; }
  service needs() const noexcept override { return service::link; }

  void receive(const header_set& headers, bytes_view payload) final {
    headers.with_static_context<>([&](const auto& context) { arp_.receive(context, payload); });
  }
  void receive_on_link(const link_context& context, bytes_view payload) final { arp_.receive(context, payload); }
  void start() override { arp_.start(); }
  void stop() override { arp_.stop(); }
  bool idle() const override { return arp_.idle(); }
  std::optional<instant> next_deadline() const override { return arp_.next_deadline(); }
  void on_timer(instant now) override { arp_.on_timer(now); }

  bool resolves_ipv4() const noexcept final { return true; }
  // Inline where the link calls it by name (the send path of every datagram).
  [[gnu::always_inline]] std::optional<mac_address> lookup(ipv4_address address) const final {
    return arp_.lookup(address);
  }
  // The same answer without an optional: the entry's address or null.
  [[gnu::always_inline]] const mac_address* lookup_in_place(ipv4_address address) const noexcept {
    return arp_.lookup_in_place(address);
  }
  bool hold(ipv4_address address, frame held) override {
    arp_.hold(address, std::move(held));
    return true;  // held, or dropped and counted in stats()
  }

  // Sets an entry by hand (static neighbours, tests). On the stack's thread.
  void insert(ipv4_address address, mac_address mac) {
    auto set = [&] { arp_.insert(address, mac); };
    services().call(set);
  }
  const arp_stats& stats() const noexcept { return arp_.stats(); }
  Policy& policy() noexcept { return arp_.current_policy(); }
  static_layer& static_implementation() noexcept { return arp_; }

 private:
  dynamic_lower lower_;
  static_layer arp_;
};

class arp_layer : public basic_arp_layer<> {
 public:
  using basic_arp_layer::basic_arp_layer;
};

// ---------------------------------------------------------------------------
// ICMP

template <class Policy = icmp_default_policy>
class basic_icmp_layer : public layer {
 public:
  using static_layer = typename ICMP<Policy>::template bound<dynamic_lower>;

  basic_icmp_layer() : layer("ICMP"), lower_(*this), icmp_(lower_) {}
  ~basic_icmp_layer() override { detach(); }

  std::uint32_t key() const noexcept override { return icmp::ip_protocol; }
  service needs() const noexcept override { return service::network; }

  // ICMP reads the IPv4 header (to answer its source): without one the
  // packet is counted as malformed rather than guessed at.
  void receive(const header_set& headers, bytes_view payload) override {
    if (!headers.with_static_context<ipv4::view>([&](const auto& context) { icmp_.receive(context, payload); })) {
      ++missing_headers_;
    }
  }
  void receive_on_ipv4(const ipv4_context& context, bytes_view payload) override { icmp_.receive(context, payload); }
  void start() override { icmp_.start(); }
  void stop() override { icmp_.stop(); }
  bool idle() const override { return icmp_.idle(); }
  std::optional<instant> next_deadline() const override { return icmp_.next_deadline(); }
  void on_timer(instant now) override { icmp_.on_timer(now); }

  const icmp_stats& stats() const noexcept { return icmp_.stats(); }
  // Packets that arrived without the IPv4 header ICMP needs.
  std::uint64_t missing_headers() const noexcept { return missing_headers_; }
  static_layer& static_implementation() noexcept { return icmp_; }

 private:
  dynamic_lower lower_;
  static_layer icmp_;
  std::uint64_t missing_headers_ = 0;
};

class icmp_layer : public basic_icmp_layer<> {
 public:
  using basic_icmp_layer::basic_icmp_layer;
};

}  // namespace pystack::runtime

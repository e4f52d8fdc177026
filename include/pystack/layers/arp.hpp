// The ARP layer (RFC 826): answers who-has for our address, resolves next
// hops for IPv4, holds frames while it asks, retries, and expires entries.
//
// What the original got wrong and this does not: entries expire; requests
// are retried, then held frames are dropped and counted instead of waiting
// forever; an unsolicited reply does not overwrite the cache unless the
// policy says so (RFC 826's merge rule only updates entries we already have
// or adds the sender of a packet aimed at us).
//
// Policy points (an `ARP<Policy>` argument):
//
// | expression                      | type          | meaning |
// | ------------------------------- | ------------- | ------- |
// | `p.answer(request, config)`     | `bool`        | reply to this who-has; default: when it asks for our address |
// | `p.accept_unsolicited(packet)`  | `bool`        | add an entry from a packet neither aimed at us nor about an entry we have; default false |
// | `p.entry_lifetime()`            | `duration`    | how long a resolved entry is trusted; default 60 s |
// | `p.retry_interval()`            | `duration`    | time between requests; default 1 s |
// | `p.max_requests()`              | `unsigned`    | requests before giving up; default 3 |
// | `p.max_held_frames()`           | `std::size_t` | frames held per unresolved address; default 3, older ones dropped |
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <vector>

#include "pystack/stack/buffer.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/interface.hpp"
#include "pystack/stack/layer.hpp"
#include "pystack/wire/arp.hpp"
#include "pystack/wire/ethernet.hpp"

namespace pystack {

struct arp_default_policy {
  bool answer(const arp::ethernet_ipv4_view& request, const interface_config& config) const noexcept {
    return !config.address.is_unspecified() && request.target_protocol_address() == config.address;
  }
  bool accept_unsolicited(const arp::ethernet_ipv4_view&) const noexcept { return false; }
  duration entry_lifetime() const noexcept { return std::chrono::seconds(60); }
  duration retry_interval() const noexcept { return std::chrono::seconds(1); }
  unsigned max_requests() const noexcept { return 3; }
  std::size_t max_held_frames() const noexcept { return 3; }
};

template <class P>
concept arp_policy = requires(const P& p, const arp::ethernet_ipv4_view& packet, const interface_config& config) {
  { p.answer(packet, config) } -> std::convertible_to<bool>;
  { p.accept_unsolicited(packet) } -> std::convertible_to<bool>;
  { p.entry_lifetime() } -> std::convertible_to<duration>;
  { p.retry_interval() } -> std::convertible_to<duration>;
  { p.max_requests() } -> std::convertible_to<unsigned>;
  { p.max_held_frames() } -> std::convertible_to<std::size_t>;
};

struct arp_stats {
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;          // not Ethernet/IPv4 ARP, or cut short
  std::uint64_t requests_answered = 0;
  std::uint64_t requests_sent = 0;
  std::uint64_t replies_learned = 0;
  std::uint64_t unsolicited_ignored = 0;
  std::uint64_t held_dropped = 0;       // frames dropped: too many held, or the address never answered
  std::uint64_t resolution_failures = 0;
  std::uint64_t cache_full = 0;
};

template <class... Args>
struct ARP {
  using layer_tag = network_layer_tag;
  static constexpr std::uint16_t ethertype = eth::ethertype::arp;
  using policy = policy_of<arp_default_policy, Args...>;
  static constexpr bool valid = uppers_of<Args...>::size == 0 && arp_policy<policy>;

  template <class Lower>
  class bound;
};

template <class... Args>
template <class Lower>
class ARP<Args...>::bound {
 public:
  static constexpr std::uint16_t ethertype = eth::ethertype::arp;
  static constexpr bool resolves_ipv4 = true;
  static constexpr std::size_t max_header_size = 0;
  static constexpr std::size_t path_header_size = 0;
  static constexpr std::size_t max_entries = 256;

  static_assert(uppers_of<Args...>::size == 0, "ARP<...>: ARP has no upper layers");
  static_assert(arp_policy<policy>, "ARP<...>: its argument must be one ARP policy (see the table in layers/arp.hpp)");

  explicit bound(Lower& lower) : lower_(lower) { entries_.reserve(max_entries); }
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

  const arp_stats& stats() const noexcept { return stats_; }
  policy& current_policy() noexcept { return policy_; }

  // The link address of `address`, when known and fresh. Inline: every
  // unicast datagram sent asks, from inside the inlined send path.
  // (The walk written out here rather than find_entry(): a found entry
  // then needs no null test.)
  //
  // The clock is asked first, before the walk: asked after it, the found
  // entry's address had to be kept across the call (an opaque one, which
  // may change any memory), and in the flattened way down (layers/tcp.hpp's
  // send_ack) every callee-saved register is taken, so it went to the
  // stack and back on every datagram.
  [[gnu::always_inline]] std::optional<mac_address> lookup(ipv4_address address) const noexcept {
    const instant t = now();
    for (const entry& e : entries_) {
      if (e.address != address) continue;
      // An unresolved entry's `expires` is unresolved_expiry (see entry): the
      // freshness test alone refuses it.
      if (e.expires <= t) return std::nullopt;
      return e.mac;
    }
    return std::nullopt;
  }

  // lookup's answer in place: the entry's address, or null where lookup
  // says none (the same walk and test: change both together; stack_test
  // compares them). For the facade's link table (runtime/adapters.hpp), which
  // hands the address on without an optional in between.
  // (Here the clock is asked after the walk, where lookup asks it before:
  // asked first, the facade's way down was one instruction longer.)
  [[gnu::always_inline]] const mac_address* lookup_in_place(ipv4_address address) const noexcept {
    for (const entry& e : entries_) {
      if (e.address != address) continue;
      if (e.expires <= now()) return nullptr;  // as lookup: unresolved_expiry refuses
      return &e.mac;
    }
    return nullptr;
  }

  // Keeps a frame (Ethernet header in place, destination unknown) until
  // `address` answers, asking for it if this is the first. Out of line: it
  // only runs while a neighbour is unresolved, and keeps the inlined send
  // path (Ethernet's send_ipv4) small.
  [[gnu::noinline]] void hold(ipv4_address address, frame held) {
    entry* e = find_entry(address);
    if (e == nullptr) {
      e = add_entry(address);
      if (e == nullptr) {
        ++stats_.held_dropped;
        return;
      }
    }
    if (e->resolved && e->expires > now()) {
      release_one(e->mac, held);
      return;
    }
    if (e->resolved) {  // stale: ask again, keep the frame meanwhile
      e->resolved = false;
      e->expires = unresolved_expiry;
      e->requests_sent = 0;
    }
    if (e->held.size() >= policy_.max_held_frames()) {
      e->held.erase(e->held.begin());  // the oldest goes, as Linux's unresolved queue does
      ++stats_.held_dropped;
    }
    e->held.push_back(std::move(held));
    if (e->requests_sent == 0) send_request(*e);
  }

  // Sets an entry by hand (static neighbours, tests).
  void insert(ipv4_address address, mac_address mac) {
    entry* e = find_entry(address);
    if (e == nullptr) e = add_entry(address);
    if (e != nullptr) resolve(*e, mac);
  }

  std::size_t size() const noexcept { return entries_.size(); }

  // The body is out of line: inlined into the Ethernet layer's dispatch it
  // made the IPv4 path's function larger and slower (spilled registers, the
  // checksum left out of line) for frames that never come here
  // (bench/RESULTS.md, "Dispatch"). ARP needs no header context.
  template <class Context>
  void receive(const Context&, bytes_view bytes) {
    receive_packet(bytes);
  }

  [[gnu::noinline]] void receive_packet(bytes_view bytes) {
    ++stats_.received;
    const auto packet = arp::ethernet_ipv4_view::checked(bytes);
    if (!packet) {
      ++stats_.malformed;
      return;
    }
    const auto& config = lower_.services().config();
    const ipv4_address sender = packet->sender_protocol_address();
    const bool aimed_at_us = !config.address.is_unspecified() && packet->target_protocol_address() == config.address;

    // RFC 826 "Packet Reception": merge the sender into an entry we have;
    // add it when the packet is for us (or the policy allows strangers).
    bool merged = false;
    if (!sender.is_unspecified()) {
      if (entry* e = find_entry(sender)) {
        resolve(*e, packet->sender_hardware_address());
        merged = true;
        if (packet->operation() == arp::operation::reply) ++stats_.replies_learned;
      }
      if (!merged && (aimed_at_us || policy_.accept_unsolicited(*packet))) {
        if (entry* e = add_entry(sender)) resolve(*e, packet->sender_hardware_address());
      } else if (!merged) {
        ++stats_.unsolicited_ignored;
      }
    }
    if (packet->operation() == arp::operation::request && policy_.answer(*packet, config)) send_reply(*packet);
  }

  void start() {}
  void stop() {}
  bool idle() const { return true; }

  std::optional<instant> next_deadline() const {
    std::optional<instant> best;
    for (const entry& e : entries_) {
      const instant due = e.resolved ? e.expires : e.next_request;
      if (!best || due < *best) best = due;
    }
    return best;
  }

  void on_timer(instant at) {
    for (std::size_t i = 0; i < entries_.size();) {
      entry& e = entries_[i];
      if (e.resolved && e.expires <= at) {
        remove(i);
        continue;
      }
      if (!e.resolved && e.next_request <= at) {
        if (e.requests_sent >= policy_.max_requests()) {
          stats_.held_dropped += e.held.size();
          ++stats_.resolution_failures;
          remove(i);
          continue;
        }
        send_request(e);
      }
      ++i;
    }
  }

 private:
  static constexpr instant unresolved_expiry{duration::min()};

  struct entry {
    ipv4_address address;
    mac_address mac;
    bool resolved = false;
    // While unresolved, the earliest instant: then `expires > now()` tells both
    // that the entry is resolved and that it is fresh (lookup, on every
    // unicast datagram sent, tests it alone).
    instant expires = unresolved_expiry;
    instant next_request{};
    unsigned requests_sent = 0;
    std::vector<frame> held;
  };

  instant now() const noexcept { return lower_.services().now(); }

  entry* find_entry(ipv4_address a) noexcept {
    for (entry& e : entries_)
      if (e.address == a) return &e;
    return nullptr;
  }
  const entry* find_entry(ipv4_address a) const noexcept {
    for (const entry& e : entries_)
      if (e.address == a) return &e;
    return nullptr;
  }

  entry* add_entry(ipv4_address a) {
    if (entries_.size() >= max_entries) {
      // Evict a resolved entry before refusing: it can be asked for again.
      auto victim = std::find_if(entries_.begin(), entries_.end(), [](const entry& e) { return e.resolved; });
      if (victim == entries_.end()) {
        ++stats_.cache_full;
        return nullptr;
      }
      remove(static_cast<std::size_t>(victim - entries_.begin()));
    }
    entries_.emplace_back().address = a;
    return &entries_.back();
  }

  void remove(std::size_t i) {
    entries_[i] = std::move(entries_.back());
    entries_.pop_back();
  }

  void resolve(entry& e, mac_address mac) {
    e.mac = mac;
    e.resolved = true;
    e.requests_sent = 0;
    e.expires = now() + policy_.entry_lifetime();
    for (frame& held : e.held) release_one(mac, held);
    e.held.clear();
  }

  void release_one(mac_address mac, frame& held) {
    auto header = eth::mutable_view::checked(held->bytes());
    if (!header) return;
    header->set_destination(mac);
    lower_.transmit(held->bytes());
  }

  void send_request(entry& e) {
    const auto& config = lower_.services().config();
    ++e.requests_sent;
    e.next_request = now() + policy_.retry_interval();
    ++stats_.requests_sent;
    send(arp::repr{.operation = arp::operation::request,
                   .sender_hardware_address = config.mac,
                   .sender_protocol_address = config.address,
                   .target_hardware_address = mac_address{},
                   .target_protocol_address = e.address},
         mac_address::broadcast());
  }

  void send_reply(const arp::ethernet_ipv4_view& request) {
    const auto& config = lower_.services().config();
    ++stats_.requests_answered;
    send(arp::repr{.operation = arp::operation::reply,
                   .sender_hardware_address = config.mac,
                   .sender_protocol_address = request.target_protocol_address(),
                   .target_hardware_address = request.sender_hardware_address(),
                   .target_protocol_address = request.sender_protocol_address()},
         request.sender_hardware_address());
  }

  void send(const arp::repr& packet, mac_address destination) {
    frame f = lower_.services().pool().acquire(Lower::max_header_size);
    if (!f) return;  // the pool counts its exhaustion
    auto body = f->append(arp::repr::size());
    packet.emit(body);
    lower_.send(*f, destination, eth::ethertype::arp);
  }

  Lower& lower_;
  [[no_unique_address]] policy policy_;
  arp_stats stats_;
  std::vector<entry> entries_;
};

}  // namespace pystack

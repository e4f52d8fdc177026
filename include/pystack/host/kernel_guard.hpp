// Keeps the host's kernel out of the flows of a stack that shares its IPv4
// address, and leaves the kernel exactly as it was however the program ends.
//
// A stack on the interface's own address (the original pystack's only mode,
// `PyStack(iface)`'s default) shares it with the kernel, which sees every
// frame too. Where the kernel has no socket it answers for itself: a RST to
// a SYN (or SYN-ACK) for a port the stack listens or connects on (RFC 9293
// §3.10.7.1), an ICMP port unreachable for a datagram to a port the stack
// bound (RFC 1122 §4.1.3.1), an echo reply of its own beside the stack's.
// The original dropped those with iptables rules that a crash left behind
// (its documentation told users to delete them by hand).
//
// The guard puts its rules in an nftables table of its own created with
// `flags owner`: the kernel deletes such a table the moment the netlink
// socket that created it closes, and a process's sockets close when it ends
// in any way, SIGKILL and a crash included (shared/docs/netns-harness.md,
// measured). Nothing else of the host's firewall is read or changed.
//
// The rules act on the kernel's own output only (the `output` hook): a
// stack's frames leave through a packet socket, which netfilter's IP hooks
// never see, so the stack itself is never filtered.
//
// | what the stack claims        | what the kernel no longer sends from the stack's address |
// | ---------------------------- | -------------------------------------------------------- |
// | `claim(transport::tcp, p)`   | any TCP segment from port p (it has no socket there: only RSTs) |
// | `claim(transport::udp, p)`   | ICMP port unreachable quoting a datagram to port p       |
// | `silence_echo_replies(true)` | ICMP echo replies (the stack answers ping itself)       |
//
// Claims are counted: a listener and the connections it accepted share a
// local port, and the port is let go when the last of them is released.
//
//     auto guard = pystack::kernel_guard::open(stack_address);   // in the interface's network namespace
//     guard->claim(pystack::kernel_guard::transport::tcp, 80);
//
// Needs CAP_NET_ADMIN in the network namespace where it is opened (the
// calling thread's); every call is a netlink transaction, made from any
// thread (an internal mutex), never on a packet path.
#pragma once

#include <nftables/libnftables.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unistd.h>

#include "pystack/wire/address.hpp"
#include "pystack/wire/error.hpp"

namespace pystack {

struct guard_error {
  enum class code : std::uint8_t {
    unavailable,  // no nftables context (out of memory, no netlink)
    refused,      // the kernel or nft refused a command (no CAP_NET_ADMIN, no nf_tables)
    not_claimed,  // release() of a port that was not claimed
  };
  code what = code::refused;
  std::string message;
};

class kernel_guard {
 public:
  enum class transport : std::uint8_t { tcp, udp };

  // Creates the guard's table for `address` in the calling thread's network
  // namespace, with no port claimed.
  static expected<kernel_guard, guard_error> open(ipv4_address address) {
    std::unique_ptr<nft_ctx, context_deleter> context(nft_ctx_new(NFT_CTX_DEFAULT));
    if (!context) return guard_error{guard_error::code::unavailable, "nft_ctx_new failed"};
    // Messages go to buffers, so that errors are returned rather than printed.
    if (nft_ctx_buffer_output(context.get()) != 0 || nft_ctx_buffer_error(context.get()) != 0) {
      return guard_error{guard_error::code::unavailable, "cannot buffer nftables output"};
    }
    kernel_guard guard(std::move(context), address, unique_table_name());
    if (auto made = guard.run(guard.table_definition()); !made) return made.error();
    return guard;
  }

  kernel_guard(kernel_guard&& other) noexcept
      : state_(std::move(other.state_)) {}
  kernel_guard& operator=(kernel_guard&& other) noexcept {
    if (this != &other) {
      remove_table();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  kernel_guard(const kernel_guard&) = delete;
  kernel_guard& operator=(const kernel_guard&) = delete;

  // Deletes the table now; if the process dies first, the kernel does.
  ~kernel_guard() { remove_table(); }

  // The kernel stops answering for `port` (see the table at the top).
  expected<void, guard_error> claim(transport protocol, std::uint16_t port) {
    std::lock_guard lock(state_->mutex);
    unsigned& count = claims(protocol)[port];
    if (count == 0) {
      if (auto added = run("add element " + qualified_set(protocol) + " { " + std::to_string(port) + " }"); !added) {
        claims(protocol).erase(port);
        return added;
      }
    }
    ++count;
    return {};
  }

  // Undoes one claim; the kernel answers for the port again after the last.
  expected<void, guard_error> release(transport protocol, std::uint16_t port) {
    std::lock_guard lock(state_->mutex);
    auto& table = claims(protocol);
    const auto found = table.find(port);
    if (found == table.end()) {
      return guard_error{guard_error::code::not_claimed, name(protocol) + " port " + std::to_string(port) + " was not claimed"};
    }
    if (--found->second == 0) {
      table.erase(found);
      return run("delete element " + qualified_set(protocol) + " { " + std::to_string(port) + " }");
    }
    return {};
  }

  // Whether the kernel's own echo replies from the address are dropped.
  expected<void, guard_error> silence_echo_replies(bool silence) {
    std::lock_guard lock(state_->mutex);
    if (silence == state_->echo_silenced) return {};
    auto done = silence ? run("add rule ip " + state_->table + " echo ip saddr " + state_->address.to_string() +
                              " icmp type echo-reply drop")
                        : run("flush chain ip " + state_->table + " echo");
    if (done) state_->echo_silenced = silence;
    return done;
  }

  // How many claims `port` has (0: the kernel answers for it).
  unsigned claims_on(transport protocol, std::uint16_t port) const {
    std::lock_guard lock(state_->mutex);
    const auto& table = protocol == transport::tcp ? state_->tcp : state_->udp;
    const auto found = table.find(port);
    return found == table.end() ? 0 : found->second;
  }

  // The nftables table, e.g. for `nft list table ip NAME`.
  const std::string& table_name() const noexcept { return state_->table; }
  ipv4_address address() const noexcept { return state_->address; }

 private:
  struct context_deleter {
    void operator()(nft_ctx* context) const noexcept { nft_ctx_free(context); }
  };

  // Behind a pointer, so that moving the guard keeps the mutex in place.
  struct state {
    std::unique_ptr<nft_ctx, context_deleter> context;
    ipv4_address address;
    std::string table;
    mutable std::mutex mutex;
    std::map<std::uint16_t, unsigned> tcp, udp;
    bool echo_silenced = false;
  };

  kernel_guard(std::unique_ptr<nft_ctx, context_deleter> context, ipv4_address address, std::string table)
      : state_(std::make_unique<state>()) {
    state_->context = std::move(context);
    state_->address = address;
    state_->table = std::move(table);
  }

  static std::string unique_table_name() {
    static std::atomic<unsigned> next{0};
    return "pystack_" + std::to_string(::getpid()) + "_" + std::to_string(next++);
  }

  static std::string name(transport protocol) { return protocol == transport::tcp ? "TCP" : "UDP"; }
  std::map<std::uint16_t, unsigned>& claims(transport protocol) {
    return protocol == transport::tcp ? state_->tcp : state_->udp;
  }
  std::string qualified_set(transport protocol) const {
    return "ip " + state_->table + (protocol == transport::tcp ? " tcp_ports" : " udp_ports");
  }

  // The ICMP rule reads the datagram an error quotes (RFC 792: the IP header
  // and the first 8 bytes of its payload) at fixed offsets from the ICMP
  // header, so it asks for an option-less quoted header (0x45) first:
  // bits 64-71 version and IHL, 192-223 the quoted destination address (ours),
  // 240-255 the quoted UDP destination port.
  std::string table_definition() const {
    const std::string self = state_->address.to_string();
    char quoted_address[16];
    std::snprintf(quoted_address, sizeof quoted_address, "0x%08x", static_cast<unsigned>(state_->address.value));
    return "table ip " + state_->table +
           " {\n"
           "  flags owner;\n"
           "  set tcp_ports { type inet_service; }\n"
           "  set udp_ports { typeof @th,240,16; }\n"
           "  chain echo { }\n"
           "  chain output {\n"
           "    type filter hook output priority filter; policy accept;\n"
           "    ip saddr " + self + " tcp sport @tcp_ports drop\n"
           "    ip saddr " + self + " icmp type destination-unreachable icmp code port-unreachable @th,64,8 0x45 "
           "@th,192,32 " + quoted_address + " @th,240,16 @udp_ports drop\n"
           "    jump echo\n"
           "  }\n"
           "}\n";
  }

  expected<void, guard_error> run(const std::string& command) {
    nft_ctx* context = state_->context.get();
    if (nft_run_cmd_from_buffer(context, command.c_str()) != 0) {
      std::string message = nft_ctx_get_error_buffer(context);
      while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
      return guard_error{guard_error::code::refused, message.empty() ? "nft refused: " + command : message};
    }
    // Drain what a successful command printed, so the buffer does not grow.
    static_cast<void>(nft_ctx_get_output_buffer(context));
    return {};
  }

  void remove_table() noexcept {
    if (!state_ || !state_->context) return;
    std::lock_guard lock(state_->mutex);
    // Best effort: closing the context below deletes an owner table anyway.
    static_cast<void>(run("delete table ip " + state_->table));
    state_->context.reset();
  }

  std::unique_ptr<state> state_;
};

}  // namespace pystack

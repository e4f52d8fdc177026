// Keeps the host's kernel out of the flows of a stack that shares its IPv4
// address, and leaves the kernel exactly as it was however the program ends.
//
// A stack on the interface's own address (the original pystack's only mode,
// `PyStack(iface)`'s default) shares it with the kernel, which sees every
// frame too. Where the kernel has no socket it answers for itself: a RST to
// a peer's SYN, SYN-ACK or data for a port the stack listens or connects on
// (RFC 9293 §3.10.7.1), an ICMP port unreachable for a datagram to a port
// the stack bound (RFC 1122 §4.1.3.1), an echo reply of its own beside the
// stack's. The original dropped those with iptables rules that a crash left
// behind (its documentation told users to delete them by hand).
//
// Every claim reserves the port in the kernel with a socket of the guard's,
// bound to the address and port: the kernel then never hands the port to one
// of its own sockets (an ephemeral port of a connect(), a later bind()), and
// a port some host service already holds is refused with
// `guard_error::code::in_use` instead of being silently taken over. For UDP
// that is all it takes: a datagram to the port finds that socket (whose
// filter drops everything), so the kernel has no port unreachable to send.
// A TCP socket that never listens does not stop the kernel's RSTs, so a TCP
// claim also adds the port to the rules of an nftables table of the guard's
// own, created with `flags owner`, which drop them; so does
// silence_echo_replies. The kernel deletes such a table the moment the
// netlink socket that created it closes, and a process's sockets close when
// it ends in any way, SIGKILL and a crash included
// (shared/docs/netns-harness.md, measured); the guard marks that socket
// close-on-exec, so that no program it starts keeps the table alive.
// Nothing else of the host's firewall is read or changed.
//
// The rules act on the kernel's own output only (the `output` hook) and, when
// the guard is given the stack's interface, on that interface only (the
// host's loopback traffic to its own address is not the stack's): a stack's
// frames leave through a packet socket, which netfilter's IP hooks never
// see, so the stack itself is never filtered.
//
// | what the stack claims        | what the kernel no longer sends from the stack's address |
// | ---------------------------- | -------------------------------------------------------- |
// | `claim(transport::tcp, p)`   | any TCP segment from port p (it has no socket there: only RSTs) |
// | `claim(transport::udp, p)`   | ICMP port unreachable for a datagram to port p (the reserving socket takes it) |
// | `silence_echo_replies(true)` | ICMP echo replies (the stack answers ping itself)        |
//
// Claims are counted: the port is let go when the last claim is released.
//
//     auto guard = pystack::kernel_guard::open(stack_address, interface_index);   // in the interface's network namespace
//     guard->claim(pystack::kernel_guard::transport::tcp, 80);
//
// Needs CAP_NET_ADMIN in the network namespace where it is opened (the
// calling thread's); every later call works in that namespace, whichever
// thread makes it. Each call is a netlink transaction of a fraction of a
// millisecond, made under an internal mutex: a stack claims and releases
// when applications bind, connect and close, not per segment.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <nftables/libnftables.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "pystack/wire/address.hpp"
#include "pystack/wire/error.hpp"

namespace pystack {

struct guard_error {
  enum class code : std::uint8_t {
    unavailable,  // no nftables context, no namespace handle, or a guard that was moved from
    refused,      // the kernel or nft refused a command (no CAP_NET_ADMIN, no nf_tables)
    in_use,       // a socket of the host's kernel holds the port: it is the host's
    not_claimed,  // release() of a port that was not claimed
  };
  code what = code::refused;
  std::string message;
};

class kernel_guard {
 public:
  enum class transport : std::uint8_t { tcp, udp };

  // Creates the guard's table for `address` in the calling thread's network
  // namespace, with no port claimed. With `interface_index`, the rules hold
  // back only what the kernel sends out of that interface.
  static expected<kernel_guard, guard_error> open(ipv4_address address,
                                                  std::optional<unsigned> interface_index = std::nullopt) {
    const int namespace_fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (namespace_fd < 0) {
      return guard_error{guard_error::code::unavailable, std::string("network namespace: ") + std::strerror(errno)};
    }
    auto made = std::make_unique<state>();
    made->namespace_fd = namespace_fd;
    made->address = address;
    made->interface_index = interface_index;
    made->table = unique_table_name();
    // libnftables opens its netlink socket without close-on-exec: mark the
    // sockets it opens here, so that a child the program starts cannot keep
    // the owner table alive.
    const std::set<int> before = open_descriptors();
    made->context.reset(nft_ctx_new(NFT_CTX_DEFAULT));
    if (!made->context) return guard_error{guard_error::code::unavailable, "nft_ctx_new failed"};
    // Messages go to buffers, so that errors are returned rather than printed.
    if (nft_ctx_buffer_output(made->context.get()) != 0 || nft_ctx_buffer_error(made->context.get()) != 0) {
      return guard_error{guard_error::code::unavailable, "cannot buffer nftables output"};
    }
    kernel_guard guard(std::move(made));
    auto created = guard.run(guard.table_definition());
    mark_close_on_exec(before);
    if (!created) return created.error();
    return guard;
  }

  kernel_guard(kernel_guard&& other) noexcept : state_(std::move(other.state_)) {}
  kernel_guard& operator=(kernel_guard&& other) noexcept {
    if (this != &other) {
      remove_table();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  kernel_guard(const kernel_guard&) = delete;
  kernel_guard& operator=(const kernel_guard&) = delete;

  // Deletes the table and frees the ports now; if the process dies first,
  // the kernel does both.
  ~kernel_guard() { remove_table(); }

  // The kernel stops answering for `port` and will not give it to a socket
  // of its own (see the top). `in_use` when one of its sockets holds it.
  expected<void, guard_error> claim(transport protocol, std::uint16_t port) {
    if (!state_) return moved_from();
    std::lock_guard lock(state_->mutex);
    auto& table = claims(protocol);
    if (const auto found = table.find(port); found != table.end()) {
      ++found->second.count;
      return {};
    }
    auto reservation = reserve(protocol, port);
    if (!reservation) return reservation.error();
    if (protocol == transport::tcp) {
      if (auto added = run("add element " + tcp_set() + " { " + std::to_string(port) + " }"); !added) {
        ::close(*reservation);
        return added;
      }
    }
    table.emplace(port, claim_state{1, *reservation});
    return {};
  }

  // Undoes one claim; after the last the kernel answers for the port again
  // and may use it. The bookkeeping is undone even when nft refuses the
  // delete (the rule then stays, on a port nobody uses, until the guard goes).
  expected<void, guard_error> release(transport protocol, std::uint16_t port) {
    if (!state_) return moved_from();
    std::lock_guard lock(state_->mutex);
    auto& table = claims(protocol);
    const auto found = table.find(port);
    if (found == table.end()) {
      return guard_error{guard_error::code::not_claimed, name(protocol) + " port " + std::to_string(port) + " was not claimed"};
    }
    if (--found->second.count > 0) return {};
    expected<void, guard_error> deleted{};
    if (protocol == transport::tcp) deleted = run("delete element " + tcp_set() + " { " + std::to_string(port) + " }");
    ::close(found->second.reservation);
    table.erase(found);
    return deleted;
  }

  // Whether the kernel's own echo replies from the address are dropped.
  expected<void, guard_error> silence_echo_replies(bool silence) {
    if (!state_) return moved_from();
    std::lock_guard lock(state_->mutex);
    if (silence == state_->echo_silenced) return {};
    auto done = silence ? run("add rule ip " + state_->table + " echo " + outgoing_match() +
                              " icmp type echo-reply drop")
                        : run("flush chain ip " + state_->table + " echo");
    if (done) state_->echo_silenced = silence;
    return done;
  }

  // How many claims `port` has (0: the kernel answers for it).
  unsigned claims_on(transport protocol, std::uint16_t port) const {
    if (!state_) return 0;
    std::lock_guard lock(state_->mutex);
    const auto& table = protocol == transport::tcp ? state_->tcp : state_->udp;
    const auto found = table.find(port);
    return found == table.end() ? 0 : found->second.count;
  }

  // The nftables table, e.g. for `nft list table ip NAME`; empty once moved from.
  std::string table_name() const { return state_ ? state_->table : std::string(); }
  ipv4_address address() const noexcept { return state_ ? state_->address : ipv4_address{}; }

 private:
  struct context_deleter {
    void operator()(nft_ctx* context) const noexcept { nft_ctx_free(context); }
  };
  struct claim_state {
    unsigned count = 0;
    int reservation = -1;  // the socket that keeps the port from the kernel's own use
  };

  // Behind a pointer, so that moving the guard keeps the mutex in place.
  struct state {
    std::unique_ptr<nft_ctx, context_deleter> context;
    int namespace_fd = -1;
    ipv4_address address;
    std::optional<unsigned> interface_index;
    std::string table;
    mutable std::mutex mutex;
    std::map<std::uint16_t, claim_state> tcp, udp;
    bool echo_silenced = false;
  };

  explicit kernel_guard(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}

  static guard_error moved_from() { return guard_error{guard_error::code::unavailable, "the guard was moved from"}; }

  static std::string unique_table_name() {
    static std::atomic<unsigned> next{0};
    return "pystack_" + std::to_string(::getpid()) + "_" + std::to_string(next++);
  }

  static std::string name(transport protocol) { return protocol == transport::tcp ? "TCP" : "UDP"; }
  std::map<std::uint16_t, claim_state>& claims(transport protocol) {
    return protocol == transport::tcp ? state_->tcp : state_->udp;
  }
  std::string tcp_set() const { return "ip " + state_->table + " tcp_ports"; }
  // What every rule starts with: the kernel's output from our address (and
  // out of our interface, when known).
  std::string outgoing_match() const {
    std::string match = state_->interface_index ? "oif " + std::to_string(*state_->interface_index) + " " : "";
    return match + "ip saddr " + state_->address.to_string();
  }

  std::string table_definition() const {
    return "table ip " + state_->table +
           " {\n"
           "  flags owner;\n"
           "  set tcp_ports { type inet_service; }\n"
           "  chain echo { }\n"
           "  chain output {\n"
           "    type filter hook output priority filter; policy accept;\n"
           "    " + outgoing_match() + " tcp sport @tcp_ports drop\n"
           "    jump echo\n"
           "  }\n"
           "}\n";
  }

  // A socket bound to the address and port in the guard's namespace: the
  // kernel will not use the port while it is open. A TCP one never listens,
  // so segments to the port still find no socket (and get the RST that the
  // rules drop); a UDP one takes the port's datagrams and drops them (a
  // filter that accepts nothing), so the kernel sends no port unreachable.
  expected<int, guard_error> reserve(transport protocol, std::uint16_t port) {
    const int type = (protocol == transport::tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC;
    int made_errno = 0;
    const int fd = in_guard_namespace([&] {
      const int s = ::socket(AF_INET, type, 0);
      made_errno = errno;
      return s;
    });
    if (fd < 0) {
      return guard_error{guard_error::code::refused, "cannot reserve " + name(protocol) + " port " + std::to_string(port) +
                                                         ": " + std::strerror(made_errno)};
    }
    if (protocol == transport::udp) {
      sock_filter drop_all{BPF_RET | BPF_K, 0, 0, 0};
      sock_fprog program{1, &drop_all};
      if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0) {
        const int e = errno;
        ::close(fd);
        return guard_error{guard_error::code::refused, std::string("cannot filter a UDP reservation: ") + std::strerror(e)};
      }
    }
    sockaddr_in where{};
    where.sin_family = AF_INET;
    where.sin_port = htons(port);
    where.sin_addr.s_addr = htonl(state_->address.value);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&where), sizeof where) != 0) {
      const int e = errno;
      ::close(fd);
      if (e == EADDRINUSE) {
        return guard_error{guard_error::code::in_use,
                           name(protocol) + " port " + std::to_string(port) + " is held by a socket of the host's kernel"};
      }
      return guard_error{guard_error::code::refused, "cannot reserve " + name(protocol) + " port " + std::to_string(port) +
                                                         ": " + std::strerror(e)};
    }
    return fd;
  }

  // Runs `f` with the calling thread in the guard's network namespace (a
  // socket is made in its maker's), and back in its own afterwards.
  template <class F>
  int in_guard_namespace(F&& f) {
    struct stat here {}, there {};
    if (::stat("/proc/thread-self/ns/net", &here) == 0 && ::fstat(state_->namespace_fd, &there) == 0 &&
        here.st_ino == there.st_ino && here.st_dev == there.st_dev) {
      return f();
    }
    const int back = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (back < 0 || ::setns(state_->namespace_fd, CLONE_NEWNET) != 0) {
      if (back >= 0) ::close(back);
      errno = EPERM;
      return -1;
    }
    const int result = f();
    const int saved = errno;
    ::setns(back, CLONE_NEWNET);
    ::close(back);
    errno = saved;
    return result;
  }

  static std::set<int> open_descriptors() {
    std::set<int> found;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
      // Not the listing's own descriptor: closed below, its number is the
      // next one a socket gets.
      const int listing = ::dirfd(dir);
      while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] == '.') continue;
        if (const int fd = std::atoi(entry->d_name); fd != listing) found.insert(fd);
      }
      ::closedir(dir);
    }
    return found;
  }
  // Marks the netlink sockets opened since `before` close-on-exec.
  static void mark_close_on_exec(const std::set<int>& before) {
    for (const int fd : open_descriptors()) {
      if (before.contains(fd)) continue;
      int domain = 0;
      socklen_t length = sizeof domain;
      if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 && domain == AF_NETLINK) {
        ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
      }
    }
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
    if (!state_) return;
    std::lock_guard lock(state_->mutex);
    if (state_->context) {
      try {
        // Best effort: freeing the context below deletes an owner table anyway.
        static_cast<void>(run("delete table ip " + state_->table));
      } catch (...) {  // only std::bad_alloc, building the command
      }
      state_->context.reset();
    }
    for (auto* table : {&state_->tcp, &state_->udp}) {
      for (const auto& [port, claim] : *table) ::close(claim.reservation);
      table->clear();
    }
    if (state_->namespace_fd >= 0) ::close(state_->namespace_fd);
    state_->namespace_fd = -1;
  }

  std::unique_ptr<state> state_;
};

}  // namespace pystack

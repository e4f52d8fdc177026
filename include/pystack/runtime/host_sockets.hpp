// Which TCP and UDP ports the host's kernel has sockets on, read from
// /proc/net/{tcp,udp,tcp6,udp6} (proc(5)).
//
// Why the facade asks: when a stack shares its IPv4 address with the host
// (PyStack on an interface's own address, the original's only mode), the
// kernel receives every frame too. A port a kernel socket holds is not free
// for the stack: the kernel would answer the same segments (a SYN-ACK beside
// ours, or an RST), and datagrams would go to both. So `is_tcp_port_free` /
// `is_udp_port_free` consult these tables as well as the stack's own
// bindings; a stack with an address of its own (a test link, a namespace)
// does not need to.
//
// What counts as holding a port for our address A:
// - an IPv4 socket bound to A or to 0.0.0.0, in any state (a TIME_WAIT
//   socket still owns its 4-tuple, and the kernel answers for it);
// - an IPv6 socket bound to :: (it takes IPv4 too unless IPV6_V6ONLY is set,
//   which these tables do not show, so it is counted) or to ::ffff:A.
//
// The tables are those of the network namespace the stack was opened in
// (`host_socket_tables` keeps them open from there).
//
// Format (net/ipv4/tcp_ipv4.c, net/ipv4/udp.c): after a header line, one
// line per socket, "sl: local_address rem_address st ...", addresses as hex
// words printed from the kernel's memory (so in host byte order of the
// network-order value), ports as 4 hex digits in host order.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pystack/runtime/layer.hpp"
#include "pystack/wire/address.hpp"
#include "pystack/wire/error.hpp"

namespace pystack::runtime {

enum class transport : std::uint8_t { tcp, udp };

// One line of a /proc/net table, as much as port checks need.
struct kernel_socket {
  // The IPv4 address the socket is bound to: 0.0.0.0 for a wildcard (IPv4
  // or IPv6 `::`), the embedded address for ::ffff:a.b.c.d. Absent for an
  // IPv6 socket on a plain IPv6 address, which takes no IPv4 traffic.
  std::optional<ipv4_address> local_address;
  std::uint16_t local_port = 0;
  std::uint8_t state = 0;  // the kernel's TCP_* state number (07 = CLOSE for unconnected UDP)
};

namespace detail {

inline std::optional<std::uint32_t> parse_hex(std::string_view text) noexcept {
  if (text.empty() || text.size() > 8) return std::nullopt;
  std::uint32_t value = 0;
  for (const char c : text) {
    std::uint32_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<std::uint32_t>(c - 'A' + 10);
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<std::uint32_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    value = value << 4 | digit;
  }
  return value;
}

// The next whitespace-separated field of `line` from `position`.
inline std::string_view next_field(std::string_view line, std::size_t& position) noexcept {
  while (position < line.size() && (line[position] == ' ' || line[position] == '\t')) ++position;
  const std::size_t start = position;
  while (position < line.size() && line[position] != ' ' && line[position] != '\t') ++position;
  return line.substr(start, position - start);
}

// A word printed by the kernel from memory: the hex of a host-order load of
// network-order bytes, so ntohl gives the value in network order.
inline std::uint32_t network_word(std::uint32_t printed) noexcept { return ntohl(printed); }

}  // namespace detail

// Parses the text of one table. `ipv6` for tcp6/udp6. A line that does not
// have the expected shape is an error (the format changed, or this is not
// such a table): guessing would give wrong answers about ports.
inline expected<std::vector<kernel_socket>, error> parse_proc_net(std::string_view text, bool ipv6) {
  std::vector<kernel_socket> sockets;
  const std::size_t address_digits = ipv6 ? 32 : 8;
  std::size_t line_start = 0;
  bool header = true;
  // One line per socket plus the header: bounded by the text's length.
  while (line_start < text.size()) {
    std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text.size();
    const std::string_view line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (header) {
      header = false;
      continue;
    }
    std::size_t position = 0;
    const std::string_view slot = detail::next_field(line, position);
    if (slot.empty()) continue;  // a blank line
    const std::string_view local = detail::next_field(line, position);
    detail::next_field(line, position);  // remote address
    const std::string_view state = detail::next_field(line, position);
    const auto bad = [&](const char* what) {
      return error{errc::host, std::string("/proc/net: ") + what + " in line '" + std::string(line) + "'"};
    };
    if (slot.back() != ':') return bad("no slot number");
    const std::size_t colon = local.find(':');
    if (colon != address_digits || local.size() != address_digits + 5) return bad("malformed local address");
    const auto port = detail::parse_hex(local.substr(colon + 1));
    const auto state_value = detail::parse_hex(state);
    if (!port || !state_value || state.size() != 2) return bad("malformed port or state");

    kernel_socket s;
    s.local_port = static_cast<std::uint16_t>(*port);
    s.state = static_cast<std::uint8_t>(*state_value);
    if (!ipv6) {
      const auto word = detail::parse_hex(local.substr(0, 8));
      if (!word) return bad("malformed address");
      s.local_address = ipv4_address{detail::network_word(*word)};
    } else {
      std::uint32_t words[4];
      for (int i = 0; i < 4; ++i) {
        const auto word = detail::parse_hex(local.substr(static_cast<std::size_t>(i) * 8, 8));
        if (!word) return bad("malformed address");
        words[i] = detail::network_word(*word);
      }
      if (words[0] == 0 && words[1] == 0 && words[2] == 0 && words[3] == 0) {
        s.local_address = ipv4_address::any();  // `::` takes IPv4 too (unless IPV6_V6ONLY)
      } else if (words[0] == 0 && words[1] == 0 && words[2] == 0x0000ffffu) {
        s.local_address = ipv4_address{words[3]};  // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)
      }
    }
    sockets.push_back(s);
  }
  return sockets;
}

// The kernel's four socket tables, opened once: a /proc/net file belongs to
// the network namespace of the thread that opened it, whichever thread
// reads it later. A stack opens them where its interface lives (PyStack's
// constructor), and its loop thread, made elsewhere, still asks the right
// kernel. Reading again from offset 0 gives the table as it is now.
class host_socket_tables {
 public:
  // Opens /proc/thread-self/net/{tcp,tcp6,udp,udp6} (this thread's
  // namespace). A missing tcp6/udp6 (a kernel without IPv6) is not an error.
  static expected<host_socket_tables, error> open(const std::string& directory = "/proc/thread-self/net") {
    host_socket_tables tables;
    const char* names[4] = {"tcp", "tcp6", "udp", "udp6"};
    for (int i = 0; i < 4; ++i) {
      const std::string path = directory + "/" + names[i];
      tables.fds_[i] = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (tables.fds_[i] < 0 && !(errno == ENOENT && (i == 1 || i == 3))) {
        return error{errc::host, path + ": " + std::strerror(errno)};
      }
    }
    return tables;
  }

  host_socket_tables(host_socket_tables&& other) noexcept {
    for (int i = 0; i < 4; ++i) fds_[i] = std::exchange(other.fds_[i], -1);
  }
  host_socket_tables& operator=(host_socket_tables&& other) noexcept {
    if (this != &other) {
      close_all();
      for (int i = 0; i < 4; ++i) fds_[i] = std::exchange(other.fds_[i], -1);
    }
    return *this;
  }
  host_socket_tables(const host_socket_tables&) = delete;
  host_socket_tables& operator=(const host_socket_tables&) = delete;
  ~host_socket_tables() { close_all(); }

  // True when a kernel socket holds `port` for `address` (see the top of
  // this file for what counts). An error when a table cannot be read: the
  // caller must then treat the port as taken rather than guess.
  expected<bool, error> port_in_use(transport protocol, ipv4_address address, std::uint16_t port) const {
    const int base = protocol == transport::tcp ? 0 : 2;
    for (int i = base; i < base + 2; ++i) {
      if (fds_[i] < 0) continue;
      auto text = read_all(fds_[i]);
      if (!text) return text.error();
      auto sockets = parse_proc_net(*text, i % 2 == 1);
      if (!sockets) return sockets.error();
      for (const kernel_socket& s : *sockets) {
        if (s.local_port != port || !s.local_address) continue;
        if (s.local_address->is_unspecified() || *s.local_address == address) return true;
      }
    }
    return false;
  }

 private:
  host_socket_tables() = default;

  void close_all() noexcept {
    for (int& fd : fds_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }

  // The whole table, read from its start.
  static expected<std::string, error> read_all(int fd) {
    std::string text;
    char chunk[16384];
    // A table of a million sockets is about 150 MB; stop well before memory
    // becomes the problem.
    constexpr std::size_t max_size = std::size_t{256} << 20;
    while (text.size() < max_size) {
      const ssize_t n = ::pread(fd, chunk, sizeof chunk, static_cast<off_t>(text.size()));
      if (n < 0) {
        if (errno == EINTR) continue;
        return error{errc::host, std::string("/proc/net: ") + std::strerror(errno)};
      }
      if (n == 0) break;
      text.append(chunk, static_cast<std::size_t>(n));
    }
    return text;
  }

  int fds_[4] = {-1, -1, -1, -1};
};

}  // namespace pystack::runtime

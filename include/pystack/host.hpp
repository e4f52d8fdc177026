// Facts about the host's network: its interfaces (name, index, MAC, IPv4
// addresses, MTU, flags), the main IPv4 routing table with a longest-prefix
// lookup, the default interface, and the first IPv4 nameserver of
// /etc/resolv.conf.
//
// The kernel is asked through rtnetlink (RFC 3549 §2-3, rtnetlink(7)): one
// NETLINK_ROUTE socket, three dumps (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE),
// read once by `host::read()` and again on `refresh()`. Nothing here is on the
// packet path, so it allocates freely; what it never does is trust a length
// it was given. Every netlink message and attribute is walked with the
// semantics of the kernel's NLMSG_OK / RTA_OK macros (a header must fit, its
// length must cover the header and must not run past what is left), fields
// are read with memcpy rather than by casting the kernel's structs over the
// buffer, and anything that breaks those rules is a typed `host_error`.
//
// The walkers and per-message parsers live in `pystack::netlink` and are
// public so that tests can feed them hand-made byte buffers.
#pragma once

#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"

namespace pystack {

// ---------------------------------------------------------------------------
// Errors

enum class host_errc : std::uint8_t {
  system,              // a system call failed; `system_errno` says why
  netlink_error,       // the kernel answered with NLMSG_ERROR or a failed NLMSG_DONE
  truncated,           // fewer bytes left than a header needs
  bad_length,          // a length field below its header's size or past the bytes present
  bad_value,           // a well-framed attribute whose value cannot be right
  unexpected_message,  // wrong sender, sequence number, port or message type
  interrupted,         // the kernel flagged every retried dump as inconsistent
  too_large,           // beyond the bounds this reader accepts (datagram size, count)
  no_source,           // refresh() on a host that was built from given facts
};

// Small and trivially copyable, like `parse_error`: which step (`what`), the
// byte offset within the datagram where it went wrong, what was found and
// what was needed.
struct host_error {
  host_errc code = host_errc::system;
  const char* what = "";    // "RTM_GETLINK dump", "IFLA_MTU", "rtattr header", ...
  std::size_t offset = 0;   // byte offset within the datagram being parsed
  std::uint64_t value = 0;  // what was found
  std::uint64_t limit = 0;  // what was needed or allowed
  int system_errno = 0;     // for `system` and `netlink_error`

  friend bool operator==(const host_error&, const host_error&) = default;

  std::string message() const {
    const std::string w = what;
    const std::string at = " at offset " + std::to_string(offset);
    const std::string v = std::to_string(value);
    const std::string l = std::to_string(limit);
    switch (code) {
      case host_errc::system:
        return "host: " + w + ": " + std::strerror(system_errno);
      case host_errc::netlink_error:
        return "host: " + w + ": kernel answered " + std::strerror(system_errno);
      case host_errc::truncated:
        return "host: " + w + " truncated" + at + ": needs " + l + " bytes, " + v + " present";
      case host_errc::bad_length:
        return "host: " + w + " length " + v + " is impossible" + at + " (limit " + l + ")";
      case host_errc::bad_value:
        return "host: " + w + " value " + v + " is impossible" + at + " (limit " + l + ")";
      case host_errc::unexpected_message:
        return "host: " + w + ": unexpected " + v + at + " (wanted " + l + ")";
      case host_errc::interrupted:
        return "host: " + w + ": dump interrupted by concurrent changes " + v + " times";
      case host_errc::too_large:
        return "host: " + w + " " + v + " exceeds " + l;
      case host_errc::no_source:
        return "host: " + w + ": this host was built from given facts, there is nothing to re-read";
    }
    return "host: " + w + " failed";
  }
};

// ---------------------------------------------------------------------------
// Facts

struct ipv4_interface_address {
  ipv4_address address;
  std::uint8_t prefix_length = 0;

  friend bool operator==(const ipv4_interface_address&, const ipv4_interface_address&) = default;

  // The network part of the address (host bits cleared).
  constexpr ipv4_address network() const noexcept {
    return {address.value & prefix_mask(prefix_length)};
  }
  constexpr bool contains(ipv4_address other) const noexcept {
    return (other.value & prefix_mask(prefix_length)) == network().value;
  }
  static constexpr std::uint32_t prefix_mask(std::uint8_t length) noexcept {
    return length == 0 ? 0u : length >= 32 ? 0xffffffffu : ~(0xffffffffu >> length);
  }
  std::string to_string() const { return address.to_string() + "/" + std::to_string(prefix_length); }
};

struct interface_info {
  std::string name;
  int index = 0;
  // All zero for links whose hardware address is not six octets (tunnels,
  // some virtual links): such links cannot carry Ethernet frames anyway.
  mac_address mac;
  // In the kernel's order: the primary address of each subnet comes before
  // its secondaries, so `addresses.front()` is the one a program would pick.
  std::vector<ipv4_interface_address> addresses;
  std::uint32_t mtu = 0;
  bool up = false;       // IFF_UP: administratively up
  bool running = false;  // IFF_RUNNING: operationally up (RFC 2863 state "up")
  bool loopback = false;

  friend bool operator==(const interface_info&, const interface_info&) = default;
};

enum class route_type : std::uint8_t {
  unicast,      // RTN_UNICAST: forward through `interface_index`
  blackhole,    // RTN_BLACKHOLE: silently discarded
  unreachable,  // RTN_UNREACHABLE: ICMP host unreachable
  prohibit,     // RTN_PROHIBIT: ICMP administratively prohibited
};

struct route {
  ipv4_address destination;
  std::uint8_t prefix_length = 0;
  // Absent for an on-link route: the destination itself is the next hop.
  std::optional<ipv4_address> gateway;
  int interface_index = 0;  // 0 for the non-unicast types
  std::uint32_t metric = 0;  // RTA_PRIORITY; the kernel's default is 0
  std::optional<ipv4_address> preferred_source;  // RTA_PREFSRC ("src" in `ip route`)
  route_type type = route_type::unicast;

  friend bool operator==(const route&, const route&) = default;

  constexpr bool matches(ipv4_address address) const noexcept {
    const std::uint32_t mask = ipv4_interface_address::prefix_mask(prefix_length);
    return (address.value & mask) == (destination.value & mask);
  }
  // Where a datagram to `address` goes next on the link: the gateway, or
  // the address itself when the route is on-link.
  constexpr ipv4_address next_hop(ipv4_address address) const noexcept {
    return gateway ? *gateway : address;
  }
};

// Which files `host::read` consults besides the kernel; tests point them
// elsewhere.
struct host_sources {
  std::string resolv_conf = "/etc/resolv.conf";
};

// ---------------------------------------------------------------------------
// resolv.conf (resolv.conf(5))

// The first `nameserver` line holding an IPv4 address. Comment lines start
// with '#' or ';'; the keyword must start the line; the address ends at the
// first blank, as glibc's resolver reads it. IPv6 nameservers are skipped:
// the stack speaks IPv4 only.
inline std::optional<ipv4_address> parse_resolv_conf(std::string_view text) {
  constexpr std::string_view keyword = "nameserver";
  constexpr std::string_view blanks = " \t\r";
  std::size_t position = 0;
  // Each pass consumes one line, so the loop ends after at most
  // text.size() + 1 passes.
  while (position <= text.size()) {
    std::size_t end = text.find('\n', position);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(position, end - position);
    position = end + 1;
    if (line.size() <= keyword.size() || line.substr(0, keyword.size()) != keyword) continue;
    if (blanks.find(line[keyword.size()]) == std::string_view::npos) continue;  // "nameservers"
    std::string_view rest = line.substr(keyword.size());
    const std::size_t first = rest.find_first_not_of(blanks);
    if (first == std::string_view::npos) continue;
    rest = rest.substr(first);
    rest = rest.substr(0, rest.find_first_of(blanks));
    if (auto address = ipv4_address::parse(rest)) return address;
  }
  return std::nullopt;
}

// Reads `path` (at most 1 MiB) and parses it. A missing file means no
// nameserver, as for the resolver, which then falls back to its defaults; any
// other failure to read is an error.
inline expected<std::optional<ipv4_address>, host_error> read_resolv_conf(const std::string& path) {
  constexpr std::size_t max_size = 1 << 20;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<ipv4_address>{};
    return host_error{.code = host_errc::system, .what = "open resolv.conf", .system_errno = errno};
  }
  std::string text;
  char chunk[4096];
  // Bounded: each pass adds at least one byte or ends the loop, and the text
  // never exceeds max_size. EINTR retries are bounded by the same count.
  for (std::size_t pass = 0; pass < max_size; ++pass) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      return host_error{.code = host_errc::system, .what = "read resolv.conf", .system_errno = saved};
    }
    if (n == 0) break;
    if (text.size() + static_cast<std::size_t>(n) > max_size) {
      ::close(fd);
      return host_error{.code = host_errc::too_large,
                        .what = "resolv.conf size",
                        .value = text.size() + static_cast<std::size_t>(n),
                        .limit = max_size};
    }
    text.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return parse_resolv_conf(text);
}

// ---------------------------------------------------------------------------
// Netlink framing and rtnetlink messages

namespace netlink {

// Netlink lays out messages and attributes on 4-byte boundaries
// (NLMSG_ALIGNTO, RTA_ALIGNTO); lengths in headers exclude the padding.
inline constexpr std::size_t alignment = 4;
inline constexpr std::size_t align(std::size_t length) noexcept {
  return (length + alignment - 1) & ~(alignment - 1);
}

// struct nlmsghdr: len u32, type u16, flags u16, seq u32, pid u32.
inline constexpr std::size_t message_header_size = 16;
// struct rtattr: len u16, type u16.
inline constexpr std::size_t attribute_header_size = 4;
// Fixed headers after the netlink header (sizes from linux/rtnetlink.h).
inline constexpr std::size_t link_header_size = 16;     // struct ifinfomsg
inline constexpr std::size_t address_header_size = 8;   // struct ifaddrmsg
inline constexpr std::size_t route_header_size = 12;    // struct rtmsg
inline constexpr std::size_t nexthop_header_size = 8;   // struct rtnexthop
static_assert(sizeof(nlmsghdr) == message_header_size && sizeof(rtattr) == attribute_header_size);
static_assert(sizeof(ifinfomsg) == link_header_size && sizeof(ifaddrmsg) == address_header_size);
static_assert(sizeof(rtmsg) == route_header_size && sizeof(rtnexthop) == nexthop_header_size);

// Netlink fields are in the host's byte order. memcpy, not a cast: the
// buffer carries no alignment or lifetime guarantee for the kernel's structs.
template <class T>
inline T load(bytes_view bytes, std::size_t offset) noexcept {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}
template <class T>
inline void store(mutable_bytes bytes, std::size_t offset, T value) noexcept {
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

struct message {
  std::uint16_t type = 0;
  std::uint16_t flags = 0;
  std::uint32_t sequence = 0;
  std::uint32_t port = 0;  // nlmsg_pid: the socket the kernel answered
  bytes_view payload;      // the bytes after the header, nlmsg_len - 16 of them
  std::size_t offset = 0;  // where the payload starts in the datagram
};

// Walks the messages of one datagram (NLMSG_OK / NLMSG_NEXT). Unlike the
// macros, a remainder too short for a header is an error rather than the
// silent end of the walk: the kernel pads every message, so leftover bytes
// mean the datagram is not what we think it is.
class message_reader {
 public:
  explicit message_reader(bytes_view datagram) noexcept : bytes_(datagram) {}

  // The next message, nullopt at the end, or an error; after an error every
  // later call returns nullopt. Each call consumes at least 16 bytes.
  expected<std::optional<message>, host_error> next() noexcept {
    if (position_ >= bytes_.size()) return std::optional<message>{};
    const std::size_t left = bytes_.size() - position_;
    if (left < message_header_size) {
      return fail({.code = host_errc::truncated, .what = "nlmsghdr", .offset = position_,
                   .value = left, .limit = message_header_size});
    }
    const std::uint32_t length = load<std::uint32_t>(bytes_, position_);
    if (length < message_header_size || length > left) {
      return fail({.code = host_errc::bad_length, .what = "nlmsg_len", .offset = position_,
                   .value = length, .limit = length < message_header_size ? message_header_size : left});
    }
    message m;
    m.type = load<std::uint16_t>(bytes_, position_ + 4);
    m.flags = load<std::uint16_t>(bytes_, position_ + 6);
    m.sequence = load<std::uint32_t>(bytes_, position_ + 8);
    m.port = load<std::uint32_t>(bytes_, position_ + 12);
    m.offset = position_ + message_header_size;
    m.payload = bytes_.subspan(m.offset, length - message_header_size);
    // The last message's padding may be missing from the datagram.
    position_ += std::min(align(length), left);
    return std::optional<message>{m};
  }

 private:
  expected<std::optional<message>, host_error> fail(host_error e) noexcept {
    position_ = bytes_.size();
    return e;
  }
  bytes_view bytes_;
  std::size_t position_ = 0;
};

struct attribute {
  std::uint16_t type = 0;  // with NLA_F_NESTED and NLA_F_NET_BYTEORDER masked off
  bytes_view payload;
  std::size_t offset = 0;  // where the payload starts in the datagram

  // Fixed-size payloads must have exactly their size: a longer one is as
  // wrong as a shorter one.
  expected<std::uint32_t, host_error> u32(const char* name) const noexcept {
    if (payload.size() != 4) return wrong_size(name, 4);
    return load<std::uint32_t>(payload, 0);
  }
  // Addresses are the one thing in these messages in network order.
  expected<ipv4_address, host_error> ipv4(const char* name) const noexcept {
    if (payload.size() != 4) return wrong_size(name, 4);
    return ipv4_address::from_bytes(payload.data());
  }
  // A NUL-terminated string (the kernel includes the NUL); bytes after the
  // first NUL are padding.
  std::string_view string() const noexcept {
    const auto* first = reinterpret_cast<const char*>(payload.data());
    const std::size_t n = payload.size();
    std::size_t length = 0;
    while (length < n && first[length] != '\0') ++length;
    return {first, length};
  }

 private:
  host_error wrong_size(const char* name, std::size_t wanted) const noexcept {
    return {.code = host_errc::bad_length, .what = name, .offset = offset,
            .value = payload.size(), .limit = wanted};
  }
};

// Walks a run of attributes (RTA_OK / RTA_NEXT), with the same strictness as
// `message_reader`. `base_offset` is where `bytes` starts in the datagram, so
// that errors point into the datagram.
class attribute_reader {
 public:
  attribute_reader(bytes_view bytes, std::size_t base_offset) noexcept
      : bytes_(bytes), base_(base_offset) {}

  // Each call consumes at least 4 bytes.
  expected<std::optional<attribute>, host_error> next() noexcept {
    if (position_ >= bytes_.size()) return std::optional<attribute>{};
    const std::size_t left = bytes_.size() - position_;
    if (left < attribute_header_size) {
      return fail({.code = host_errc::truncated, .what = "rtattr", .offset = base_ + position_,
                   .value = left, .limit = attribute_header_size});
    }
    const std::uint16_t length = load<std::uint16_t>(bytes_, position_);
    if (length < attribute_header_size || length > left) {
      return fail({.code = host_errc::bad_length, .what = "rta_len", .offset = base_ + position_,
                   .value = length,
                   .limit = length < attribute_header_size ? attribute_header_size : left});
    }
    attribute a;
    a.type = load<std::uint16_t>(bytes_, position_ + 2) & NLA_TYPE_MASK;
    a.offset = base_ + position_ + attribute_header_size;
    a.payload = bytes_.subspan(position_ + attribute_header_size, length - attribute_header_size);
    position_ += std::min(align(length), left);
    return std::optional<attribute>{a};
  }

 private:
  expected<std::optional<attribute>, host_error> fail(host_error e) noexcept {
    position_ = bytes_.size();
    return e;
  }
  bytes_view bytes_;
  std::size_t base_;
  std::size_t position_ = 0;
};

// Calls `visit(const attribute&) -> expected<void, host_error>` for each
// attribute of `bytes`, stopping at the first error of either.
template <class Visit>
inline expected<void, host_error> for_each_attribute(bytes_view bytes, std::size_t base_offset,
                                                     Visit&& visit) {
  attribute_reader reader(bytes, base_offset);
  // Bounded: each step consumes at least attribute_header_size bytes.
  for (std::size_t step = 0; step <= bytes.size() / attribute_header_size; ++step) {
    auto next = reader.next();
    if (!next) return next.error();
    if (!*next) return {};
    if (auto visited = visit(**next); !visited) return visited.error();
  }
  return {};
}

inline host_error short_header(const char* name, const message& m, std::size_t wanted) noexcept {
  return {.code = host_errc::truncated, .what = name, .offset = m.offset,
          .value = m.payload.size(), .limit = wanted};
}

// An RTM_NEWLINK message: ifinfomsg (family u8, pad u8, type u16, index i32,
// flags u32, change u32) and IFLA_* attributes. Addresses are filled in by
// the RTM_GETADDR dump, not here.
inline expected<interface_info, host_error> parse_link(const message& m) {
  if (m.payload.size() < link_header_size) return short_header("ifinfomsg", m, link_header_size);
  interface_info info;
  info.index = load<std::int32_t>(m.payload, 4);
  const std::uint32_t flags = load<std::uint32_t>(m.payload, 8);
  info.up = (flags & IFF_UP) != 0;
  info.running = (flags & IFF_RUNNING) != 0;
  info.loopback = (flags & IFF_LOOPBACK) != 0;
  if (info.index <= 0) {
    return host_error{.code = host_errc::bad_value, .what = "ifi_index", .offset = m.offset + 4,
                      .value = static_cast<std::uint32_t>(info.index), .limit = 1};
  }
  bool named = false;
  auto walked = for_each_attribute(
      m.payload.subspan(link_header_size), m.offset + link_header_size,
      [&](const attribute& a) -> expected<void, host_error> {
        switch (a.type) {
          case IFLA_IFNAME: {
            const std::string_view name = a.string();
            if (name.empty() || name.size() >= IFNAMSIZ) {
              return host_error{.code = host_errc::bad_value, .what = "IFLA_IFNAME length",
                                .offset = a.offset, .value = name.size(), .limit = IFNAMSIZ - 1};
            }
            info.name = std::string(name);
            named = true;
            break;
          }
          case IFLA_MTU: {
            auto mtu = a.u32("IFLA_MTU");
            if (!mtu) return mtu.error();
            info.mtu = *mtu;
            break;
          }
          case IFLA_ADDRESS:
            // Six octets for Ethernet-like links; other lengths (IP tunnels
            // carry 4, some links none) are not MAC addresses.
            if (a.payload.size() == 6) info.mac = mac_address::from_bytes(a.payload.data());
            break;
          default:
            break;
        }
        return {};
      });
  if (!walked) return walked.error();
  if (!named) {
    return host_error{.code = host_errc::bad_value, .what = "IFLA_IFNAME missing",
                      .offset = m.offset, .value = 0, .limit = 1};
  }
  return info;
}

// An address belonging to interface `interface_index`.
struct interface_address {
  int interface_index = 0;
  ipv4_interface_address address;
};

// An RTM_NEWADDR message: ifaddrmsg (family u8, prefixlen u8, flags u8,
// scope u8, index u32) and IFA_* attributes. nullopt for other families.
inline expected<std::optional<interface_address>, host_error> parse_address(const message& m) {
  if (m.payload.size() < address_header_size) {
    return short_header("ifaddrmsg", m, address_header_size);
  }
  if (m.payload[0] != AF_INET) return std::optional<interface_address>{};
  interface_address result;
  result.address.prefix_length = m.payload[1];
  if (result.address.prefix_length > 32) {
    return host_error{.code = host_errc::bad_value, .what = "ifa_prefixlen", .offset = m.offset + 1,
                      .value = result.address.prefix_length, .limit = 32};
  }
  result.interface_index = static_cast<int>(load<std::uint32_t>(m.payload, 4));
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the same except
  // on point-to-point links, where it is the peer (rtnetlink(7)).
  std::optional<ipv4_address> local, address;
  auto walked = for_each_attribute(
      m.payload.subspan(address_header_size), m.offset + address_header_size,
      [&](const attribute& a) -> expected<void, host_error> {
        if (a.type == IFA_LOCAL || a.type == IFA_ADDRESS) {
          auto value = a.ipv4(a.type == IFA_LOCAL ? "IFA_LOCAL" : "IFA_ADDRESS");
          if (!value) return value.error();
          (a.type == IFA_LOCAL ? local : address) = *value;
        }
        return {};
      });
  if (!walked) return walked.error();
  if (!local && !address) {
    return host_error{.code = host_errc::bad_value, .what = "IFA_LOCAL missing",
                      .offset = m.offset, .value = 0, .limit = 1};
  }
  result.address.address = local ? *local : *address;
  return std::optional<interface_address>{result};
}

// An RTM_NEWROUTE message: rtmsg (family u8, dst_len u8, src_len u8, tos u8,
// table u8, protocol u8, scope u8, type u8, flags u32) and RTA_* attributes.
//
// nullopt for what `route` does not describe: other families, tables other
// than main (policy routing is out of scope), routes that match on TOS or
// source, route types other than unicast/blackhole/unreachable/prohibit, and
// unicast routes whose next hop is not an IPv4 address on an interface
// (RTA_VIA with an IPv6 gateway, RFC 5549). A multipath route is described
// by its first next hop.
inline expected<std::optional<route>, host_error> parse_route(const message& m) {
  using none = std::optional<route>;
  if (m.payload.size() < route_header_size) return short_header("rtmsg", m, route_header_size);
  const byte family = m.payload[0], destination_length = m.payload[1], source_length = m.payload[2];
  const byte tos = m.payload[3], kind = m.payload[7];
  std::uint32_t table = m.payload[4];
  if (family != AF_INET) return none{};
  if (destination_length > 32) {
    return host_error{.code = host_errc::bad_value, .what = "rtm_dst_len", .offset = m.offset + 1,
                      .value = destination_length, .limit = 32};
  }
  route r;
  r.prefix_length = destination_length;
  switch (kind) {
    case RTN_UNICAST: r.type = route_type::unicast; break;
    case RTN_BLACKHOLE: r.type = route_type::blackhole; break;
    case RTN_UNREACHABLE: r.type = route_type::unreachable; break;
    case RTN_PROHIBIT: r.type = route_type::prohibit; break;
    default: return none{};
  }
  bool via = false;
  std::optional<int> interface_index;
  auto walked = for_each_attribute(
      m.payload.subspan(route_header_size), m.offset + route_header_size,
      [&](const attribute& a) -> expected<void, host_error> {
        switch (a.type) {
          case RTA_DST: {
            auto v = a.ipv4("RTA_DST");
            if (!v) return v.error();
            r.destination = *v;
            break;
          }
          case RTA_GATEWAY: {
            auto v = a.ipv4("RTA_GATEWAY");
            if (!v) return v.error();
            r.gateway = *v;
            break;
          }
          case RTA_PREFSRC: {
            auto v = a.ipv4("RTA_PREFSRC");
            if (!v) return v.error();
            r.preferred_source = *v;
            break;
          }
          case RTA_OIF: {
            auto v = a.u32("RTA_OIF");
            if (!v) return v.error();
            interface_index = static_cast<int>(*v);
            break;
          }
          case RTA_PRIORITY: {
            auto v = a.u32("RTA_PRIORITY");
            if (!v) return v.error();
            r.metric = *v;
            break;
          }
          case RTA_TABLE: {
            // Table ids above 255 only fit here; when present it wins.
            auto v = a.u32("RTA_TABLE");
            if (!v) return v.error();
            table = *v;
            break;
          }
          case RTA_VIA:
            via = true;
            break;
          case RTA_MULTIPATH: {
            // A run of rtnexthop (len u16, flags u8, hops u8, ifindex i32),
            // each followed by its own attributes; keep the first.
            if (a.payload.size() < nexthop_header_size) {
              return host_error{.code = host_errc::truncated, .what = "rtnexthop", .offset = a.offset,
                                .value = a.payload.size(), .limit = nexthop_header_size};
            }
            const std::uint16_t length = load<std::uint16_t>(a.payload, 0);
            if (length < nexthop_header_size || length > a.payload.size()) {
              return host_error{.code = host_errc::bad_length, .what = "rtnh_len", .offset = a.offset,
                                .value = length,
                                .limit = length < nexthop_header_size ? nexthop_header_size
                                                                       : a.payload.size()};
            }
            if (interface_index) break;  // RTA_OIF came first: the route's own wins
            interface_index = load<std::int32_t>(a.payload, 4);
            return for_each_attribute(
                a.payload.subspan(nexthop_header_size, length - nexthop_header_size),
                a.offset + nexthop_header_size, [&](const attribute& inner) -> expected<void, host_error> {
                  if (inner.type == RTA_GATEWAY) {
                    auto v = inner.ipv4("RTA_GATEWAY");
                    if (!v) return v.error();
                    r.gateway = *v;
                  } else if (inner.type == RTA_VIA) {
                    via = true;
                  }
                  return {};
                });
          }
          default:
            break;
        }
        return {};
      });
  if (!walked) return walked.error();
  if (table != RT_TABLE_MAIN || tos != 0 || source_length != 0) return none{};
  if (r.type == route_type::unicast) {
    if (via || !interface_index || *interface_index <= 0) return none{};
    r.interface_index = *interface_index;
  }
  // The kernel keeps destinations masked; a stray host bit would make the
  // lookup disagree with it, so mask here too.
  r.destination.value &= ipv4_interface_address::prefix_mask(r.prefix_length);
  return std::optional<route>{r};
}

// A request header followed by a fixed family header, as a dump request
// needs (rtnetlink(7): RTM_GET* with NLM_F_DUMP).
inline std::vector<byte> dump_request(std::uint16_t type, std::uint32_t sequence, byte family,
                                      std::size_t family_header_size) {
  std::vector<byte> request(message_header_size + align(family_header_size), 0);
  store<std::uint32_t>(request, 0, static_cast<std::uint32_t>(request.size()));
  store<std::uint16_t>(request, 4, type);
  store<std::uint16_t>(request, 6, static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_DUMP));
  store<std::uint32_t>(request, 8, sequence);
  store<std::uint32_t>(request, 12, 0);
  request[message_header_size] = family;  // every family header starts with its family
  return request;
}

// The outcome of one dump datagram: keep reading, done, or done but the
// kernel says the data changed under the dump (NLM_F_DUMP_INTR).
enum class dump_state : std::uint8_t { more, done, done_interrupted };

// Checks one datagram of the answer to the dump `expected_type` sent with
// `sequence` from `port`, and hands each data message to
// `visit(const message&) -> expected<void, host_error>`. `interrupted` is
// set when any message carries NLM_F_DUMP_INTR.
template <class Visit>
inline expected<dump_state, host_error> handle_dump_datagram(bytes_view datagram,
                                                             std::uint16_t expected_type,
                                                             std::uint32_t sequence, std::uint32_t port,
                                                             bool& interrupted, Visit&& visit) {
  message_reader reader(datagram);
  for (std::size_t step = 0; step <= datagram.size() / message_header_size; ++step) {
    auto next = reader.next();
    if (!next) return next.error();
    if (!*next) return dump_state::more;
    const message& m = **next;
    if (m.sequence != sequence) {
      return host_error{.code = host_errc::unexpected_message, .what = "nlmsg_seq",
                        .offset = m.offset - message_header_size, .value = m.sequence, .limit = sequence};
    }
    if (m.port != port) {
      return host_error{.code = host_errc::unexpected_message, .what = "nlmsg_pid",
                        .offset = m.offset - message_header_size, .value = m.port, .limit = port};
    }
    if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
    switch (m.type) {
      case NLMSG_NOOP:
        continue;
      case NLMSG_ERROR:
      case NLMSG_DONE: {
        // NLMSG_ERROR carries a negative errno (0 is an acknowledgement);
        // NLMSG_DONE of a dump carries one too since Linux 2.6.
        if (m.payload.size() < 4) {
          if (m.type == NLMSG_DONE) return interrupted ? dump_state::done_interrupted : dump_state::done;
          return short_header("nlmsgerr", m, 4);
        }
        const std::int32_t error = load<std::int32_t>(m.payload, 0);
        if (error < 0) {
          return host_error{.code = host_errc::netlink_error,
                            .what = m.type == NLMSG_DONE ? "dump" : "request",
                            .offset = m.offset, .system_errno = -error};
        }
        return interrupted ? dump_state::done_interrupted : dump_state::done;
      }
      case NLMSG_OVERRUN:
        return host_error{.code = host_errc::unexpected_message, .what = "NLMSG_OVERRUN",
                          .offset = m.offset - message_header_size, .value = m.type,
                          .limit = expected_type};
      default:
        if (m.type != expected_type) {
          return host_error{.code = host_errc::unexpected_message, .what = "nlmsg_type",
                            .offset = m.offset - message_header_size, .value = m.type,
                            .limit = expected_type};
        }
        if (auto visited = visit(m); !visited) return visited.error();
    }
  }
  return dump_state::more;
}

// A NETLINK_ROUTE socket, closed on destruction.
class route_socket {
 public:
  static expected<route_socket, host_error> open() {
    route_socket s;
    s.fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s.fd_ < 0) return system_error("socket(NETLINK_ROUTE)");
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;  // nl_pid 0: the kernel assigns our port id
    if (::bind(s.fd_, reinterpret_cast<const sockaddr*>(&local), sizeof local) < 0) {
      return system_error("bind(netlink)");
    }
    socklen_t length = sizeof local;
    if (::getsockname(s.fd_, reinterpret_cast<sockaddr*>(&local), &length) < 0) {
      return system_error("getsockname(netlink)");
    }
    s.port_ = local.nl_pid;
    // A kernel that never finishes a dump must not hang the caller.
    timeval timeout{.tv_sec = 5, .tv_usec = 0};
    if (::setsockopt(s.fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0) {
      return system_error("setsockopt(SO_RCVTIMEO)");
    }
    return s;
  }

  route_socket(route_socket&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), port_(other.port_), sequence_(other.sequence_) {}
  route_socket& operator=(route_socket&& other) noexcept {
    if (this != &other) {
      close();
      fd_ = std::exchange(other.fd_, -1);
      port_ = other.port_;
      sequence_ = other.sequence_;
    }
    return *this;
  }
  route_socket(const route_socket&) = delete;
  route_socket& operator=(const route_socket&) = delete;
  ~route_socket() { close(); }

  // Sends a dump request and feeds every answer message to `visit`.
  // Returns whether the kernel flagged the dump as interrupted, so that the
  // caller can read everything again.
  template <class Visit>
  expected<bool, host_error> dump(std::uint16_t request_type, std::uint16_t answer_type, byte family,
                                  std::size_t family_header_size, Visit&& visit) {
    const std::uint32_t sequence = ++sequence_;
    const std::vector<byte> request = dump_request(request_type, sequence, family, family_header_size);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    for (int attempt = 0;; ++attempt) {
      const ssize_t sent = ::sendto(fd_, request.data(), request.size(), 0,
                                    reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
      if (sent == static_cast<ssize_t>(request.size())) break;
      if (sent < 0 && errno == EINTR && attempt < max_eintr) continue;
      if (sent < 0) return system_error("sendto(netlink)");
      return host_error{.code = host_errc::system, .what = "sendto(netlink) short write",
                        .value = static_cast<std::uint64_t>(sent), .limit = request.size()};
    }
    std::vector<byte> buffer;
    bool interrupted = false;
    std::size_t datagrams = 0;
    int retries = 0;
    // Bounded: every pass either handles a datagram (at most max_datagrams)
    // or counts a retry (at most max_eintr).
    while (datagrams < max_datagrams) {
      // Peek at the size first (MSG_TRUNC makes recv report the full
      // length) so that no datagram is ever cut short by our buffer.
      const ssize_t size = ::recv(fd_, nullptr, 0, MSG_PEEK | MSG_TRUNC);
      if (size < 0 && errno == EINTR && ++retries < max_eintr) continue;
      if (size < 0) return system_error("recv(netlink)");
      if (static_cast<std::size_t>(size) > max_datagram_size) {
        return host_error{.code = host_errc::too_large, .what = "netlink datagram",
                          .value = static_cast<std::uint64_t>(size), .limit = max_datagram_size};
      }
      buffer.resize(static_cast<std::size_t>(size));
      sockaddr_nl sender{};
      socklen_t sender_length = sizeof sender;
      const ssize_t received = ::recvfrom(fd_, buffer.data(), buffer.size(), MSG_TRUNC,
                                          reinterpret_cast<sockaddr*>(&sender), &sender_length);
      if (received < 0 && errno == EINTR && ++retries < max_eintr) continue;
      if (received < 0) return system_error("recvfrom(netlink)");
      if (static_cast<std::size_t>(received) != buffer.size()) {
        return host_error{.code = host_errc::bad_length, .what = "netlink datagram changed size",
                          .value = static_cast<std::uint64_t>(received), .limit = buffer.size()};
      }
      // Only the kernel (port 0) answers dumps; a datagram from anyone else
      // is another process writing to our port, not part of the answer.
      if (sender.nl_pid != 0) {
        if (++retries < max_eintr) continue;
        return host_error{.code = host_errc::unexpected_message, .what = "netlink sender",
                          .value = sender.nl_pid, .limit = 0};
      }
      ++datagrams;
      auto state = handle_dump_datagram(buffer, answer_type, sequence, port_, interrupted, visit);
      if (!state) return state.error();
      if (*state != dump_state::more) return *state == dump_state::done_interrupted;
    }
    return host_error{.code = host_errc::too_large, .what = "netlink dump datagrams",
                      .value = max_datagrams, .limit = max_datagrams};
  }

 private:
  route_socket() = default;
  static host_error system_error(const char* what) noexcept {
    return {.code = host_errc::system, .what = what, .system_errno = errno};
  }
  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  static constexpr int max_eintr = 100;
  static constexpr std::size_t max_datagrams = 1 << 20;
  static constexpr std::size_t max_datagram_size = 1 << 20;

  int fd_ = -1;
  std::uint32_t port_ = 0;
  std::uint32_t sequence_ = 0;
};

}  // namespace netlink

// ---------------------------------------------------------------------------
// The host

class host {
 public:
  // Reads every fact from the kernel and `sources`. Retries a few times
  // when the kernel reports that the interfaces or routes changed during a
  // dump, so the three dumps describe one consistent moment as far as the
  // kernel can tell.
  static expected<host, host_error> read(host_sources sources = {}) {
    host h;
    h.sources_ = std::move(sources);
    if (auto refreshed = h.refresh(); !refreshed) return refreshed.error();
    return h;
  }

  // A host made of given facts, for tests and for programs that describe a
  // machine other than this one. `refresh()` on it returns `no_source`.
  static host from_facts(std::vector<interface_info> interfaces, std::vector<route> routes,
                         std::optional<ipv4_address> dns_server = std::nullopt) {
    host h;
    h.interfaces_ = std::move(interfaces);
    h.routes_ = std::move(routes);
    h.dns_server_ = dns_server;
    return h;
  }

  // Reads everything again. On failure the previous facts stay as they were.
  expected<void, host_error> refresh() {
    if (!sources_) return host_error{.code = host_errc::no_source, .what = "refresh"};
    auto dns = read_resolv_conf(sources_->resolv_conf);
    if (!dns) return dns.error();
    for (int attempt = 1;; ++attempt) {
      auto facts = read_kernel();
      if (!facts) return facts.error();
      if (!facts->interrupted) {
        interfaces_ = std::move(facts->interfaces);
        routes_ = std::move(facts->routes);
        dns_server_ = *dns;
        return {};
      }
      if (attempt == max_attempts) {
        return host_error{.code = host_errc::interrupted, .what = "rtnetlink dumps",
                          .value = max_attempts, .limit = max_attempts};
      }
    }
  }

  const interface_info* find(std::string_view name) const noexcept {
    for (const auto& i : interfaces_) {
      if (i.name == name) return &i;
    }
    return nullptr;
  }
  const interface_info* find(int index) const noexcept {
    for (const auto& i : interfaces_) {
      if (i.index == index) return &i;
    }
    return nullptr;
  }

  // The unicast default route (0.0.0.0/0) with the lowest metric, optionally
  // only among those through `interface_index`; the first in table order on
  // a tie, as the kernel's own order decides between equals.
  std::optional<route> default_route(std::optional<int> interface_index = std::nullopt) const {
    const route* best = nullptr;
    for (const auto& r : routes_) {
      if (r.prefix_length != 0 || r.type != route_type::unicast) continue;
      if (interface_index && r.interface_index != *interface_index) continue;
      if (!best || r.metric < best->metric) best = &r;
    }
    if (!best) return std::nullopt;
    return *best;
  }

  // The name of the default route's interface.
  std::optional<std::string> default_interface() const {
    auto r = default_route();
    if (!r) return std::nullopt;
    const interface_info* i = find(r->interface_index);
    if (!i) return std::nullopt;
    return i->name;
  }

  // Longest-prefix match over the main table (RFC 1812 §5.2.4.3), the lowest
  // metric among equally long prefixes, then table order. nullopt when no
  // route matches or when the best match is a blackhole, unreachable or
  // prohibit route: the kernel would not forward such a datagram either.
  std::optional<route> route_to(ipv4_address destination) const {
    const route* best = nullptr;
    for (const auto& r : routes_) {
      if (!r.matches(destination)) continue;
      if (!best || r.prefix_length > best->prefix_length ||
          (r.prefix_length == best->prefix_length && r.metric < best->metric)) {
        best = &r;
      }
    }
    if (!best || best->type != route_type::unicast) return std::nullopt;
    return *best;
  }

  std::optional<ipv4_address> dns_server() const noexcept { return dns_server_; }
  const std::vector<interface_info>& interfaces() const noexcept { return interfaces_; }
  const std::vector<route>& routes() const noexcept { return routes_; }

 private:
  static constexpr int max_attempts = 5;

  struct kernel_facts {
    std::vector<interface_info> interfaces;
    std::vector<route> routes;
    bool interrupted = false;
  };

  static expected<kernel_facts, host_error> read_kernel() {
    auto socket = netlink::route_socket::open();
    if (!socket) return socket.error();
    kernel_facts facts;

    auto links = socket->dump(RTM_GETLINK, RTM_NEWLINK, AF_UNSPEC, netlink::link_header_size,
                              [&](const netlink::message& m) -> expected<void, host_error> {
                                auto info = netlink::parse_link(m);
                                if (!info) return info.error();
                                facts.interfaces.push_back(std::move(*info));
                                return {};
                              });
    if (!links) return links.error();

    auto addresses = socket->dump(
        RTM_GETADDR, RTM_NEWADDR, AF_INET, netlink::address_header_size,
        [&](const netlink::message& m) -> expected<void, host_error> {
          auto address = netlink::parse_address(m);
          if (!address) return address.error();
          if (!*address) return {};
          // An address of an interface created after the link dump belongs
          // to no interface we know; the interrupt flag or the next refresh
          // brings both.
          for (auto& i : facts.interfaces) {
            if (i.index == (*address)->interface_index) {
              i.addresses.push_back((*address)->address);
              break;
            }
          }
          return {};
        });
    if (!addresses) return addresses.error();

    auto routes = socket->dump(RTM_GETROUTE, RTM_NEWROUTE, AF_INET, netlink::route_header_size,
                               [&](const netlink::message& m) -> expected<void, host_error> {
                                 auto r = netlink::parse_route(m);
                                 if (!r) return r.error();
                                 if (*r) facts.routes.push_back(**r);
                                 return {};
                               });
    if (!routes) return routes.error();

    facts.interrupted = *links || *addresses || *routes;
    return facts;
  }

  host() = default;

  std::optional<host_sources> sources_;
  std::vector<interface_info> interfaces_;
  std::vector<route> routes_;
  std::optional<ipv4_address> dns_server_;
};

}  // namespace pystack

// The command line shared by every program that runs a stack, parsed the
// same way everywhere:
//
// | flag                | meaning                              | default                                  |
// | ------------------- | ------------------------------------ | ---------------------------------------- |
// | `--iface NAME`      | interface to run on                  | the interface of the default route       |
// | `--ip A.B.C.D/P`    | the stack's address and prefix       | the interface's first (primary) address  |
// | `--gateway A.B.C.D` | gateway                              | the default route's, or none (on-link only) |
// | `--dns A.B.C.D`     | DNS server                           | resolv.conf's first IPv4 nameserver, or none |
// | `--pcap FILE`       | record every frame in and out        | none                                     |
// | `--impair SPEC`     | e.g. `loss=0.05,delay=2ms,seed=7`    | none (impair.hpp documents the keys)     |
// | `--verbose`         | say more                             | off                                      |
// | `--help`, `-h`      | print usage and exit 0               |                                          |
//
// Both `--flag value` and `--flag=value` work. A separate value may not start
// with "--" (that is the next flag, so the value is missing); use the `=`
// form for such values. `--` ends the flags; everything that is not a flag
// or a flag's value is left, in order, in `options::positional`. `--help`
// anywhere before `--` wins over everything else. A flag given twice takes
// its last value, as getopt does.
//
// Programs add their own flags through a table of `cli::flag` in a
// `cli::program`; their values come back as strings in `options::extra`, and
// a program that finds one of them wrong reports it through `cli::fail`, so
// that every error looks and exits the same.
//
// `parse` never exits and never prints: it returns the options or a
// `cli::error` naming the flag and saying why. Defaults come from a `host`
// (host.hpp), which tests build from given facts. When a default the stack
// cannot run without cannot be resolved (no interface, no address) the error
// names the flag to pass; a missing gateway or nameserver is not an error. `parse_or_exit` is the front door for `main`: it prints the
// usage and exits 0 on --help, prints the error and exits 2 on a bad command
// line, and exits 1 when the host's facts cannot be read at all.
#pragma once

#include <pthread.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pystack/device/impair.hpp"
#include "pystack/host.hpp"
#include "pystack/wire/address.hpp"
#include "pystack/wire/error.hpp"

namespace pystack::cli {

// A flag a program adds to the shared ones.
struct flag {
  std::string_view name;  // without the leading "--": "port"
  bool has_value = false;
  std::string_view help;
  std::string_view value_name = "VALUE";  // in the usage text: "--port VALUE"
};

// What the usage text says about the program, and its own flags.
struct program {
  std::string_view name;        // in messages; argv[0]'s last component when empty
  std::string_view summary;     // one line under the usage line
  std::string_view positional;  // e.g. "HOST PORT", after the flags in the usage line
  std::span<const flag> flags;  // the program's own flags
};

enum class errc : std::uint8_t {
  unknown_flag,        // not a shared flag nor one of the program's
  missing_value,       // a flag that takes a value came without one
  unexpected_value,    // "--verbose=yes": the flag takes no value
  bad_value,           // the value is malformed or impossible
  unresolved_default,  // the flag was not given and the host cannot supply it
  bad_definition,      // the program's flag table is wrong (empty name, duplicate, ...)
};

struct error {
  errc code = errc::bad_value;
  std::string flag;    // "--ip", spelled as the user would type it
  std::string reason;  // "prefix length 33 exceeds 32"

  friend bool operator==(const error&, const error&) = default;

  std::string message() const { return flag + ": " + reason; }
};

struct options {
  interface_info interface;         // --iface, with the host's facts about it
  ipv4_interface_address address;  // --ip
  // --gateway; none when the interface has no default route with a gateway:
  // the stack then reaches only its own subnet, which is normal on a
  // private link, so it is not an error.
  std::optional<ipv4_address> gateway;
  // --dns; none when resolv.conf names no IPv4 nameserver (names then
  // cannot be resolved, which only a program that resolves names minds).
  std::optional<ipv4_address> dns;
  std::optional<std::string> pcap;
  std::optional<impairment> impair;
  bool verbose = false;
  // When true the user asked for --help and nothing else is filled in.
  bool help = false;
  std::vector<std::string> positional;
  // The program's own flags in the order given: (name without "--", value);
  // the value is empty for flags that take none.
  std::vector<std::pair<std::string, std::string>> extra;

  // Every IPv4 address of the host (of its network namespace), on any
  // interface.
  std::vector<ipv4_address> host_addresses;

  // True when --ip is an address of the host: the kernel then sees the
  // stack's traffic as its own and answers for ports it has no socket on,
  // unless a kernel_guard (host/kernel_guard.hpp) holds it back. Any of its
  // addresses counts, not only the interface's: Linux answers for every
  // local address on every interface (RFC 1122 §3.3.4.2's weak host model).
  bool shares_host_address() const noexcept {
    for (const auto& own : host_addresses) {
      if (own == address.address) return true;
    }
    return false;
  }

  bool has(std::string_view name) const noexcept {
    for (const auto& [n, v] : extra) {
      if (n == name) return true;
    }
    return false;
  }
  // The last value given for `name`.
  std::optional<std::string_view> value(std::string_view name) const noexcept {
    std::optional<std::string_view> found;
    for (const auto& [n, v] : extra) {
      if (n == name) found = v;
    }
    return found;
  }
  // Every value given for `name`, for flags a program lets repeat.
  std::vector<std::string_view> values(std::string_view name) const {
    std::vector<std::string_view> found;
    for (const auto& [n, v] : extra) {
      if (n == name) found.push_back(v);
    }
    return found;
  }
};

namespace detail {

struct shared_flag {
  std::string_view name;
  bool has_value;
  std::string_view value_name;
  std::string_view help;
};

inline constexpr shared_flag shared_flags[] = {
    {"iface", true, "NAME", "interface to run on (default: the interface of the default route)"},
    {"ip", true, "A.B.C.D/P", "the stack's address and prefix (default: the interface's own address)"},
    {"gateway", true, "A.B.C.D", "gateway (default: the default route through the interface)"},
    {"dns", true, "A.B.C.D", "DNS server (default: the first nameserver in /etc/resolv.conf)"},
    {"pcap", true, "FILE", "record every frame in and out to FILE"},
    {"impair", true, "SPEC",
     "impair frames, e.g. loss=0.05,reorder=0.05,dup=0.01,corrupt=0.01,delay=2ms,seed=7"},
    {"verbose", false, "", "say more"},
    {"help", false, "", "print this help and exit (also -h)"},
};

inline const shared_flag* find_shared(std::string_view name) noexcept {
  for (const auto& f : shared_flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

inline const flag* find_extra(const program& p, std::string_view name) noexcept {
  for (const auto& f : p.flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

inline std::string dashed(std::string_view name) { return "--" + std::string(name); }

inline error make_error(errc code, std::string_view name, std::string reason) {
  return {code, dashed(name), std::move(reason)};
}

// A program's table is checked before any argument is read, so a mistake in
// it shows on the first run rather than when a user happens to type the flag.
inline expected<void, error> check_definitions(const program& p) {
  for (std::size_t i = 0; i < p.flags.size(); ++i) {
    const std::string_view name = p.flags[i].name;
    if (name.empty() || name.front() == '-' ||
        name.find_first_of("= \t\n") != std::string_view::npos) {
      return error{errc::bad_definition, dashed(name),
                   "a program flag's name must be non-empty, without leading '-', '=' or blanks"};
    }
    if (find_shared(name)) {
      return error{errc::bad_definition, dashed(name), "the program redefines a shared flag"};
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (p.flags[j].name == name) {
        return error{errc::bad_definition, dashed(name), "the program defines this flag twice"};
      }
    }
  }
  return {};
}

// An address a stack can use as its own, send to or route through: not
// 0.0.0.0, not broadcast, not multicast.
inline expected<ipv4_address, error> parse_unicast(std::string_view name, std::string_view text) {
  auto address = ipv4_address::parse(text);
  if (!address) {
    return make_error(errc::bad_value, name, "'" + std::string(text) + "' is not an IPv4 address A.B.C.D");
  }
  if (address->is_unspecified() || address->is_broadcast() || address->is_multicast()) {
    return make_error(errc::bad_value, name,
                      std::string(text) + " is not a unicast address (0.0.0.0, broadcast and multicast are not)");
  }
  return *address;
}

inline expected<ipv4_interface_address, error> parse_ip(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return make_error(errc::bad_value, "ip",
                      "'" + std::string(text) + "' has no prefix length; write A.B.C.D/P, e.g. 10.0.0.5/24");
  }
  auto address = parse_unicast("ip", text.substr(0, slash));
  if (!address) return address.error();
  const std::string_view digits = text.substr(slash + 1);
  // Decimal digits only: no sign, no blanks, no hex; at most "32".
  if (digits.empty() || digits.size() > 2 ||
      digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return make_error(errc::bad_value, "ip", "prefix length '" + std::string(digits) + "' is not a number 0-32");
  }
  unsigned length = 0;
  for (char c : digits) length = length * 10 + static_cast<unsigned>(c - '0');
  if (length > 32) {
    return make_error(errc::bad_value, "ip", "prefix length " + std::to_string(length) + " exceeds 32");
  }
  return ipv4_interface_address{*address, static_cast<std::uint8_t>(length)};
}

// Linux interface names: 1 to 15 bytes (IFNAMSIZ - 1), no '/', ':' or blanks
// (the kernel's dev_valid_name).
inline expected<std::string, error> parse_interface_name(std::string_view text) {
  if (text.size() >= IFNAMSIZ || text == "." || text == ".." ||
      text.find_first_of("/: \t\n") != std::string_view::npos) {
    return make_error(errc::bad_value, "iface", "'" + std::string(text) + "' is not a valid interface name");
  }
  return std::string(text);
}

// What the command line says, before any default is looked up.
struct given {
  std::optional<std::string> interface;
  std::optional<ipv4_interface_address> address;
  std::optional<ipv4_address> gateway;
  std::optional<ipv4_address> dns;
  std::optional<std::string> pcap;
  std::optional<impairment> impair;
  bool verbose = false;
  bool help = false;
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> extra;
};

inline expected<void, error> take_shared(given& g, std::string_view name, std::string_view value) {
  if (name == "iface") {
    auto v = parse_interface_name(value);
    if (!v) return v.error();
    g.interface = *v;
  } else if (name == "ip") {
    auto v = parse_ip(value);
    if (!v) return v.error();
    g.address = *v;
  } else if (name == "gateway" || name == "dns") {
    auto v = parse_unicast(name, value);
    if (!v) return v.error();
    (name == "gateway" ? g.gateway : g.dns) = *v;
  } else if (name == "pcap") {
    g.pcap = std::string(value);
  } else if (name == "impair") {
    auto v = impairment::parse(value);
    if (!v) return make_error(errc::bad_value, name, v.error());
    g.impair = *v;
  } else if (name == "verbose") {
    g.verbose = true;
  }
  return {};
}

// Everything that can be checked without the host: the flags exist, have
// their values, and the values are well formed.
inline expected<given, error> read_arguments(int argc, const char* const* argv, const program& p) {
  if (auto checked = check_definitions(p); !checked) return checked.error();
  given g;
  // --help anywhere before "--" wins, even over a malformed flag elsewhere:
  // someone who asks for help should get it.
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--help" || a == "-h") {
      g.help = true;
      return g;
    }
  }
  bool flags_ended = false;
  // Bounded: i only grows, by one or two per pass.
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (flags_ended || a == "-" || a.empty() || a.front() != '-') {
      g.positional.emplace_back(a);
      continue;
    }
    if (a == "--") {
      flags_ended = true;
      continue;
    }
    if (a.size() < 2 || a[1] != '-') {
      return error{errc::unknown_flag, std::string(a),
                   "unknown flag (flags are spelled --name; see --help)"};
    }
    const std::string_view body = a.substr(2);
    const std::size_t equals = body.find('=');
    const std::string_view name = body.substr(0, equals);
    const shared_flag* shared = find_shared(name);
    const flag* extra = shared ? nullptr : find_extra(p, name);
    if (!shared && !extra) return make_error(errc::unknown_flag, name, "unknown flag (see --help)");
    const bool takes_value = shared ? shared->has_value : extra->has_value;

    std::string_view value;
    if (equals != std::string_view::npos) {
      if (!takes_value) return make_error(errc::unexpected_value, name, "takes no value");
      value = body.substr(equals + 1);
    } else if (takes_value) {
      if (i + 1 >= argc || std::string_view(argv[i + 1]).starts_with("--")) {
        return make_error(errc::missing_value, name,
                          "needs a value " +
                              std::string(shared ? shared->value_name : extra->value_name));
      }
      value = argv[++i];
    }
    if (takes_value && value.empty()) return make_error(errc::bad_value, name, "the value is empty");

    if (shared) {
      if (auto taken = take_shared(g, name, value); !taken) return taken.error();
    } else {
      g.extra.emplace_back(std::string(name), std::string(value));
    }
  }
  return g;
}

// Fills what the command line left out from the host's facts.
inline expected<options, error> resolve(given g, const host& facts) {
  options o;
  for (const auto& each : facts.interfaces()) {
    for (const auto& a : each.addresses) o.host_addresses.push_back(a.address);
  }
  o.help = g.help;
  if (g.help) return o;

  if (g.interface) {
    const interface_info* found = facts.find(*g.interface);
    if (!found) {
      std::string known;
      for (const auto& i : facts.interfaces()) known += (known.empty() ? "" : ", ") + i.name;
      return make_error(errc::bad_value, "iface",
                        "no interface named '" + *g.interface + "' (present: " +
                            (known.empty() ? std::string("none") : known) + ")");
    }
    o.interface = *found;
  } else {
    auto name = facts.default_interface();
    const interface_info* found = name ? facts.find(*name) : nullptr;
    if (!found) {
      return make_error(errc::unresolved_default, "iface",
                        "there is no default route to take the interface from; pass --iface NAME");
    }
    o.interface = *found;
  }

  if (g.address) {
    o.address = *g.address;
  } else if (!o.interface.addresses.empty()) {
    o.address = o.interface.addresses.front();
  } else {
    return make_error(errc::unresolved_default, "ip",
                      "interface " + o.interface.name + " has no IPv4 address; pass --ip A.B.C.D/P");
  }

  if (g.gateway) {
    o.gateway = *g.gateway;
  } else {
    // No default route through the interface, or an on-link one: no gateway.
    if (auto r = facts.default_route(o.interface.index); r && r->gateway) o.gateway = *r->gateway;
  }

  if (g.dns) {
    o.dns = *g.dns;
  } else {
    o.dns = facts.dns_server();
  }

  o.pcap = std::move(g.pcap);
  o.impair = g.impair;
  o.verbose = g.verbose;
  o.positional = std::move(g.positional);
  o.extra = std::move(g.extra);
  return o;
}

inline std::string program_name(const program& p, int argc, const char* const* argv) {
  if (!p.name.empty()) return std::string(p.name);
  if (argc < 1 || !argv[0] || !*argv[0]) return "program";
  const std::string_view path = argv[0];
  const std::size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

inline void append_flag_line(std::string& out, std::string_view name, bool has_value,
                             std::string_view value_name, std::string_view help) {
  std::string left = "  --" + std::string(name);
  if (has_value) left += " " + std::string(value_name);
  out += left;
  // Help texts start in one column; a flag too long for it gets its own line.
  constexpr std::size_t column = 28;
  if (left.size() + 2 <= column) {
    out.append(column - left.size(), ' ');
  } else {
    out += '\n';
    out.append(column, ' ');
  }
  out += help;
  out += '\n';
}

}  // namespace detail

// The usage text: a usage line, the summary, the shared flags, the
// program's own flags.
inline std::string usage(const program& p, std::string_view name) {
  std::string out = "usage: " + std::string(name) + " [options]";
  if (!p.positional.empty()) out += " " + std::string(p.positional);
  out += '\n';
  if (!p.summary.empty()) out += std::string(p.summary) + '\n';
  out += "\noptions:\n";
  for (const auto& f : detail::shared_flags) {
    detail::append_flag_line(out, f.name, f.has_value, f.value_name, f.help);
  }
  if (!p.flags.empty()) {
    out += "\n" + std::string(name) + " options:\n";
    for (const auto& f : p.flags) detail::append_flag_line(out, f.name, f.has_value, f.value_name, f.help);
  }
  return out;
}

// Parses argv against the shared flags and the program's own, filling
// defaults from `facts`. Never prints, never exits.
inline expected<options, error> parse(int argc, const char* const* argv, const host& facts,
                                      const program& p = {}) {
  auto g = detail::read_arguments(argc, argv, p);
  if (!g) return g.error();
  return detail::resolve(std::move(*g), facts);
}

// Reports a bad command line the one way every program does: the program's
// name, the flag and why on stderr, a hint, exit status 2. Programs call it
// for their own flags' values too.
[[noreturn]] inline void fail(const error& e, const program& p, int argc, const char* const* argv) {
  const std::string name = detail::program_name(p, argc, argv);
  std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", name.c_str(), e.message().c_str(), name.c_str());
  std::exit(2);
}

// A program's own port flag (`--port 8080`): 1-65535, else `fallback` when
// the flag was not given.
inline expected<std::uint16_t, error> port_value(const options& o, std::string_view name, std::uint16_t fallback) {
  const auto text = o.value(name);
  if (!text) return fallback;
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), port);
  if (ec != std::errc{} || end != text->data() + text->size() || port == 0 || port > 65535) {
    return detail::make_error(errc::bad_value, name, "'" + std::string(*text) + "' is not a port number 1-65535");
  }
  return static_cast<std::uint16_t>(port);
}

// port_value, reporting a bad value the way fail() does.
inline std::uint16_t port_or_exit(const options& o, std::string_view name, std::uint16_t fallback, const program& p,
                                  int argc, const char* const* argv) {
  auto port = port_value(o, name, fallback);
  if (!port) fail(port.error(), p, argc, argv);
  return *port;
}

// SIGINT and SIGTERM for a program whose stack runs in thread mode: blocked
// from construction on, in this thread and every thread it starts later
// (the stack's loop among them), and taken by wait(). No handler runs, and
// a signal that comes before the loop has started is not lost, as it would
// be to a handler calling stop() before run(). Make it first thing in main,
// before any thread, and keep it for main's lifetime:
//
//     const pystack::cli::termination_signals signals;
//     ... stack.run(false);
//     signals.wait();   // Ctrl-C or kill
//     stack.stop();
class termination_signals {
 public:
  termination_signals() noexcept {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  termination_signals(const termination_signals&) = delete;
  termination_signals& operator=(const termination_signals&) = delete;

  // Waits for SIGINT or SIGTERM and returns which. (sigwait fails only for
  // a set with an invalid signal, which this one is not.)
  int wait() const noexcept {
    int signal = 0;
    sigwait(&set_, &signal);
    return signal;
  }

 private:
  sigset_t set_{};
};

// The front door for main(): usage on stdout and exit 0 for --help; the
// error and exit 2 for a bad command line; exit 1 when the host's facts
// cannot be read. The command line is checked before the host is read, so a
// typo is reported as a typo even where netlink is unavailable.
inline options parse_or_exit(int argc, const char* const* argv, const program& p = {}) {
  auto g = detail::read_arguments(argc, argv, p);
  if (!g) fail(g.error(), p, argc, argv);
  const std::string name = detail::program_name(p, argc, argv);
  if (g->help) {
    const std::string text = usage(p, name);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    std::exit(0);
  }
  auto facts = host::read();
  if (!facts) {
    std::fprintf(stderr, "%s: cannot read the host's network configuration: %s\n", name.c_str(),
                 facts.error().message().c_str());
    std::exit(1);
  }
  auto o = detail::resolve(std::move(*g), *facts);
  if (!o) fail(o.error(), p, argc, argv);
  return std::move(*o);
}

}  // namespace pystack::cli

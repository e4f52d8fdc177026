// A live network interface through libpcap: the device a stack uses on a
// real (or veth) interface.
//
//     auto nic = pystack::pcap_live::open("veth-s", {
//         .filter = pystack::pcap_live::filter_for(my_mac, my_address)});
//
// How it is opened, and why:
// - immediate mode (pcap_set_immediate_mode): each frame is handed over as it
//   arrives; with the default buffering a TCP handshake would wait for the
//   kernel's block timeout.
// - a BPF filter: the kernel hands the stack only its own traffic, not every
//   frame on the segment (the original pystack's filter did the same).
// - direction "in" (pcap_setdirection(PCAP_D_IN)): a packet socket also sees
//   the frames sent through it; without this the stack would read its own
//   transmissions back as if a peer had sent them.
// - non-blocking, with pcap_get_selectable_fd() as wait_fd(): the stack's
//   loop polls it and then calls receive(), which never blocks.
//
// Opening an interface needs CAP_NET_RAW (root); failures are typed
// (`device_error::code`), e.g. no_such_device for a name that does not exist
// in the caller's network namespace.
#pragma once

#include <pcap/pcap.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "pystack/device/error.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/device.hpp"
#include "pystack/wire/address.hpp"
#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"

namespace pystack {

struct pcap_live_options {
  // Bytes kept of each frame. The default keeps a whole Ethernet frame of any
  // MTU up to 64 KiB (a stack must never see a cut frame as a whole one).
  std::uint32_t snapshot_length = 65535;
  bool promiscuous = false;
  // The kernel's ring for frames not yet read; 4 MiB holds about 2,700
  // full-size frames, a burst at 1 Gbit/s for 30 ms.
  int buffer_bytes = 4 << 20;
  // A BPF filter (pcap-filter(7) syntax); empty reads every frame.
  std::string filter{};
  // Read only frames that arrive, not those sent through the interface.
  bool inbound_only = true;
};

// Counts from the kernel (pcap_stats).
struct capture_statistics {
  std::uint64_t received = 0;          // frames that passed the filter
  std::uint64_t dropped = 0;           // dropped because the ring was full
  std::uint64_t interface_dropped = 0; // dropped by the interface or driver
};

class pcap_live {
 public:
  static expected<pcap_live, device_error> open(std::string_view interface, const pcap_live_options& options = {}) {
    using enum device_error::code;
    const std::string name(interface);
    if (name.empty()) return device_error{invalid_argument, "interface name is empty"};
    if (options.snapshot_length == 0 || options.snapshot_length > INT_MAX) {
      return device_error{invalid_argument, name + ": snapshot length must be between 1 and " + std::to_string(INT_MAX)};
    }
    if (options.buffer_bytes <= 0) return device_error{invalid_argument, name + ": buffer size must be positive"};

    char message[PCAP_ERRBUF_SIZE] = {};
    std::unique_ptr<pcap_t, closer> handle(pcap_create(name.c_str(), message));
    if (!handle) return device_error{system, name + ": " + message};
    pcap_t* p = handle.get();

    // These only fail on an already activated handle, which this is not.
    if (pcap_set_snaplen(p, static_cast<int>(options.snapshot_length)) != 0 ||
        pcap_set_promisc(p, options.promiscuous ? 1 : 0) != 0 || pcap_set_immediate_mode(p, 1) != 0 ||
        pcap_set_buffer_size(p, options.buffer_bytes) != 0) {
      return device_error{system, name + ": " + pcap_geterr(p)};
    }

    std::string warning;
    const int status = pcap_activate(p);
    if (status < 0) return activation_error(name, status, pcap_geterr(p));
    if (status > 0) warning = std::string(pcap_statustostr(status)) + ": " + pcap_geterr(p);

    if (pcap_datalink(p) != DLT_EN10MB) {
      const char* link_name = pcap_datalink_val_to_name(pcap_datalink(p));
      return device_error{unsupported_link_type, name + ": link type " + (link_name ? link_name : "unknown") +
                                                     "; a stack speaks Ethernet"};
    }
    if (options.inbound_only && pcap_setdirection(p, PCAP_D_IN) != 0) {
      return device_error{system, name + ": cannot capture inbound only: " + pcap_geterr(p)};
    }
    if (pcap_setnonblock(p, 1, message) != 0) return device_error{system, name + ": " + message};

    pcap_live device(std::move(handle), name, std::move(warning));
    if (!options.filter.empty()) {
      if (auto r = device.set_filter(options.filter); !r) return r.error();
    }
    device.fd_ = pcap_get_selectable_fd(p);
    if (device.fd_ < 0) return device_error{system, name + ": libpcap has no selectable descriptor"};
    return device;
  }

  // A filter for one stack on a shared segment: frames addressed to `mac`,
  // or broadcast or multicast, that carry ARP, or IPv4 to `address`, to the
  // limited broadcast address, or to a multicast group.
  static std::string filter_for(mac_address mac, ipv4_address address) {
    return "(ether dst " + mac.to_string() + " or ether broadcast or ether multicast) and (arp or (ip and (dst host " +
           address.to_string() + " or dst host 255.255.255.255 or ip multicast)))";
  }

  // Replaces the BPF filter (pcap-filter(7) syntax).
  expected<void, device_error> set_filter(const std::string& filter) {
    bpf_program program{};
    // The netmask only matters for "ip broadcast", which filter_for avoids.
    if (pcap_compile(handle_.get(), &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      return device_error{device_error::code::bad_filter,
                          name_ + ": filter '" + filter + "': " + pcap_geterr(handle_.get())};
    }
    const int set = pcap_setfilter(handle_.get(), &program);
    pcap_freecode(&program);
    if (set != 0) {
      return device_error{device_error::code::bad_filter,
                          name_ + ": filter '" + filter + "' cannot be set: " + pcap_geterr(handle_.get())};
    }
    return {};
  }

  // Sends one frame (pcap_inject). False when the kernel refused it (too
  // long, interface down, ...): counted, and the reason kept in last_error().
  bool transmit(bytes_view frame) {
    const int sent = pcap_inject(handle_.get(), frame.data(), frame.size());
    if (sent < 0 || static_cast<std::size_t>(sent) != frame.size()) {
      ++stats_.send_failures;
      last_error_ = sent < 0 ? pcap_geterr(handle_.get()) : "short write";
      return false;
    }
    ++stats_.frames_sent;
    stats_.bytes_sent += frame.size();
    return true;
  }

  // Hands up to `max` waiting frames to the handler (pcap_dispatch with a
  // bounded count); returns at once when none wait. An exception thrown by
  // the handler stops the batch and propagates after libpcap has returned.
  template <class Handler>
  std::size_t receive(Handler&& handler, std::size_t max) {
    if (max == 0) return 0;
    dispatch_context<std::remove_reference_t<Handler>> context{&handler, this, {}, 0, steady_clock{}.now(),
                                                                wall_now()};
    const int count = max > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(max);
    const int r = pcap_dispatch(handle_.get(), count, &dispatch_context<std::remove_reference_t<Handler>>::callback,
                                reinterpret_cast<u_char*>(&context));
    if (context.failure) std::rethrow_exception(context.failure);
    if (r == PCAP_ERROR) {
      ++receive_errors_;
      last_error_ = pcap_geterr(handle_.get());
    }
    return context.delivered;
  }

  int wait_fd() const noexcept { return fd_; }
  // Frames arrive on the descriptor; nothing is scheduled.
  std::optional<instant> next_delivery() const noexcept { return std::nullopt; }
  const device_stats& stats() const noexcept { return stats_; }

  const std::string& interface_name() const noexcept { return name_; }
  // A warning pcap_activate gave (e.g. promiscuous mode not supported), or empty.
  const std::string& warning() const noexcept { return warning_; }
  // Why the last transmit or receive failed.
  const std::string& last_error() const noexcept { return last_error_; }
  std::uint64_t receive_errors() const noexcept { return receive_errors_; }

  expected<capture_statistics, device_error> capture_stats() const {
    pcap_stat s{};
    if (pcap_stats(handle_.get(), &s) != 0) {
      return device_error{device_error::code::system, name_ + ": " + pcap_geterr(handle_.get())};
    }
    return capture_statistics{s.ps_recv, s.ps_drop, s.ps_ifdrop};
  }

 private:
  struct closer {
    void operator()(pcap_t* p) const noexcept { pcap_close(p); }
  };

  template <class Handler>
  struct dispatch_context {
    Handler* handler;
    pcap_live* self;
    std::exception_ptr failure;
    std::size_t delivered;
    instant steady_now;
    std::chrono::nanoseconds wall_now;

    // libpcap is C: nothing may unwind through it.
    static void callback(u_char* user, const pcap_pkthdr* header, const u_char* bytes) noexcept {
      auto& c = *reinterpret_cast<dispatch_context*>(user);
      if (c.failure) return;
      // libpcap stamps frames with the time of day; the stack runs on the
      // monotonic clock. The frame's age is the same on both.
      const auto stamp = std::chrono::seconds(header->ts.tv_sec) + std::chrono::microseconds(header->ts.tv_usec);
      duration age = c.wall_now - std::chrono::duration_cast<duration>(stamp);
      if (age < duration::zero()) age = duration::zero();
      const received_frame frame{bytes_view(bytes, header->caplen), c.steady_now - age, header->len};
      ++c.delivered;
      ++c.self->stats_.frames_received;
      c.self->stats_.bytes_received += header->caplen;
      try {
        (*c.handler)(frame);
      } catch (...) {
        c.failure = std::current_exception();
        pcap_breakloop(c.self->handle_.get());
      }
    }
  };

  static std::chrono::nanoseconds wall_now() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::system_clock::now().time_since_epoch());
  }

  static device_error activation_error(const std::string& name, int status, const char* detail) {
    using enum device_error::code;
    device_error::code what = system;
    switch (status) {
      case PCAP_ERROR_NO_SUCH_DEVICE: what = no_such_device; break;
      case PCAP_ERROR_PERM_DENIED: what = permission_denied; break;
      case PCAP_ERROR_PROMISC_PERM_DENIED: what = promiscuous_not_permitted; break;
      case PCAP_ERROR_IFACE_NOT_UP: what = interface_down; break;
      default: break;
    }
    std::string message = name + ": " + pcap_statustostr(status);
    if (detail != nullptr && *detail != '\0') message += std::string(" (") + detail + ")";
    return device_error{what, std::move(message)};
  }

  pcap_live(std::unique_ptr<pcap_t, closer> handle, std::string name, std::string warning)
      : handle_(std::move(handle)), name_(std::move(name)), warning_(std::move(warning)) {}

  std::unique_ptr<pcap_t, closer> handle_;
  std::string name_;
  std::string warning_;
  std::string last_error_;
  int fd_ = -1;
  std::uint64_t receive_errors_ = 0;
  device_stats stats_;
};

static_assert(device<pcap_live>);

}  // namespace pystack

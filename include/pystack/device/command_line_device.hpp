// The device a stack program runs on, as its command line asks (cli.hpp):
// the live interface of `--iface`, read through a filter that lets in only
// the stack's own traffic, inside the impairment wrapper when `--impair` is
// given, and recorded by the pcap tee when `--pcap` is given.
//
//     const auto options = pystack::cli::parse_or_exit(argc, argv, program);
//     auto device = pystack::command_line_device::open(options);
//     if (!device) { print device.error().message; return 1; }
//     my_stack::on<pystack::command_line_device> stack(std::move(*device), {}, config_of(options));
//
// Every program then honours `--pcap` and `--impair` the same way, without
// spelling out the four device types they combine into. Which one is chosen
// at run time, so the calls go through a `std::variant`: one indexed jump
// per transmitted frame and per received batch, never a virtual call or an
// allocation.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "pystack/cli.hpp"
#include "pystack/device/error.hpp"
#include "pystack/device/impair.hpp"
#include "pystack/device/pcap_live.hpp"
#include "pystack/device/pcap_tee.hpp"
#include "pystack/stack/buffer.hpp"
#include "pystack/stack/clock.hpp"
#include "pystack/stack/device.hpp"
#include "pystack/stack/interface.hpp"
#include "pystack/wire/error.hpp"

namespace pystack {

struct command_line_device_options {
  bool promiscuous = false;
  // Frames a direction of the impairment may hold at once.
  std::size_t impairment_queue_limit = 1024;
  tee_options tee{};
};

class command_line_device {
 public:
  using live = pcap_live;
  using impaired_live = impaired<pcap_live, steady_clock>;
  using recorded_live = pcap_tee<pcap_live>;
  using recorded_impaired_live = pcap_tee<impaired_live>;

  // Opens `options.interface` with a filter for `options.address` and the
  // interface's MAC (pcap_live::filter_for). Opening needs CAP_NET_RAW.
  static expected<command_line_device, device_error> open(const cli::options& options,
                                                          const command_line_device_options& device_options = {}) {
    pcap_live_options live_options;
    live_options.promiscuous = device_options.promiscuous;
    live_options.filter = pcap_live::filter_for(options.interface.mac, options.address.address);
    auto opened = pcap_live::open(options.interface.name, live_options);
    if (!opened) return opened.error();

    const bool impair = options.impair && !options.impair->is_none();
    if (!impair && !options.pcap) return command_line_device(std::move(*opened));
    if (!impair) return record(std::move(*opened), *options.pcap, device_options.tee);

    impaired_live wrapped(std::move(*opened), steady_clock{}, *options.impair, device_options.impairment_queue_limit);
    if (!options.pcap) return command_line_device(std::move(wrapped));
    return record(std::move(wrapped), *options.pcap, device_options.tee);
  }

  // The addresses the stack answers to: the interface's MAC and MTU, the
  // address of `--ip` and the gateway of `--gateway`.
  static interface_config config_of(const cli::options& options) {
    interface_config config;
    config.mac = options.interface.mac;
    config.address = options.address.address;
    config.prefix_length = options.address.prefix_length;
    config.gateway = options.gateway;
    if (auto mtu = usable_mtu(options.interface.mtu)) config.mtu = *mtu;
    return config;
  }

  // ---- the device contract (stack/device.hpp) ----
  bool transmit(bytes_view frame) {
    return std::visit([&](auto& d) { return d.transmit(frame); }, chosen_);
  }
  template <class Handler>
  std::size_t receive(Handler&& handler, std::size_t max) {
    return std::visit([&](auto& d) { return d.receive(handler, max); }, chosen_);
  }
  int wait_fd() const {
    return std::visit([](const auto& d) { return d.wait_fd(); }, chosen_);
  }
  std::optional<instant> next_delivery() const {
    return std::visit([](const auto& d) { return d.next_delivery(); }, chosen_);
  }
  const device_stats& stats() const {
    return std::visit([](const auto& d) -> const device_stats& { return d.stats(); }, chosen_);
  }

  // ---- what a program reports when it ends ----

  // The capture's frames, failures and first error; nothing without --pcap.
  std::optional<std::uint64_t> frames_recorded() const {
    return with_tee([](const auto& tee) { return tee.frames_recorded(); });
  }
  std::optional<device_error> capture_error() const {
    auto error = with_tee([](const auto& tee) { return tee.capture_error(); });
    return error ? *error : std::nullopt;
  }
  // Writes what the tee still buffers; the tee flushes within its interval
  // anyway, this is for a program about to exit.
  expected<void, device_error> flush_capture() {
    if (auto* tee = std::get_if<recorded_live>(&chosen_)) return tee->flush();
    if (auto* tee = std::get_if<recorded_impaired_live>(&chosen_)) return tee->flush();
    return {};
  }

  // The impairment's counters (outbound, inbound); nothing without --impair.
  std::optional<std::pair<impairment_counters, impairment_counters>> impairment_counts() const {
    const impaired_live* wrapped = std::get_if<impaired_live>(&chosen_);
    if (const auto* tee = std::get_if<recorded_impaired_live>(&chosen_)) wrapped = &tee->inner();
    if (wrapped == nullptr) return std::nullopt;
    return std::pair{wrapped->outbound_counters(), wrapped->inbound_counters()};
  }

 private:
  using alternatives = std::variant<live, impaired_live, recorded_live, recorded_impaired_live>;

  template <class Device>
  explicit command_line_device(Device device) : chosen_(std::in_place_type<Device>, std::move(device)) {}

  template <class Device>
  static expected<command_line_device, device_error> record(Device device, const std::string& path,
                                                            const tee_options& options) {
    auto tee = pcap_tee<Device>::create(std::move(device), path, options);
    if (!tee) return tee.error();
    return command_line_device(std::move(*tee));
  }

  template <class F>
  auto with_tee(F&& f) const -> std::optional<decltype(f(std::declval<const recorded_live&>()))> {
    if (const auto* tee = std::get_if<recorded_live>(&chosen_)) return f(*tee);
    if (const auto* tee = std::get_if<recorded_impaired_live>(&chosen_)) return f(*tee);
    return std::nullopt;
  }

  alternatives chosen_;
};

static_assert(device<command_line_device>);

}  // namespace pystack

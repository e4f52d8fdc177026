// Capture files through libpcap: read pcap and pcapng, write pcap.
//
// libpcap, not a hand-written reader, because it already knows every variant
// of the format (byte orders, nanosecond magic, pcapng blocks, the FCS bits
// in the link-type field) and is what tcpdump and Wireshark agree with.
//
// Errors are typed values (`pcap::error`), never exceptions: a missing,
// truncated or foreign file is something a user hands us every day.
#pragma once

#include <pcap/pcap.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "pystack/wire/bytes.hpp"
#include "pystack/wire/error.hpp"

namespace pystack::pcap {

// The link types the library decodes. Values are libpcap's DLT_ numbers, as
// pcap_datalink() reports them (LINKTYPE_RAW in a file is DLT_RAW here).
enum class link_type : int {
  ethernet = DLT_EN10MB,
  raw = DLT_RAW,    // raw IP; the version nibble says IPv4 or IPv6
  ipv4 = DLT_IPV4,  // raw IPv4 only
};

inline const char* to_string(link_type t) noexcept {
  switch (t) {
    case link_type::ethernet: return "ethernet";
    case link_type::raw: return "raw";
    case link_type::ipv4: return "ipv4";
  }
  return "unknown";
}

struct error {
  enum class code : std::uint8_t {
    open_failed,            // the file cannot be opened (missing, no permission)
    bad_format,             // not a pcap or pcapng file, or a damaged header
    truncated,              // the file ends inside a record
    unsupported_link_type,  // a link type the library does not decode
    write_failed,           // the disk refused a write
    timestamp_out_of_range, // a pcap record cannot hold this time (before 1970, from 2038 on)
  };
  code what;
  std::string message;
};

// One captured frame. `bytes` stays valid until the next call to
// reader::next() (it points into libpcap's buffer: no copy per frame).
struct frame {
  std::chrono::nanoseconds timestamp{};  // since the Unix epoch
  std::uint32_t original_length = 0;     // length on the wire; bytes.size() may be less
  bytes_view bytes;

  bool truncated() const noexcept { return bytes.size() < original_length; }
};

namespace detail {
struct pcap_closer {
  void operator()(pcap_t* p) const noexcept { pcap_close(p); }
};
struct dumper_closer {
  void operator()(pcap_dumper_t* d) const noexcept { pcap_dump_close(d); }
};

inline std::optional<link_type> supported_link_type(int dlt) noexcept {
  switch (dlt) {
    case DLT_EN10MB: return link_type::ethernet;
    case DLT_RAW: return link_type::raw;
    case DLT_IPV4: return link_type::ipv4;
    default: return std::nullopt;
  }
}

// Seconds and nanoseconds, as libpcap hands over a timestamp, to nanoseconds
// since the epoch. 64 bits of nanoseconds reach about 292 years either side
// of 1970; pcapng's 64-bit timestamps reach further, and a damaged file can
// say anything (a microsecond field of billions), so a stamp outside is
// clamped to the nearer end instead of overflowing, which would be undefined
// behaviour: the frame's bytes are still worth reading.
inline std::chrono::nanoseconds to_nanoseconds(std::int64_t seconds, std::int64_t fraction) noexcept {
  using std::chrono::nanoseconds;
  constexpr std::int64_t per_second = 1'000'000'000;
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t min = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t limit = max / per_second;  // whole seconds that always fit
  if (seconds > limit) return nanoseconds::max();
  if (seconds < -limit) return nanoseconds::min();
  seconds += fraction / per_second;  // at most about 9.2e9 more: no overflow
  fraction %= per_second;
  if (seconds > limit) return nanoseconds::max();
  if (seconds < -limit) return nanoseconds::min();
  const std::int64_t whole = seconds * per_second;
  if (fraction > 0 && whole > max - fraction) return nanoseconds::max();
  if (fraction < 0 && whole < min - fraction) return nanoseconds::min();
  return nanoseconds(whole + fraction);
}

inline error classify_open_failure(const std::string& path, const char* libpcap_message) {
  const std::string text = libpcap_message;
  // libpcap reports a missing or unreadable file with the OS error text and
  // a foreign or damaged one with a format message; tell the two apart so a
  // caller can say "no such file" rather than "bad format".
  const bool format_problem = text.find("format") != std::string::npos ||
                              text.find("truncated") != std::string::npos ||
                              text.find("magic") != std::string::npos ||
                              text.find("version") != std::string::npos ||
                              text.find("length") != std::string::npos;
  return error{format_problem ? error::code::bad_format : error::code::open_failed,
               path + ": " + text};
}
}  // namespace detail

// Reads frames from a pcap or pcapng file, oldest first.
class reader {
 public:
  // Opens `path`. Fails with a typed error when the file is missing, not a
  // capture, or of a link type the library does not decode.
  static expected<reader, error> open(const std::string& path) {
    char message[PCAP_ERRBUF_SIZE] = {};
    pcap_t* handle =
        pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, message);
    if (handle == nullptr) return detail::classify_open_failure(path, message);
    std::unique_ptr<pcap_t, detail::pcap_closer> owned(handle);
    const int dlt = pcap_datalink(handle);
    const auto type = detail::supported_link_type(dlt);
    if (!type) {
      const char* name = pcap_datalink_val_to_name(dlt);
      return error{error::code::unsupported_link_type,
                   path + ": link type " + std::to_string(dlt) + " (" + (name ? name : "unknown") +
                       ") is not supported; ethernet, raw and ipv4 are"};
    }
    return reader(std::move(owned), *type, path);
  }

  link_type link() const noexcept { return link_; }
  std::uint32_t snapshot_length() const noexcept {
    return static_cast<std::uint32_t>(pcap_snapshot(handle_.get()));
  }

  // The next frame, std::nullopt at the end of the file, or an error when the
  // file stops inside a record.
  expected<std::optional<frame>, error> next() {
    pcap_pkthdr* header = nullptr;
    const u_char* data = nullptr;
    switch (pcap_next_ex(handle_.get(), &header, &data)) {
      case 1: {
        // With nanosecond precision requested, libpcap puts nanoseconds in tv_usec.
        const auto stamp = detail::to_nanoseconds(header->ts.tv_sec, header->ts.tv_usec);
        return std::optional<frame>(frame{stamp, header->len, bytes_view(data, header->caplen)});
      }
      case PCAP_ERROR_BREAK:
        return std::optional<frame>{};
      default: {
        const std::string text = pcap_geterr(handle_.get());
        return error{text.find("truncated") != std::string::npos ? error::code::truncated
                                                                 : error::code::bad_format,
                     path_ + ": " + text};
      }
    }
  }

 private:
  reader(std::unique_ptr<pcap_t, detail::pcap_closer> handle, link_type link, std::string path)
      : handle_(std::move(handle)), link_(link), path_(std::move(path)) {}

  std::unique_ptr<pcap_t, detail::pcap_closer> handle_;
  link_type link_;
  std::string path_;
};

enum class timestamp_precision : std::uint8_t { microseconds, nanoseconds };

// Writes a pcap file (not pcapng: every tool reads pcap). Frames are written
// through libpcap's buffered dumper; `flush()` pushes them to the file so
// another process can read a capture that is still being written.
class writer {
 public:
  static constexpr std::uint32_t default_snapshot_length = 262144;

  static expected<writer, error> create(const std::string& path, link_type link,
                                        timestamp_precision precision = timestamp_precision::microseconds,
                                        std::uint32_t snapshot_length = default_snapshot_length) {
    const unsigned tsprec = precision == timestamp_precision::nanoseconds
                                ? PCAP_TSTAMP_PRECISION_NANO
                                : PCAP_TSTAMP_PRECISION_MICRO;
    std::unique_ptr<pcap_t, detail::pcap_closer> dead(pcap_open_dead_with_tstamp_precision(
        static_cast<int>(link), static_cast<int>(snapshot_length), tsprec));
    if (!dead) return error{error::code::open_failed, path + ": libpcap could not allocate a handle"};
    pcap_dumper_t* dumper = pcap_dump_open(dead.get(), path.c_str());
    if (dumper == nullptr) {
      return error{error::code::open_failed, path + ": " + pcap_geterr(dead.get())};
    }
    return writer(std::move(dead), std::unique_ptr<pcap_dumper_t, detail::dumper_closer>(dumper),
                  precision, snapshot_length, path);
  }

  // Appends a frame. Bytes beyond the snapshot length are cut, and the
  // record keeps the original length so readers know.
  expected<void, error> write(bytes_view bytes, std::chrono::nanoseconds timestamp,
                              std::optional<std::uint32_t> original_length = std::nullopt) {
    using namespace std::chrono;
    pcap_pkthdr header{};
    const auto secs = duration_cast<seconds>(timestamp);
    const auto rest = timestamp - secs;
    // A pcap record stores 32-bit seconds since the epoch, which libpcap
    // reads back as signed: a time outside [1970, 2038) would come back
    // different, so it is refused rather than written wrong.
    if (timestamp.count() < 0 || secs.count() > 0x7fffffffLL) {
      return error{error::code::timestamp_out_of_range,
                   path_ + ": timestamp " + std::to_string(timestamp.count()) + " ns is outside what pcap can store"};
    }
    header.ts.tv_sec = static_cast<time_t>(secs.count());
    header.ts.tv_usec = static_cast<suseconds_t>(precision_ == timestamp_precision::nanoseconds
                                                     ? rest.count()
                                                     : duration_cast<microseconds>(rest).count());
    header.caplen = static_cast<bpf_u_int32>(std::min<std::size_t>(bytes.size(), snapshot_length_));
    header.len = original_length.value_or(static_cast<std::uint32_t>(bytes.size()));
    pcap_dump(reinterpret_cast<u_char*>(dumper_.get()), &header, bytes.data());
    if (ferror(pcap_dump_file(dumper_.get()))) {
      return error{error::code::write_failed, path_ + ": write failed"};
    }
    return {};
  }

  expected<void, error> write(const frame& f) { return write(f.bytes, f.timestamp, f.original_length); }

  expected<void, error> flush() {
    if (pcap_dump_flush(dumper_.get()) != 0) return error{error::code::write_failed, path_ + ": flush failed"};
    return {};
  }

 private:
  writer(std::unique_ptr<pcap_t, detail::pcap_closer> dead,
         std::unique_ptr<pcap_dumper_t, detail::dumper_closer> dumper, timestamp_precision precision,
         std::uint32_t snapshot_length, std::string path)
      : dead_(std::move(dead)),
        dumper_(std::move(dumper)),
        precision_(precision),
        snapshot_length_(snapshot_length),
        path_(std::move(path)) {}

  // Declared in this order so the dumper closes (and flushes) before the handle.
  std::unique_ptr<pcap_t, detail::pcap_closer> dead_;
  std::unique_ptr<pcap_dumper_t, detail::dumper_closer> dumper_;
  timestamp_precision precision_;
  std::uint32_t snapshot_length_;
  std::string path_;
};

}  // namespace pystack::pcap

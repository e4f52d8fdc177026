// Benchmarks of the wire layer: what a receive path and a send path pay per
// frame, and the internet checksum on its own.
//
// The frames: 64 Ethernet/IPv4/TCP frames of the kinds a busy connection
// carries (SYN-ACK with MSS, SACK-permitted, timestamps, NOP and window scale;
// pure ACKs with timestamps; data segments of 1 to 1448 bytes with timestamps;
// ACKs with timestamps and a SACK block), walked round robin so that the
// branch predictor cannot learn one frame, plus one DNS response with a CNAME,
// four A records, two NS and two glue records, names compressed.
//
// Where they come from: `--tcp_frames=FILE` and `--dns_frames=FILE` read them
// from pcap files (bench/scapy_compare.py writes Scapy-built ones, so that
// Scapy and this program time identical bytes). Without the flags the same
// recipe is built here with the library's own `emit`. Either way every frame
// is parsed and rebuilt once before timing, and the program refuses to run
// when a checksum does not verify or a rebuilt frame differs from the one it
// came from: a fast benchmark of a wrong result is worth nothing.
//
// Build and run (bench/run.sh does both, with the Scapy comparison):
//   bazel build -c opt --config=bench //bench:wire_bench
//   bazel-bin/bench/wire_bench [--tcp_frames=F --dns_frames=F] [--benchmark_...]
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "pystack/pcap/file.hpp"
#include "pystack/wire/checksum.hpp"
#include "pystack/wire/dns.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"
#include "pystack/wire/udp.hpp"

namespace {

using namespace pystack;

// ---------------------------------------------------------------------------
// The frames.

using frame_bytes = std::vector<byte>;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "wire_bench: %s\n", what.c_str());
  std::exit(1);
}

// What the send path starts from: the three header values and the payload.
struct build_input {
  eth::repr ethernet;
  ipv4::repr ip;
  tcp::repr segment;
  frame_bytes payload;
};

// Room for the largest header stack this benchmark builds: two VLAN tags,
// IPv4 and TCP with full options. The payload goes after it, the headers are
// prepended into it.
constexpr std::size_t headroom =
    eth::header_size + eth::max_vlan_tags * eth::vlan_tag_size + ipv4::max_header_size + tcp::max_header_size;
constexpr std::size_t frame_buffer_size = headroom + 9000;

// The send path as a stack runs it: the payload is already in place after
// the headroom; each layer prepends its header into the same buffer, TCP and
// IPv4 filling their checksums. Returns the frame inside `buffer`.
inline mutable_bytes emit_frame(const build_input& in, byte* buffer) noexcept {
  byte* const payload = buffer + headroom;
  const std::size_t payload_size = in.payload.size();
  const std::size_t tcp_size = in.segment.size();
  const mutable_bytes segment(payload - tcp_size, tcp_size + payload_size);
  in.segment.emit(segment, in.ip.source, in.ip.destination);
  const std::size_t ip_size = in.ip.size();
  const mutable_bytes datagram(segment.data() - ip_size, ip_size + segment.size());
  in.ip.emit(datagram);
  const std::size_t eth_size = in.ethernet.size();
  const mutable_bytes frame(datagram.data() - eth_size, eth_size + datagram.size());
  in.ethernet.emit(frame);
  return frame;
}

// How the options are read while parsing: through the library's iterator
// (which yields `tcp::option_ref`s into the segment), or by the hand-written
// walk below, which decodes the same fields from the raw bytes, trusting the
// framing `checked()` validated. The second is not an API; it is here to
// measure what the iterator's own checks cost inside a whole parse.
enum class option_walk { iterator, in_place };

// Folds the typed value of every option of a checked segment into one number,
// so that the compiler must decode all of them.
inline std::uint64_t fold_options_iterator(const tcp::option_range& options) noexcept {
  std::uint64_t folded = 0;
  // `auto`: whatever the iterator yields (a `tcp::option_ref`), without
  // converting it to an owning `tcp::option`, which would copy it.
  for (const auto o : options) {
    switch (o.kind()) {
      case tcp::option_kind::mss: folded += o.mss(); break;
      case tcp::option_kind::window_scale: folded += o.window_scale(); break;
      case tcp::option_kind::sack_permitted: folded += 1; break;
      case tcp::option_kind::timestamp: {
        const tcp::timestamps t = o.timestamp();
        folded += t.tsval ^ t.tsecr;
        break;
      }
      case tcp::option_kind::sack:
        for (const tcp::sack_block& b : o.sack()) folded += b.left.raw() ^ b.right.raw();
        break;
      default: folded += o.code(); break;
    }
  }
  return folded;
}

// The same over the option bytes of a checked segment, whose framing
// tcp::view::checked has validated, so the length bytes can be trusted.
inline std::uint64_t fold_options_in_place(bytes_view area) noexcept {
  std::uint64_t folded = 0;
  const byte* p = area.data();
  const byte* const end = p + area.size();
  while (p < end) {
    switch (*p) {
      case tcp::option_code::eol: return folded + tcp::option_code::eol;
      case tcp::option_code::nop: folded += tcp::option_code::nop; ++p; continue;
      case tcp::option_code::mss: folded += wire::load_be16(p + 2); break;
      case tcp::option_code::window_scale: folded += p[2]; break;
      case tcp::option_code::sack_permitted: folded += 1; break;
      case tcp::option_code::timestamp: folded += wire::load_be32(p + 2) ^ wire::load_be32(p + 6); break;
      case tcp::option_code::sack:
        for (const byte* b = p + 2; b < p + p[1]; b += 8) folded += wire::load_be32(b) ^ wire::load_be32(b + 4);
        break;
      default: folded += *p; break;
    }
    p += p[1];
  }
  return folded;
}

// The recipe bench/scapy_compare.py follows too (same numbers, built there
// with Scapy). Frame `i` of 64.
build_input recipe_frame(unsigned i) {
  build_input in;
  in.ethernet.destination = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
  in.ethernet.source = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
  in.ethernet.ethertype = eth::ethertype::ipv4;

  in.ip.identification = static_cast<std::uint16_t>(1000 + i);
  in.ip.dont_fragment = true;
  in.ip.ttl = 64;
  in.ip.protocol = ipv4::protocol::tcp;
  in.ip.source = ipv4_address::from_octets(10, 0, 0, static_cast<byte>(1 + i % 8));
  in.ip.destination = ipv4_address::from_octets(192, 168, 1, static_cast<byte>(10 + i % 50));

  tcp::repr& s = in.segment;
  s.source_port = i % 2 ? 443 : 80;
  s.destination_port = static_cast<std::uint16_t>(32768 + 97 * i);
  s.sequence_number = seq_number(static_cast<std::uint32_t>(0x9e3779b9u * (i + 1)));
  s.ack_number = seq_number(static_cast<std::uint32_t>(0x7f4a7c15u * (i + 1)));
  s.window = static_cast<std::uint16_t>(65535 - 128 * i);
  const std::uint32_t tsval = 100000 + 1000 * i;
  const std::uint32_t tsecr = 50000 + 999 * i;
  static constexpr std::size_t data_sizes[8] = {1, 40, 100, 200, 300, 536, 1000, 1448};
  bool fits = true;
  switch (i % 4) {
    case 0:  // SYN-ACK, options in the order Linux sends them
      s.flags = tcp::flags::syn | tcp::flags::ack;
      fits = s.options.push_mss(1460) && s.options.push_sack_permitted() && s.options.push_timestamp(tsval, tsecr) &&
             s.options.push_nop() && s.options.push_window_scale(7);
      break;
    case 1:  // pure ACK
      s.flags = tcp::flags::ack;
      fits = s.options.push_nop() && s.options.push_nop() && s.options.push_timestamp(tsval, tsecr);
      break;
    case 2:  // data
      s.flags = tcp::flags::psh | tcp::flags::ack;
      fits = s.options.push_nop() && s.options.push_nop() && s.options.push_timestamp(tsval, tsecr);
      in.payload.resize(data_sizes[(i / 4) % 8]);
      for (std::size_t j = 0; j < in.payload.size(); ++j) in.payload[j] = static_cast<byte>(i * 7 + j);
      break;
    default: {  // ACK reporting one out-of-order block
      s.flags = tcp::flags::ack;
      const tcp::sack_block block{s.ack_number + (1000 + i), s.ack_number + (2000 + i)};
      fits = s.options.push_nop() && s.options.push_nop() && s.options.push_timestamp(tsval, tsecr) &&
             s.options.push_nop() && s.options.push_nop() && s.options.push_sack(std::span(&block, 1));
      break;
    }
  }
  if (!fits) fail("recipe frame " + std::to_string(i) + ": options do not fit in 40 bytes");
  return in;
}

constexpr unsigned recipe_frame_count = 64;

// The DNS response of the recipe, built with the library's compressing
// writer. Returns the DNS message (the UDP payload).
frame_bytes recipe_dns_message() {
  frame_bytes buffer(dns::max_message_size);
  auto w = dns::writer::start(buffer, dns::header_repr{.id = 0x4a2f, .qr = true, .rd = true, .ra = true});
  if (!w) fail("dns recipe: " + w.error().message());
  using dns::section;
  const std::array<expected<void>, 10> results = {
      w->add_question("www.example.com", dns::type::a),
      w->add_cname(section::answer, "www.example.com", 300, "cdn.example.net"),
      w->add_a(section::answer, "cdn.example.net", 60, ipv4_address::from_octets(93, 184, 216, 34)),
      w->add_a(section::answer, "cdn.example.net", 60, ipv4_address::from_octets(93, 184, 216, 35)),
      w->add_a(section::answer, "cdn.example.net", 60, ipv4_address::from_octets(93, 184, 216, 36)),
      w->add_a(section::answer, "cdn.example.net", 60, ipv4_address::from_octets(93, 184, 216, 37)),
      w->add_ns(section::authority, "example.net", 86400, "ns1.example.net"),
      w->add_ns(section::authority, "example.net", 86400, "ns2.example.net"),
      w->add_a(section::additional, "ns1.example.net", 86400, ipv4_address::from_octets(192, 0, 2, 53)),
      w->add_a(section::additional, "ns2.example.net", 86400, ipv4_address::from_octets(198, 51, 100, 53)),
  };
  for (const auto& r : results) {
    if (!r) fail("dns recipe: " + r.error().message());
  }
  buffer.resize(w->size());
  return buffer;
}

struct frame_set {
  std::vector<frame_bytes> tcp_frames;
  std::vector<build_input> build_inputs;  // parsed back from `tcp_frames`
  frame_bytes dns_message;
  std::string origin;
};

frame_set& frames() {
  static frame_set set;
  return set;
}

std::vector<frame_bytes> read_pcap(const std::string& path) {
  auto reader = pcap::reader::open(path);
  if (!reader) fail(reader.error().message);
  if (reader->link() != pcap::link_type::ethernet) fail(path + ": not an Ethernet capture");
  std::vector<frame_bytes> out;
  for (;;) {
    auto next = reader->next();
    if (!next) fail(next.error().message);
    if (!*next) break;
    if ((*next)->truncated()) fail(path + ": frame " + std::to_string(out.size()) + " is cut short by the snapshot length");
    out.emplace_back((*next)->bytes.begin(), (*next)->bytes.end());
  }
  if (out.empty()) fail(path + ": no frames");
  return out;
}

// The DNS message inside an Ethernet/IPv4/UDP frame.
frame_bytes dns_message_of(const frame_bytes& frame, const std::string& path) {
  auto ethernet = eth::view::checked(frame);
  if (!ethernet) fail(path + ": " + ethernet.error().message());
  auto ip = ipv4::view::checked(ethernet->payload());
  if (!ip) fail(path + ": " + ip.error().message());
  auto datagram = udp::view::checked(ip->payload());
  if (!datagram) fail(path + ": " + datagram.error().message());
  return frame_bytes(datagram->payload().begin(), datagram->payload().end());
}

// Parses every frame into what the send path starts from, and checks on the
// way what the timed loops rely on: the frames parse, both checksums verify,
// and emitting the parsed values gives back the frame byte for byte.
void prepare(frame_set& set) {
  alignas(64) static std::array<byte, frame_buffer_size> buffer;
  for (std::size_t i = 0; i < set.tcp_frames.size(); ++i) {
    const frame_bytes& f = set.tcp_frames[i];
    const std::string where = set.origin + " frame " + std::to_string(i) + ": ";
    auto ethernet = eth::view::checked(f);
    if (!ethernet) fail(where + ethernet.error().message());
    auto ip = ipv4::view::checked(ethernet->payload());
    if (!ip) fail(where + ip.error().message());
    if (!ip->verify_checksum()) fail(where + "IPv4 header checksum does not verify");
    if (ip->protocol() != ipv4::protocol::tcp) fail(where + "not TCP");
    auto segment = tcp::view::checked(ip->payload());
    if (!segment) fail(where + segment.error().message());
    if (!segment->verify_checksum(ip->source(), ip->destination())) fail(where + "TCP checksum does not verify");
    if (ethernet->payload().size() != ip->total_length()) fail(where + "Ethernet padding is not supported here");
    build_input in{*eth::repr::parse(*ethernet), *ipv4::repr::parse(*ip), *tcp::repr::parse(*segment),
                   frame_bytes(segment->payload().begin(), segment->payload().end())};
    if (in.payload.size() + headroom > buffer.size()) fail(where + "payload too large");
    std::memcpy(buffer.data() + headroom, in.payload.data(), in.payload.size());
    const mutable_bytes built = emit_frame(in, buffer.data());
    if (built.size() != f.size()) {
      fail(where + "rebuilt frame has " + std::to_string(built.size()) + " bytes, the original " +
           std::to_string(f.size()));
    }
    for (std::size_t b = 0; b < f.size(); ++b) {
      if (built[b] != f[b]) {
        char text[96];
        std::snprintf(text, sizeof text, "rebuilt frame differs at byte %zu: 0x%02x, the original 0x%02x", b,
                      built[b], f[b]);
        fail(where + text);
      }
    }
    if (fold_options_iterator(segment->options()) != fold_options_in_place(segment->options_bytes())) {
      fail(where + "the in-place option walk disagrees with tcp::option_iterator");
    }
    set.build_inputs.push_back(std::move(in));
  }
  if (auto message = dns::view::checked(set.dns_message); !message) {
    fail(set.origin + " DNS message: " + message.error().message());
  }
}

void load(const std::string& tcp_path, const std::string& dns_path) {
  frame_set& set = frames();
  if (tcp_path.empty()) {
    alignas(64) static std::array<byte, frame_buffer_size> buffer;
    for (unsigned i = 0; i < recipe_frame_count; ++i) {
      const build_input in = recipe_frame(i);
      std::memcpy(buffer.data() + headroom, in.payload.data(), in.payload.size());
      const mutable_bytes f = emit_frame(in, buffer.data());
      set.tcp_frames.emplace_back(f.begin(), f.end());
    }
    set.origin = "built-in";
  } else {
    set.tcp_frames = read_pcap(tcp_path);
    set.origin = tcp_path;
  }
  set.dns_message = dns_path.empty() ? recipe_dns_message() : dns_message_of(read_pcap(dns_path).front(), dns_path);
  prepare(set);
}

// ---------------------------------------------------------------------------
// Receive path: parse and validate.

// What a receiver reads from a TCP frame, folded into one value so that the
// compiler must compute all of it. Returns 0 when any check fails (never for
// the benchmark's frames, which `prepare` checked).
template <bool verify_tcp_checksum, option_walk walk = option_walk::iterator>
inline std::uint64_t parse_tcp_frame(bytes_view frame) noexcept {
  const auto ethernet = eth::view::checked(frame);
  if (!ethernet || ethernet->ethertype() != eth::ethertype::ipv4) return 0;
  const auto ip = ipv4::view::checked(ethernet->payload());
  if (!ip || !ip->verify_checksum() || ip->protocol() != ipv4::protocol::tcp || ip->is_fragment()) return 0;
  const auto segment = tcp::view::checked(ip->payload());
  if (!segment) return 0;
  if constexpr (verify_tcp_checksum) {
    if (!segment->verify_checksum(ip->source(), ip->destination())) return 0;
  }
  std::uint64_t folded = ip->source().value ^ ip->destination().value;
  folded += (std::uint64_t{segment->source_port()} << 16) | segment->destination_port();
  folded += segment->sequence_number().raw() ^ segment->ack_number().raw();
  folded += segment->flags().bits() ^ segment->window();
  if constexpr (walk == option_walk::iterator) {
    folded += fold_options_iterator(segment->options());
  } else {
    folded += fold_options_in_place(segment->options_bytes());
  }
  return folded + segment->payload().size();
}

template <bool verify_tcp_checksum, option_walk walk = option_walk::iterator>
void BM_ParseTcpFrame(benchmark::State& state, std::size_t first, std::size_t count) {
  const auto& all = frames().tcp_frames;
  std::vector<bytes_view> ring;
  for (std::size_t i = first; i < first + count; ++i) ring.emplace_back(all[i]);
  std::size_t at = 0;
  std::int64_t bytes = 0;
  for (auto _ : state) {
    const bytes_view f = ring[at];
    benchmark::DoNotOptimize(parse_tcp_frame<verify_tcp_checksum, walk>(f));
    bytes += static_cast<std::int64_t>(f.size());
    if (++at == ring.size()) at = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}

// Option walking alone, over the option areas of the frames: the library's
// iterator against the in-place walk. The difference is what the iterator's
// bounds checks (it stays in bounds even if the bytes change after
// `checked()`) and the getters' size checks cost.
void BM_TcpOptions(benchmark::State& state, option_walk walk) {
  std::vector<tcp::option_range> ring;
  for (const frame_bytes& f : frames().tcp_frames) {
    const auto ip = ipv4::view::checked(eth::view::checked(f)->payload());
    ring.push_back(tcp::view::checked(ip->payload())->options());
  }
  std::size_t at = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(walk == option_walk::iterator ? fold_options_iterator(ring[at])
                                                            : fold_options_in_place(ring[at].bytes()));
    if (++at == ring.size()) at = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

// A resolver's read of a response: check the whole message, then every
// question and record with its owner name as text and its RDATA decoded
// (names inside RDATA as text too).
inline std::uint64_t read_dns_response(bytes_view bytes) noexcept {
  const auto message = dns::view::checked(bytes);
  if (!message) return 0;
  std::uint64_t folded = message->id() ^ message->flags();
  for (const dns::question q : message->questions()) {
    folded += q.name().to_name().size() + q.type();
  }
  auto read_records = [&](const dns::record_range& records) {
    for (const dns::record r : records) {
      folded += r.name().to_name().size() + r.type() + r.ttl();
      std::visit(
          [&](const auto& data) {
            using T = std::decay_t<decltype(data)>;
            if constexpr (std::is_same_v<T, dns::a_rdata>) {
              folded += data.address.value;
            } else if constexpr (std::is_same_v<T, dns::cname_rdata> || std::is_same_v<T, dns::ns_rdata> ||
                                 std::is_same_v<T, dns::ptr_rdata>) {
              folded += data.name.to_name().size();
            } else if constexpr (std::is_same_v<T, dns::mx_rdata>) {
              folded += data.preference + data.exchange.to_name().size();
            } else if constexpr (std::is_same_v<T, dns::soa_rdata>) {
              folded += data.mname.to_name().size() + data.rname.to_name().size() + data.serial;
            } else {
              folded += 1;
            }
          },
          r.data());
    }
  };
  read_records(message->answers());
  read_records(message->authorities());
  read_records(message->additionals());
  return folded;
}

void BM_ParseDnsResponse(benchmark::State& state) {
  const bytes_view message = frames().dns_message;
  for (auto _ : state) {
    benchmark::DoNotOptimize(read_dns_response(message));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(message.size()));
}

// ---------------------------------------------------------------------------
// Send path: build.

// One frame buffer reused for every frame, as a stack's pool would hand out;
// the payload is copied into place (the application's write), then the
// headers are prepended with their checksums.
void BM_BuildTcpFrame(benchmark::State& state, std::size_t first, std::size_t count) {
  const auto& all = frames().build_inputs;
  std::vector<const build_input*> ring;
  for (std::size_t i = first; i < first + count; ++i) ring.push_back(&all[i]);
  alignas(64) static std::array<byte, frame_buffer_size> buffer;
  std::size_t at = 0;
  std::int64_t bytes = 0;
  for (auto _ : state) {
    const build_input& in = *ring[at];
    std::memcpy(buffer.data() + headroom, in.payload.data(), in.payload.size());
    const mutable_bytes frame = emit_frame(in, buffer.data());
    benchmark::DoNotOptimize(frame.data());
    benchmark::ClobberMemory();
    bytes += static_cast<std::int64_t>(frame.size());
    if (++at == ring.size()) at = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}

// What filling a SYN-ACK's option list value by value costs, for a stack
// that builds it per connection rather than copying a template.
void BM_TcpOptionsPushSynAck(benchmark::State& state) {
  std::uint32_t tsval = 1;
  for (auto _ : state) {
    tcp::option_list options;
    // An empty list the compiler cannot see into, as a stack's would be:
    // knowing it empty, GCC folds the five pushes into a few constant stores.
    benchmark::DoNotOptimize(options);
    const bool fits = options.push_mss(1460) && options.push_sack_permitted() &&
                      options.push_timestamp(tsval++, 0x01020304) && options.push_nop() &&
                      options.push_window_scale(7);
    benchmark::DoNotOptimize(fits);
    benchmark::DoNotOptimize(options);
  }
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------
// The internet checksum alone.

void BM_Checksum(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  frame_bytes data(size);
  std::mt19937 random(12345);
  for (byte& b : data) b = static_cast<byte>(random());
  for (auto _ : state) {
    benchmark::DoNotOptimize(data.data());
    benchmark::DoNotOptimize(checksum::compute(data));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}

void register_benchmarks() {
  const std::size_t n = frames().tcp_frames.size();
  const std::string mix = "/mix" + std::to_string(n);
  using enum option_walk;
  // The single-frame case is frame 0, the SYN-ACK with five options.
  benchmark::RegisterBenchmark(("parse/eth_ipv4_tcp/checksums" + mix).c_str(), BM_ParseTcpFrame<true>, 0, n);
  benchmark::RegisterBenchmark("parse/eth_ipv4_tcp/checksums/syn_ack", BM_ParseTcpFrame<true>, 0, 1);
  benchmark::RegisterBenchmark(("parse/eth_ipv4_tcp/ip_checksum_only" + mix).c_str(), BM_ParseTcpFrame<false>, 0,
                               n);
  benchmark::RegisterBenchmark("parse/eth_ipv4_tcp/ip_checksum_only/syn_ack", BM_ParseTcpFrame<false>, 0, 1);
  benchmark::RegisterBenchmark(("parse/eth_ipv4_tcp/checksums_options_in_place" + mix).c_str(),
                               BM_ParseTcpFrame<true, in_place>, 0, n);
  benchmark::RegisterBenchmark(("tcp_options/iterator" + mix).c_str(), BM_TcpOptions, iterator);
  benchmark::RegisterBenchmark(("tcp_options/in_place" + mix).c_str(), BM_TcpOptions, in_place);
  benchmark::RegisterBenchmark("parse/dns_response", BM_ParseDnsResponse);
  benchmark::RegisterBenchmark(("build/eth_ipv4_tcp/checksums" + mix).c_str(), BM_BuildTcpFrame, 0, n);
  benchmark::RegisterBenchmark("build/eth_ipv4_tcp/checksums/syn_ack", BM_BuildTcpFrame, 0, 1);
  benchmark::RegisterBenchmark("build/tcp_options/push_syn_ack", BM_TcpOptionsPushSynAck);
  benchmark::RegisterBenchmark("checksum", BM_Checksum)->Arg(64)->Arg(576)->Arg(1500)->Arg(9000)->Arg(65536);
}

std::optional<std::string> flag_value(std::string_view arg, std::string_view name) {
  if (arg.substr(0, name.size()) == name && arg.size() > name.size() && arg[name.size()] == '=') {
    return std::string(arg.substr(name.size() + 1));
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string tcp_path, dns_path;
  for (int i = 1; i < argc; ++i) {
    if (auto v = flag_value(argv[i], "--tcp_frames")) {
      tcp_path = *v;
    } else if (auto d = flag_value(argv[i], "--dns_frames")) {
      dns_path = *d;
    } else {
      std::fprintf(stderr,
                   "wire_bench: unknown argument %s\n"
                   "usage: wire_bench [--tcp_frames=PCAP] [--dns_frames=PCAP] [--benchmark_...]\n",
                   argv[i]);
      return 2;
    }
  }
  load(tcp_path, dns_path);
  benchmark::AddCustomContext("frames", frames().origin);
  benchmark::AddCustomContext("tcp_frames", std::to_string(frames().tcp_frames.size()));
  benchmark::AddCustomContext("dns_message_bytes", std::to_string(frames().dns_message.size()));
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

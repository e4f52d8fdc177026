// Cuts seed inputs for one fuzz target out of capture files.
//
//   pcap_to_corpus LAYER OUTDIR [CAPTURE...]
//
// LAYER is what the target parses: eth, arp, ipv4, icmp, udp, tcp or dns
// write the bytes of that layer from every frame that has it (the quoted
// datagram of an ICMP error counts as an IPv4 seed too; DNS comes from UDP
// and TCP port 53 and 5353, the TCP length prefix taken off); frame writes
// each frame behind its link-type byte (frame_input.hpp); pcap copies the
// capture files themselves. Each seed is a file named after a hash of its
// bytes, so duplicates collapse.
//
// For dns it also writes messages built with dns::writer that hold every
// RDATA type the parser decodes: the captures have A, AAAA and CNAME
// answers, but no MX or SOA, whose exact lengths the fuzzer seldom guesses.
//
// Seeds start the fuzzer near real traffic; nothing checks them, so the
// layers are cut out leniently (IPv4 with checked_quoted, so a datagram cut
// short by the snapshot length still gives its transport header). A capture
// that cannot be read is reported and skipped: the shared captures include
// damaged files on purpose.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "frame_input.hpp"
#include "pystack/pcap/file.hpp"
#include "pystack/wire/dns.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/icmp.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"
#include "pystack/wire/udp.hpp"

namespace {

using namespace pystack;

constexpr std::string_view layers[] = {"eth", "arp", "ipv4", "icmp", "udp", "tcp", "dns", "frame", "pcap"};

class corpus {
 public:
  explicit corpus(std::filesystem::path dir) : dir_(std::move(dir)) {}

  void add(bytes_view bytes) {
    // FNV-1a: stable names, so the same seed from two files is one file.
    std::uint64_t hash = 0xcbf29ce484222325u;
    for (byte b : bytes) hash = (hash ^ b) * 0x100000001b3u;
    if (!seen_.insert(hash).second) return;
    char name[17];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(hash));
    std::ofstream out(dir_ / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "pcap_to_corpus: cannot write %s\n", (dir_ / name).c_str());
      std::exit(1);
    }
    ++written_;
  }
  std::size_t written() const noexcept { return written_; }

 private:
  std::filesystem::path dir_;
  std::set<std::uint64_t> seen_;
  std::size_t written_ = 0;
};

bool is_dns_port(std::uint16_t port) { return port == 53 || port == 5353; }

// `depth` bounds the ICMP-error-quotes-a-datagram recursion.
void from_ipv4(bytes_view packet, std::string_view layer, corpus& out, int depth = 0) {
  if (layer == "ipv4") out.add(packet);
  const auto ip = ipv4::view::checked_quoted(packet);
  if (!ip || ip->fragment_offset() != 0) return;
  const bytes_view payload = ip->payload();
  switch (ip->protocol()) {
    case ipv4::protocol::icmp: {
      if (layer == "icmp") out.add(payload);
      const auto message = icmp::view::checked(payload);
      if (message && message->is_error() && depth < 2) from_ipv4(message->payload(), layer, out, depth + 1);
      break;
    }
    case ipv4::protocol::udp: {
      if (layer == "udp") out.add(payload);
      const auto datagram = udp::view::checked(payload);
      if (layer == "dns" && datagram &&
          (is_dns_port(datagram->source_port()) || is_dns_port(datagram->destination_port()))) {
        out.add(datagram->payload());
      }
      break;
    }
    case ipv4::protocol::tcp: {
      if (layer == "tcp") out.add(payload);
      const auto segment = tcp::view::checked(payload);
      // RFC 1035 §4.2.2: a two-byte length, then the message.
      if (layer == "dns" && segment && segment->payload().size() > 2 &&
          (is_dns_port(segment->source_port()) || is_dns_port(segment->destination_port()))) {
        out.add(segment->payload().subspan(2));
      }
      break;
    }
    default:
      break;
  }
}

void from_frame(pystack::pcap::link_type link, bytes_view frame, std::string_view layer, corpus& out) {
  if (layer == "frame") {
    std::vector<byte> input{fuzz::byte_from_link(link)};
    input.insert(input.end(), frame.begin(), frame.end());
    out.add(input);
    return;
  }
  if (link != pystack::pcap::link_type::ethernet) {
    from_ipv4(frame, layer, out);
    return;
  }
  if (layer == "eth") out.add(frame);
  const auto e = eth::view::checked(frame);
  if (!e) return;
  if (e->ethertype() == eth::ethertype::arp && layer == "arp") out.add(e->payload());
  if (e->ethertype() == eth::ethertype::ipv4) from_ipv4(e->payload(), layer, out);
}

// A response with one record of each decoded type, names compressed
// against each other, and the same records as a query's additionals.
void built_dns(corpus& out) {
  std::vector<byte> buffer(dns::max_udp_size);
  const byte v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const std::string_view strings[] = {"v=spf1 -all", ""};
  for (const bool response : {true, false}) {
    auto w = dns::writer::start(buffer, dns::header_repr{.id = 0x1234, .qr = response, .rd = true});
    if (!w) std::abort();
    const auto s = response ? dns::section::answer : dns::section::additional;
    const bool ok = w->add_question("www.example.com", dns::type::any) &&
                    w->add_a(s, "www.example.com", 300, ipv4_address{0xc0000201}) &&
                    w->add_aaaa(s, "www.example.com", 300, v6) &&
                    w->add_cname(s, "alias.example.com", 300, "www.example.com") &&
                    w->add_ns(s, "example.com", 3600, "ns1.example.com") &&
                    w->add_ptr(s, "1.2.0.192.in-addr.arpa", 60, "www.example.com") &&
                    w->add_mx(s, "example.com", 3600, 10, "mail.example.com") &&
                    w->add_txt(s, "example.com", 60, strings) &&
                    w->add_soa(s, "example.com", 60,
                               dns::soa_repr{"ns1.example.com", "hostmaster.example.com", 2024010101, 7200, 900,
                                             1209600, 300}) &&
                    w->add_record(s, "_sip._udp.example.com", 33, dns::class_code::in, 60,
                                  bytes_view(v6).first(8)) &&
                    w->add_record(dns::section::additional, ".", dns::type::opt, 4096, 0, {});
    if (!ok) std::abort();
    out.add(w->message());
  }
}

void from_file(const std::string& path, std::string_view layer, corpus& out) {
  if (layer == "pcap") {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "pcap_to_corpus: cannot read %s (skipped)\n", path.c_str());
      return;
    }
    const std::vector<byte> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    out.add(bytes);
    return;
  }
  auto reader = pystack::pcap::reader::open(path);
  if (!reader) {
    std::fprintf(stderr, "pcap_to_corpus: %s (skipped)\n", reader.error().message.c_str());
    return;
  }
  for (;;) {
    auto frame = reader->next();
    if (!frame) {
      std::fprintf(stderr, "pcap_to_corpus: %s (rest of the file skipped)\n", frame.error().message.c_str());
      return;
    }
    if (!*frame) return;
    from_frame(reader->link(), (*frame)->bytes, layer, out);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool known_layer =
      argc >= 2 && std::find(std::begin(layers), std::end(layers), std::string_view(argv[1])) != std::end(layers);
  if (argc < 3 || !known_layer) {
    std::fprintf(stderr,
                 "usage: pcap_to_corpus LAYER OUTDIR [CAPTURE...]\n"
                 "  LAYER: eth, arp, ipv4, icmp, udp, tcp, dns, frame or pcap\n");
    return 2;
  }
  const std::string_view layer = argv[1];
  std::error_code ec;
  std::filesystem::create_directories(argv[2], ec);
  if (ec) {
    std::fprintf(stderr, "pcap_to_corpus: cannot create %s: %s\n", argv[2], ec.message().c_str());
    return 1;
  }
  corpus out{argv[2]};
  for (int i = 3; i < argc; ++i) from_file(argv[i], layer, out);
  if (layer == "dns") built_dns(out);
  std::printf("pcap_to_corpus: %zu %s seeds from %d captures\n", out.written(), argv[1], argc - 3);
  return 0;
}

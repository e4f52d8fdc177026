// reemit: rebuilds every frame of a capture from the library's reprs and says
// whether the bytes come out the same.
//
//   reemit CAPTURE [DNS_OUT]
//
// For each frame, each layer is parsed into its `repr` (Ethernet, then ARP or
// IPv4, then TCP, UDP or ICMP), and the frame is built anew in a buffer
// pre-filled with 0xa5: the innermost payload is copied into place, then the
// headers are emitted from the inside out, so that `emit` recomputes every
// length and checksum. A field that a repr forgets, or an emit that leaves a
// byte unwritten, shows as a difference. The capture is made by Scapy, which
// computed the lengths and checksums itself: equality checks both sides.
//
// Prints one JSON object per frame on standard output:
//   {"frame": N, "ok": true}
//   {"frame": N, "ok": false, "offset": K, "expected": B, "actual": B}
//   {"frame": N, "ok": false, "error": "..."}   (a layer did not parse)
//
// With DNS_OUT, every UDP frame to or from port 53 is also written to the
// pcap DNS_OUT with its DNS message re-encoded through `dns::writer` from the
// parsed header, questions and records (and the UDP, IPv4 and Ethernet
// headers emitted around it); its line then carries "dns_out": M, the
// 1-based index of that frame in DNS_OUT, so that Scapy can read our message
// back and compare it with the original. Exit status 0 when the capture was
// read, 1 when it could not be, 2 on bad usage; differences do not change it
// (the caller judges the lines).
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "pystack/pcap/file.hpp"
#include "pystack/wire/arp.hpp"
#include "pystack/wire/dns.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/icmp.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"
#include "pystack/wire/udp.hpp"

namespace {

using namespace pystack;

constexpr byte fill = 0xa5;

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + '"';
}

void copy_into(mutable_bytes destination, std::size_t at, bytes_view source) {
  std::copy(source.begin(), source.end(), destination.begin() + static_cast<std::ptrdiff_t>(at));
}

// The layers of one frame as reprs, plus the bytes no repr covers: the
// innermost payload and the link trailer after the network packet.
struct parsed_frame {
  eth::repr ethernet;
  std::optional<arp::repr> arp_packet;
  std::optional<ipv4::repr> ip;
  std::optional<tcp::repr> tcp_segment;
  std::optional<udp::repr> udp_datagram;
  bool udp_checksum_present = true;
  std::optional<icmp::repr> icmp_message;
  // What follows the innermost parsed header, up to the end of the network
  // packet: application data, an ICMP body, or a whole IP payload that was
  // not decoded (a later fragment, another protocol).
  bytes_view payload;
  // Bytes of the IP payload after a UDP datagram's length: none in what
  // Scapy builds, but copied so that such a frame still round-trips.
  bytes_view after_transport;
  // Link padding after the network packet.
  bytes_view trailer;
};

expected<parsed_frame> parse_frame(bytes_view frame) {
  parsed_frame out;
  auto ethernet = eth::view::checked(frame);
  if (!ethernet) return ethernet.error();
  out.ethernet = *eth::repr::parse(*ethernet);
  const bytes_view network = ethernet->payload();

  if (ethernet->ethertype() == eth::ethertype::arp) {
    auto packet = arp::view::checked(network);
    if (!packet) return packet.error();
    auto r = arp::repr::parse(*packet);
    if (!r) return r.error();
    out.arp_packet = *r;
    out.trailer = network.subspan(packet->bytes().size());
    return out;
  }
  if (ethernet->ethertype() != eth::ethertype::ipv4) {
    out.payload = network;
    return out;
  }

  auto datagram = ipv4::view::checked(network);
  if (!datagram) return datagram.error();
  out.ip = *ipv4::repr::parse(*datagram);
  out.trailer = network.subspan(datagram->bytes().size());
  const bytes_view transport = datagram->payload();
  out.payload = transport;
  // Transport headers sit only in the first fragment (RFC 791 §2.3).
  if (datagram->fragment_offset() != 0) return out;

  switch (datagram->protocol()) {
    case ipv4::protocol::tcp: {
      auto segment = tcp::view::checked(transport);
      if (!segment) return segment.error();
      out.tcp_segment = *tcp::repr::parse(*segment);
      out.payload = segment->payload();
      break;
    }
    case ipv4::protocol::udp: {
      auto user_datagram = udp::view::checked(transport);
      if (!user_datagram) return user_datagram.error();
      out.udp_datagram = *udp::repr::parse(*user_datagram);
      out.udp_checksum_present = user_datagram->checksum_present();
      out.payload = user_datagram->payload();
      out.after_transport = transport.subspan(user_datagram->bytes().size());
      break;
    }
    case ipv4::protocol::icmp: {
      auto message = icmp::view::checked(transport);
      if (!message) return message.error();
      out.icmp_message = *icmp::repr::parse(*message);
      out.payload = message->payload();
      break;
    }
    default:
      break;
  }
  return out;
}


// Builds the frame of `layers` around `payload` (which replaces the parsed
// payload, so that a re-encoded DNS message can be wrapped too), emitting
// from the inside out into a buffer that starts as all 0xa5.
std::vector<byte> build_frame(const parsed_frame& layers, bytes_view payload) {
  std::size_t transport_header = 0;
  if (layers.tcp_segment) transport_header = layers.tcp_segment->size();
  if (layers.udp_datagram) transport_header = udp::repr::size();
  if (layers.icmp_message) transport_header = icmp::repr::size();
  const std::size_t transport_size = transport_header + payload.size();
  std::size_t network_size = 0;
  if (layers.arp_packet) network_size = arp::repr::size();
  else if (layers.ip) network_size = layers.ip->size() + transport_size + layers.after_transport.size();
  else network_size = payload.size();

  const std::size_t link_header = layers.ethernet.size();
  std::vector<byte> buffer(link_header + network_size + layers.trailer.size(), fill);
  const mutable_bytes frame(buffer);
  copy_into(frame, link_header + network_size, layers.trailer);

  if (layers.arp_packet) {
    layers.arp_packet->emit(frame.subspan(link_header, network_size));
  } else if (layers.ip) {
    const std::size_t transport_at = link_header + layers.ip->size();
    copy_into(frame, transport_at + transport_header, payload);
    copy_into(frame, transport_at + transport_size, layers.after_transport);
    const mutable_bytes transport = frame.subspan(transport_at, transport_size);
    const ipv4_address destination = layers.ip->final_destination();
    if (layers.tcp_segment) {
      layers.tcp_segment->emit(transport, layers.ip->source, destination);
    } else if (layers.udp_datagram) {
      // RFC 768: a zero checksum field means none was sent; keep it so.
      if (layers.udp_checksum_present) {
        layers.udp_datagram->emit(transport, layers.ip->source, destination);
      } else {
        layers.udp_datagram->emit_without_checksum(transport);
      }
    } else if (layers.icmp_message) {
      layers.icmp_message->emit(transport);
    }
    layers.ip->emit(frame.subspan(link_header, network_size));
  } else {
    copy_into(frame, link_header, payload);
  }
  layers.ethernet.emit(frame);
  return buffer;
}

bool is_dns(const parsed_frame& layers) {
  return layers.udp_datagram &&
         (layers.udp_datagram->source_port == dns::port || layers.udp_datagram->destination_port == dns::port);
}

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

// Re-encodes a DNS message from what the view parsed: the header, then each
// question and record through the writer's typed `add_*` for the types the
// library decodes, and as opaque RDATA otherwise. Names are written from the
// parsed `name_view`s, so the writer chooses its own compression.
expected<std::vector<byte>> reencode_dns(bytes_view message) {
  auto parsed = dns::view::checked(message);
  if (!parsed) return parsed.error();
  auto header = dns::header_repr::parse(*parsed);
  if (!header) return header.error();
  std::vector<byte> buffer(dns::max_message_size);
  auto writer = dns::writer::start(buffer, *header);
  if (!writer) return writer.error();

  for (const dns::question q : parsed->questions()) {
    if (auto ok = writer->add_question(q.name(), q.type(), q.class_code()); !ok) return ok.error();
  }
  auto add_section = [&](dns::section s, const dns::record_range& records) -> expected<void> {
    for (const dns::record r : records) {
      const dns::name_view owner = r.name();
      const std::uint32_t ttl = r.ttl();
      auto ok = std::visit(
          overloaded{
              [&](const dns::opaque_rdata& d) {
                return writer->add_record(s, owner, r.type(), r.class_code(), ttl, d.bytes);
              },
              [&](const dns::a_rdata& d) { return writer->add_a(s, owner, ttl, d.address); },
              [&](const dns::aaaa_rdata& d) {
                return writer->add_aaaa(s, owner, ttl, std::span<const byte, 16>(d.address));
              },
              [&](const dns::cname_rdata& d) { return writer->add_cname(s, owner, ttl, d.name); },
              [&](const dns::ns_rdata& d) { return writer->add_ns(s, owner, ttl, d.name); },
              [&](const dns::ptr_rdata& d) { return writer->add_ptr(s, owner, ttl, d.name); },
              [&](const dns::mx_rdata& d) { return writer->add_mx(s, owner, ttl, d.preference, d.exchange); },
              [&](const dns::txt_rdata& d) {
                std::vector<std::string_view> strings;
                for (std::string_view text : d.strings()) strings.push_back(text);
                return writer->add_txt(s, owner, ttl, strings);
              },
              [&](const dns::soa_rdata& d) {
                return writer->add_soa(s, owner, ttl,
                                       dns::soa_repr{d.mname, d.rname, d.serial, d.refresh, d.retry,
                                                     d.expire, d.minimum});
              },
          },
          r.data());
      if (!ok) return ok.error();
    }
    return {};
  };
  if (auto ok = add_section(dns::section::answer, parsed->answers()); !ok) return ok.error();
  if (auto ok = add_section(dns::section::authority, parsed->authorities()); !ok) return ok.error();
  if (auto ok = add_section(dns::section::additional, parsed->additionals()); !ok) return ok.error();
  const auto written = writer->message();
  return std::vector<byte>(written.begin(), written.end());
}

int run(const char* capture, const char* dns_out_path) {
  auto reader = pcap::reader::open(capture);
  if (!reader) {
    std::fprintf(stderr, "reemit: %s\n", reader.error().message.c_str());
    return 1;
  }
  if (reader->link() != pcap::link_type::ethernet) {
    std::fprintf(stderr, "reemit: %s: only Ethernet captures are rebuilt\n", capture);
    return 1;
  }
  std::optional<pcap::writer> dns_out;
  if (dns_out_path != nullptr) {
    auto created = pcap::writer::create(dns_out_path, pcap::link_type::ethernet);
    if (!created) {
      std::fprintf(stderr, "reemit: %s\n", created.error().message.c_str());
      return 1;
    }
    dns_out.emplace(std::move(*created));
  }
  std::size_t dns_written = 0;

  for (std::size_t index = 1;; ++index) {
    auto next = reader->next();
    if (!next) {
      std::fprintf(stderr, "reemit: %s\n", next.error().message.c_str());
      return 1;
    }
    if (!next->has_value()) break;
    const pcap::frame& captured = **next;
    std::string line = "{\"frame\": " + std::to_string(index);

    auto layers = parse_frame(captured.bytes);
    if (!layers) {
      line += ", \"ok\": false, \"error\": " + json_string(layers.error().message()) + "}\n";
      std::fputs(line.c_str(), stdout);
      continue;
    }
    const std::vector<byte> rebuilt = build_frame(*layers, layers->payload);
    const bytes_view original = captured.bytes;
    const auto [theirs, ours] = std::mismatch(original.begin(), original.end(), rebuilt.begin(), rebuilt.end());
    if (theirs == original.end() && ours == rebuilt.end()) {
      line += ", \"ok\": true";
    } else {
      const auto offset = static_cast<std::size_t>(theirs - original.begin());
      line += ", \"ok\": false, \"offset\": " + std::to_string(offset);
      line += ", \"expected\": " + (theirs == original.end() ? std::string("null") : std::to_string(*theirs));
      line += ", \"actual\": " + (ours == rebuilt.end() ? std::string("null") : std::to_string(*ours));
      line += ", \"expected_len\": " + std::to_string(original.size());
      line += ", \"actual_len\": " + std::to_string(rebuilt.size());
    }

    if (dns_out && is_dns(*layers)) {
      auto message = reencode_dns(layers->payload);
      if (!message) {
        line += ", \"dns_error\": " + json_string(message.error().message());
      } else {
        const std::vector<byte> frame = build_frame(*layers, *message);
        if (auto ok = dns_out->write(frame, captured.timestamp); !ok) {
          std::fprintf(stderr, "reemit: %s\n", ok.error().message.c_str());
          return 1;
        }
        line += ", \"dns_out\": " + std::to_string(++dns_written);
      }
    }
    line += "}\n";
    std::fputs(line.c_str(), stdout);
  }
  if (dns_out) {
    if (auto ok = dns_out->flush(); !ok) {
      std::fprintf(stderr, "reemit: %s\n", ok.error().message.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fputs("usage: reemit CAPTURE [DNS_OUT]\n", stderr);
    return 2;
  }
  return run(argv[1], argc == 3 ? argv[2] : nullptr);
}

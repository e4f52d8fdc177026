// One captured frame to one JSON object: the engine of the `dissect` tool.
//
// Every value comes from the library's wire views; there is no second parser
// here, which is the point: `dissect` is the window through which tshark,
// tcpdump's decodings and Scapy check those views. The format is described
// in tools/dissect.md.
//
// Decoding rules that are choices rather than facts of the formats:
// - The first error stops decoding, except a datagram cut short of its IPv4
//   total length (a capture's snapshot length, or a lying length field): it
//   is decoded as far as its bytes go, as tcpdump does, the error says it was
//   truncated, and transport checksums are `null` (they cannot be checked).
// - TCP, UDP and ICMP are decoded only from an unfragmented datagram or a
//   first fragment; in a first fragment with more to come the transport
//   checksum is `null`.
// - DNS is decoded from UDP with port 53 on either side.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "pystack/internal/json.hpp"
#include "pystack/pcap/file.hpp"
#include "pystack/wire/arp.hpp"
#include "pystack/wire/dns.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/icmp.hpp"
#include "pystack/wire/ipv4.hpp"
#include "pystack/wire/tcp.hpp"
#include "pystack/wire/udp.hpp"

namespace pystack::dissect {

namespace detail {

using internal::json_writer;

inline constexpr std::uint16_t dns_port = 53;

class frame_dissector {
 public:
  explicit frame_dissector(std::string& out) : json_(out) {}

  void run(pcap::link_type link, std::size_t index, bytes_view bytes) {
    json_.begin_object();
    json_.member("frame", index).member("len", bytes.size());
    switch (link) {
      case pcap::link_type::ethernet:
        ethernet(bytes);
        break;
      case pcap::link_type::raw:
        // Raw IP: the version nibble tells IPv4 from IPv6, which is not decoded.
        if (!bytes.empty() && (bytes[0] >> 4) == ipv4::version_number) ipv4_datagram(bytes);
        break;
      case pcap::link_type::ipv4:
        ipv4_datagram(bytes);
        break;
    }
    if (!error_.empty()) json_.member("error", std::string_view(error_));
    json_.end_object();
  }

 private:
  void fail(const parse_error& e) {
    if (error_.empty()) error_ = e.message();
  }

  void ethernet(bytes_view bytes) {
    const auto frame = eth::view::checked(bytes);
    if (!frame) return fail(frame.error());
    json_.key("eth").begin_object();
    json_.member("dst", frame->destination().to_string())
        .member("src", frame->source().to_string())
        .member("type", frame->ethertype());
    if (frame->vlan_count() > 0) {
      json_.key("vlan").begin_array();
      for (std::size_t i = 0; i < frame->vlan_count(); ++i) json_.value(frame->vlan(i).vid);
      json_.end_array();
    }
    json_.end_object();

    switch (frame->ethertype()) {
      case eth::ethertype::ipv4: return ipv4_datagram(frame->payload());
      case eth::ethertype::arp: return arp_packet(frame->payload());
      default: return;
    }
  }

  void arp_packet(bytes_view bytes) {
    const auto packet = arp::view::checked(bytes);
    if (!packet) return fail(packet.error());
    const auto typed = packet->ethernet_ipv4();
    if (!typed) return fail(typed.error());
    json_.key("arp").begin_object();
    json_.member("op", typed->operation())
        .member("sha", typed->sender_hardware_address().to_string())
        .member("spa", typed->sender_protocol_address().to_string())
        .member("tha", typed->target_hardware_address().to_string())
        .member("tpa", typed->target_protocol_address().to_string());
    json_.end_object();
  }

  void ipv4_datagram(bytes_view bytes) {
    auto datagram = ipv4::view::checked(bytes);
    bool whole = true;
    if (!datagram && datagram.error().code == errc::truncated && datagram.error().field == std::string_view("datagram")) {
      fail(datagram.error());
      datagram = ipv4::view::checked_quoted(bytes);
      whole = false;
    }
    if (!datagram) return fail(datagram.error());
    const auto& ip = *datagram;
    json_.key("ipv4").begin_object();
    json_.member("src", ip.source().to_string())
        .member("dst", ip.destination().to_string())
        .member("ihl", ip.header_length() / 4)
        .member("tos", ip.tos())
        .member("len", ip.total_length())
        .member("id", ip.identification())
        .member("df", ip.dont_fragment())
        .member("mf", ip.more_fragments())
        .member("frag", ip.fragment_offset())
        .member("ttl", ip.ttl())
        .member("proto", ip.protocol())
        .member("checksum_ok", ip.verify_checksum())
        .member("options_len", ip.header_length() - ipv4::header_size);
    json_.end_object();

    if (ip.fragment_offset() != 0) return;
    // A transport checksum covers the whole datagram: only checkable when
    // every byte of it is here.
    const bool checkable = whole && !ip.more_fragments();
    switch (ip.protocol()) {
      case ipv4::protocol::icmp: return icmp_message(ip.payload(), checkable);
      case ipv4::protocol::udp: return udp_datagram(ip, checkable);
      case ipv4::protocol::tcp: return tcp_segment(ip, checkable);
      default: return;
    }
  }

  void checksum_member(bool checkable, bool ok) {
    json_.key("checksum_ok");
    if (checkable) {
      json_.value(ok);
    } else {
      json_.null();
    }
  }

  void icmp_message(bytes_view bytes, bool checkable) {
    const auto message = icmp::view::checked(bytes);
    if (!message) return fail(message.error());
    json_.key("icmp").begin_object();
    json_.member("type", message->type()).member("code", message->code());
    checksum_member(checkable, checkable && message->verify_checksum());
    if (message->is_echo()) {
      json_.member("id", message->identifier()).member("seq", message->sequence_number());
    }
    json_.end_object();
  }

  void udp_datagram(const ipv4::view& ip, bool checkable) {
    // A datagram cut short (capture or first fragment) still has its header;
    // its length field then counts bytes that are not here.
    const auto datagram = checkable ? udp::view::checked(ip.payload()) : udp::view::checked_quoted(ip.payload());
    if (!datagram) return fail(datagram.error());
    json_.key("udp").begin_object();
    json_.member("sport", datagram->source_port())
        .member("dport", datagram->destination_port())
        .member("len", datagram->length());
    checksum_member(checkable || !datagram->checksum_present(),
                    !datagram->checksum_present() || datagram->verify_checksum(ip.source(), ip.final_destination()));
    json_.end_object();
    json_.member("payload_len", datagram->payload().size());
    if (datagram->source_port() == dns_port || datagram->destination_port() == dns_port) {
      dns_message(datagram->payload());
    }
  }

  void tcp_segment(const ipv4::view& ip, bool checkable) {
    const auto segment = tcp::view::checked(ip.payload());
    if (!segment) return fail(segment.error());
    const auto& s = *segment;
    json_.key("tcp").begin_object();
    json_.member("sport", s.source_port())
        .member("dport", s.destination_port())
        .member("seq", s.sequence_number().raw())
        .member("ack", s.ack_number().raw())
        .member("off", s.data_offset())
        .member("flags", s.flags().to_string())
        .member("win", s.window())
        .member("urg", s.urgent_pointer());
    checksum_member(checkable, checkable && s.verify_checksum(ip.source(), ip.final_destination()));
    json_.key("options").begin_array();
    for (const tcp::option_ref o : s.options()) tcp_option(o);
    json_.end_array();
    json_.end_object();
    json_.member("payload_len", s.payload().size());
  }

  void tcp_option(tcp::option_ref o) {
    json_.begin_object();
    switch (o.kind()) {
      case tcp::option_kind::eol: json_.member("kind", "eol"); break;
      case tcp::option_kind::nop: json_.member("kind", "nop"); break;
      case tcp::option_kind::mss: json_.member("kind", "mss").member("value", o.mss()); break;
      case tcp::option_kind::window_scale: json_.member("kind", "wscale").member("value", o.window_scale()); break;
      case tcp::option_kind::sack_permitted: json_.member("kind", "sack_perm"); break;
      case tcp::option_kind::sack: {
        json_.member("kind", "sack").key("blocks").begin_array();
        for (const auto& block : o.sack()) {
          json_.begin_array().value(block.left.raw()).value(block.right.raw()).end_array();
        }
        json_.end_array();
        break;
      }
      case tcp::option_kind::timestamp: {
        const auto ts = o.timestamp();
        json_.member("kind", "timestamp").member("tsval", ts.tsval).member("tsecr", ts.tsecr);
        break;
      }
      case tcp::option_kind::unknown:
        json_.member("kind", "unknown").member("code", o.code()).member("len", o.size());
        break;
    }
    json_.end_object();
  }

  void dns_message(bytes_view bytes) {
    const auto message = dns::view::checked(bytes);
    if (!message) return fail(message.error());
    const auto& m = *message;
    json_.key("dns").begin_object();
    json_.member("id", m.id())
        .member("qr", m.qr())
        .member("opcode", m.opcode())
        .member("aa", m.aa())
        .member("tc", m.tc())
        .member("rd", m.rd())
        .member("ra", m.ra())
        .member("rcode", m.rcode());
    json_.key("questions").begin_array();
    for (const dns::question& q : m.questions()) {
      json_.begin_object();
      json_.member("name", q.name().to_name().text()).member("type", q.type()).member("class", q.class_code());
      json_.end_object();
    }
    json_.end_array();
    dns_records("answers", m.answers());
    dns_records("authorities", m.authorities());
    dns_records("additionals", m.additionals());
    json_.end_object();
  }

  template <class Records>
  void dns_records(std::string_view section, const Records& records) {
    json_.key(section).begin_array();
    for (const dns::record& r : records) {
      json_.begin_object();
      json_.member("name", r.name().to_name().text())
          .member("type", r.type())
          .member("class", r.class_code())
          .member("ttl", r.ttl());
      json_.key("data");
      dns_rdata(r);
      json_.end_object();
    }
    json_.end_array();
  }

  void dns_rdata(const dns::record& r) {
    // The format: A dotted quad, AAAA in RFC 5952 text, names for CNAME, NS
    // and PTR, lowercase hex of the RDATA for everything else.
    const dns::typed_rdata typed = r.data();
    if (const auto* a = std::get_if<dns::a_rdata>(&typed)) return void(json_.value(a->address.to_string()));
    if (const auto* aaaa = std::get_if<dns::aaaa_rdata>(&typed)) return void(json_.value(aaaa->text().view()));
    if (const auto* cname = std::get_if<dns::cname_rdata>(&typed)) return void(json_.value(cname->name.to_name().text()));
    if (const auto* ns = std::get_if<dns::ns_rdata>(&typed)) return void(json_.value(ns->name.to_name().text()));
    if (const auto* ptr = std::get_if<dns::ptr_rdata>(&typed)) return void(json_.value(ptr->name.to_name().text()));
    static constexpr char hex[] = "0123456789abcdef";
    std::string text;
    text.reserve(r.rdata().size() * 2);
    for (const byte b : r.rdata()) {
      text += hex[b >> 4];
      text += hex[b & 0xf];
    }
    json_.value(std::string_view(text));
  }

  json_writer json_;
  std::string error_;
};

}  // namespace detail

// Appends one JSON object describing the frame (no trailing newline).
// `index` is the frame's 1-based position in its capture.
inline void append_frame(std::string& out, pcap::link_type link, std::size_t index, bytes_view captured) {
  detail::frame_dissector(out).run(link, index, captured);
}

inline std::string frame(pcap::link_type link, std::size_t index, bytes_view captured) {
  std::string out;
  append_frame(out, link, index, captured);
  return out;
}

}  // namespace pystack::dissect

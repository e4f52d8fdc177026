// Frames for the device tests, built with the library's wire reprs so that
// the bytes on a link or a veth are real Ethernet/ARP/IPv4/ICMP.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "pystack/wire/address.hpp"
#include "pystack/wire/arp.hpp"
#include "pystack/wire/ethernet.hpp"
#include "pystack/wire/icmp.hpp"
#include "pystack/wire/ipv4.hpp"

namespace pystack::test {

inline constexpr mac_address mac_a{{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}};
inline constexpr mac_address mac_b{{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}};
inline constexpr ipv4_address ip_a = ipv4_address::from_octets(10, 0, 0, 1);
inline constexpr ipv4_address ip_b = ipv4_address::from_octets(10, 0, 0, 2);

// Ethernet's minimum frame without the FCS (IEEE 802.3 §3.2.8).
inline constexpr std::size_t minimum_frame = 60;

// An ICMP echo request whose sequence number and payload both carry
// `number`, so that a receiver can tell frames apart and see corruption.
inline std::vector<byte> echo_frame(std::uint16_t number, std::size_t payload_size = 32,
                                    mac_address source = mac_a, mac_address destination = mac_b,
                                    ipv4_address from = ip_a, ipv4_address to = ip_b, bool reply = false) {
  const std::size_t ip_offset = 14;
  const std::size_t icmp_offset = ip_offset + 20;
  std::vector<byte> frame(icmp_offset + icmp::header_size + payload_size);
  const auto message = std::span(frame).subspan(icmp_offset);
  const auto payload = message.subspan(icmp::header_size);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<byte>(number + i);
  (reply ? icmp::repr::echo_reply(0x5157, number) : icmp::repr::echo_request(0x5157, number)).emit(message);
  ipv4::repr ip;
  ip.identification = number;
  ip.protocol = ipv4::protocol::icmp;
  ip.source = from;
  ip.destination = to;
  ip.emit(std::span(frame).subspan(ip_offset));
  eth::repr{destination, source, eth::ethertype::ipv4}.emit(frame);
  return frame;
}

// The sequence number of a frame made by echo_frame.
inline std::uint16_t number_of(bytes_view frame) {
  return frame.size() >= 42 ? wire::load_be16(frame.data() + 40) : 0xffff;
}

// An ARP packet (RFC 826) in a minimum-size Ethernet frame.
inline std::vector<byte> arp_frame(std::uint16_t operation, mac_address sender, ipv4_address sender_ip,
                                   mac_address target, ipv4_address target_ip, mac_address destination) {
  std::vector<byte> frame(minimum_frame, 0);
  arp::repr{operation, sender, sender_ip, target, target_ip}.emit(std::span(frame).subspan(14));
  eth::repr{destination, sender, eth::ethertype::arp}.emit(frame);
  return frame;
}

}  // namespace pystack::test

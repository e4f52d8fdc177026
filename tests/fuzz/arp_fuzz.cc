// ARP: any bytes through the generic `arp::view::checked`, then the
// Ethernet/IPv4 view; on success every accessor, the repr round trip and the
// setters.
#include <algorithm>

#include "fuzz_support.hpp"
#include "pystack/wire/arp.hpp"

using namespace pystack;
using fuzz::consume;
using fuzz::consume_bytes;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view input(data, size);
  fuzz::tail_reader extra(input);

  const auto v = arp::view::checked(input);
  if (!v) {
    fuzz::check_error(v.error(), "arp", size);
    PYSTACK_FUZZ_REQUIRE(!arp::ethernet_ipv4_view::checked(input).has_value());
    return 0;
  }
  consume(v->hardware_type());
  consume(v->protocol_type());
  consume(v->operation());
  const std::size_t hlen = v->hardware_length(), plen = v->protocol_length();
  consume_bytes(v->sender_hardware_bytes());
  consume_bytes(v->sender_protocol_bytes());
  consume_bytes(v->target_hardware_bytes());
  consume_bytes(v->target_protocol_bytes());
  consume_bytes(v->header());
  consume_bytes(v->bytes());
  PYSTACK_FUZZ_REQUIRE(v->sender_hardware_bytes().size() == hlen && v->target_hardware_bytes().size() == hlen);
  PYSTACK_FUZZ_REQUIRE(v->sender_protocol_bytes().size() == plen && v->target_protocol_bytes().size() == plen);
  PYSTACK_FUZZ_REQUIRE(v->packet_length() == arp::header_size + 2 * (hlen + plen));
  PYSTACK_FUZZ_REQUIRE(v->packet_length() <= size && v->bytes().data() == data);
  // The four address spans tile the packet after the fixed header.
  PYSTACK_FUZZ_REQUIRE(v->target_protocol_bytes().data() + plen == data + v->packet_length());

  const auto typed = v->ethernet_ipv4();
  PYSTACK_FUZZ_REQUIRE(typed.has_value() == v->is_ethernet_ipv4());
  const auto r = arp::repr::parse(*v);
  PYSTACK_FUZZ_REQUIRE(r.has_value() == typed.has_value());
  if (!typed) {
    fuzz::check_error(typed.error(), "arp", size);
    return 0;
  }
  consume(typed->sender_hardware_address());
  consume(typed->sender_protocol_address());
  consume(typed->target_hardware_address());
  consume(typed->target_protocol_address());
  consume_bytes(typed->bytes());
  PYSTACK_FUZZ_REQUIRE(typed->bytes().size() == arp::ethernet_ipv4_size);
  PYSTACK_FUZZ_REQUIRE(typed->operation() == v->operation());
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(typed->sender_hardware_address().octets, v->sender_hardware_bytes()));
  PYSTACK_FUZZ_REQUIRE(typed->target_protocol_address() ==
                       ipv4_address::from_bytes(v->target_protocol_bytes().data()));

  // Emit into exactly 28 bytes: the packet comes back byte for byte.
  auto out = fuzz::exact_buffer(r->size());
  r->emit(out);
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(out, v->bytes()));
  const auto back = arp::view::checked(bytes_view(out));
  PYSTACK_FUZZ_REQUIRE(back.has_value());
  const auto r2 = arp::repr::parse(*back);
  PYSTACK_FUZZ_REQUIRE(r2.has_value() && *r2 == *r);

  // Setters on a copy, through both views.
  std::vector<byte> copy(input.begin(), input.end());
  auto m = arp::mutable_ethernet_ipv4_view::checked(std::span<byte>(copy));
  PYSTACK_FUZZ_REQUIRE(m.has_value());
  const arp::repr wanted{extra.u16(), extra.mac(), extra.address(), extra.mac(), extra.address()};
  m->set_operation(wanted.operation);
  m->set_sender_hardware_address(wanted.sender_hardware_address);
  m->set_sender_protocol_address(wanted.sender_protocol_address);
  m->set_target_hardware_address(wanted.target_hardware_address);
  m->set_target_protocol_address(wanted.target_protocol_address);
  const auto reread = arp::repr::parse(*arp::view::checked(bytes_view(copy)));
  PYSTACK_FUZZ_REQUIRE(reread.has_value() && *reread == wanted);
  auto generic = arp::mutable_view::checked(std::span<byte>(copy));
  PYSTACK_FUZZ_REQUIRE(generic.has_value());
  const std::uint16_t hardware_type = extra.u16();
  generic->set_hardware_type(hardware_type);
  PYSTACK_FUZZ_REQUIRE(generic->hardware_type() == hardware_type);
  PYSTACK_FUZZ_REQUIRE(generic->is_ethernet_ipv4() == (hardware_type == arp::hardware_type::ethernet));
  PYSTACK_FUZZ_REQUIRE(std::equal(copy.begin() + arp::ethernet_ipv4_size, copy.end(),
                                  input.begin() + arp::ethernet_ipv4_size));
  return 0;
}

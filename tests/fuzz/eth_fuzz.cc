// Ethernet II with 802.1Q / QinQ tags: any bytes through `eth::view::checked`;
// on success every accessor, the repr round trip and the setters.
#include <algorithm>

#include "fuzz_support.hpp"
#include "pystack/wire/ethernet.hpp"

using namespace pystack;
using fuzz::consume;
using fuzz::consume_bytes;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view input(data, size);
  fuzz::tail_reader extra(input);

  const auto v = eth::view::checked(input);
  if (!v) {
    fuzz::check_error(v.error(), "eth", size);
    return 0;
  }
  consume(v->destination());
  consume(v->source());
  consume(v->ethertype());
  consume(v->destination().to_string());
  consume(v->destination().is_multicast());
  // One index past the tags on purpose: it must give a default tag, not
  // payload bytes read as one.
  for (std::size_t i = 0; i <= v->vlan_count(); ++i) {
    const eth::vlan_tag tag = v->vlan(i);
    consume(tag);
    if (i < v->vlan_count()) {
      PYSTACK_FUZZ_REQUIRE(eth::is_outer_tpid(tag.tpid));
      PYSTACK_FUZZ_REQUIRE(i == 0 || tag.tpid == eth::ethertype::vlan);
      PYSTACK_FUZZ_REQUIRE(eth::vlan_tag::from_tci(tag.tpid, tag.tci()) == tag);
    } else {
      PYSTACK_FUZZ_REQUIRE(tag == eth::vlan_tag{});
    }
  }
  consume_bytes(v->header());
  consume_bytes(v->payload());
  consume_bytes(v->bytes());
  PYSTACK_FUZZ_REQUIRE(v->vlan_count() <= eth::max_vlan_tags);
  PYSTACK_FUZZ_REQUIRE(v->header_size() == eth::header_size + v->vlan_count() * eth::vlan_tag_size);
  PYSTACK_FUZZ_REQUIRE(v->header().size() + v->payload().size() == size);
  PYSTACK_FUZZ_REQUIRE(v->bytes().size() == size);
  PYSTACK_FUZZ_REQUIRE(v->ethertype() >= eth::minimum_ethertype && !eth::is_outer_tpid(v->ethertype()));

  const auto r = eth::repr::parse(*v);
  PYSTACK_FUZZ_REQUIRE(r.has_value());
  PYSTACK_FUZZ_REQUIRE(r->size() == v->header_size());

  // Emit into exactly header + payload: the same bytes come back.
  const auto payload = v->payload();
  auto out = fuzz::exact_buffer(r->size() + payload.size());
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(r->size()));
  r->emit(out);
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(out, input));
  const auto back = eth::view::checked(bytes_view(out));
  PYSTACK_FUZZ_REQUIRE(back.has_value());
  const auto r2 = eth::repr::parse(*back);
  PYSTACK_FUZZ_REQUIRE(r2.has_value() && *r2 == *r);

  // Setters on a copy: each field reads back, nothing else moves.
  std::vector<byte> copy(input.begin(), input.end());
  auto m = eth::mutable_view::checked(std::span<byte>(copy));
  PYSTACK_FUZZ_REQUIRE(m.has_value());
  const mac_address destination = extra.mac(), source = extra.mac();
  m->set_destination(destination);
  m->set_source(source);
  PYSTACK_FUZZ_REQUIRE(m->destination() == destination && m->source() == source);
  const std::uint16_t ethertype = extra.u16();
  m->set_ethertype(ethertype);
  PYSTACK_FUZZ_REQUIRE(m->ethertype() == ethertype);
  // Out of range: ignored.
  m->set_vlan(m->vlan_count(), eth::vlan_tag{eth::ethertype::vlan, 7, true, 100});
  for (std::size_t i = 0; i < m->vlan_count(); ++i) {
    const std::uint8_t pcp = extra.u8() & 0x7;
    const bool dei = (extra.u8() & 1) != 0;
    const std::uint16_t vid = extra.u16() & 0x0fff;
    m->set_vlan_pcp(i, pcp);
    m->set_vlan_dei(i, dei);
    m->set_vlan_vid(i, vid);
    PYSTACK_FUZZ_REQUIRE(m->vlan(i) == (eth::vlan_tag{v->vlan(i).tpid, pcp, dei, vid}));
  }
  PYSTACK_FUZZ_REQUIRE(std::equal(copy.begin() + static_cast<std::ptrdiff_t>(v->header_size()), copy.end(),
                                  payload.begin(), payload.end()));
  return 0;
}

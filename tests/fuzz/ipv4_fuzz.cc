// IPv4: any bytes through `ipv4::view::checked` and `checked_quoted`; on
// success every accessor, every option, the repr round trip, the setters and
// the checksum-preserving updates.
#include <algorithm>

#include "fuzz_support.hpp"
#include "pystack/wire/ipv4.hpp"

using namespace pystack;
using fuzz::consume;
using fuzz::consume_bytes;

namespace {

// Everything a view offers, every option walked.
void touch(const ipv4::view& v) {
  consume(v.version());
  consume(v.tos());
  consume(v.dscp());
  consume(v.ecn());
  consume(v.total_length());
  consume(v.identification());
  consume(v.reserved_flag());
  consume(v.dont_fragment());
  consume(v.more_fragments());
  consume(v.fragment_offset());
  consume(v.ttl());
  consume(v.protocol());
  consume(v.checksum());
  consume(v.source());
  consume(v.destination());
  consume(v.is_fragment());
  consume(v.verify_checksum());
  consume(v.pseudo_header().finish());
  // The pseudo-header's destination is the header's, or the last address
  // of a source route, which lies inside the options.
  const ipv4_address final_destination = v.final_destination();
  if (final_destination != v.destination()) {
    bool inside = false;
    for (std::size_t i = 0; i + 4 <= v.options().size() && !inside; ++i) {
      inside = ipv4_address::from_bytes(v.options().data() + i) == final_destination;
    }
    PYSTACK_FUZZ_REQUIRE(inside);
  }
  consume_bytes(v.options());
  consume_bytes(v.header());
  consume_bytes(v.payload());
  consume_bytes(v.bytes());
  PYSTACK_FUZZ_REQUIRE(v.version() == ipv4::version_number);
  PYSTACK_FUZZ_REQUIRE(v.header_length() >= ipv4::header_size && v.header_length() <= ipv4::max_header_size);
  PYSTACK_FUZZ_REQUIRE(v.header_length() % 4 == 0);
  PYSTACK_FUZZ_REQUIRE(v.total_length() >= v.header_length());
  PYSTACK_FUZZ_REQUIRE(v.header().size() == v.header_length());
  PYSTACK_FUZZ_REQUIRE(v.options().size() == v.header_length() - ipv4::header_size);
  PYSTACK_FUZZ_REQUIRE(v.header().size() + v.payload().size() == v.bytes().size());
  PYSTACK_FUZZ_REQUIRE(v.is_fragment() == (v.more_fragments() || v.fragment_offset() != 0));

  const ipv4::option_range options = v.option_list();
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(options.bytes(), v.options()));
  std::size_t walked = 0;
  std::size_t count = 0;
  bool ended = false;
  for (const ipv4::option o : options) {
    PYSTACK_FUZZ_REQUIRE(!ended);  // nothing is yielded after End of Option List
    consume_bytes(o.data);
    consume(o.copied());
    consume(o.option_class());
    consume(o.number());
    PYSTACK_FUZZ_REQUIRE(o.size() >= 1);
    if (o.is_single_octet()) PYSTACK_FUZZ_REQUIRE(o.data.empty() && o.size() == 1);
    if (!o.is_single_octet()) {
      // The length octet counts type and length: what the walker gives.
      PYSTACK_FUZZ_REQUIRE(v.options()[walked + 1] == o.size());
      PYSTACK_FUZZ_REQUIRE(o.data.data() == v.options().data() + walked + 2);
    }
    PYSTACK_FUZZ_REQUIRE(v.options()[walked] == o.type);
    ended = o.type == ipv4::option_type::end_of_list;
    walked += o.size();
    PYSTACK_FUZZ_REQUIRE(walked <= v.options().size());
    PYSTACK_FUZZ_REQUIRE(++count <= ipv4::max_options_size);
  }
  PYSTACK_FUZZ_REQUIRE(ended || walked == v.options().size());
  // A checked view's options pass the framing check on their own.
  PYSTACK_FUZZ_REQUIRE(ipv4::option_range::checked(v.options()).has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view input(data, size);
  fuzz::tail_reader extra(input);

  // Quoted: the same checks, except that the bytes may stop before the
  // total length. What passes `checked` passes it too, with the same fields.
  const auto quoted = ipv4::view::checked_quoted(input);
  if (quoted) {
    touch(*quoted);
    PYSTACK_FUZZ_REQUIRE(quoted->bytes().size() == std::min<std::size_t>(quoted->total_length(), size));
  } else {
    fuzz::check_error(quoted.error(), "ipv4", size);
  }

  const auto v = ipv4::view::checked(input);
  if (!v) {
    fuzz::check_error(v.error(), "ipv4", size);
    // Only a short datagram may pass quoted but not whole.
    if (quoted) PYSTACK_FUZZ_REQUIRE(quoted->total_length() > size);
    return 0;
  }
  PYSTACK_FUZZ_REQUIRE(quoted.has_value() && fuzz::same_bytes(quoted->bytes(), v->bytes()));
  touch(*v);
  PYSTACK_FUZZ_REQUIRE(v->bytes().size() == v->total_length() && v->bytes().data() == data);

  const auto r = ipv4::repr::parse(*v);
  PYSTACK_FUZZ_REQUIRE(r.has_value());
  PYSTACK_FUZZ_REQUIRE_EQ(r->size(), v->header_length());
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(r->option_bytes(), v->options()));
  PYSTACK_FUZZ_REQUIRE(r->final_destination() == v->final_destination());

  // Emit into exactly header + payload and read it back.
  const auto payload = v->payload();
  auto out = fuzz::exact_buffer(r->size() + payload.size());
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(r->size()));
  r->emit(out);
  const auto back = ipv4::view::checked(bytes_view(out));
  PYSTACK_FUZZ_REQUIRE(back.has_value());
  const auto r2 = ipv4::repr::parse(*back);
  PYSTACK_FUZZ_REQUIRE(r2.has_value() && *r2 == *r);
  PYSTACK_FUZZ_REQUIRE(back->verify_checksum());
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(back->payload(), payload));
  // The header comes back byte for byte but for the checksum, and with it
  // when it was right (0xffff and 0 both verify when the rest sums to all
  // ones; emit writes 0).
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(back->header().first(ipv4::field::checksum.offset),
                                        v->header().first(ipv4::field::checksum.offset)));
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(back->header().subspan(ipv4::field::source.offset),
                                        v->header().subspan(ipv4::field::source.offset)));
  if (v->verify_checksum() && v->checksum() != 0xffff) {
    PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(back->header(), v->header()));
  }
  r->emit_without_checksum(out);
  const auto bare = ipv4::view::checked(bytes_view(out));
  PYSTACK_FUZZ_REQUIRE(bare && bare->checksum() == 0);

  // Options set from raw bytes pass the same framing check.
  ipv4::repr with_options;
  PYSTACK_FUZZ_REQUIRE(with_options.set_options(v->options()).has_value());
  PYSTACK_FUZZ_REQUIRE(with_options.options == r->options && with_options.options_length == r->options_length);
  const auto junk = input.first(std::min<std::size_t>(size, ipv4::max_options_size));
  if (with_options.set_options(junk)) {
    PYSTACK_FUZZ_REQUIRE(ipv4::option_range::checked(junk).has_value());
    auto built = fuzz::exact_buffer(with_options.size());
    with_options.emit(built);
    PYSTACK_FUZZ_REQUIRE(ipv4::view::checked(bytes_view(built)).has_value());
  }

  // Setters on a copy. The *_and_update_checksum forms keep a right
  // checksum right (RFC 1624); the plain ones leave it to fill_checksum.
  std::vector<byte> copy(input.begin(), input.end());
  auto m = ipv4::mutable_view::checked(std::span<byte>(copy));
  PYSTACK_FUZZ_REQUIRE(m.has_value());
  const bool was_right = m->verify_checksum();
  const std::uint8_t ttl = extra.u8(), tos = extra.u8();
  const std::uint16_t id = extra.u16();
  const ipv4_address source = extra.address(), destination = extra.address();
  m->set_ttl_and_update_checksum(ttl);
  m->set_tos_and_update_checksum(tos);
  m->set_identification_and_update_checksum(id);
  m->set_source_and_update_checksum(source);
  m->set_destination_and_update_checksum(destination);
  PYSTACK_FUZZ_REQUIRE(m->ttl() == ttl && m->tos() == tos && m->identification() == id);
  PYSTACK_FUZZ_REQUIRE(m->source() == source && m->destination() == destination);
  PYSTACK_FUZZ_REQUIRE_EQ(m->verify_checksum(), was_right);
  const std::uint8_t dscp = extra.u8() & 0x3f, ecn = extra.u8() & 0x3;
  const std::uint16_t fragment_offset = extra.u16() & ipv4::flag::fragment_offset_mask;
  const std::uint8_t flags = extra.u8();
  const std::uint8_t protocol = extra.u8();
  m->set_dscp(dscp);
  m->set_ecn(ecn);
  m->set_reserved_flag(flags & 1);
  m->set_dont_fragment(flags & 2);
  m->set_more_fragments(flags & 4);
  m->set_fragment_offset(fragment_offset);
  m->set_protocol(protocol);
  m->set_ttl(ttl);
  PYSTACK_FUZZ_REQUIRE(m->dscp() == dscp && m->ecn() == ecn && m->protocol() == protocol);
  PYSTACK_FUZZ_REQUIRE(m->reserved_flag() == bool(flags & 1) && m->dont_fragment() == bool(flags & 2) &&
                       m->more_fragments() == bool(flags & 4) && m->fragment_offset() == fragment_offset);
  m->fill_checksum();
  PYSTACK_FUZZ_REQUIRE(m->verify_checksum());
  // The options and payload never move.
  PYSTACK_FUZZ_REQUIRE(std::equal(copy.begin() + ipv4::header_size, copy.end(), input.begin() + ipv4::header_size));
  return 0;
}

// UDP: any bytes through `udp::view::checked`; on success every accessor,
// the repr round trip and the setters.
#include <algorithm>

#include "fuzz_support.hpp"
#include "pystack/wire/udp.hpp"

using namespace pystack;
using fuzz::consume;
using fuzz::consume_bytes;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view input(data, size);
  fuzz::tail_reader extra(input);
  const ipv4_address source = extra.address();
  const ipv4_address destination = extra.address();

  // Quoted: the bytes may stop before the length field says; what passes
  // `checked` passes it too, over the same bytes.
  const auto quoted = udp::view::checked_quoted(input);
  if (quoted) {
    consume(quoted->source_port());
    consume(quoted->destination_port());
    consume(quoted->length());
    consume(quoted->checksum());
    consume(quoted->verify_checksum(source, destination));
    consume_bytes(quoted->header());
    consume_bytes(quoted->payload());
    PYSTACK_FUZZ_REQUIRE(quoted->bytes().size() == std::min<std::size_t>(quoted->length(), size));
    PYSTACK_FUZZ_REQUIRE(quoted->header().size() + quoted->payload().size() == quoted->bytes().size());
  } else {
    fuzz::check_error(quoted.error(), "udp", size);
  }

  const auto v = udp::view::checked(input);
  if (!v) {
    fuzz::check_error(v.error(), "udp", size);
    if (quoted) PYSTACK_FUZZ_REQUIRE(quoted->length() > size);  // only a cut datagram passes quoted alone
    return 0;
  }
  PYSTACK_FUZZ_REQUIRE(quoted && fuzz::same_bytes(quoted->bytes(), v->bytes()));
  consume(v->source_port());
  consume(v->destination_port());
  consume(v->checksum());
  consume(v->checksum_present());
  consume(v->verify_checksum(source, destination));
  consume_bytes(v->header());
  consume_bytes(v->payload());
  consume_bytes(v->bytes());
  // The view is exactly what the length field delimits, inside the input.
  PYSTACK_FUZZ_REQUIRE(v->length() >= udp::header_size);
  PYSTACK_FUZZ_REQUIRE_EQ(v->bytes().size(), v->length());
  PYSTACK_FUZZ_REQUIRE(v->bytes().data() == data);
  PYSTACK_FUZZ_REQUIRE(v->header().size() == udp::header_size);
  PYSTACK_FUZZ_REQUIRE(v->payload().size() == v->length() - udp::header_size);
  PYSTACK_FUZZ_REQUIRE(v->checksum_present() == (v->checksum() != 0));
  // No checksum sent counts as right (RFC 768).
  if (!v->checksum_present()) PYSTACK_FUZZ_REQUIRE(v->verify_checksum(source, destination));

  const auto r = udp::repr::parse(*v);
  PYSTACK_FUZZ_REQUIRE(r.has_value());  // parse never fails after checked()
  PYSTACK_FUZZ_REQUIRE(r->source_port == v->source_port());
  PYSTACK_FUZZ_REQUIRE(r->destination_port == v->destination_port());

  // Emit into exactly header + payload, then read it back.
  const auto payload = v->payload();
  auto out = fuzz::exact_buffer(r->size() + payload.size());
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(r->size()));
  r->emit(out, source, destination);
  const auto back = udp::view::checked(bytes_view(out));
  PYSTACK_FUZZ_REQUIRE(back.has_value());
  const auto r2 = udp::repr::parse(*back);
  PYSTACK_FUZZ_REQUIRE(r2.has_value() && *r2 == *r);
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(back->payload(), payload));
  PYSTACK_FUZZ_REQUIRE_EQ(back->length(), v->length());
  PYSTACK_FUZZ_REQUIRE(back->checksum_present());  // a zero sum is sent as 0xffff
  PYSTACK_FUZZ_REQUIRE(back->verify_checksum(source, destination));
  // The only header bytes emit may change are the checksum's.
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(bytes_view(out).first(6), v->header().first(6)));

  // Without the checksum: the field is zero, which means "none sent".
  r->emit_without_checksum(out);
  const auto bare = udp::view::checked(bytes_view(out));
  PYSTACK_FUZZ_REQUIRE(bare && !bare->checksum_present() && bare->verify_checksum(source, destination));

  // Setters on a copy of the input: each writes its field and nothing else.
  std::vector<byte> copy(input.begin(), input.end());
  auto m = udp::mutable_view::checked(std::span<byte>(copy));
  PYSTACK_FUZZ_REQUIRE(m.has_value());
  const std::uint16_t sport = extra.u16(), dport = extra.u16();
  m->set_source_port(sport);
  m->set_destination_port(dport);
  PYSTACK_FUZZ_REQUIRE(m->source_port() == sport && m->destination_port() == dport);
  PYSTACK_FUZZ_REQUIRE(m->length() == v->length());
  m->fill_checksum(source, destination);
  PYSTACK_FUZZ_REQUIRE(m->checksum_present() && m->verify_checksum(source, destination));
  PYSTACK_FUZZ_REQUIRE(std::equal(copy.begin() + udp::header_size, copy.end(),
                                  input.begin() + udp::header_size));
  return 0;
}

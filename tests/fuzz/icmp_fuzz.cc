// ICMPv4: any bytes through `icmp::view::checked`; on success every
// accessor, the timestamps, the quoted datagram of an error, the repr round
// trip, the named makers and the in-place echo reply.
#include <algorithm>

#include "fuzz_support.hpp"
#include "pystack/wire/icmp.hpp"
#include "pystack/wire/ipv4.hpp"

using namespace pystack;
using fuzz::consume;
using fuzz::consume_bytes;

namespace {

// Emits `r` over `payload` into an exact buffer and reads it back.
std::vector<byte> emit(const icmp::repr& r, bytes_view payload) {
  auto out = fuzz::exact_buffer(r.size() + payload.size());
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(r.size()));
  r.emit(out);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view input(data, size);
  fuzz::tail_reader extra(input);

  const auto v = icmp::view::checked(input);
  if (!v) {
    fuzz::check_error(v.error(), "icmp", size);
    return 0;
  }
  consume(v->type());
  consume(v->code());
  consume(v->checksum());
  consume(v->rest_of_header());
  consume(v->identifier());
  consume(v->sequence_number());
  consume(v->gateway());
  consume(v->pointer());
  consume(v->next_hop_mtu());
  consume(v->is_echo());
  consume(v->is_error());
  consume(v->verify_checksum());
  consume_bytes(v->header());
  consume_bytes(v->payload());
  consume_bytes(v->bytes());
  PYSTACK_FUZZ_REQUIRE(v->bytes().size() == size && v->header().size() == icmp::header_size);
  PYSTACK_FUZZ_REQUIRE(v->payload().size() == size - icmp::header_size);
  // The named parts of the rest of header are slices of the one word.
  const std::uint32_t rest = v->rest_of_header();
  PYSTACK_FUZZ_REQUIRE(v->identifier() == rest >> 16 && v->sequence_number() == (rest & 0xffff));
  PYSTACK_FUZZ_REQUIRE(v->gateway().value == rest && v->pointer() == rest >> 24);
  PYSTACK_FUZZ_REQUIRE(v->next_hop_mtu() == (rest & 0xffff));

  const auto times = icmp::timestamps::parse(*v);
  const bool timestamp_type = v->type() == icmp::type::timestamp || v->type() == icmp::type::timestamp_reply;
  PYSTACK_FUZZ_REQUIRE(times.has_value() == (timestamp_type && size >= icmp::header_size + icmp::timestamps::size()));
  if (times) {
    std::vector<byte> copy(input.begin(), input.end());
    times->emit(copy);
    PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(copy, input));
  } else {
    fuzz::check_error(times.error(), "icmp", size);
  }

  // An error quotes a datagram whose total length may count bytes cut off.
  if (v->is_error()) {
    const auto quoted = ipv4::view::checked_quoted(v->payload());
    if (quoted) {
      consume(quoted->source());
      consume(quoted->protocol());
      consume_bytes(quoted->header());
      consume_bytes(quoted->payload());
      PYSTACK_FUZZ_REQUIRE(quoted->bytes().size() <= v->payload().size());
    } else {
      fuzz::check_error(quoted.error(), "ipv4", v->payload().size());
    }
  }

  const auto r = icmp::repr::parse(*v);
  PYSTACK_FUZZ_REQUIRE(r.has_value());
  PYSTACK_FUZZ_REQUIRE(r->type == v->type() && r->code == v->code() && r->rest_of_header == rest);
  PYSTACK_FUZZ_REQUIRE(r->identifier() == v->identifier() && r->sequence_number() == v->sequence_number());
  const auto out = emit(*r, v->payload());
  const auto back = icmp::view::checked(bytes_view(out));
  PYSTACK_FUZZ_REQUIRE(back.has_value());
  const auto r2 = icmp::repr::parse(*back);
  PYSTACK_FUZZ_REQUIRE(r2.has_value() && *r2 == *r);
  PYSTACK_FUZZ_REQUIRE(back->verify_checksum());
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(back->payload(), v->payload()));
  // Byte for byte when the checksum was right (0xffff and 0 both verify
  // when the rest sums to all ones; emit writes 0).
  if (v->verify_checksum() && v->checksum() != 0xffff) PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(out, input));

  // The makers put their values where the view reads them.
  const std::uint16_t id = extra.u16(), sequence = extra.u16(), mtu = extra.u16();
  const std::uint8_t code = extra.u8(), pointer = extra.u8();
  const ipv4_address gateway = extra.address();
  for (const icmp::repr& made : {icmp::repr::echo_request(id, sequence), icmp::repr::echo_reply(id, sequence)}) {
    const auto bytes = emit(made, v->payload());
    const auto echo = icmp::view::checked(bytes_view(bytes));
    PYSTACK_FUZZ_REQUIRE(echo && echo->is_echo() && echo->identifier() == id && echo->sequence_number() == sequence);
    PYSTACK_FUZZ_REQUIRE(echo->code() == 0 && echo->verify_checksum());
  }
  {
    const auto bytes = emit(icmp::repr::destination_unreachable(code, mtu), v->payload());
    const auto m = icmp::view::checked(bytes_view(bytes));
    PYSTACK_FUZZ_REQUIRE(m && m->type() == icmp::type::destination_unreachable && m->code() == code);
    PYSTACK_FUZZ_REQUIRE(m->next_hop_mtu() == mtu && m->is_error() && m->verify_checksum());
  }
  {
    const auto bytes = emit(icmp::repr::parameter_problem(pointer), v->payload());
    const auto m = icmp::view::checked(bytes_view(bytes));
    PYSTACK_FUZZ_REQUIRE(m && m->type() == icmp::type::parameter_problem && m->pointer() == pointer);
  }
  {
    const auto bytes = emit(icmp::repr::redirect(code, gateway), v->payload());
    const auto m = icmp::view::checked(bytes_view(bytes));
    PYSTACK_FUZZ_REQUIRE(m && m->type() == icmp::type::redirect && m->gateway() == gateway && m->code() == code);
  }
  {
    const auto bytes = emit(icmp::repr::time_exceeded(code), v->payload());
    const auto m = icmp::view::checked(bytes_view(bytes));
    PYSTACK_FUZZ_REQUIRE(m && m->type() == icmp::type::time_exceeded && m->rest_of_header() == 0);
  }

  // In place: setters, and an echo request turned into its reply with the
  // checksum updated, not recomputed, so right stays right and wrong wrong.
  std::vector<byte> copy(input.begin(), input.end());
  auto m = icmp::mutable_view::checked(std::span<byte>(copy));
  PYSTACK_FUZZ_REQUIRE(m.has_value());
  if (m->type() == icmp::type::echo_request) {
    const bool was_right = m->verify_checksum();
    m->make_echo_reply();
    PYSTACK_FUZZ_REQUIRE(m->type() == icmp::type::echo_reply && m->code() == 0);
    PYSTACK_FUZZ_REQUIRE_EQ(m->rest_of_header(), rest);
    // RFC 1624: an update keeps a right checksum right.
    PYSTACK_FUZZ_REQUIRE_EQ(m->verify_checksum(), was_right);
  }
  m->set_type(extra.u8());
  m->set_code(code);
  m->set_identifier(id);
  m->set_sequence_number(sequence);
  PYSTACK_FUZZ_REQUIRE(m->identifier() == id && m->sequence_number() == sequence && m->code() == code);
  m->set_gateway(gateway);
  PYSTACK_FUZZ_REQUIRE(m->gateway() == gateway);
  m->set_pointer(pointer);
  m->set_next_hop_mtu(mtu);
  PYSTACK_FUZZ_REQUIRE(m->pointer() == pointer && m->next_hop_mtu() == mtu);
  m->set_rest_of_header(rest);
  PYSTACK_FUZZ_REQUIRE(m->rest_of_header() == rest);
  m->fill_checksum();
  PYSTACK_FUZZ_REQUIRE(m->verify_checksum());
  PYSTACK_FUZZ_REQUIRE(std::equal(copy.begin() + icmp::header_size, copy.end(), input.begin() + icmp::header_size));
  return 0;
}

// TCP: any bytes through `tcp::view::checked`; on success every accessor,
// every option with every typed getter, the option look-ups, the option
// list rebuilt option by option, the repr round trip and the setters.
#include <algorithm>

#include "fuzz_support.hpp"
#include "pystack/wire/tcp.hpp"

using namespace pystack;
using fuzz::consume;
using fuzz::consume_bytes;

namespace {

// Every getter of an option, as a reference into the segment (option_ref)
// or as an owned copy (option): both must say the same.
template <class Option>
void touch(const Option& o) {
  consume(o.code());
  consume(o.kind());
  consume(o.mss());
  consume(o.window_scale());
  consume(o.timestamp());
  consume_bytes(o.bytes());
  consume_bytes(o.data());
  const tcp::sack_blocks sack = o.sack();
  for (const tcp::sack_block& block : sack) consume(block);
  PYSTACK_FUZZ_REQUIRE(o.bytes().size() == o.size() && o.bytes()[0] == o.code());
  switch (o.kind()) {
    case tcp::option_kind::eol:
    case tcp::option_kind::nop:
      PYSTACK_FUZZ_REQUIRE(o.size() == 1 && o.data().empty());
      break;
    case tcp::option_kind::mss:
      PYSTACK_FUZZ_REQUIRE(o.size() == 4 && o.mss() == wire::load_be16(o.data().data()));
      break;
    case tcp::option_kind::window_scale:
      PYSTACK_FUZZ_REQUIRE(o.size() == 3 && o.window_scale() == o.data()[0]);
      break;
    case tcp::option_kind::sack_permitted:
      PYSTACK_FUZZ_REQUIRE(o.size() == 2);
      break;
    case tcp::option_kind::timestamp:
      PYSTACK_FUZZ_REQUIRE(o.size() == 10 && o.timestamp().tsval == wire::load_be32(o.data().data()) &&
                           o.timestamp().tsecr == wire::load_be32(o.data().data() + 4));
      break;
    case tcp::option_kind::sack:
      PYSTACK_FUZZ_REQUIRE(o.size() >= 10 && (o.size() - 2) % 8 == 0);
      PYSTACK_FUZZ_REQUIRE(sack.size() == (o.size() - 2) / 8 && sack.size() <= tcp::sack_blocks::capacity);
      for (std::size_t i = 0; i < sack.size(); ++i) {
        PYSTACK_FUZZ_REQUIRE(sack[i].left.raw() == wire::load_be32(o.data().data() + 8 * i));
        PYSTACK_FUZZ_REQUIRE(sack[i].right.raw() == wire::load_be32(o.data().data() + 8 * i + 4));
      }
      break;
    case tcp::option_kind::unknown:
      PYSTACK_FUZZ_REQUIRE(o.size() >= 2 && o.bytes()[1] == o.size());
      break;
  }
  // Getters of other kinds give zero or empty.
  if (o.kind() != tcp::option_kind::mss) PYSTACK_FUZZ_REQUIRE(o.mss() == 0);
  if (o.kind() != tcp::option_kind::window_scale) PYSTACK_FUZZ_REQUIRE(o.window_scale() == 0);
  if (o.kind() != tcp::option_kind::timestamp) PYSTACK_FUZZ_REQUIRE(o.timestamp() == tcp::timestamps{});
  if (o.kind() != tcp::option_kind::sack) PYSTACK_FUZZ_REQUIRE(sack.empty());
}

// A walked option: the reference, its owned copy, and the option made again
// from its kind and data all agree.
void check_option(const tcp::option_ref& o) {
  touch(o);
  const tcp::option copy(o);
  touch(copy);
  PYSTACK_FUZZ_REQUIRE(copy.ref() == o && fuzz::same_bytes(copy.bytes(), o.bytes()));
  PYSTACK_FUZZ_REQUIRE(copy.sack() == o.sack() && copy.timestamp() == o.timestamp() && copy.mss() == o.mss());
  const auto made = tcp::option::make(o.code(), o.data());
  PYSTACK_FUZZ_REQUIRE(made.has_value() && *made == copy);
}

// Pushes the option the way a builder would: through the typed push_* for
// a known kind, through push(option) otherwise.
bool push_typed(tcp::option_list& list, const tcp::option_ref& o) {
  switch (o.kind()) {
    case tcp::option_kind::eol: return list.push_eol();
    case tcp::option_kind::nop: return list.push_nop();
    case tcp::option_kind::mss: return list.push_mss(o.mss());
    case tcp::option_kind::window_scale: return list.push_window_scale(o.window_scale());
    case tcp::option_kind::sack_permitted: return list.push_sack_permitted();
    case tcp::option_kind::timestamp: return list.push_timestamp(o.timestamp().tsval, o.timestamp().tsecr);
    case tcp::option_kind::sack: {
      const tcp::sack_blocks blocks = o.sack();
      return list.push_sack(std::span<const tcp::sack_block>(blocks.begin(), blocks.size()));
    }
    case tcp::option_kind::unknown: return list.push(tcp::option(o));
  }
  return false;
}

// The look-ups agree with the first option of each kind.
template <class Options>
void check_lookups(const Options& options) {
  std::optional<tcp::option> first_mss, first_sack, first_timestamp, first_scale;
  bool sack_permitted = false;
  for (const tcp::option_ref o : options) {
    if (o.kind() == tcp::option_kind::mss && !first_mss) first_mss = tcp::option(o);
    if (o.kind() == tcp::option_kind::sack && !first_sack) first_sack = tcp::option(o);
    if (o.kind() == tcp::option_kind::timestamp && !first_timestamp) first_timestamp = tcp::option(o);
    if (o.kind() == tcp::option_kind::window_scale && !first_scale) first_scale = tcp::option(o);
    sack_permitted = sack_permitted || o.kind() == tcp::option_kind::sack_permitted;
  }
  PYSTACK_FUZZ_REQUIRE(options.mss() == (first_mss ? std::optional(first_mss->mss()) : std::nullopt));
  PYSTACK_FUZZ_REQUIRE(options.window_scale() ==
                       (first_scale ? std::optional(first_scale->window_scale()) : std::nullopt));
  PYSTACK_FUZZ_REQUIRE(options.timestamp() ==
                       (first_timestamp ? std::optional(first_timestamp->timestamp()) : std::nullopt));
  PYSTACK_FUZZ_REQUIRE(options.sack() == (first_sack ? first_sack->sack() : tcp::sack_blocks{}));
  PYSTACK_FUZZ_REQUIRE(options.sack_permitted() == sack_permitted);
  PYSTACK_FUZZ_REQUIRE(options.find(tcp::option_kind::mss) == first_mss);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view input(data, size);
  fuzz::tail_reader extra(input);
  const ipv4_address source = extra.address();
  const ipv4_address destination = extra.address();

  // Option bytes on their own, as a builder would take them.
  const auto raw_list = tcp::option_list::from_bytes(input.first(std::min(size, tcp::max_options_size)));
  if (raw_list) {
    check_lookups(*raw_list);
    for (const tcp::option_ref o : *raw_list) check_option(o);
  } else {
    fuzz::check_error(raw_list.error(), "tcp", size + tcp::header_size);
  }

  const auto v = tcp::view::checked(input);
  if (!v) {
    fuzz::check_error(v.error(), "tcp", size);
    return 0;
  }
  consume(v->source_port());
  consume(v->destination_port());
  consume(v->sequence_number());
  consume(v->ack_number());
  consume(v->window());
  consume(v->checksum());
  consume(v->urgent_pointer());
  const tcp::flags flags = v->flags();
  consume(flags.reserved());
  consume(flags.to_string());
  consume(v->verify_checksum(source, destination));
  consume_bytes(v->header());
  consume_bytes(v->payload());
  consume_bytes(v->bytes());
  consume_bytes(v->options_bytes());
  PYSTACK_FUZZ_REQUIRE(v->data_offset() >= 5 && v->header_length() == v->data_offset() * 4u);
  PYSTACK_FUZZ_REQUIRE(v->header().size() == v->header_length() && v->header_length() <= size);
  PYSTACK_FUZZ_REQUIRE(v->header().size() + v->payload().size() == size && v->bytes().data() == data);
  PYSTACK_FUZZ_REQUIRE(v->options_bytes().size() == v->header_length() - tcp::header_size);
  PYSTACK_FUZZ_REQUIRE(flags.bits() == (wire::load_be16(data + 12) & tcp::flags::mask));
  PYSTACK_FUZZ_REQUIRE(flags.to_string().size() == static_cast<std::size_t>(__builtin_popcount(flags.bits() & 0xff)));

  // Options: walked in wire order, within the area, EOL last. Rebuilt
  // option by option, by reference and by the typed builders.
  const tcp::option_range options = v->options();
  std::size_t walked = 0;
  bool ended = false;
  tcp::option_list rebuilt, typed;
  for (const tcp::option_ref o : options) {
    PYSTACK_FUZZ_REQUIRE(!ended);
    check_option(o);
    PYSTACK_FUZZ_REQUIRE(o.bytes().data() == v->options_bytes().data() + walked);  // a reference, not a copy
    PYSTACK_FUZZ_REQUIRE(rebuilt.push(o));
    PYSTACK_FUZZ_REQUIRE(push_typed(typed, o));
    ended = o.kind() == tcp::option_kind::eol;
    walked += o.size();
  }
  PYSTACK_FUZZ_REQUIRE(walked <= v->options_bytes().size());
  PYSTACK_FUZZ_REQUIRE(ended || walked == v->options_bytes().size());
  PYSTACK_FUZZ_REQUIRE(options.empty() == (walked == 0));
  PYSTACK_FUZZ_REQUIRE(typed == rebuilt && fuzz::same_bytes(typed.bytes(), rebuilt.bytes()));
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(rebuilt.bytes(), v->options_bytes().first(walked)));
  check_lookups(options);

  const auto list = tcp::option_list::from_bytes(v->options_bytes());
  PYSTACK_FUZZ_REQUIRE(list.has_value());
  // A push onto a parsed list goes where its End of Option List was (or at
  // the end), and what was before stays.
  {
    tcp::option_list grown = *list;
    const std::size_t before = walked - (ended ? 1 : 0);
    if (grown.push_nop()) {
      PYSTACK_FUZZ_REQUIRE(grown.size() == before + 1);
      PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(grown.bytes().first(before), v->options_bytes().first(before)));
      PYSTACK_FUZZ_REQUIRE(grown.bytes()[before] == tcp::option_code::nop);
      PYSTACK_FUZZ_REQUIRE(tcp::option_list::from_bytes(grown.bytes()).has_value());
    } else {
      PYSTACK_FUZZ_REQUIRE(before + 1 > tcp::max_options_size);
    }
  }

  const auto r = tcp::repr::parse(*v);
  PYSTACK_FUZZ_REQUIRE(r.has_value());
  PYSTACK_FUZZ_REQUIRE_EQ(r->size(), v->header_length());
  PYSTACK_FUZZ_REQUIRE(r->options == *list);
  check_lookups(r->options);
  // Rebuilt with push, the list equals the original whenever what followed
  // End of Option List was zeros (push writes zeros there) and no more than
  // the padding to a 4-byte boundary (push adds no more).
  const auto after = v->options_bytes().subspan(walked);
  if (std::all_of(after.begin(), after.end(), [](byte b) { return b == 0; }) &&
      rebuilt.padded_size() == v->options_bytes().size()) {
    PYSTACK_FUZZ_REQUIRE(rebuilt == r->options);
  }

  // Emit into exactly header + payload: the header comes back but for the
  // checksum, and with it when that was right.
  const auto payload = v->payload();
  auto out = fuzz::exact_buffer(r->size() + payload.size());
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(r->size()));
  r->emit(out, source, destination);
  const auto back = tcp::view::checked(bytes_view(out));
  PYSTACK_FUZZ_REQUIRE(back.has_value());
  const auto r2 = tcp::repr::parse(*back);
  PYSTACK_FUZZ_REQUIRE(r2.has_value() && *r2 == *r);
  PYSTACK_FUZZ_REQUIRE(back->verify_checksum(source, destination));
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(back->payload(), payload));
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(bytes_view(out).first(16), input.first(16)));
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(bytes_view(out).subspan(18, r->size() - 18), input.subspan(18, r->size() - 18)));
  if (v->verify_checksum(source, destination) && v->checksum() != 0xffff) {
    PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(out, input));
  }

  // Setters on a copy: each field reads back; the data offset, the options
  // and the payload stay.
  std::vector<byte> copy(input.begin(), input.end());
  auto m = tcp::mutable_view::checked(std::span<byte>(copy));
  PYSTACK_FUZZ_REQUIRE(m.has_value());
  const std::uint16_t sport = extra.u16(), dport = extra.u16(), window = extra.u16(), urgent = extra.u16();
  const seq_number seq(extra.u32()), ack(extra.u32());
  const tcp::flags new_flags(extra.u16());
  m->set_source_port(sport);
  m->set_destination_port(dport);
  m->set_sequence_number(seq);
  m->set_ack_number(ack);
  m->set_flags(new_flags);
  m->set_window(window);
  m->set_urgent_pointer(urgent);
  PYSTACK_FUZZ_REQUIRE(m->source_port() == sport && m->destination_port() == dport);
  PYSTACK_FUZZ_REQUIRE(m->sequence_number() == seq && m->ack_number() == ack);
  PYSTACK_FUZZ_REQUIRE(m->flags() == new_flags && m->window() == window && m->urgent_pointer() == urgent);
  PYSTACK_FUZZ_REQUIRE(m->data_offset() == v->data_offset());
  m->fill_checksum(source, destination);
  PYSTACK_FUZZ_REQUIRE(m->verify_checksum(source, destination));
  PYSTACK_FUZZ_REQUIRE(tcp::view::checked(bytes_view(copy)).has_value());
  PYSTACK_FUZZ_REQUIRE(std::equal(copy.begin() + tcp::header_size, copy.end(), input.begin() + tcp::header_size));
  return 0;
}

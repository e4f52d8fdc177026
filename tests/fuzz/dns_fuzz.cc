// DNS: any bytes through `dns::view::checked`; on success the header, every
// question and record of every section, every name label by label and as
// text, every RDATA decoded, and the message rebuilt through `dns::writer`
// (which compresses names its own way) and read back equal. The input is
// also tried as the text of a name to write.
#include <arpa/inet.h>

#include <algorithm>
#include <string>
#include <variant>

#include "fuzz_support.hpp"
#include "pystack/wire/dns.hpp"

using namespace pystack;
using fuzz::consume;
using fuzz::consume_bytes;
using fuzz::consume_text;

namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

void touch(const dns::name_view& n) {
  consume(n.offset());
  consume(n.encoded_size());
  PYSTACK_FUZZ_REQUIRE(n.wire_length() >= 1 && n.wire_length() <= dns::max_name_length);
  PYSTACK_FUZZ_REQUIRE(n.encoded_size() >= 1 && n.offset() + n.encoded_size() <= n.message().size());
  PYSTACK_FUZZ_REQUIRE(n.is_root() == (n.label_count() == 0));
  std::size_t labels = 0, wire_length = 1;
  std::string joined;
  for (std::string_view label : n.labels()) {
    consume_text(label);
    PYSTACK_FUZZ_REQUIRE(!label.empty() && label.size() <= dns::max_label_length);
    // Labels are slices of the message, not copies.
    PYSTACK_FUZZ_REQUIRE(reinterpret_cast<const byte*>(label.data()) >= n.message().data() &&
                         reinterpret_cast<const byte*>(label.data()) + label.size() <=
                             n.message().data() + n.message().size());
    if (labels++ > 0) joined += '.';
    joined += label;
    wire_length += 1 + label.size();
    PYSTACK_FUZZ_REQUIRE(labels <= n.label_count());
  }
  PYSTACK_FUZZ_REQUIRE(labels == n.label_count() && n.labels().size() == labels);
  PYSTACK_FUZZ_REQUIRE(wire_length == n.wire_length());
  const dns::name text = n.to_name();
  consume_text(text.text());
  if (n.is_root()) {
    PYSTACK_FUZZ_REQUIRE(text.text() == ".");
  } else {
    PYSTACK_FUZZ_REQUIRE(text.text() == joined && text.size() == n.wire_length() - 2);
  }
  PYSTACK_FUZZ_REQUIRE(text.to_string() == n.to_string());
  // A label ending in '.' makes the text ambiguous (documented); otherwise
  // the name equals its own text, with or without a trailing dot.
  if (n.is_root() || joined.back() != '.') {
    PYSTACK_FUZZ_REQUIRE(n.equals(text.text()));
    if (!n.is_root()) PYSTACK_FUZZ_REQUIRE(n.equals(joined + "."));
  }
  PYSTACK_FUZZ_REQUIRE(n == n);
  const auto again = dns::name_view::checked(n.message(), n.offset());
  PYSTACK_FUZZ_REQUIRE(again && again->encoded_size() == n.encoded_size() && *again == n);
}

bool is_decoded_type(std::uint16_t type) {
  switch (type) {
    case dns::type::a:
    case dns::type::aaaa:
    case dns::type::cname:
    case dns::type::ns:
    case dns::type::ptr:
    case dns::type::mx:
    case dns::type::txt:
    case dns::type::soa:
      return true;
    default:
      return false;
  }
}

// Decoded RDATA compared by value; names without regard to case.
bool same_data(const dns::typed_rdata& a, const dns::typed_rdata& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      overloaded{
          [&](const dns::opaque_rdata& x) { return fuzz::same_bytes(x.bytes, std::get<dns::opaque_rdata>(b).bytes); },
          [&](const dns::a_rdata& x) { return x.address == std::get<dns::a_rdata>(b).address; },
          [&](const dns::aaaa_rdata& x) { return x.address == std::get<dns::aaaa_rdata>(b).address; },
          [&](const dns::cname_rdata& x) { return x.name == std::get<dns::cname_rdata>(b).name; },
          [&](const dns::ns_rdata& x) { return x.name == std::get<dns::ns_rdata>(b).name; },
          [&](const dns::ptr_rdata& x) { return x.name == std::get<dns::ptr_rdata>(b).name; },
          [&](const dns::mx_rdata& x) {
            const auto& y = std::get<dns::mx_rdata>(b);
            return x.preference == y.preference && x.exchange == y.exchange;
          },
          [&](const dns::txt_rdata& x) { return fuzz::same_bytes(x.bytes, std::get<dns::txt_rdata>(b).bytes); },
          [&](const dns::soa_rdata& x) {
            const auto& y = std::get<dns::soa_rdata>(b);
            return x.mname == y.mname && x.rname == y.rname && x.serial == y.serial && x.refresh == y.refresh &&
                   x.retry == y.retry && x.expire == y.expire && x.minimum == y.minimum;
          },
      },
      a);
}

void touch(const dns::record& r, const dns::view& v) {
  touch(r.name());
  consume(r.type());
  consume(r.class_code());
  consume(r.ttl());
  consume_bytes(r.rdata());
  PYSTACK_FUZZ_REQUIRE(r.rdata().size() == r.rdata_length());
  PYSTACK_FUZZ_REQUIRE(r.rdata().data() == v.bytes().data() + r.rdata_offset());
  PYSTACK_FUZZ_REQUIRE(r.rdata_offset() == r.offset() + r.name().encoded_size() + dns::record_field::size);
  // What `checked()` accepted decodes.
  const auto direct = dns::parse_rdata(bytes_view(v.bytes()), r.type(), r.class_code(), r.rdata_offset(),
                                       r.rdata_length());
  PYSTACK_FUZZ_REQUIRE(direct.has_value());
  const dns::typed_rdata data = r.data();
  PYSTACK_FUZZ_REQUIRE(same_data(data, *direct));
  const bool decoded = r.class_code() == dns::class_code::in && is_decoded_type(r.type());
  PYSTACK_FUZZ_REQUIRE(std::holds_alternative<dns::opaque_rdata>(data) == !decoded);
  const bytes_view rdata = r.rdata();
  std::visit(overloaded{
                 [&](const dns::opaque_rdata& d) { PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(d.bytes, rdata)); },
                 [&](const dns::a_rdata& d) {
                   PYSTACK_FUZZ_REQUIRE(rdata.size() == 4 && d.address == ipv4_address::from_bytes(rdata.data()));
                 },
                 [&](const dns::aaaa_rdata& d) {
                   PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(d.address, rdata));
                   // RFC 5952 text, read back by the C library, is the address.
                   const dns::ipv6_text text = d.text();
                   const std::string s = text.to_string();
                   byte parsed[16];
                   PYSTACK_FUZZ_REQUIRE(inet_pton(AF_INET6, s.c_str(), parsed) == 1);
                   PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(parsed, d.address));
                   PYSTACK_FUZZ_REQUIRE(std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'F'; }));
                 },
                 [&](const dns::cname_rdata& d) { touch(d.name); },
                 [&](const dns::ns_rdata& d) { touch(d.name); },
                 [&](const dns::ptr_rdata& d) { touch(d.name); },
                 [&](const dns::mx_rdata& d) {
                   PYSTACK_FUZZ_REQUIRE(d.preference == wire::load_be16(rdata.data()));
                   PYSTACK_FUZZ_REQUIRE(d.exchange.offset() == r.rdata_offset() + 2);
                   PYSTACK_FUZZ_REQUIRE(2 + d.exchange.encoded_size() == rdata.size());
                   touch(d.exchange);
                 },
                 [&](const dns::txt_rdata& d) {
                   std::size_t total = 0;
                   for (std::string_view s : d.strings()) {
                     consume_text(s);
                     total += 1 + s.size();
                   }
                   PYSTACK_FUZZ_REQUIRE(total == rdata.size());
                 },
                 [&](const dns::soa_rdata& d) {
                   touch(d.mname);
                   touch(d.rname);
                   PYSTACK_FUZZ_REQUIRE(d.mname.encoded_size() + d.rname.encoded_size() + 20 == rdata.size());
                   PYSTACK_FUZZ_REQUIRE(d.minimum == wire::load_be32(rdata.data() + rdata.size() - 4));
                 },
             },
             data);
  // The names a decoded type holds sit inside its RDATA.
  if (const auto* c = std::get_if<dns::cname_rdata>(&data)) {
    PYSTACK_FUZZ_REQUIRE(c->name.offset() == r.rdata_offset() && c->name.encoded_size() == rdata.size());
  }
}

// Writes one record read from a message; what its data says picks the
// writer call, so the names inside are compressed anew.
expected<void> write(dns::writer& w, dns::section s, const dns::record& r) {
  const dns::typed_rdata data = r.data();
  return std::visit(
      overloaded{
          [&](const dns::opaque_rdata& d) {
            return w.add_record(s, r.name(), r.type(), r.class_code(), r.ttl(), d.bytes);
          },
          [&](const dns::a_rdata& d) { return w.add_a(s, r.name(), r.ttl(), d.address); },
          [&](const dns::aaaa_rdata& d) { return w.add_aaaa(s, r.name(), r.ttl(), d.address); },
          [&](const dns::cname_rdata& d) { return w.add_cname(s, r.name(), r.ttl(), d.name); },
          [&](const dns::ns_rdata& d) { return w.add_ns(s, r.name(), r.ttl(), d.name); },
          [&](const dns::ptr_rdata& d) { return w.add_ptr(s, r.name(), r.ttl(), d.name); },
          [&](const dns::mx_rdata& d) { return w.add_mx(s, r.name(), r.ttl(), d.preference, d.exchange); },
          [&](const dns::txt_rdata& d) {
            std::vector<std::string_view> strings(d.strings().begin(), d.strings().end());
            return w.add_txt(s, r.name(), r.ttl(), strings);
          },
          [&](const dns::soa_rdata& d) {
            return w.add_soa(s, r.name(), r.ttl(),
                             dns::soa_repr{d.mname, d.rname, d.serial, d.refresh, d.retry, d.expire, d.minimum});
          },
      },
      data);
}

// A rebuilt message may only fail for being longer than 65535 bytes once
// the original's compression is undone.
bool too_long(const parse_error& e) {
  return e.code == errc::above_maximum && std::string_view(e.field) == "message length";
}

// The input as the text of a name: written, it reads back as that text.
void name_from_text(bytes_view input) {
  if (input.size() > 2 * dns::max_name_length) return;
  const std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  auto buffer = fuzz::exact_buffer(dns::header_size + dns::max_name_length + dns::question_field::size);
  auto w = dns::writer::start(buffer, dns::header_repr{});
  PYSTACK_FUZZ_REQUIRE(w.has_value());
  const auto added = w->add_question(text, dns::type::a);
  if (!added) {
    fuzz::check_error(added.error(), "dns", buffer.size());
    PYSTACK_FUZZ_REQUIRE(w->size() == dns::header_size);  // a failed add leaves the message as it was
    return;
  }
  const auto v = dns::view::checked(bytes_view(w->message()));
  PYSTACK_FUZZ_REQUIRE(v && v->question_count() == 1);
  const dns::question q = *v->questions().begin();
  std::string_view expected = text;
  if (expected.size() > 1 && expected.back() == '.') expected.remove_suffix(1);
  PYSTACK_FUZZ_REQUIRE(q.name().to_name().text() == expected);
  PYSTACK_FUZZ_REQUIRE(q.type() == dns::type::a && q.class_code() == dns::class_code::in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes_view input(data, size);
  name_from_text(input);

  const auto v = dns::view::checked(input);
  if (!v) {
    fuzz::check_error(v.error(), "dns", size);
    return 0;
  }
  const auto h = dns::header_repr::parse(*v);
  PYSTACK_FUZZ_REQUIRE(h.has_value());
  consume(*h);
  PYSTACK_FUZZ_REQUIRE(h->flags() == v->flags());  // every bit of the flags word is a field
  PYSTACK_FUZZ_REQUIRE(h->opcode == v->opcode() && h->rcode == v->rcode() && h->z == v->z());
  auto header = fuzz::exact_buffer(h->size());
  h->emit(header);
  PYSTACK_FUZZ_REQUIRE(fuzz::same_bytes(header, input.first(dns::header_size)));
  consume_bytes(v->header());
  consume_bytes(v->bytes());
  consume_bytes(v->trailing());

  // The sections tile the message: each entry starts where the last ended.
  std::size_t pos = dns::header_size;
  std::size_t count = 0;
  PYSTACK_FUZZ_REQUIRE(v->questions().offset() == pos && v->questions().size() == v->question_count());
  for (const dns::question q : v->questions()) {
    PYSTACK_FUZZ_REQUIRE(q.offset() == pos);
    touch(q.name());
    consume(q.type());
    consume(q.class_code());
    PYSTACK_FUZZ_REQUIRE(q.name().offset() == pos);
    pos += q.size();
    ++count;
  }
  PYSTACK_FUZZ_REQUIRE(count == v->question_count());
  const dns::record_range sections[3] = {v->answers(), v->authorities(), v->additionals()};
  const std::uint16_t counts[3] = {v->answer_count(), v->authority_count(), v->additional_count()};
  for (std::size_t s = 0; s < 3; ++s) {
    PYSTACK_FUZZ_REQUIRE(sections[s].offset() == pos && sections[s].size() == counts[s]);
    count = 0;
    for (const dns::record r : sections[s]) {
      PYSTACK_FUZZ_REQUIRE(r.offset() == pos);
      touch(r, *v);
      pos += r.size();
      ++count;
    }
    PYSTACK_FUZZ_REQUIRE(count == counts[s]);
  }
  PYSTACK_FUZZ_REQUIRE(pos == v->message().size() && pos + v->trailing().size() == size);

  // Rebuilt through the writer and read back: the same header, questions
  // and records, names equal (without regard to case, as a compressed name
  // takes the case of the one it points to).
  auto buffer = fuzz::exact_buffer(dns::max_message_size);
  auto w = dns::writer::start(buffer, *h);
  PYSTACK_FUZZ_REQUIRE(w.has_value());
  for (const dns::question q : v->questions()) {
    const auto added = w->add_question(q.name(), q.type(), q.class_code());
    if (!added && too_long(added.error())) return 0;
    PYSTACK_FUZZ_REQUIRE(added.has_value());
  }
  static constexpr dns::section section_of[3] = {dns::section::answer, dns::section::authority,
                                                 dns::section::additional};
  for (std::size_t s = 0; s < 3; ++s) {
    for (const dns::record r : sections[s]) {
      const auto added = write(*w, section_of[s], r);
      if (!added && too_long(added.error())) return 0;
      PYSTACK_FUZZ_REQUIRE(added.has_value());
    }
  }
  PYSTACK_FUZZ_REQUIRE(w->size() <= dns::max_message_size);
  const auto back = dns::view::checked(bytes_view(w->message()));
  PYSTACK_FUZZ_REQUIRE(back.has_value());
  const auto h2 = dns::header_repr::parse(*back);
  PYSTACK_FUZZ_REQUIRE(h2.has_value() && *h2 == *h);
  PYSTACK_FUZZ_REQUIRE(back->trailing().empty());
  {
    auto original = v->questions().begin();
    for (const dns::question q : back->questions()) {
      const dns::question o = *original++;
      PYSTACK_FUZZ_REQUIRE(q.name() == o.name() && q.type() == o.type() && q.class_code() == o.class_code());
    }
  }
  const dns::record_range rebuilt[3] = {back->answers(), back->authorities(), back->additionals()};
  for (std::size_t s = 0; s < 3; ++s) {
    auto original = sections[s].begin();
    for (const dns::record r : rebuilt[s]) {
      const dns::record o = *original++;
      touch(r, *back);
      PYSTACK_FUZZ_REQUIRE(r.name() == o.name() && r.type() == o.type() && r.class_code() == o.class_code());
      PYSTACK_FUZZ_REQUIRE(r.ttl() == o.ttl() && same_data(r.data(), o.data()));
    }
  }
  return 0;
}

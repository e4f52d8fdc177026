// DNS wire format: Scapy-built messages read field by field, the writer
// producing Scapy's compressed bytes into a junk-filled buffer, a real
// resolver answer from the tcpdump captures, hand-made bad compression, and
// every truncation length.
#include "pystack/wire/dns.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cctype>
#include <iterator>
#include <ranges>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace {
using namespace pystack;

std::vector<byte> from_hex(std::string_view hex) {
  std::vector<byte> out;
  auto digit = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<byte>(digit(hex[i]) * 16 + digit(hex[i + 1])));
  }
  return out;
}

// Scapy: raw(DNS(id=0x1234, rd=1, qd=DNSQR(qname="www.example.com", qtype="A")))
const std::vector<byte> query = from_hex(
    "123401000001000000000000"
    "03777777076578616d706c6503636f6d00"
    "00010001");

// Scapy: raw(r.compress()) for
//   r = DNS(id=0x1234, qr=1, aa=1, rd=1, ra=1,
//     qd=DNSQR(qname="www.example.com", qtype="A"),
//     an=DNSRR(rrname="www.example.com", type="CNAME", ttl=300, rdata="web.example.com")
//       /DNSRR(rrname="web.example.com", type="A", ttl=60, rdata="93.184.216.34")
//       /DNSRR(rrname="web.example.com", type="AAAA", ttl=60, rdata="2001:db8::1"),
//     ns=DNSRRSOA(rrname="example.com", ttl=3600, mname="ns1.example.com",
//       rname="hostmaster.example.com", serial=2024010101, refresh=7200, retry=900,
//       expire=1209600, minimum=300),
//     ar=DNSRRMX(rrname="example.com", type="MX", ttl=600, preference=10,
//       exchange="mail.example.com")
//       /DNSRR(rrname="example.com", type="TXT", ttl=600, rdata=["v=spf1 -all", "hello world"]))
// (Scapy 2.5's DNSRRMX defaults its type to SOA, hence type="MX".)
const std::vector<byte> response = from_hex(
    "123485800001000300010002"
    "03777777076578616d706c6503636f6d0000010001"                // question
    "c00c000500010000012c000603776562c010"                      // CNAME web.example.com
    "c02d000100010000003c00045db8d822"                          // A 93.184.216.34
    "c02d001c00010000003c001020010db8000000000000000000000001"  // AAAA 2001:db8::1
    "c0100006000100000e100027036e7331c0100a686f73746d6173746572c010"
    "78a3f17500001c2000000384001275000000012c"                  // SOA
    "c010000f0001000002580009000a046d61696cc010"                // MX 10 mail.example.com
    "c010001000010000025800180b763d73706631202d616c6c0b68656c6c6f20776f726c64");  // TXT

// Scapy: raw(r) for the same r, without compression.
const std::vector<byte> response_uncompressed = from_hex(
    "12348580000100030001000203777777076578616d706c6503636f6d000001000103777777076578616d706c65"
    "03636f6d00000500010000012c001103776562076578616d706c6503636f6d0003776562076578616d706c6503"
    "636f6d00000100010000003c00045db8d82203776562076578616d706c6503636f6d00001c00010000003c0010"
    "20010db8000000000000000000000001076578616d706c6503636f6d000006000100000e10003d036e73310765"
    "78616d706c6503636f6d000a686f73746d6173746572076578616d706c6503636f6d0078a3f17500001c200000"
    "0384001275000000012c076578616d706c6503636f6d00000f0001000002580014000a046d61696c076578616d"
    "706c6503636f6d00076578616d706c6503636f6d00001000010000025800180b763d73706631202d616c6c0b68"
    "656c6c6f20776f726c64");

// The UDP payload of frame 2 of /work/shared/testdata/tcpdump/dns_udp.pcap,
// which tcpdump prints as
//   22836*- 2/2/5 A 192.139.46.66, A 198.199.88.104 (224)
const std::vector<byte> captured_answer = from_hex(
    "593485000001000200020005037777770774637064756d70036f72670000010001c00c000100010000003c0004"
    "c08b2e42c00c000100010000003c0004c6c75868c0100002000100015180001203736e7308636f6f7065726978"
    "036e657400c01000020001000151800012036e69630973616e64656c6d616e02636100c06b000100010000012c"
    "0004d157f912c06b001c00010000012c00102607f0b0000f000000000000babef00dc04d0001000100001c2000"
    "04616b850fc04d001c000100001c20001026003c0300000000f03c91fffe96e8ef0000291000000000000000");

// The TCP payload of frame 6 of dns_tcp.pcap: the same answer to another
// query, with the two-byte length prefix of RFC 1035 §4.2.2 in front.
const std::vector<byte> captured_tcp_answer = from_hex(
    "00e0431985000001000200020005037777770774637064756d70036f72670000010001c00c000100010000003c"
    "0004c08b2e42c00c000100010000003c0004c6c75868c01000020001000151800012036e69630973616e64656c"
    "6d616e02636100c0100002000100015180001203736e7308636f6f7065726978036e657400c04d000100010000"
    "012c0004d157f912c04d001c00010000012c00102607f0b0000f000000000000babef00dc06b0001000100001c"
    "200004616b850fc06b001c000100001c20001026003c0300000000f03c91fffe96e8ef00002910000000000000"
    "00");

// A message with one answer: owner the root, the given type, class and RDATA.
std::vector<byte> one_answer(std::uint16_t type, std::uint16_t rr_class, std::vector<byte> rdata) {
  std::vector<byte> m = {0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0,  // header, ANCOUNT 1
                         0,                                          // owner: root
                         static_cast<byte>(type >> 8), static_cast<byte>(type),
                         static_cast<byte>(rr_class >> 8), static_cast<byte>(rr_class),
                         0, 0, 0, 60,
                         static_cast<byte>(rdata.size() >> 8), static_cast<byte>(rdata.size())};
  m.insert(m.end(), rdata.begin(), rdata.end());
  return m;
}

// A message with one question whose name is `name_bytes` (type A, class IN)
// and whose ID field holds `id`, so that the header bytes can serve as a
// pointer target.
std::vector<byte> one_question(std::vector<byte> name_bytes, std::uint16_t id = 0x1234) {
  std::vector<byte> m = {static_cast<byte>(id >> 8), static_cast<byte>(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  m.insert(m.end(), name_bytes.begin(), name_bytes.end());
  for (byte b : {0, 1, 0, 1}) m.push_back(b);
  return m;
}

std::vector<byte> label_bytes(std::size_t length, char fill) {
  std::vector<byte> out{static_cast<byte>(length)};
  out.insert(out.end(), length, static_cast<byte>(fill));
  return out;
}

template <class T, class V>
T get_as(const V& v) {
  REQUIRE(std::holds_alternative<T>(v));
  return std::get<T>(v);
}

std::string text(dns::name_view n) { return std::string(n.to_name().text()); }

// Reads every entry of the Scapy response; shared by the compressed and the
// uncompressed forms, which must read the same.
void check_response(dns::view v) {
  CHECK(v.id() == 0x1234);
  CHECK(v.qr());
  CHECK(v.opcode() == dns::opcode::query);
  CHECK(v.aa());
  CHECK_FALSE(v.tc());
  CHECK(v.rd());
  CHECK(v.ra());
  CHECK_FALSE(v.z());
  CHECK_FALSE(v.ad());
  CHECK_FALSE(v.cd());
  CHECK(v.rcode() == dns::rcode::no_error);
  CHECK(v.question_count() == 1);
  CHECK(v.answer_count() == 3);
  CHECK(v.authority_count() == 1);
  CHECK(v.additional_count() == 2);
  CHECK(v.trailing().empty());

  REQUIRE(v.questions().size() == 1);
  const dns::question q = *v.questions().begin();
  CHECK(text(q.name()) == "www.example.com");
  CHECK(q.type() == dns::type::a);
  CHECK(q.class_code() == dns::class_code::in);

  std::vector<dns::record> answers(v.answers().begin(), v.answers().end());
  REQUIRE(answers.size() == 3);
  CHECK(text(answers[0].name()) == "www.example.com");
  CHECK(answers[0].type() == dns::type::cname);
  CHECK(answers[0].class_code() == dns::class_code::in);
  CHECK(answers[0].ttl() == 300);
  CHECK(text(get_as<dns::cname_rdata>(answers[0].data()).name) == "web.example.com");

  CHECK(text(answers[1].name()) == "web.example.com");
  CHECK(answers[1].type() == dns::type::a);
  CHECK(answers[1].ttl() == 60);
  CHECK(answers[1].rdata_length() == 4);
  CHECK(get_as<dns::a_rdata>(answers[1].data()).address == *ipv4_address::parse("93.184.216.34"));

  CHECK(answers[2].type() == dns::type::aaaa);
  CHECK(answers[2].rdata_length() == 16);
  CHECK(get_as<dns::aaaa_rdata>(answers[2].data()).text().view() == "2001:db8::1");

  std::vector<dns::record> authorities(v.authorities().begin(), v.authorities().end());
  REQUIRE(authorities.size() == 1);
  CHECK(text(authorities[0].name()) == "example.com");
  CHECK(authorities[0].type() == dns::type::soa);
  CHECK(authorities[0].ttl() == 3600);
  const auto& soa = get_as<dns::soa_rdata>(authorities[0].data());
  CHECK(text(soa.mname) == "ns1.example.com");
  CHECK(text(soa.rname) == "hostmaster.example.com");
  CHECK(soa.serial == 2024010101);
  CHECK(soa.refresh == 7200);
  CHECK(soa.retry == 900);
  CHECK(soa.expire == 1209600);
  CHECK(soa.minimum == 300);

  std::vector<dns::record> additionals(v.additionals().begin(), v.additionals().end());
  REQUIRE(additionals.size() == 2);
  CHECK(additionals[0].type() == dns::type::mx);
  CHECK(additionals[0].ttl() == 600);
  const auto& mx = get_as<dns::mx_rdata>(additionals[0].data());
  CHECK(mx.preference == 10);
  CHECK(text(mx.exchange) == "mail.example.com");

  CHECK(text(additionals[1].name()) == "example.com");
  CHECK(additionals[1].type() == dns::type::txt);
  const auto& txt = get_as<dns::txt_rdata>(additionals[1].data());
  std::vector<std::string_view> strings(txt.strings().begin(), txt.strings().end());
  CHECK(strings == std::vector<std::string_view>{"v=spf1 -all", "hello world"});
}

}  // namespace

static_assert(std::forward_iterator<dns::section_iterator<dns::record>>);
static_assert(std::forward_iterator<dns::name_view::label_iterator>);
static_assert(std::ranges::forward_range<dns::record_range>);

TEST_CASE("dns view reads every header field of a Scapy query") {
  auto v = dns::view::checked(query);
  REQUIRE(v);
  CHECK(v->id() == 0x1234);
  CHECK(v->flags() == 0x0100);
  CHECK_FALSE(v->qr());
  CHECK(v->opcode() == dns::opcode::query);
  CHECK_FALSE(v->aa());
  CHECK_FALSE(v->tc());
  CHECK(v->rd());
  CHECK_FALSE(v->ra());
  CHECK_FALSE(v->z());
  CHECK_FALSE(v->ad());
  CHECK_FALSE(v->cd());
  CHECK(v->rcode() == 0);
  CHECK(v->question_count() == 1);
  CHECK(v->answer_count() == 0);
  CHECK(v->authority_count() == 0);
  CHECK(v->additional_count() == 0);
  CHECK(v->header().size() == dns::header_size);
  CHECK(v->message().size() == query.size());

  const dns::question q = *v->questions().begin();
  CHECK(q.offset() == 12);
  CHECK(q.size() == 21);
  CHECK(q.name().offset() == 12);
  CHECK(q.name().encoded_size() == 17);
  CHECK(q.name().wire_length() == 17);
  CHECK(q.name().label_count() == 3);
  CHECK(q.type() == dns::type::a);
  CHECK(q.class_code() == dns::class_code::in);
  CHECK(v->answers().empty());
  CHECK(v->answers().offset() == query.size());
}

TEST_CASE("dns view reads every flag, all set (Scapy)") {
  // Scapy: raw(DNS(id=0xffff, qr=1, opcode=5, aa=1, tc=1, rd=1, ra=1, z=1,
  //                ad=1, cd=1, rcode=3, qd=None))
  const auto bytes = from_hex("ffffaff30000000000000000");
  auto v = dns::view::checked(bytes);
  REQUIRE(v);
  CHECK(v->id() == 0xffff);
  CHECK(v->qr());
  CHECK(v->opcode() == dns::opcode::update);
  CHECK(v->aa());
  CHECK(v->tc());
  CHECK(v->rd());
  CHECK(v->ra());
  CHECK(v->z());
  CHECK(v->ad());
  CHECK(v->cd());
  CHECK(v->rcode() == dns::rcode::name_error);
  CHECK(v->questions().empty());

  auto r = dns::header_repr::parse(*v);
  REQUIRE(r);
  CHECK(*r == dns::header_repr{.id = 0xffff, .qr = true, .opcode = 5, .aa = true, .tc = true,
                               .rd = true, .ra = true, .z = true, .ad = true, .cd = true,
                               .rcode = 3});
  std::vector<byte> out(12, 0xa5);
  r->emit(out);
  CHECK(out == bytes);
}

TEST_CASE("dns header repr emits a Scapy header into a junk-filled buffer") {
  const dns::header_repr r{.id = 0x1234, .qr = true, .aa = true, .rd = true, .ra = true,
                           .question_count = 1, .answer_count = 3, .authority_count = 1,
                           .additional_count = 2};
  CHECK(dns::header_repr::size() == 12);
  std::vector<byte> out(12, 0xa5);
  r.emit(out);
  CHECK(std::equal(out.begin(), out.end(), response.begin()));
  auto parsed = dns::header_repr::parse(*dns::view::checked(response));
  REQUIRE(parsed);
  CHECK(*parsed == r);
}

TEST_CASE("dns header repr reads the header of a message whose sections fail") {
  auto bytes = response;
  bytes[34] = 0x0d;  // the first answer's owner now points into the middle of a label
  REQUIRE_FALSE(dns::view::checked(bytes));
  auto r = dns::header_repr::parse(bytes_view(bytes));
  REQUIRE(r);
  CHECK(*r == *dns::header_repr::parse(*dns::view::checked(response)));
  auto short_header = dns::header_repr::parse(bytes_view(bytes).first(11));
  REQUIRE_FALSE(short_header);
  CHECK(short_header.error().code == errc::truncated);
}

TEST_CASE("dns view reads every record of a compressed Scapy response") {
  auto v = dns::view::checked(response);
  REQUIRE(v);
  check_response(*v);

  // Offsets, and the names behind the pointers.
  auto answers = v->answers();
  CHECK(answers.offset() == 33);
  const dns::record cname = *answers.begin();
  CHECK(cname.offset() == 33);
  CHECK(cname.name().encoded_size() == 2);
  CHECK(cname.name().wire_length() == 17);
  CHECK(cname.rdata_offset() == 45);
  CHECK(cname.rdata_length() == 6);
  CHECK(cname.size() == 18);
  CHECK(cname.name() == v->questions().begin()->name());
  const auto target = get_as<dns::cname_rdata>(cname.data()).name;
  CHECK(target.offset() == 45);
  CHECK(target.encoded_size() == 6);
  CHECK(target.wire_length() == 17);
}

TEST_CASE("dns view reads the uncompressed form of the same response alike") {
  auto v = dns::view::checked(response_uncompressed);
  REQUIRE(v);
  check_response(*v);
}

TEST_CASE("dns view reads a resolver's answer from the tcpdump capture") {
  auto check = [](dns::view v) {
    CHECK(v.qr());
    CHECK(v.aa());   // tcpdump's '*'
    CHECK_FALSE(v.ra());  // tcpdump's '-'
    CHECK(v.rd());
    CHECK(v.rcode() == dns::rcode::no_error);
    CHECK(v.answer_count() == 2);
    CHECK(v.authority_count() == 2);
    CHECK(v.additional_count() == 5);
    CHECK(v.message().size() == 224);  // tcpdump's "(224)"

    CHECK(text(v.questions().begin()->name()) == "www.tcpdump.org");
    std::vector<std::string> answers;
    for (const dns::record& r : v.answers()) {
      CHECK(text(r.name()) == "www.tcpdump.org");
      CHECK(r.ttl() == 60);
      answers.push_back(get_as<dns::a_rdata>(r.data()).address.to_string());
    }
    CHECK(answers == std::vector<std::string>{"192.139.46.66", "198.199.88.104"});

    std::vector<std::string> servers;
    for (const dns::record& r : v.authorities()) {
      CHECK(text(r.name()) == "tcpdump.org");
      CHECK(r.ttl() == 86400);
      servers.push_back(text(get_as<dns::ns_rdata>(r.data()).name));
    }
    std::sort(servers.begin(), servers.end());
    CHECK(servers == std::vector<std::string>{"nic.sandelman.ca", "sns.cooperix.net"});

    std::vector<std::string> additionals;
    for (const dns::record& r : v.additionals()) {
      std::string line = text(r.name()) + " " + std::to_string(r.type()) + " " +
                         std::to_string(r.class_code()) + " ";
      if (r.type() == dns::type::a) line += get_as<dns::a_rdata>(r.data()).address.to_string();
      if (r.type() == dns::type::aaaa) line += get_as<dns::aaaa_rdata>(r.data()).text().to_string();
      if (r.type() == dns::type::opt) {
        CHECK(get_as<dns::opaque_rdata>(r.data()).bytes.empty());
        CHECK(r.name().is_root());
      }
      additionals.push_back(line);
    }
    std::sort(additionals.begin(), additionals.end());
    CHECK(additionals == std::vector<std::string>{
                             ". 41 4096 ",  // the OPT record: class is the UDP size
                             "nic.sandelman.ca 1 1 209.87.249.18",
                             "nic.sandelman.ca 28 1 2607:f0b0:f::babe:f00d",
                             "sns.cooperix.net 1 1 97.107.133.15",
                             "sns.cooperix.net 28 1 2600:3c03::f03c:91ff:fe96:e8ef"});
  };

  auto udp = dns::view::checked(captured_answer);
  REQUIRE(udp);
  CHECK(udp->id() == 22836);
  check(*udp);

  // Over TCP the caller takes off the length prefix.
  const std::span<const byte> tcp(captured_tcp_answer);
  REQUIRE(wire::load_be16(tcp.data()) == tcp.size() - 2);
  auto framed = dns::view::checked(tcp.subspan(2));
  REQUIRE(framed);
  CHECK(framed->id() == 17177);
  check(*framed);
}

TEST_CASE("dns rejects every truncation with a typed error") {
  const auto& message = GENERATE(as<std::vector<byte>>{}, response, response_uncompressed,
                                 captured_answer, query);
  const auto cut = GENERATE_COPY(range<std::size_t>(0, message.size()));
  auto v = dns::view::checked(std::span(message).first(cut));
  REQUIRE_FALSE(v);
  CHECK(v.error().protocol == std::string_view("dns"));
  CHECK(v.error().code == errc::truncated);
  CHECK(v.error().offset <= cut);
}

TEST_CASE("dns truncation errors say which part is missing") {
  auto header = dns::view::checked(std::span(query).first(11));
  REQUIRE_FALSE(header);
  CHECK(header.error().message() == "dns: header truncated at offset 0: needs 12 bytes, 11 present");

  auto label = dns::view::checked(std::span(query).first(20));
  REQUIRE_FALSE(label);
  CHECK(label.error().field == std::string_view("label"));
  CHECK(label.error().offset == 16);
  CHECK(label.error().limit == 8);

  auto fixed = dns::view::checked(std::span(query).first(31));
  REQUIRE_FALSE(fixed);
  CHECK(fixed.error().message() == "dns: question truncated at offset 29: needs 4 bytes, 2 present");

  // The CNAME's RDATA length runs past the end.
  auto rdata = dns::view::checked(std::span(response).first(50));
  REQUIRE_FALSE(rdata);
  CHECK(rdata.error().message() == "dns: rdata truncated at offset 45: needs 6 bytes, 5 present");

  auto answer = dns::view::checked(std::span(response).first(40));
  REQUIRE_FALSE(answer);
  CHECK(answer.error().message() == "dns: answer truncated at offset 35: needs 10 bytes, 5 present");

  auto pointer = dns::view::checked(std::span(response).first(34));
  REQUIRE_FALSE(pointer);
  CHECK(pointer.error().field == std::string_view("name pointer"));
}

TEST_CASE("dns rejects counts that claim more entries than present") {
  auto bytes = query;
  bytes[5] = 2;  // QDCOUNT 2, one question present
  auto v = dns::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::truncated);
  CHECK(v.error().offset == query.size());

  bytes = response;
  bytes[11] = 3;  // ARCOUNT 3
  v = dns::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::truncated);
}

TEST_CASE("dns keeps bytes after the last record out of the sections") {
  auto bytes = query;
  bytes.insert(bytes.end(), {0xde, 0xad});
  auto v = dns::view::checked(bytes);
  REQUIRE(v);
  CHECK(v->message().size() == query.size());
  CHECK(v->trailing().size() == 2);
  CHECK(v->bytes().size() == bytes.size());
}

TEST_CASE("dns compression: a pointer to itself is a loop") {
  auto v = dns::view::checked(one_question({0xc0, 0x0c}));
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"dns", errc::pointer_loop, "name pointer", 12, 12, 12});
  CHECK(v.error().message() == "dns: name pointer: compression pointers loop at offset 12");
}

TEST_CASE("dns compression: a pointer back to the start of its own labels is a loop") {
  // "a" then a pointer to the "a": a.a.a.a... for ever.
  auto v = dns::view::checked(one_question({0x01, 'a', 0xc0, 0x0c}));
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"dns", errc::pointer_loop, "name pointer", 14, 12, 12});
}

TEST_CASE("dns compression: two pointers that point at each other are a loop") {
  // The name at 12 points back to 0, where the ID field (0xc00c) points to 12.
  auto v = dns::view::checked(one_question({0xc0, 0x00}, 0xc00c));
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"dns", errc::pointer_loop, "name pointer", 0, 12, 0});
}

TEST_CASE("dns compression: a forward pointer breaks the backwards rule") {
  // The name at 12 points to a well-formed name after the question (at 18):
  // not a prior occurrence (RFC 1035 §4.1.4), so it is refused.
  auto bytes = one_question({0xc0, 0x12});
  bytes.insert(bytes.end(), {0x01, 'a', 0x00});
  auto v = dns::view::checked(bytes);
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"dns", errc::pointer_loop, "name pointer", 12, 18, 12});
}

TEST_CASE("dns compression: a pointer past the end is out of range") {
  auto v = dns::view::checked(one_question({0xc0, 0xff}));
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"dns", errc::pointer_out_of_range, "name pointer", 12, 255, 18});
  CHECK(v.error().message() ==
        "dns: name pointer: compression pointer 255 at offset 12 points outside the message");

  v = dns::view::checked(one_question({0xff, 0xff}));
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::pointer_out_of_range);
  CHECK(v.error().value == 0x3fff);
}

TEST_CASE("dns compression: a chain of more than 128 pointers is refused") {
  // A root octet, then pointers each to the one before: the last needs as
  // many jumps as there are pointers.
  auto chain = [](std::size_t pointers) {
    std::vector<byte> m{0x00, 0xc0, 0x00};
    for (std::size_t i = 1; i < pointers; ++i) {
      const std::size_t previous = 1 + 2 * (i - 1);
      m.push_back(static_cast<byte>(0xc0 | (previous >> 8)));
      m.push_back(static_cast<byte>(previous));
    }
    return m;
  };
  const auto ok = chain(128);
  auto n = dns::name_view::checked(ok, ok.size() - 2);
  REQUIRE(n);
  CHECK(n->is_root());
  CHECK(n->encoded_size() == 2);
  CHECK(n->to_name().text() == ".");

  const auto too_long = chain(129);
  n = dns::name_view::checked(too_long, too_long.size() - 2);
  REQUIRE_FALSE(n);
  CHECK(n.error().code == errc::above_maximum);
  CHECK(n.error().field == std::string_view("name pointers"));
  CHECK(n.error().value == 129);
}

TEST_CASE("dns rejects the reserved label types") {
  // A length octet of 64 is label type 0b01 (RFC 6891 §5), not a long label.
  auto name = label_bytes(64, 'x');
  name.push_back(0);
  auto v = dns::view::checked(one_question(name));
  REQUIRE_FALSE(v);
  CHECK(v.error() == parse_error{"dns", errc::unsupported, "label type", 12, 64, 0});
  CHECK(v.error().message() == "dns: label type 64 is not supported");

  v = dns::view::checked(one_question({0x80, 0x00}));
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::unsupported);
  CHECK(v.error().value == 0x80);
}

TEST_CASE("dns accepts a 255-byte name and rejects a 256-byte one") {
  auto name_of = [](std::size_t last_label) {
    std::vector<byte> n;
    for (int i = 0; i < 3; ++i) {
      const auto l = label_bytes(63, static_cast<char>('a' + i));
      n.insert(n.end(), l.begin(), l.end());
    }
    const auto l = label_bytes(last_label, 'd');
    n.insert(n.end(), l.begin(), l.end());
    n.push_back(0);
    return n;
  };
  const auto longest = one_question(name_of(61));
  auto ok = dns::view::checked(longest);
  REQUIRE(ok);
  const auto name = ok->questions().begin()->name();
  CHECK(name.wire_length() == 255);
  CHECK(name.to_name().size() == 253);
  CHECK(name.to_name().text().substr(0, 3) == "aaa");

  auto v = dns::view::checked(one_question(name_of(62)));
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::above_maximum);
  CHECK(v.error().message() == "dns: name length 256 exceeds 255");
}

TEST_CASE("dns counts the name length through compression pointers") {
  // Question 1: three 63-byte labels (193 bytes); question 2: one label and
  // a pointer to question 1, so only its uncompressed form is too long.
  auto build = [](std::size_t label) {
    std::vector<byte> m = {0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 3; ++i) {
      const auto l = label_bytes(63, 'a');
      m.insert(m.end(), l.begin(), l.end());
    }
    m.push_back(0);
    m.insert(m.end(), {0, 1, 0, 1});
    const auto l = label_bytes(label, 'b');
    m.insert(m.end(), l.begin(), l.end());
    m.insert(m.end(), {0xc0, 0x0c, 0, 1, 0, 1});
    return m;
  };
  const auto longest = build(61);
  auto ok = dns::view::checked(longest);
  REQUIRE(ok);
  auto it = ok->questions().begin();
  ++it;
  CHECK(it->name().wire_length() == 255);
  CHECK(it->name().label_count() == 4);

  auto v = dns::view::checked(build(62));
  REQUIRE_FALSE(v);
  CHECK(v.error().code == errc::above_maximum);
  CHECK(v.error().field == std::string_view("name length"));
}

TEST_CASE("dns checks the RDATA of the types it decodes") {
  auto error_of = [](std::uint16_t type, std::vector<byte> rdata) {
    auto v = dns::view::checked(one_answer(type, dns::class_code::in, std::move(rdata)));
    REQUIRE_FALSE(v);
    return v.error();
  };
  CHECK(error_of(dns::type::a, {1, 2, 3, 4, 5}).message() == "dns: rdata length 5 is not 4");
  CHECK(error_of(dns::type::aaaa, {1, 2, 3, 4}).message() == "dns: rdata length 4 is not 16");
  // A name with a byte left over, and one that runs past its RDATA.
  CHECK(error_of(dns::type::cname, {1, 'a', 0, 0}).message() == "dns: rdata length 4 is not 3");
  CHECK(error_of(dns::type::ns, {3, 'a', 'b'}).code == errc::truncated);
  CHECK(error_of(dns::type::ptr, {}).code == errc::truncated);
  CHECK(error_of(dns::type::mx, {0}).message() ==
        "dns: mx preference truncated at offset 23: needs 2 bytes, 1 present");
  CHECK(error_of(dns::type::mx, {0, 10, 1}).code == errc::truncated);
  CHECK(error_of(dns::type::txt, {3, 'a', 'b'}).message() ==
        "dns: character-string truncated at offset 23: needs 4 bytes, 3 present");
  CHECK(error_of(dns::type::soa, {0, 0, 1, 2, 3}).message() ==
        "dns: soa fields truncated at offset 25: needs 20 bytes, 3 present");
  std::vector<byte> soa_long(23, 0);
  CHECK(error_of(dns::type::soa, soa_long).message() == "dns: rdata length 23 is not 22");
  // A pointer in RDATA follows the same rules as anywhere else.
  CHECK(error_of(dns::type::cname, {0xc0, 0x17}).code == errc::pointer_loop);
  CHECK(error_of(dns::type::cname, {0xc0, 0x40}).code == errc::pointer_out_of_range);
}

TEST_CASE("dns leaves RDATA of other types and classes opaque") {
  // An empty TXT has no strings; a CH-class A is not an IPv4 address
  // (RFC 1035 §3.4.1); an UPDATE-style empty CNAME in class ANY; SRV.
  const auto empty_txt = one_answer(dns::type::txt, dns::class_code::in, {});
  auto v = dns::view::checked(empty_txt);
  REQUIRE(v);
  const auto& txt = get_as<dns::txt_rdata>(v->answers().begin()->data());
  CHECK(txt.strings().begin() == txt.strings().end());

  const auto chaos_a = one_answer(dns::type::a, dns::class_code::ch, {1, 'a', 0, 0x01, 0x02});
  v = dns::view::checked(chaos_a);
  REQUIRE(v);
  CHECK(get_as<dns::opaque_rdata>(v->answers().begin()->data()).bytes.size() == 5);

  const auto update_cname = one_answer(dns::type::cname, dns::class_code::any, {});
  v = dns::view::checked(update_cname);
  REQUIRE(v);
  CHECK(get_as<dns::opaque_rdata>(v->answers().begin()->data()).bytes.empty());

  const auto srv = one_answer(dns::type::srv, dns::class_code::in, {0, 1, 0, 2, 0, 80, 0});
  v = dns::view::checked(srv);
  REQUIRE(v);
  const auto record = *v->answers().begin();
  CHECK(get_as<dns::opaque_rdata>(record.data()).bytes.size() == 7);
  CHECK(record.rdata()[5] == 80);
}

TEST_CASE("dns names: labels, text, and comparison without case") {
  auto v = dns::view::checked(response);
  REQUIRE(v);
  const auto answer = *v->answers().begin();
  const auto target = get_as<dns::cname_rdata>(answer.data()).name;

  std::vector<std::string_view> labels;
  for (std::string_view l : target.labels()) labels.push_back(l);
  CHECK(labels == std::vector<std::string_view>{"web", "example", "com"});
  CHECK(target.labels().size() == 3);
  CHECK(std::ranges::distance(target.labels()) == 3);

  CHECK(target.equals("web.example.com"));
  CHECK(target.equals("WEB.Example.COM."));
  CHECK_FALSE(target.equals("web.example.co"));
  CHECK_FALSE(target.equals("www.example.com"));
  CHECK(answer.name().equals("www.example.com"));
  CHECK_FALSE(target == answer.name());
  CHECK(target == (*std::next(v->answers().begin())).name());

  const dns::name n = target.to_name();
  CHECK(n.text() == "web.example.com");
  CHECK(n.to_string() == "web.example.com");
  CHECK_FALSE(n == answer.name().to_name());

  // Case is kept, and ignored by comparison.
  auto upper = query;
  for (std::size_t i = 13; i < 16; ++i) upper[i] = static_cast<byte>(std::toupper(upper[i]));
  auto u = dns::view::checked(upper);
  REQUIRE(u);
  const auto shouting = u->questions().begin()->name();
  CHECK(shouting.to_name().text() == "WWW.example.com");
  CHECK(shouting == answer.name());
  CHECK(shouting.to_name() == answer.name().to_name());
  CHECK(shouting.to_name().text() != answer.name().to_name().text());

  // The root.
  const dns::name_view root;
  CHECK(root.is_root());
  CHECK(root.labels().empty());
  CHECK(root.to_name().text() == ".");
  CHECK(root.equals("."));
  CHECK_FALSE(root.equals("com"));
  CHECK(dns::name{}.text() == ".");
}

namespace {

// The name's fields as `name_view::checked` finds them.
void check_name_as_checked(const dns::name_view& n, std::size_t in_place_end) {
  const auto again = dns::name_view::checked(n.message(), n.offset(), in_place_end);
  REQUIRE(again);
  CHECK(again->encoded_size() == n.encoded_size());
  CHECK(again->wire_length() == n.wire_length());
  CHECK(again->label_count() == n.label_count());
  CHECK(again->to_name().text() == n.to_name().text());
}

// What `record::data()` decodes equals what `parse_rdata` does on its own,
// which checks every name again.
void check_data_as_parsed(const dns::record& r, dns::view v) {
  const auto parsed = dns::parse_rdata(v.bytes(), r.type(), r.class_code(), r.rdata_offset(), r.rdata_length());
  REQUIRE(parsed);
  const dns::typed_rdata data = r.data();
  REQUIRE(data.index() == parsed->index());
  const std::size_t end = r.rdata_offset() + r.rdata_length();
  std::visit(
      [&](const auto& d) {
        using T = std::decay_t<decltype(d)>;
        const auto& p = std::get<T>(*parsed);
        if constexpr (std::is_same_v<T, dns::cname_rdata> || std::is_same_v<T, dns::ns_rdata> ||
                      std::is_same_v<T, dns::ptr_rdata>) {
          CHECK(d.name.offset() == p.name.offset());
          check_name_as_checked(d.name, end);
        } else if constexpr (std::is_same_v<T, dns::mx_rdata>) {
          CHECK(d.preference == p.preference);
          check_name_as_checked(d.exchange, end);
        } else if constexpr (std::is_same_v<T, dns::soa_rdata>) {
          check_name_as_checked(d.mname, end);
          check_name_as_checked(d.rname, end);
          CHECK(d.serial == p.serial);
          CHECK(d.minimum == p.minimum);
        } else if constexpr (std::is_same_v<T, dns::a_rdata>) {
          CHECK(d.address == p.address);
        } else if constexpr (std::is_same_v<T, dns::aaaa_rdata>) {
          CHECK(d.address == p.address);
        } else {
          CHECK(d.bytes.data() == p.bytes.data());
          CHECK(d.bytes.size() == p.bytes.size());
        }
      },
      data);
}

}  // namespace

TEST_CASE("dns readers of a checked message agree with the checks") {
  // The sections are read without checking names again: each entry, name and
  // RDATA must come out as the checking functions find them, and stepping
  // from entry to entry must land where `checked()` did.
  const auto message = GENERATE_COPY(response, response_uncompressed, captured_answer);
  auto v = dns::view::checked(message);
  REQUIRE(v);
  std::size_t pos = dns::header_size;
  for (const dns::question q : v->questions()) {
    CHECK(q.offset() == pos);
    check_name_as_checked(q.name(), message.size());
    pos += q.size();
  }
  for (const auto& section : {v->answers(), v->authorities(), v->additionals()}) {
    CHECK(section.offset() == pos);
    for (auto it = section.begin(); it != section.end(); ++it) {
      const dns::record r = *it;
      CHECK(r.offset() == pos);
      CHECK(it->offset() == pos);
      check_name_as_checked(r.name(), message.size());
      check_data_as_parsed(r, *v);
      pos += r.size();
    }
  }
  CHECK(pos == v->message().size());
}

TEST_CASE("dns readers stay inside a message changed after the check") {
  // Every byte after the header set to values that break names (a label
  // running past the end, a reserved label type, a pointer forward or to
  // itself, a zero length): whatever the readers return then, they read
  // only bytes of the message.
  const auto offset = GENERATE(range<std::size_t>(dns::header_size, response.size()));
  const auto value = GENERATE(as<byte>{}, 0x00, 0x05, 0x3f, 0x40, 0xc0, 0xff);
  auto bytes = response;
  auto v = dns::mutable_view::checked(bytes);
  REQUIRE(v);
  bytes[offset] = value;
  const byte* const first = bytes.data();
  const byte* const last = bytes.data() + bytes.size();
  auto inside = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const byte*>(p);
    return n == 0 || (b >= first && b + n <= last);
  };
  auto read_name = [&](const dns::name_view& n) {
    for (std::string_view label : n.labels()) {
      if (n.message().data() == first) CHECK(inside(label.data(), label.size()));
    }
    CHECK(n.to_name().size() <= dns::max_name_length);
  };
  for (const dns::question q : v->questions()) read_name(q.name());
  std::size_t records = 0;
  for (const auto& section : {v->answers(), v->authorities(), v->additionals()}) {
    for (const dns::record r : section) {
      ++records;
      CHECK(r.offset() <= bytes.size());
      CHECK(inside(r.rdata().data(), r.rdata().size()));
      read_name(r.name());
      std::visit(
          [&](const auto& d) {
            using T = std::decay_t<decltype(d)>;
            if constexpr (std::is_same_v<T, dns::cname_rdata> || std::is_same_v<T, dns::ns_rdata> ||
                          std::is_same_v<T, dns::ptr_rdata>) {
              read_name(d.name);
            } else if constexpr (std::is_same_v<T, dns::mx_rdata>) {
              read_name(d.exchange);
            } else if constexpr (std::is_same_v<T, dns::soa_rdata>) {
              read_name(d.mname);
              read_name(d.rname);
            } else if constexpr (std::is_same_v<T, dns::opaque_rdata> || std::is_same_v<T, dns::txt_rdata>) {
              CHECK(inside(d.bytes.data(), d.bytes.size()));
            }
          },
          r.data());
    }
  }
  CHECK(records == 6);  // the counts are the header's, which `checked()` walked
}

TEST_CASE("dns formats IPv6 addresses as RFC 5952 text") {
  // Expected text from Python's ipaddress / inet_ntop.
  auto text_of = [](std::string_view hex) {
    const auto b = from_hex(hex);
    std::array<byte, 16> a{};
    std::copy(b.begin(), b.end(), a.begin());
    return dns::format_ipv6(a).to_string();
  };
  CHECK(text_of("20010db8000000000000000000000001") == "2001:db8::1");
  CHECK(text_of("20010db8000000010001000100010001") == "2001:db8:0:1:1:1:1:1");  // §4.2.2
  CHECK(text_of("20010db8000000000001000000000001") == "2001:db8::1:0:0:1");      // §4.2.3 tie
  CHECK(text_of("20010000000000010000000000000001") == "2001:0:0:1::1");          // §4.2.3 longest
  CHECK(text_of("00000000000000000000000000000000") == "::");
  CHECK(text_of("00000000000000000000000000000001") == "::1");
  CHECK(text_of("00010000000000000000000000000000") == "1::");
  CHECK(text_of("fe800000000000000000000000000000") == "fe80::");
  CHECK(text_of("00000000000100000000000000000000") == "0:0:1::");
  CHECK(text_of("00010002000300040005000600070000") == "1:2:3:4:5:6:7:0");
  CHECK(text_of("00000001000200030004000500060007") == "0:1:2:3:4:5:6:7");
  CHECK(text_of("ffffffffffffffffffffffffffffffff") == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  CHECK(text_of("2607f0b0000f000000000000babef00d") == "2607:f0b0:f::babe:f00d");
  CHECK(text_of("00000000000000000000ffffc0000201") == "::ffff:192.0.2.1");  // §5
}

TEST_CASE("dns mutable view rewrites the header flags") {
  auto bytes = query;
  auto v = dns::mutable_view::checked(bytes);
  REQUIRE(v);
  v->set_id(0xffff);
  v->set_qr(true);
  v->set_opcode(dns::opcode::update);
  v->set_aa(true);
  v->set_tc(true);
  v->set_ra(true);
  v->set_z(true);
  v->set_ad(true);
  v->set_cd(true);
  v->set_rcode(dns::rcode::name_error);
  // The flags of Scapy's DNS(qr=1, opcode=5, aa=1, tc=1, rd=1, ra=1, z=1,
  // ad=1, cd=1, rcode=3): 0xaff3.
  CHECK(bytes[0] == 0xff);
  CHECK(bytes[1] == 0xff);
  CHECK(bytes[2] == 0xaf);
  CHECK(bytes[3] == 0xf3);
  CHECK(std::equal(bytes.begin() + 4, bytes.end(), query.begin() + 4));

  v->set_rd(false);
  v->set_opcode(dns::opcode::query);
  v->set_rcode(dns::rcode::no_error);
  v->set_z(false);
  auto r = dns::view::checked(bytes);
  REQUIRE(r);
  CHECK_FALSE(r->rd());
  CHECK(r->opcode() == 0);
  CHECK(r->rcode() == 0);
  CHECK_FALSE(r->z());
  CHECK(r->qr());
  CHECK(r->cd());
  CHECK(r->flags() == 0x86b0);
}

namespace {
const std::array<byte, 16> documentation_v6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                               0,    0,    0,    0,    0, 0, 0, 1};
const std::array<std::string_view, 2> spf_strings = {"v=spf1 -all", "hello world"};

// Writes the Scapy response above with the writer; stops at the first entry
// that does not fit and returns its error.
expected<void> write_response(dns::writer& w) {
  using dns::section;
  if (auto ok = w.add_question("www.example.com", dns::type::a); !ok) return ok;
  if (auto ok = w.add_cname(section::answer, "www.example.com", 300, "web.example.com"); !ok) return ok;
  if (auto ok = w.add_a(section::answer, "web.example.com", 60, *ipv4_address::parse("93.184.216.34")); !ok) return ok;
  if (auto ok = w.add_aaaa(section::answer, "web.example.com", 60, documentation_v6); !ok) return ok;
  if (auto ok = w.add_soa(section::authority, "example.com", 3600,
                          {.mname = "ns1.example.com", .rname = "hostmaster.example.com",
                           .serial = 2024010101, .refresh = 7200, .retry = 900,
                           .expire = 1209600, .minimum = 300});
      !ok) {
    return ok;
  }
  if (auto ok = w.add_mx(section::additional, "example.com", 600, 10, "mail.example.com"); !ok) return ok;
  return w.add_txt(section::additional, "example.com", 600, spf_strings);
}

const dns::header_repr response_header{.id = 0x1234, .qr = true, .aa = true, .rd = true, .ra = true};
}  // namespace

TEST_CASE("dns writer emits Scapy's query into a junk-filled buffer") {
  std::vector<byte> buffer(512, 0xa5);
  auto w = dns::writer::start(buffer, {.id = 0x1234, .rd = true});
  REQUIRE(w);
  CHECK(w->size() == 12);
  REQUIRE(w->add_question("www.example.com", dns::type::a));
  CHECK(std::ranges::equal(w->message(), query));
  CHECK(buffer[query.size()] == 0xa5);
}

TEST_CASE("dns writer compresses exactly as Scapy's DNS.compress()") {
  std::vector<byte> buffer(512, 0xa5);
  auto w = dns::writer::start(buffer, response_header);
  REQUIRE(w);
  REQUIRE(write_response(*w));
  CHECK(w->size() == response.size());
  CHECK(std::ranges::equal(w->message(), response));

  // And it reads back as written.
  auto v = dns::view::checked(w->message());
  REQUIRE(v);
  check_response(*v);
}

TEST_CASE("dns writer fails cleanly in a buffer of every smaller size") {
  const auto size = GENERATE(range<std::size_t>(0, 203));
  std::vector<byte> buffer(size, 0xa5);
  auto w = dns::writer::start(buffer, response_header);
  if (size < dns::header_size) {
    REQUIRE_FALSE(w);
    CHECK(w.error().message() == "dns: message length 12 exceeds " + std::to_string(size));
    return;
  }
  REQUIRE(w);
  auto ok = write_response(*w);
  REQUIRE_FALSE(ok);
  CHECK(ok.error().code == errc::above_maximum);
  CHECK(ok.error().field == std::string_view("message length"));
  CHECK(ok.error().limit == size);
  CHECK(ok.error().value > size);
  // What was written before the failure is a whole message, and a prefix of
  // the full one except for the counts.
  CHECK(w->size() <= size);
  auto v = dns::view::checked(w->message());
  REQUIRE(v);
  CHECK(v->message().size() == w->size());
  CHECK(std::equal(w->message().begin() + 12, w->message().end(), response.begin() + 12));
  CHECK(v->answer_count() + v->authority_count() + v->additional_count() + v->question_count() <= 7);
}

TEST_CASE("dns writer matches suffixes without regard to case") {
  std::vector<byte> buffer(512, 0xa5);
  auto w = dns::writer::start(buffer, {.id = 7, .qr = true});
  REQUIRE(w);
  REQUIRE(w->add_question("WWW.Example.COM", dns::type::mx));
  REQUIRE(w->add_mx(dns::section::answer, "www.example.com", 60, 5, "Mail.EXAMPLE.com."));
  const auto expected_bytes = from_hex(
      "000780000001000100000000"
      "03575757074578616d706c6503434f4d00000f0001"  // WWW.Example.COM MX IN
      "c00c000f00010000003c0009"                    // owner: pointer to the question
      "0005044d61696cc010");                        // 5 Mail + pointer to Example.COM
  CHECK(std::ranges::equal(w->message(), expected_bytes));

  auto v = dns::view::checked(w->message());
  REQUIRE(v);
  const auto mx = get_as<dns::mx_rdata>(v->answers().begin()->data());
  // The pointer takes the case of what it points to.
  CHECK(mx.exchange.to_name().text() == "Mail.Example.COM");
  CHECK(mx.exchange.equals("mail.example.com"));
}

TEST_CASE("dns writer copies names read from another message") {
  auto q = dns::view::checked(query);
  REQUIRE(q);
  const auto qname = q->questions().begin()->name();

  std::vector<byte> buffer(512, 0xa5);
  auto w = dns::writer::start(buffer, {.id = q->id(), .qr = true, .rd = true, .ra = true});
  REQUIRE(w);
  REQUIRE(w->add_question(qname, dns::type::a));
  REQUIRE(w->add_ptr(dns::section::answer, qname, 10, dns::name_view{}));
  REQUIRE(w->add_ns(dns::section::authority, ".", 10, qname.to_name()));
  REQUIRE(w->add_record(dns::section::additional, ".", dns::type::opt, 1232, 0, {}));

  auto v = dns::view::checked(w->message());
  REQUIRE(v);
  CHECK(v->questions().begin()->name() == qname);
  const auto ptr = *v->answers().begin();
  CHECK(ptr.name().encoded_size() == 2);  // compressed against the question
  CHECK(get_as<dns::ptr_rdata>(ptr.data()).name.is_root());
  const auto ns = *v->authorities().begin();
  CHECK(ns.name().is_root());
  CHECK(get_as<dns::ns_rdata>(ns.data()).name.equals("www.example.com"));
  CHECK(ns.rdata_length() == 2);
  const auto opt = *v->additionals().begin();
  CHECK(opt.type() == dns::type::opt);
  CHECK(opt.class_code() == 1232);
  CHECK(opt.rdata_length() == 0);
  CHECK(v->trailing().empty());
}

TEST_CASE("dns writer rejects bad names and leaves the message as it was") {
  std::vector<byte> buffer(512, 0xa5);
  auto w = dns::writer::start(buffer, {.id = 1});
  REQUIRE(w);
  REQUIRE(w->add_question("example.com", dns::type::a));
  const std::vector<byte> before(w->message().begin(), w->message().end());

  auto error_of = [&](dns::name_ref n) {
    auto ok = w->add_a(dns::section::answer, n, 1, ipv4_address{});
    REQUIRE_FALSE(ok);
    CHECK(std::ranges::equal(w->message(), before));
    return ok.error();
  };
  CHECK(error_of("").message() == "dns: name length 0 is below 1");
  CHECK(error_of("a..b").message() == "dns: label length 0 is below 1");
  CHECK(error_of(".com").message() == "dns: label length 0 is below 1");
  CHECK(error_of("com..").message() == "dns: label length 0 is below 1");
  const std::string long_label(64, 'x');
  CHECK(error_of(long_label).message() == "dns: label length 64 exceeds 63");
  // 63 + 63 + 63 + 62-byte labels: 256 bytes on the wire.
  const std::string l63(63, 'x');
  const std::string too_long = l63 + "." + l63 + "." + l63 + "." + std::string(62, 'y');
  CHECK(error_of(too_long).message() == "dns: name length 256 exceeds 255");

  // The longest name that fits, the root, and one trailing dot are fine.
  REQUIRE(w->add_a(dns::section::answer, too_long.substr(0, too_long.size() - 1), 1, ipv4_address{}));
  REQUIRE(w->add_a(dns::section::answer, ".", 1, ipv4_address{}));
  REQUIRE(w->add_a(dns::section::answer, "example.com.", 1, ipv4_address{}));
  auto v = dns::view::checked(w->message());
  REQUIRE(v);
  std::vector<std::size_t> lengths;
  for (const auto& r : v->answers()) lengths.push_back(r.name().wire_length());
  CHECK(lengths == std::vector<std::size_t>{255, 1, 13});

  const std::string big_string(256, 't');
  const std::array<std::string_view, 1> big = {big_string};
  auto txt = w->add_txt(dns::section::answer, "example.com", 1, big);
  REQUIRE_FALSE(txt);
  CHECK(txt.error().message() == "dns: character-string length 256 exceeds 255");
}

TEST_CASE("dns writer keeps sections in order") {
  std::vector<byte> buffer(512, 0xa5);
  auto w = dns::writer::start(buffer, {.id = 1});
  REQUIRE(w);
  REQUIRE(w->add_a(dns::section::additional, "a.example", 1, ipv4_address{}));
  const auto size = w->size();
  auto q = w->add_question("example", dns::type::a);
  REQUIRE_FALSE(q);
  CHECK(q.error().field == std::string_view("section order"));
  auto a = w->add_a(dns::section::answer, "a.example", 1, ipv4_address{});
  REQUIRE_FALSE(a);
  CHECK(a.error().field == std::string_view("section order"));
  CHECK(w->size() == size);
  REQUIRE(w->add_a(dns::section::additional, "b.example", 1, ipv4_address{}));
  auto v = dns::view::checked(w->message());
  REQUIRE(v);
  CHECK(v->question_count() == 0);
  CHECK(v->answer_count() == 0);
  CHECK(v->additional_count() == 2);
}

TEST_CASE("dns writer remembers at most 64 suffixes") {
  // 70 distinct one-label owners: the first 64 are remembered, later
  // repeats of the others are written out again.
  std::vector<byte> buffer(4096, 0xa5);
  auto w = dns::writer::start(buffer, {.id = 1});
  REQUIRE(w);
  std::vector<std::string> names;
  for (int i = 0; i < 70; ++i) names.push_back("n" + std::to_string(i));
  for (const auto& n : names) REQUIRE(w->add_a(dns::section::answer, n, 1, ipv4_address{}));
  for (const auto& n : names) REQUIRE(w->add_a(dns::section::answer, n, 1, ipv4_address{}));
  auto v = dns::view::checked(w->message());
  REQUIRE(v);
  std::size_t i = 0;
  for (const auto& r : v->answers()) {
    CHECK(r.name().equals(names[i % 70]));
    if (i >= 70) CHECK(r.name().encoded_size() == (i - 70 < 64 ? 2u : names[i % 70].size() + 2));
    ++i;
  }
  CHECK(i == 140);
}

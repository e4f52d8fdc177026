// The internet checksum against a reference written here straight from
// RFC 1071 §4.1 (big-endian 16-bit words, a trailing odd byte padded with
// zero, carries folded back), on data the fuzzer chooses and cut into pieces
// at the places it chooses (odd lengths included), plus the pseudo-header and
// RFC 1624's incremental update against summing again. checksum.hpp's fast
// path (wide native-order loads, several chains) must agree on every input.
#include <algorithm>
#include <vector>

#include "fuzz_support.hpp"
#include "pystack/wire/checksum.hpp"

using namespace pystack;

namespace {

// RFC 1071 §4.1, one word at a time.
std::uint16_t reference_sum(bytes_view data) {
  std::uint32_t sum = 0;
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += (std::uint32_t{data[i]} << 8) | data[i + 1];
  if (i < data.size()) sum += std::uint32_t{data[i]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}
std::uint16_t reference_checksum(bytes_view data) { return static_cast<std::uint16_t>(~reference_sum(data)); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // First byte: how many cuts; the next ones: where. The rest is the data.
  const std::size_t cuts = std::min<std::size_t>(data[0] % 8, size - 1);
  const bytes_view cut_bytes(data + 1, cuts);
  // A heap copy of exactly the data, so the wide loads cannot read past it
  // unseen.
  const std::vector<byte> owned(data + 1 + cuts, data + size);
  const bytes_view message(owned);

  const std::uint16_t expected = reference_checksum(message);
  PYSTACK_FUZZ_REQUIRE_EQ(checksum::compute(message), expected);
  PYSTACK_FUZZ_REQUIRE_EQ(checksum::accumulator{}.add(message).sum(), reference_sum(message));
  PYSTACK_FUZZ_REQUIRE_EQ(checksum::verify(message), reference_sum(message) == 0xffff);

  // The same data in pieces, each at its own (possibly odd) offset.
  std::vector<std::size_t> points;
  for (byte c : cut_bytes) points.push_back(message.empty() ? 0 : c % (message.size() + 1));
  std::sort(points.begin(), points.end());
  checksum::accumulator pieces;
  std::size_t from = 0;
  for (std::size_t to : points) {
    pieces.add(message.subspan(from, to - from));
    from = to;
  }
  pieces.add(message.subspan(from));
  PYSTACK_FUZZ_REQUIRE_EQ(pieces.finish(), expected);

  // Fields added as host-order numbers equal the same bytes on the wire:
  // the pseudo-header (RFC 768, RFC 793 §3.1) built by hand.
  fuzz::tail_reader extra(bytes_view(data, size));
  const ipv4_address source = extra.address(), destination = extra.address();
  const std::uint8_t protocol = extra.u8();
  const std::uint16_t length = extra.u16();
  std::vector<byte> spelled(12 + message.size());
  source.to_bytes(spelled.data());
  destination.to_bytes(spelled.data() + 4);
  spelled[8] = 0;
  spelled[9] = protocol;
  wire::store_be16(spelled.data() + 10, length);
  std::copy(message.begin(), message.end(), spelled.begin() + 12);
  PYSTACK_FUZZ_REQUIRE_EQ(checksum::accumulator{}.add_pseudo_header(source, destination, protocol, length).add(message).finish(),
                          reference_checksum(spelled));

  // RFC 1624 eqn. 3: one 16-bit word (and one 32-bit one) changed, updated
  // without summing again. The update and a fresh sum agree in one's
  // complement, where 0x0000 and 0xffff are the same number; they differ in
  // spelling only when the new data are all zeros.
  if (message.size() >= 4) {
    const std::size_t at = (extra.u16() % (message.size() / 2)) * 2;
    std::vector<byte> changed(message.begin(), message.end());
    const std::uint16_t old_word = wire::load_be16(changed.data() + at);
    const std::uint16_t new_word = extra.u16();
    wire::store_be16(changed.data() + at, new_word);
    const std::uint16_t updated = checksum::update(expected, old_word, new_word);
    const std::uint16_t fresh = reference_checksum(changed);
    const bool all_zero = std::all_of(changed.begin(), changed.end(), [](byte b) { return b == 0; });
    PYSTACK_FUZZ_REQUIRE(updated == fresh || (all_zero && updated == 0 && fresh == 0xffff));

    if (at + 4 <= message.size()) {
      std::vector<byte> changed32(message.begin(), message.end());
      const std::uint32_t old32 = wire::load_be32(changed32.data() + at);
      const std::uint32_t new32 = extra.u32();
      wire::store_be32(changed32.data() + at, new32);
      const std::uint16_t updated32 = checksum::update32(expected, old32, new32);
      const std::uint16_t fresh32 = reference_checksum(changed32);
      const bool zero32 = std::all_of(changed32.begin(), changed32.end(), [](byte b) { return b == 0; });
      PYSTACK_FUZZ_REQUIRE(updated32 == fresh32 || (zero32 && updated32 == 0 && fresh32 == 0xffff));
    }
  }
  return 0;
}

// Whole frames through `dissect::append_frame`, the engine of the `dissect`
// tool: the first input byte picks the link type (frame_input.hpp), the
// rest is the frame. Every layer the frame holds is decoded on the way,
// and the output must be what docs/dissect-format.md promises: one JSON
// object on one line, appended to what the string held, with "frame" and
// "len" right. A small strict JSON reader below checks that; it is written
// from RFC 8259's grammar, not shared with the writer it checks.
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "frame_input.hpp"
#include "fuzz_support.hpp"
#include "pystack/dissect.hpp"

using namespace pystack;

namespace {

class json_reader {
 public:
  explicit json_reader(std::string_view text) : text_(text) {}

  // The whole text is one object. `frame` and `len` get the values of the
  // top-level members of those names (or stay absent).
  bool object_only(std::optional<std::uint64_t>& frame, std::optional<std::uint64_t>& len) {
    top_frame_ = &frame;
    top_len_ = &len;
    return peek() == '{' && value(0) && at_ == text_.size();
  }

 private:
  char peek() const { return at_ < text_.size() ? text_[at_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++at_;
    return true;
  }
  bool literal(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  bool value(int depth) {
    if (depth > 32) return false;
    switch (peek()) {
      case '{': return object(depth);
      case '[': return array(depth);
      case '"': return string(nullptr);
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number(nullptr);
    }
  }

  bool object(int depth) {
    eat('{');
    std::set<std::string> keys;
    if (eat('}')) return true;
    for (;;) {
      std::string key;
      if (!string(&key) || !eat(':')) return false;
      if (!keys.insert(key).second) return false;  // a key twice is a dissector bug
      std::optional<std::uint64_t>* wanted = nullptr;
      if (depth == 0 && key == "frame") wanted = top_frame_;
      if (depth == 0 && key == "len") wanted = top_len_;
      if (wanted) {
        std::uint64_t n = 0;
        if (!number(&n)) return false;
        *wanted = n;
      } else if (!value(depth + 1)) {
        return false;
      }
      if (eat('}')) return true;
      if (!eat(',')) return false;
    }
  }

  bool array(int depth) {
    eat('[');
    if (eat(']')) return true;
    for (;;) {
      if (!value(depth + 1)) return false;
      if (eat(']')) return true;
      if (!eat(',')) return false;
    }
  }

  // RFC 8259 §7; the writer escapes everything outside printable ASCII, so
  // any other byte in a string is an error here.
  bool string(std::string* out) {
    if (!eat('"')) return false;
    for (;;) {
      const char c = peek();
      if (c == '"') {
        ++at_;
        return true;
      }
      if (at_ >= text_.size() || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
        return false;
      }
      ++at_;
      if (c != '\\') {
        if (out) *out += c;
        continue;
      }
      const char e = peek();
      ++at_;
      if (e == 'u') {
        for (int i = 0; i < 4; ++i) {
          if (!std::isxdigit(static_cast<unsigned char>(peek()))) return false;
          ++at_;
        }
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return false;
      }
    }
  }

  // RFC 8259 §6. With `out`, only a non-negative integer is accepted.
  bool number(std::uint64_t* out) {
    const std::size_t start = at_;
    eat('-');
    if (peek() == '0') {
      ++at_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (std::isdigit(static_cast<unsigned char>(peek()))) ++at_;
    } else {
      return false;
    }
    const std::size_t integer_end = at_;
    if (eat('.')) {
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return false;
      while (std::isdigit(static_cast<unsigned char>(peek()))) ++at_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++at_;
      if (!eat('+')) eat('-');
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return false;
      while (std::isdigit(static_cast<unsigned char>(peek()))) ++at_;
    }
    if (out) {
      if (text_[start] == '-' || at_ != integer_end || integer_end - start > 19) return false;
      *out = std::stoull(std::string(text_.substr(start, integer_end - start)));
    }
    return true;
  }

  std::string_view text_;
  std::size_t at_ = 0;
  std::optional<std::uint64_t>* top_frame_ = nullptr;
  std::optional<std::uint64_t>* top_len_ = nullptr;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const pystack::pcap::link_type link = fuzz::link_from_byte(data[0]);
  const bytes_view frame(data + 1, size - 1);
  // The index comes from the frame's length so that it varies too.
  const std::size_t index = 1 + frame.size() * 7;

  const std::string before = "previous line\n";
  std::string out = before;
  dissect::append_frame(out, link, index, frame);
  PYSTACK_FUZZ_REQUIRE(out.starts_with(before));
  const std::string_view object = std::string_view(out).substr(before.size());
  PYSTACK_FUZZ_REQUIRE(object.find('\n') == std::string_view::npos);

  std::optional<std::uint64_t> frame_number, length;
  json_reader reader(object);
  if (!reader.object_only(frame_number, length)) {
    std::fprintf(stderr, "not one JSON object: %.*s\n", static_cast<int>(object.size()), object.data());
    PYSTACK_FUZZ_REQUIRE(!"dissect output is one JSON object");
  }
  PYSTACK_FUZZ_REQUIRE(frame_number == index && length == frame.size());

  // The convenience form gives the same text.
  PYSTACK_FUZZ_REQUIRE(dissect::frame(link, index, frame) == object);
  return 0;
}

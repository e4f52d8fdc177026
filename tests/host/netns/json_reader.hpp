// A small JSON reader for the tests that use iproute2's `ip -j` output as
// their oracle (RFC 8259: objects, arrays, strings with escapes, numbers,
// true, false, null). Nesting is limited so that no input recurses without
// bound; \u escapes outside ASCII become '?', which `ip -j` never needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace json {

struct value;
using object = std::map<std::string, value>;
using array = std::vector<value>;

struct value {
  std::variant<std::nullptr_t, bool, double, std::string, std::shared_ptr<array>, std::shared_ptr<object>> data;

  bool is_object() const { return std::holds_alternative<std::shared_ptr<object>>(data); }
  bool is_array() const { return std::holds_alternative<std::shared_ptr<array>>(data); }
  const object& as_object() const { return *std::get<std::shared_ptr<object>>(data); }
  const array& as_array() const { return *std::get<std::shared_ptr<array>>(data); }

  // Member lookup that is empty for non-objects and missing keys.
  const value* find(const std::string& key) const {
    if (!is_object()) return nullptr;
    const auto& o = as_object();
    const auto it = o.find(key);
    return it == o.end() ? nullptr : &it->second;
  }
  std::optional<std::string> string(const std::string& key) const {
    const value* v = find(key);
    if (!v || !std::holds_alternative<std::string>(v->data)) return std::nullopt;
    return std::get<std::string>(v->data);
  }
  std::optional<double> number(const std::string& key) const {
    const value* v = find(key);
    if (!v || !std::holds_alternative<double>(v->data)) return std::nullopt;
    return std::get<double>(v->data);
  }
  std::optional<bool> boolean(const std::string& key) const {
    const value* v = find(key);
    if (!v || !std::holds_alternative<bool>(v->data)) return std::nullopt;
    return std::get<bool>(v->data);
  }
  // The strings of an array member ("flags": ["UP", ...]); empty otherwise.
  std::vector<std::string> strings(const std::string& key) const {
    std::vector<std::string> out;
    const value* v = find(key);
    if (!v || !v->is_array()) return out;
    for (const auto& item : v->as_array()) {
      if (std::holds_alternative<std::string>(item.data)) out.push_back(std::get<std::string>(item.data));
    }
    return out;
  }
};

class reader {
 public:
  explicit reader(std::string_view text) : text_(text) {}

  // The whole text as one value, or nullopt when it is not JSON.
  std::optional<value> parse() {
    auto v = parse_value(0);
    skip_blanks();
    if (!v || position_ != text_.size()) return std::nullopt;
    return v;
  }

 private:
  static constexpr int max_depth = 64;

  void skip_blanks() {
    while (position_ < text_.size() &&
           (text_[position_] == ' ' || text_[position_] == '\n' || text_[position_] == '\r' ||
            text_[position_] == '\t')) {
      ++position_;
    }
  }
  bool take(char c) {
    skip_blanks();
    if (position_ < text_.size() && text_[position_] == c) {
      ++position_;
      return true;
    }
    return false;
  }
  bool take_word(std::string_view word) {
    if (text_.substr(position_, word.size()) != word) return false;
    position_ += word.size();
    return true;
  }

  std::optional<value> parse_value(int depth) {
    if (depth > max_depth) return std::nullopt;
    skip_blanks();
    if (position_ >= text_.size()) return std::nullopt;
    const char c = text_[position_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') {
      auto s = parse_string();
      if (!s) return std::nullopt;
      return value{*s};
    }
    if (take_word("true")) return value{true};
    if (take_word("false")) return value{false};
    if (take_word("null")) return value{nullptr};
    return parse_number();
  }

  std::optional<value> parse_object(int depth) {
    ++position_;  // '{'
    auto o = std::make_shared<object>();
    if (take('}')) return value{o};
    // Bounded: every pass consumes a member or fails.
    while (true) {
      skip_blanks();
      auto key = parse_string();
      if (!key || !take(':')) return std::nullopt;
      auto v = parse_value(depth + 1);
      if (!v) return std::nullopt;
      (*o)[*key] = std::move(*v);
      if (take(',')) continue;
      if (take('}')) return value{o};
      return std::nullopt;
    }
  }

  std::optional<value> parse_array(int depth) {
    ++position_;  // '['
    auto a = std::make_shared<array>();
    if (take(']')) return value{a};
    while (true) {
      auto v = parse_value(depth + 1);
      if (!v) return std::nullopt;
      a->push_back(std::move(*v));
      if (take(',')) continue;
      if (take(']')) return value{a};
      return std::nullopt;
    }
  }

  std::optional<std::string> parse_string() {
    if (position_ >= text_.size() || text_[position_] != '"') return std::nullopt;
    ++position_;
    std::string out;
    while (position_ < text_.size()) {
      const char c = text_[position_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (position_ >= text_.size()) return std::nullopt;
      const char e = text_[position_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (position_ + 4 > text_.size()) return std::nullopt;
          unsigned code = 0;
          for (int i = 0; i < 4; ++i) {
            const char h = text_[position_++];
            code <<= 4;
            if (h >= '0' && h <= '9') code |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f') code |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') code |= static_cast<unsigned>(h - 'A' + 10);
            else return std::nullopt;
          }
          out += code < 0x80 ? static_cast<char>(code) : '?';
          break;
        }
        default:
          return std::nullopt;
      }
    }
    return std::nullopt;
  }

  std::optional<value> parse_number() {
    const std::size_t start = position_;
    while (position_ < text_.size() &&
           std::string_view("+-0123456789.eE").find(text_[position_]) != std::string_view::npos) {
      ++position_;
    }
    if (position_ == start) return std::nullopt;
    const std::string digits(text_.substr(start, position_ - start));
    std::size_t used = 0;
    double d = 0;
    try {
      d = std::stod(digits, &used);
    } catch (...) {
      return std::nullopt;
    }
    if (used != digits.size()) return std::nullopt;
    return value{d};
  }

  std::string_view text_;
  std::size_t position_ = 0;
};

inline std::optional<value> parse(std::string_view text) { return reader(text).parse(); }

}  // namespace json

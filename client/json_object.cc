#include "client/json_object.h"

#include <cstddef>

namespace sg::client {
namespace {

constexpr int kMaxDepth = 1000;

// A recursive-descent checker over [pos_, end). Each Parse* advances pos_
// past what it accepted and returns false on the first error.
class Checker {
 public:
  explicit Checker(std::string_view text) : s_(text) {}

  bool Document() {
    Space();
    if (Peek() != '{') return false;
    if (!Value(0)) return false;
    Space();
    return pos_ == s_.size();
  }

 private:
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool AtEnd() const { return pos_ >= s_.size(); }

  void Space() {
    while (!AtEnd() && (s_[pos_] == ' ' || s_[pos_] == '\t' ||
                        s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
  static bool IsHex(char c) {
    return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  bool Digits() {
    if (AtEnd() || !IsDigit(s_[pos_])) return false;
    while (!AtEnd() && IsDigit(s_[pos_])) ++pos_;
    return true;
  }

  bool Number() {
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
    } else if (!Digits()) {
      return false;
    }
    if (Peek() == '.') {
      ++pos_;
      if (!Digits()) return false;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!Digits()) return false;
    }
    return true;
  }

  bool String() {
    ++pos_;  // the opening quote
    while (!AtEnd()) {
      const unsigned char c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;  // control characters must be escaped
      if (c != '\\') continue;
      if (AtEnd()) return false;
      const char e = s_[pos_++];
      if (e == 'u') {
        for (int i = 0; i < 4; ++i) {
          if (AtEnd() || !IsHex(s_[pos_])) return false;
          ++pos_;
        }
      } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' &&
                 e != 'n' && e != 'r' && e != 't') {
        return false;
      }
    }
    return false;
  }

  // Object or array: `close` ends it; members are "key": value in objects.
  bool Container(int depth, char close) {
    ++pos_;  // the opening bracket
    Space();
    if (Peek() == close) {
      ++pos_;
      return true;
    }
    for (;;) {
      if (close == '}') {
        if (Peek() != '"' || !String()) return false;
        Space();
        if (Peek() != ':') return false;
        ++pos_;
      }
      if (!Value(depth + 1)) return false;
      Space();
      if (Peek() == ',') {
        ++pos_;
        Space();
        continue;
      }
      if (Peek() != close) return false;
      ++pos_;
      return true;
    }
  }

  bool Value(int depth) {
    if (depth > kMaxDepth) return false;
    Space();
    switch (Peek()) {
      case '{':
        return Container(depth, '}');
      case '[':
        return Container(depth, ']');
      case '"':
        return String();
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

bool IsJsonObject(std::string_view text) { return Checker(text).Document(); }

}  // namespace sg::client

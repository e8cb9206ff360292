// Compiled matchers behind the classifier. Each is built once, immutable
// afterwards (thread-safe to read) and never allocates when matching.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sg::classifier {

// "No match" for the matchers below.
inline constexpr uint16_t kNoMatch = 0xffff;

// ASCII lower-case; other bytes unchanged.
inline char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// Case-insensitive multi-substring search in one pass over the text.
// FindFirst() returns the SMALLEST pattern index occurring anywhere in the
// text -- the seed's "first pattern in list order that matches" -- not the
// leftmost occurrence.
//
// Method: every byte is folded to an alphabet class (upper- and lower-case
// letters share one; bytes in no pattern are class 0), and each window of
// three classes indexes a bitmap of the patterns' first three bytes; only
// on a hit are that trigram's candidates (sorted by index) compared.
// Patterns of one or two bytes go through small per-class / per-pair
// tables. The loads of one position do not depend on the previous
// position, unlike an Aho-Corasick automaton whose next state depends on
// the last: measured on this machine, the automaton cost 2.4 ns/byte on a
// 111-byte browser agent, a bigram filter 1.1 ns/byte (its many false hits
// mispredict), this trigram filter less (see classifier_benchmark).
class SubstringMatcher final {
 public:
  SubstringMatcher() = default;
  // Precondition: patterns non-empty, fewer than kNoMatch of them.
  explicit SubstringMatcher(const std::vector<std::string>& patterns);

  uint16_t FindFirst(std::string_view text) const;

 private:
  uint16_t Verify(uint32_t key, std::string_view text, size_t pos,
                  uint16_t best) const;
  uint16_t ShortMatch(std::string_view text) const;

  struct Bucket {
    uint32_t key;
    uint32_t begin, end;  // into candidates_
  };
  uint32_t width_ = 1;                // alphabet classes
  std::array<uint8_t, 256> cls_{};    // byte -> class (case folded)
  std::vector<uint64_t> tri_bits_;    // width_^3 bits
  std::vector<Bucket> buckets_;       // sorted by key
  std::vector<uint16_t> candidates_;  // pattern indices, ascending
  std::vector<uint16_t> short_;       // 1-byte: [c], 2-byte: [w + c0*w+c1]
  bool has_short_ = false;
  std::vector<std::string> patterns_;  // lower-cased
};

// Several prefix lists in one anchored automaton: a single walk over the
// path yields, for each list, the smallest index whose entry is a prefix
// of the path (the seed's `startsWith` loop). A dense transition table
// over alphabet classes, so each byte costs one table load and no
// data-dependent branch. Entries are lower-cased; callers pass lower-cased
// paths.
class PrefixTrie final {
 public:
  static constexpr int kMaxLists = 4;
  using Result = std::array<uint16_t, kMaxLists>;

  PrefixTrie() = default;
  explicit PrefixTrie(
      const std::vector<const std::vector<std::string>*>& lists);

  Result Match(std::string_view path) const;

 private:
  // Entries: premultiplied row offset of the next state; the top bit marks
  // a state where some entry ends. Row 0 is the dead state, row 1 the root.
  static constexpr uint32_t kTerminal = 0x80000000u;
  uint32_t width_ = 1;
  std::array<uint8_t, 256> cls_{};
  std::vector<uint32_t> delta_;
  std::vector<Result> terms_;  // by state
};

// Exact lookup of a file extension (".js", at most 16 bytes) in a sorted
// table of packed 16-byte keys. Case-insensitive.
class ExtensionTable final {
 public:
  ExtensionTable() = default;
  explicit ExtensionTable(const std::vector<std::string>& extensions);

  // Returns the list index of `ext`, or kNoMatch.
  uint16_t Find(std::string_view ext) const;

 private:
  struct Key {
    uint64_t a, b;
    auto operator<=>(const Key&) const = default;
  };
  static bool Pack(std::string_view s, Key* key);
  struct Entry {
    Key key;
    uint16_t index;
  };
  std::vector<Entry> entries_;  // sorted by key
};

}  // namespace sg::classifier

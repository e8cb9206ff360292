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
constexpr char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// Case-insensitive multi-substring search in one pass over the text.
// FindFirst() returns the SMALLEST pattern index occurring anywhere in the
// text -- the seed's "first pattern in list order that matches" -- not the
// leftmost occurrence.
//
// Method: a browser agent (70-140 bytes, matching nothing) must be
// rejected quickly. At every position the next three bytes are reduced to
// their low five bits each (which folds ASCII case, and maps other bytes
// onto letters too: a superset of case folding) and the 15-bit result
// indexes a 32 KiB table marking the patterns' first three bytes; only at
// a marked position are the candidates for that trigram (sorted by index)
// compared exactly. The indices of 16 positions are computed together
// from two 16-byte SSE2 loads (shifts and masks, no multiply), so a
// position then costs an extract, a table load and an OR, and one branch
// covers 16 positions. No position depends on the previous one, unlike an
// Aho-Corasick automaton whose next state depends on the last. Without
// SSE2 the indices are computed one at a time.
// Patterns of one or two bytes go through small per-class tables.
// (Probing only every other position, with the patterns' trigrams at
// offsets 0 and 1, needs 3-byte patterns -- "got", "aws", "gcp" in the
// seed's list -- compared at every position some other way; with SSE2
// compares for those, the Chrome agent below took about 1,360
// instructions against 860 for an early version of this scan.)
//
// For the 111-byte Chrome agent of classifier_benchmark on this shared
// 2-core machine: an Aho-Corasick automaton took 263 ns; a multiplicative
// hash and bitmap probe per position, about 1,900 instructions and
// 110-195 ns; this scan about 710 instructions and 65-95 ns.
class SubstringMatcher final {
 public:
  SubstringMatcher() = default;
  // Precondition: patterns non-empty, fewer than kNoMatch of them.
  explicit SubstringMatcher(const std::vector<std::string>& patterns);

  uint16_t FindFirst(std::string_view text) const;

 private:
  uint16_t Verify(uint32_t slot, std::string_view text, size_t pos,
                  uint16_t best) const;
  uint16_t VerifySixteen(std::string_view text, size_t i,
                         const uint16_t slots[16], size_t count,
                         uint16_t best) const;
  uint16_t ShortMatch(std::string_view text) const;
  bool MatchesAt(uint16_t pattern, std::string_view text, size_t pos) const;
  // probe_ values: 0 = no pattern starts with this trigram, 1..kFarBucket-1
  // = index+1 of its bucket (saves a search), kFarBucket = search buckets_.
  static constexpr uint8_t kFarBucket = 255;
  struct Bucket {
    uint32_t slot;
    uint32_t begin, end;  // into candidates_
  };
  uint32_t width_ = 1;                // alphabet classes (short patterns)
  std::array<uint8_t, 256> cls_{};    // byte -> class (case folded)
  std::vector<uint8_t> probe_;        // 2^15 entries, by trigram slot
  std::vector<Bucket> buckets_;       // sorted by slot
  std::vector<uint16_t> candidates_;  // pattern indices, ascending per bucket
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
  // A row per state: `width_` transitions, then the state's Result (the
  // smallest index per list of an entry ending there) in kResultWords
  // words, so a terminal's Result is found without dividing by the row
  // size. A transition is the row offset of the next state; the top bit
  // marks a next state that is terminal or dead, so the walk takes one
  // branch per byte. Row 0 is the dead state, row 1 the root.
  static constexpr uint32_t kTerminal = 0x80000000u;
  static constexpr uint32_t kResultWords = sizeof(Result) / sizeof(uint32_t);
  static_assert(sizeof(Result) % sizeof(uint32_t) == 0);
  uint32_t width_ = 1;
  uint32_t row_ = 1 + kResultWords;  // words per row
  std::array<uint8_t, 256> cls_{};
  std::vector<uint32_t> delta_;
};

// Exact lookup of a file extension (".js", at most 16 bytes) in an
// open-addressing hash table of packed 16-byte keys. Case-insensitive.
class ExtensionTable final {
 public:
  ExtensionTable() = default;
  explicit ExtensionTable(const std::vector<std::string>& extensions);

  // Returns the list index of `ext`, or kNoMatch.
  uint16_t Find(std::string_view ext) const;

 private:
  struct Key {
    uint64_t a = 0, b = 0;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct Slot {
    Key key;
    uint16_t index = kNoMatch;  // kNoMatch: empty
  };
  static bool Pack(std::string_view s, Key* key);
  size_t SlotOf(const Key& key) const {
    return static_cast<size_t>(
        ((key.a ^ (key.b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull) >>
        shift_);
  }
  int shift_ = 63;
  std::vector<Slot> slots_;  // power-of-two size, at most half full
};

}  // namespace sg::classifier

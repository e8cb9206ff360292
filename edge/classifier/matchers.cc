#include "edge/classifier/matchers.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#if defined(__SSE2__)
#include <emmintrin.h>
#define SG_CLASSIFIER_SSE2 1
#else
#define SG_CLASSIFIER_SSE2 0
#endif

namespace sg::classifier {
namespace {

// Broken build-time invariants (the classifier factory validates rules
// first, so these cannot be reached from a rules file).
void Invariant(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "sg_classifier invariant failed: %s\n", what);
    std::abort();
  }
}

// The probe table index of the trigram p[0..2]: five low bits per byte.
uint32_t TrigramSlot(const char* p) {
  return (static_cast<uint8_t>(p[0]) & 31u) |
         (static_cast<uint8_t>(p[1]) & 31u) << 5 |
         (static_cast<uint8_t>(p[2]) & 31u) << 10;
}

}  // namespace

SubstringMatcher::SubstringMatcher(const std::vector<std::string>& patterns) {
  std::array<bool, 256> used{};
  for (const std::string& p : patterns) {
    patterns_.push_back(p);
    for (char& c : patterns_.back()) {
      c = AsciiLower(c);
      used[static_cast<uint8_t>(c)] = true;
    }
  }
  uint32_t next_class = 1;
  for (int b = 0; b < 256; ++b) {
    if (used[b]) cls_[b] = static_cast<uint8_t>(next_class++);
  }
  for (int b = 'A'; b <= 'Z'; ++b) cls_[b] = cls_[b + ('a' - 'A')];
  width_ = next_class;
  Invariant(width_ <= 256, "alphabet too large");
  const uint32_t w = width_;
  short_.assign(w + w * w, kNoMatch);
  std::map<uint32_t, std::vector<uint16_t>> by_slot;
  for (size_t i = 0; i < patterns_.size(); ++i) {
    const std::string& p = patterns_[i];
    Invariant(!p.empty(), "empty pattern");
    auto c = [&](size_t j) {
      return uint32_t{cls_[static_cast<uint8_t>(p[j])]};
    };
    const auto index = static_cast<uint16_t>(i);
    if (p.size() == 1) {
      short_[c(0)] = std::min(short_[c(0)], index);
      has_short_ = true;
    } else if (p.size() == 2) {
      uint16_t& slot = short_[w + c(0) * w + c(1)];
      slot = std::min(slot, index);
      has_short_ = true;
    } else {
      by_slot[TrigramSlot(p.data())].push_back(index);  // increasing order
    }
  }
  probe_.assign(size_t{1} << 15, 0);
  for (const auto& [slot, list] : by_slot) {
    const auto begin = static_cast<uint32_t>(candidates_.size());
    candidates_.insert(candidates_.end(), list.begin(), list.end());
    buckets_.push_back(
        Bucket{slot, begin, static_cast<uint32_t>(candidates_.size())});
    probe_[slot] = buckets_.size() < kFarBucket
                       ? static_cast<uint8_t>(buckets_.size())
                       : kFarBucket;
  }
}

bool SubstringMatcher::MatchesAt(uint16_t pattern, std::string_view text,
                                 size_t pos) const {
  const std::string& p = patterns_[pattern];
  if (p.size() > text.size() - pos) return false;
  for (size_t j = 0; j < p.size(); ++j) {
    if (AsciiLower(text[pos + j]) != p[j]) return false;
  }
  return true;
}

uint16_t SubstringMatcher::Verify(uint32_t slot, std::string_view text,
                                  size_t pos, uint16_t best) const {
  const uint8_t mark = probe_[slot];
  const Bucket* bucket = &buckets_[mark - 1];
  if (mark == kFarBucket) {
    bucket = &*std::lower_bound(
        buckets_.begin(), buckets_.end(), slot,
        [](const Bucket& b, uint32_t s) { return b.slot < s; });
  }
  for (uint32_t c = bucket->begin; c != bucket->end && candidates_[c] < best;
       ++c) {
    // The slot says nothing certain: compare every byte.
    if (MatchesAt(candidates_[c], text, pos)) {
      return candidates_[c];  // ascending: the smallest hit
    }
  }
  return best;
}

uint16_t SubstringMatcher::ShortMatch(std::string_view text) const {
  uint16_t best = kNoMatch;
  const uint32_t w = width_;
  uint32_t prev = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const uint32_t cur = cls_[static_cast<uint8_t>(text[i])];
    if (cur != 0) best = std::min(best, short_[cur]);
    if (i > 0 && cur != 0 && prev != 0) {
      best = std::min(best, short_[w + prev * w + cur]);
    }
    prev = cur;
  }
  return best;
}

namespace {

// The trigram slots of the 16 positions p[0..15] (reading p[0..17]): the
// even positions 0, 2, .., 14 in slots[0..7], the odd ones in slots[8..15].
void SixteenSlots(const char* p, uint16_t slots[16]) {
#if SG_CLASSIFIER_SSE2
  // In 16-bit lanes, lane k of `a` holds bytes 2k (low half) and 2k+1
  // (high half), lane k of `b` bytes 2k+2 and 2k+3, each already cut to
  // five bits. Position 2k is (2k, 2k+1, 2k+2), position 2k+1 is
  // (2k+1, 2k+2, 2k+3); shifts and masks put each byte's bits in place.
  const __m128i five = _mm_set1_epi8(31);
  const __m128i a =
      _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), five);
  const __m128i b = _mm_and_si128(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)), five);
  const __m128i low = _mm_set1_epi16(31);  // the low half's five bits
  const __m128i b_low = _mm_and_si128(b, low);
  const __m128i even = _mm_or_si128(
      _mm_or_si128(
          _mm_and_si128(a, low),
          _mm_and_si128(_mm_srli_epi16(a, 3), _mm_set1_epi16(31 << 5))),
      _mm_slli_epi16(b_low, 10));
  const __m128i odd = _mm_or_si128(
      _mm_or_si128(_mm_srli_epi16(a, 8), _mm_slli_epi16(b_low, 5)),
      _mm_and_si128(_mm_slli_epi16(b, 2), _mm_set1_epi16(31 << 10)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(slots), even);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(slots + 8), odd);
#else
  for (int k = 0; k < 8; ++k) {
    slots[k] = static_cast<uint16_t>(TrigramSlot(p + 2 * k));
    slots[8 + k] = static_cast<uint16_t>(TrigramSlot(p + 2 * k + 1));
  }
#endif
}

}  // namespace

uint16_t SubstringMatcher::VerifySixteen(std::string_view text, size_t i,
                                         const uint16_t slots[16], size_t count,
                                         uint16_t best) const {
  for (size_t k = 0; k < 8; ++k) {  // even positions
    if (probe_[slots[k]] != 0 && 2 * k < count) {
      best = Verify(slots[k], text, i + 2 * k, best);
    }
  }
  for (size_t k = 0; k < 8; ++k) {  // odd positions
    if (probe_[slots[8 + k]] != 0 && 2 * k + 1 < count) {
      best = Verify(slots[8 + k], text, i + 2 * k + 1, best);
    }
  }
  return best;
}

uint16_t SubstringMatcher::FindFirst(std::string_view text) const {
  if (patterns_.empty() || text.empty()) return kNoMatch;
  uint16_t best = has_short_ ? ShortMatch(text) : kNoMatch;
  const size_t n = text.size();
  if (n < 3 || buckets_.empty() || best == 0) return best;
  const uint8_t* probe = probe_.data();
  uint16_t slots[16];
  // No gather in SSE2: sixteen byte loads, OR-ed, and one branch for all.
  auto any_marked = [&] {
    uint32_t any = 0;
    for (int k = 0; k < 16; ++k) any |= probe[slots[k]];
    return any != 0;
  };
  if (n < 18) {
    // Fewer than 16 positions: a zero-padded copy (the padding may look
    // marked; VerifySixteen looks at real positions only).
    char pad[32] = {};
    std::memcpy(pad, text.data(), n);
    SixteenSlots(pad, slots);
    return any_marked() ? VerifySixteen(text, 0, slots, n - 2, best) : best;
  }
  // Sixteen positions per step, reading 18 bytes; the last step is the 16
  // positions that end the text, repeating some (a repeated position finds
  // what it found before, which changes nothing).
  for (size_t i = 0;; i += 16) {
    const size_t at = std::min(i, n - 18);
    SixteenSlots(text.data() + at, slots);
    if (any_marked()) [[unlikely]] {
      best = VerifySixteen(text, at, slots, 16, best);
      if (best == 0) return best;
    }
    if (at == n - 18) return best;
  }
}

PrefixTrie::PrefixTrie(
    const std::vector<const std::vector<std::string>*>& lists) {
  Invariant(lists.size() <= size_t{kMaxLists}, "too many prefix lists");
  std::array<bool, 256> used{};
  for (const auto* list : lists) {
    for (const std::string& e : *list) {
      for (char c : e) used[static_cast<uint8_t>(AsciiLower(c))] = true;
    }
  }
  uint32_t next_class = 1;
  for (int b = 0; b < 256; ++b) {
    if (used[b]) cls_[b] = static_cast<uint8_t>(next_class++);
  }
  width_ = next_class;
  // State 0: dead. State 1: root.
  std::vector<std::vector<uint32_t>> next(2, std::vector<uint32_t>(width_, 0));
  Result none;
  none.fill(kNoMatch);
  std::vector<Result> terms(2, none);  // by state
  for (size_t l = 0; l < lists.size(); ++l) {
    const std::vector<std::string>& list = *lists[l];
    for (size_t i = 0; i < list.size(); ++i) {
      uint32_t s = 1;
      for (char c : list[i]) {
        const uint8_t k = cls_[static_cast<uint8_t>(AsciiLower(c))];
        if (next[s][k] == 0) {
          next[s][k] = static_cast<uint32_t>(next.size());
          next.emplace_back(width_, 0);
          terms.push_back(none);
        }
        s = next[s][k];
      }
      terms[s][l] = std::min(terms[s][l], static_cast<uint16_t>(i));
    }
  }
  row_ = width_ + kResultWords;
  Invariant(next.size() * row_ < size_t{kTerminal}, "too many prefixes");
  delta_.assign(next.size() * row_, 0);
  for (size_t s = 0; s < next.size(); ++s) {
    for (uint32_t k = 0; k < width_; ++k) {
      const uint32_t t = next[s][k];
      bool terminal = t == 0;  // dead: stop the walk
      for (uint16_t v : terms[t]) terminal |= v != kNoMatch;
      delta_[s * row_ + k] = t * row_ | (terminal ? kTerminal : 0);
    }
    std::memcpy(&delta_[s * row_ + width_], terms[s].data(), sizeof(Result));
  }
}

PrefixTrie::Result PrefixTrie::Match(std::string_view path) const {
  Result result;
  if (delta_.empty()) {
    result.fill(kNoMatch);
    return result;
  }
  const uint32_t* delta = delta_.data();
  const uint8_t* cls = cls_.data();
  auto merge = [&](size_t row) {
    Result term;
    std::memcpy(term.data(), delta + row + width_, sizeof(Result));
    for (int l = 0; l < kMaxLists; ++l)
      result[l] = std::min(result[l], term[l]);
  };
  size_t s = row_;  // root
  std::memcpy(result.data(), delta + s + width_, sizeof(Result));
  for (char c : path) {
    const uint32_t t = delta[s + cls[static_cast<uint8_t>(c)]];
    s = t & ~kTerminal;
    if (t & kTerminal) [[unlikely]] {
      if (s == 0) break;  // dead
      merge(s);
    }
  }
  return result;
}

bool ExtensionTable::Pack(std::string_view s, Key* key) {
  if (s.size() > 16) return false;
  char buf[16] = {};
  for (size_t i = 0; i < s.size(); ++i) buf[i] = AsciiLower(s[i]);
  std::memcpy(&key->a, buf, 8);
  std::memcpy(&key->b, buf + 8, 8);
  return true;
}

ExtensionTable::ExtensionTable(const std::vector<std::string>& extensions) {
  int bits = 1;
  while ((size_t{1} << bits) < 2 * extensions.size()) ++bits;
  shift_ = 64 - bits;
  slots_.assign(size_t{1} << bits, Slot{});
  for (size_t i = 0; i < extensions.size(); ++i) {
    Key key;
    Invariant(Pack(extensions[i], &key), "extension too long");
    size_t s = SlotOf(key);
    // A duplicate keeps its first (smallest) index.
    while (slots_[s].index != kNoMatch && !(slots_[s].key == key)) {
      s = (s + 1) & (slots_.size() - 1);
    }
    if (slots_[s].index == kNoMatch) {
      slots_[s] = Slot{key, static_cast<uint16_t>(i)};
    }
  }
}

uint16_t ExtensionTable::Find(std::string_view ext) const {
  Key key;
  if (slots_.empty() || !Pack(ext, &key)) return kNoMatch;
  for (size_t s = SlotOf(key);; s = (s + 1) & (slots_.size() - 1)) {
    const Slot& slot = slots_[s];
    if (slot.index == kNoMatch) return kNoMatch;
    if (slot.key == key) return slot.index;
  }
}

}  // namespace sg::classifier

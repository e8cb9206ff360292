#include "edge/classifier/matchers.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

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
  bits_.assign((size_t{1} << kHashBits) / 64, 0);
  std::map<uint32_t, std::vector<uint16_t>> by_hash;
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
      const uint32_t tri = (uint32_t{static_cast<uint8_t>(p[0])} |
                            uint32_t{static_cast<uint8_t>(p[1])} << 8 |
                            uint32_t{static_cast<uint8_t>(p[2])} << 16) &
                           kFold3;
      const uint32_t h = Hash(tri);
      bits_[h / 64] |= uint64_t{1} << (h % 64);
      by_hash[h].push_back(index);  // pushed in increasing order
    }
  }
  for (const auto& [h, list] : by_hash) {
    const auto begin = static_cast<uint32_t>(candidates_.size());
    candidates_.insert(candidates_.end(), list.begin(), list.end());
    buckets_.push_back(
        Bucket{h, begin, static_cast<uint32_t>(candidates_.size())});
  }
}

uint16_t SubstringMatcher::Verify(uint32_t hash, std::string_view text,
                                  size_t pos, uint16_t best) const {
  const auto it =
      std::lower_bound(buckets_.begin(), buckets_.end(), hash,
                       [](const Bucket& b, uint32_t h) { return b.hash < h; });
  if (it == buckets_.end() || it->hash != hash) return best;
  for (uint32_t c = it->begin; c != it->end && candidates_[c] < best; ++c) {
    const std::string& p = patterns_[candidates_[c]];
    if (p.size() > text.size() - pos) continue;
    size_t j = 0;  // the hash says nothing certain: compare every byte
    while (j < p.size() && AsciiLower(text[pos + j]) == p[j]) ++j;
    if (j == p.size()) return candidates_[c];  // ascending: smallest hit
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

uint16_t SubstringMatcher::FindFirst(std::string_view text) const {
  if (patterns_.empty() || text.empty()) return kNoMatch;
  uint16_t best = has_short_ ? ShortMatch(text) : kNoMatch;
  if (text.size() < 3 || buckets_.empty()) return best;
  const uint64_t* bits = bits_.data();
  const char* data = text.data();
  const size_t n = text.size();
  auto probe = [&](size_t i, uint32_t word) {
    const uint32_t h = Hash(word & kFold3);
    if ((bits[h / 64] >> (h % 64)) & 1) [[unlikely]] {
      best = Verify(h, text, i, best);
    }
  };
  size_t i = 0;
  // Four-byte loads while they stay inside the text; the top byte is
  // masked off.
  for (; i + 4 <= n && best != 0; ++i) {
    uint32_t word;
    std::memcpy(&word, data + i, 4);
    probe(i, word);
  }
  // The last window of three bytes.
  if (i + 3 == n && best != 0) {
    uint32_t word = 0;
    std::memcpy(&word, data + i, 3);
    probe(i, word);
  }
  return best;
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
  terms_.assign(2, none);
  for (size_t l = 0; l < lists.size(); ++l) {
    const std::vector<std::string>& list = *lists[l];
    for (size_t i = 0; i < list.size(); ++i) {
      uint32_t s = 1;
      for (char c : list[i]) {
        const uint8_t k = cls_[static_cast<uint8_t>(AsciiLower(c))];
        if (next[s][k] == 0) {
          next[s][k] = static_cast<uint32_t>(next.size());
          next.emplace_back(width_, 0);
          terms_.push_back(none);
        }
        s = next[s][k];
      }
      terms_[s][l] = std::min(terms_[s][l], static_cast<uint16_t>(i));
    }
  }
  Invariant(next.size() * width_ < size_t{kTerminal}, "too many prefixes");
  delta_.assign(next.size() * width_, 0);
  for (size_t s = 0; s < next.size(); ++s) {
    for (uint32_t k = 0; k < width_; ++k) {
      const uint32_t t = next[s][k];
      bool terminal = false;
      for (uint16_t v : terms_[t]) terminal |= v != kNoMatch;
      delta_[s * width_ + k] = t * width_ | (terminal ? kTerminal : 0);
    }
  }
}

PrefixTrie::Result PrefixTrie::Match(std::string_view path) const {
  Result result = terms_.empty() ? Result{} : terms_[1];
  if (terms_.empty()) {
    result.fill(kNoMatch);
    return result;
  }
  const uint32_t* delta = delta_.data();
  const uint8_t* cls = cls_.data();
  uint32_t s = width_;  // root
  for (char c : path) {
    const uint32_t t = delta[s + cls[static_cast<uint8_t>(c)]];
    s = t & ~kTerminal;
    if (s == 0) break;
    if (t & kTerminal) [[unlikely]] {
      const Result& term = terms_[s / width_];
      for (int l = 0; l < kMaxLists; ++l) {
        result[l] = std::min(result[l], term[l]);
      }
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

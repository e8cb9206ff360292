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
  tri_bits_.assign((w * w * w + 63) / 64, 0);
  std::map<uint32_t, std::vector<uint16_t>> by_key;
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
      const uint32_t key = (c(0) * w + c(1)) * w + c(2);
      tri_bits_[key / 64] |= uint64_t{1} << (key % 64);
      by_key[key].push_back(index);  // pushed in increasing order
    }
  }
  for (const auto& [key, list] : by_key) {
    const auto begin = static_cast<uint32_t>(candidates_.size());
    candidates_.insert(candidates_.end(), list.begin(), list.end());
    buckets_.push_back(
        Bucket{key, begin, static_cast<uint32_t>(candidates_.size())});
  }
}

uint16_t SubstringMatcher::Verify(uint32_t key, std::string_view text,
                                  size_t pos, uint16_t best) const {
  const auto it =
      std::lower_bound(buckets_.begin(), buckets_.end(), key,
                       [](const Bucket& b, uint32_t k) { return b.key < k; });
  for (uint32_t c = it->begin; c != it->end && candidates_[c] < best; ++c) {
    const std::string& p = patterns_[candidates_[c]];
    if (p.size() > text.size() - pos) continue;
    size_t j = 3;  // the first three bytes matched through the trigram
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
  const uint8_t* cls = cls_.data();
  const uint64_t* bits = tri_bits_.data();
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const uint32_t w = width_;
  const uint32_t w2 = w * w;
  // Classes of bytes i-2 and i-1, kept apart so no step waits on the last.
  uint32_t c2 = cls[bytes[0]];
  uint32_t c1 = cls[bytes[1]];
  for (size_t i = 2; i < n; ++i) {
    const uint32_t cur = cls[bytes[i]];
    const uint32_t key = c2 * w2 + c1 * w + cur;
    c2 = c1;
    c1 = cur;
    if ((bits[key / 64] >> (key % 64)) & 1) [[unlikely]] {
      best = Verify(key, text, i - 2, best);
      if (best == 0) break;
    }
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
  for (size_t i = 0; i < extensions.size(); ++i) {
    Key key;
    Invariant(Pack(extensions[i], &key), "extension too long");
    entries_.push_back(Entry{key, static_cast<uint16_t>(i)});
  }
  // Stable, so a duplicate keeps its first (smallest) index at the front.
  std::stable_sort(
      entries_.begin(), entries_.end(),
      [](const Entry& x, const Entry& y) { return x.key < y.key; });
}

uint16_t ExtensionTable::Find(std::string_view ext) const {
  Key key;
  if (!Pack(ext, &key)) return kNoMatch;
  auto it =
      std::lower_bound(entries_.begin(), entries_.end(), key,
                       [](const Entry& e, const Key& k) { return e.key < k; });
  if (it == entries_.end() || it->key != key) return kNoMatch;
  return it->index;
}

}  // namespace sg::classifier

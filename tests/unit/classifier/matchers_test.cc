#include "edge/classifier/matchers.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "edge/classifier/rules.h"

namespace sg::classifier {
namespace {

// The seed's algorithm, literally: lower-case, then the first pattern in
// list order that is a substring.
uint16_t Naive(const std::vector<std::string>& patterns, std::string text) {
  for (char& c : text) c = AsciiLower(c);
  for (size_t i = 0; i < patterns.size(); ++i) {
    std::string p = patterns[i];
    for (char& c : p) c = AsciiLower(c);
    if (text.find(p) != std::string::npos) return static_cast<uint16_t>(i);
  }
  return kNoMatch;
}

TEST(SubstringMatcherTest, SmallestListIndexWinsNotLeftmost) {
  SubstringMatcher m({"zzz", "abc", "b"});
  EXPECT_EQ(m.FindFirst("xxabczzz"), 0);  // zzz occurs later but is first
  EXPECT_EQ(m.FindFirst("ABC"), 1);
  EXPECT_EQ(m.FindFirst("xbx"), 2);
  EXPECT_EQ(m.FindFirst("xyz"), kNoMatch);
  EXPECT_EQ(m.FindFirst(""), kNoMatch);
  EXPECT_EQ(SubstringMatcher().FindFirst("abc"), kNoMatch);
}

TEST(SubstringMatcherTest, OverlappingAndShortPatterns) {
  SubstringMatcher m({"aab", "ab", "aaab", "x"});
  EXPECT_EQ(m.FindFirst("aaab"), 0);
  EXPECT_EQ(m.FindFirst("ab"), 1);
  EXPECT_EQ(m.FindFirst("xab"), 1);
  EXPECT_EQ(m.FindFirst("x"), 3);
  EXPECT_EQ(m.FindFirst("a"), kNoMatch);
}

TEST(SubstringMatcherTest, AgreesWithSeedAlgorithmOnRandomText) {
  const std::vector<std::string> patterns =
      Rules::SeedDefaults().internal_user_agents;
  SubstringMatcher m(patterns);
  std::mt19937 rng(12345);
  // Text built from pattern fragments, case-flipped, so matches are common.
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyzABCXYZ/-._ 0123";
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    const int parts = rng() % 6;
    for (int p = 0; p < parts; ++p) {
      if (rng() % 2) {
        const std::string& pat = patterns[rng() % patterns.size()];
        const size_t from = rng() % pat.size();
        std::string frag = pat.substr(from, 1 + rng() % (pat.size() - from));
        for (char& c : frag) {
          if (rng() % 3 == 0 && c >= 'a' && c <= 'z') c = c - 'a' + 'A';
        }
        text += frag;
      } else {
        for (int k = rng() % 5; k >= 0; --k) {
          text += alphabet[rng() % alphabet.size()];
        }
      }
    }
    ASSERT_EQ(m.FindFirst(text), Naive(patterns, text)) << text;
  }
}

// The scan probes 16 positions per step and ends with a step that repeats
// positions, so texts of every length around those steps, with a pattern
// at every position, and pattern sets with short, non-letter, case-mixed
// and many (more than 254 distinct first trigrams) patterns.
TEST(SubstringMatcherTest, AgreesWithSeedAlgorithmAtEveryLengthAndPosition) {
  std::mt19937 rng(777);
  const std::string alphabet = "abcXYZ -/.;09_\x7f\xc3\xe9";
  auto random_text = [&](size_t n) {
    std::string t;
    for (size_t i = 0; i < n; ++i) t += alphabet[rng() % alphabet.size()];
    return t;
  };
  std::vector<std::vector<std::string>> sets = {
      Rules::SeedDefaults().internal_user_agents,
      {"a", "bc", "xyz", "Z-9", " ;", "\xc3\xe9", "abcabcabcabcabcabc"},
      {"got", "aws", "GCP", "needle", "a b", "x.y", "0_9"},
  };
  std::vector<std::string> many;
  for (int i = 0; i < 900; ++i) many.push_back(random_text(3 + rng() % 6));
  sets.push_back(many);
  for (const auto& patterns : sets) {
    SubstringMatcher m(patterns);
    for (size_t n = 0; n <= 70; ++n) {
      for (int iter = 0; iter < 20; ++iter) {
        std::string text = random_text(n);
        // Plant a (case-flipped) pattern at a random position.
        const std::string& p = patterns[rng() % patterns.size()];
        if (p.size() <= n) {
          std::string q = p;
          for (char& c : q) {
            if (rng() % 2 && c >= 'a' && c <= 'z') c = c - 'a' + 'A';
          }
          text.replace(rng() % (n - p.size() + 1), p.size(), q);
        }
        // Exactly sized, so a read past the end is a sanitizer error.
        std::vector<char> exact(text.begin(), text.end());
        const std::string_view view(exact.data(), exact.size());
        ASSERT_EQ(m.FindFirst(view), Naive(patterns, text))
            << "n=" << n << " text=" << text;
      }
    }
  }
}

TEST(PrefixTrieTest, SmallestIndexPerList) {
  const std::vector<std::string> a = {"/api/transactions/public", "/api/t"};
  const std::vector<std::string> b = {"/api/transaction", "/login"};
  PrefixTrie t({&a, &b});
  auto r = t.Match("/api/transactions/public/1");
  EXPECT_EQ(r[0], 0);
  EXPECT_EQ(r[1], 0);
  r = t.Match("/api/tx");
  EXPECT_EQ(r[0], 1);
  EXPECT_EQ(r[1], kNoMatch);
  r = t.Match("/logi");
  EXPECT_EQ(r[0], kNoMatch);
  EXPECT_EQ(r[1], kNoMatch);
  EXPECT_EQ(t.Match("/LOGIN")[1], kNoMatch);  // callers lower-case paths
  EXPECT_EQ(t.Match("/login")[1], 1);
  const std::vector<std::string> root = {"/"};
  EXPECT_EQ(PrefixTrie({&root}).Match("/x")[0], 0);
  EXPECT_EQ(PrefixTrie().Match("/x")[0], kNoMatch);
}

TEST(ExtensionTableTest, CaseInsensitiveExactMatch) {
  ExtensionTable t({".js", ".LICENSE", ".woff2", ".js"});
  EXPECT_EQ(t.Find(".js"), 0);
  EXPECT_EQ(t.Find(".JS"), 0);
  EXPECT_EQ(t.Find(".license"), 1);
  EXPECT_EQ(t.Find(".woff2"), 2);
  EXPECT_EQ(t.Find(".woff"), kNoMatch);
  EXPECT_EQ(t.Find(".j"), kNoMatch);
  EXPECT_EQ(t.Find(".averyveryverylongext"), kNoMatch);
}

}  // namespace
}  // namespace sg::classifier

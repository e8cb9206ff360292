#include <set>
#include <string>

#include "gtest/gtest.h"
#include "server/store/session_store.h"

namespace sg::store {
namespace {

TEST(SessionIdTest, NewIdsAreValidBase64UrlOfFixedLength) {
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewSessionId();
    ASSERT_EQ(id.size(), kSessionIdLength);
    ASSERT_TRUE(ValidateSessionId(id).ok()) << id;
    for (char c : id) {
      ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                  c == '_')
          << id;
    }
  }
}

TEST(SessionIdTest, NewIdsDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(seen.insert(NewSessionId()).second);
  }
}

TEST(SessionIdTest, NewIdsUseTheWholeAlphabet) {
  // 43 chars * 2000 ids: every one of the 64 symbols appears in the first 42
  // positions with overwhelming probability if the bits are random.
  std::set<char> symbols;
  for (int i = 0; i < 2000; ++i) {
    const std::string id = NewSessionId();
    symbols.insert(id.begin(), id.end() - 1);
  }
  EXPECT_EQ(symbols.size(), 64u);
}

TEST(SessionIdTest, RejectsWrongLength) {
  EXPECT_EQ(ValidateSessionId("").code(), absl::StatusCode::kInvalidArgument);
  const std::string id = NewSessionId();
  // Minted ids have 43 characters; a trusted client's may have 22 to 128.
  EXPECT_EQ(ValidateSessionId(id.substr(0, 21)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateSessionId(id.substr(0, 22)).ok());
  EXPECT_TRUE(ValidateSessionId(std::string(128, 'A')).ok());
  EXPECT_EQ(ValidateSessionId(std::string(129, 'A')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSessionId(id + "=").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SessionIdTest, RejectsCharactersOutsideBase64Url) {
  const std::string good = NewSessionId();
  for (char bad : {'+', '/', '=', ' ', '.', '\0', '\n', '\x80', '\xff'}) {
    std::string id = good;
    id[17] = bad;
    EXPECT_EQ(ValidateSessionId(id).code(), absl::StatusCode::kInvalidArgument)
        << static_cast<int>(bad);
  }
  EXPECT_TRUE(ValidateSessionId(std::string(43, '-')).ok());
  EXPECT_TRUE(ValidateSessionId(std::string(43, '_')).ok());
}

}  // namespace
}  // namespace sg::store

#include "edge/session_cookie.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace sg::edge {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<CookieSigner> MakeSigner(std::vector<std::string> secrets) {
  auto signer = CookieSigner::Create(std::move(secrets));
  EXPECT_TRUE(signer.ok()) << signer.status();
  return signer.ok() ? *std::move(signer) : nullptr;
}

// Independent reference: OpenSSL's one-shot HMAC and a table-free base64.
std::string ReferenceSig(const std::string& secret, const std::string& id) {
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(id.data()), id.size(), mac, &len);
  std::string bits;
  for (unsigned i = 0; i < len; ++i) {
    for (int b = 7; b >= 0; --b)
      bits.push_back(((mac[i] >> b) & 1) ? '1' : '0');
  }
  std::string out;
  for (size_t i = 0; i < bits.size(); i += 6) {
    std::string chunk = bits.substr(i, 6);
    chunk.resize(6, '0');
    const int v = std::stoi(chunk, nullptr, 2);
    out.push_back(v < 26    ? static_cast<char>('A' + v)
                  : v < 52  ? static_cast<char>('a' + v - 26)
                  : v < 62  ? static_cast<char>('0' + v - 52)
                  : v == 62 ? '+'
                            : '/');
  }
  return out;
}

// Vectors computed at development time with
//   printf %s ID | openssl dgst -sha256 -hmac SECRET -binary | openssl base64
// and with node's crypto + encodeURIComponent (what cookie-signature and
// express-session do). The first is cookie-signature's README example.
struct Vector {
  const char* secret;
  const char* id;
  const char* sig;
  const char* encoded;
};
constexpr Vector kVectors[] = {
    {"tobiiscool", "hello", "DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI",
     "s%3Ahello.DGDUkGlIkCzPz%2BC0B064FNgHdEjox7ch8tOBGslZ5QI"},
    {"keyboard cat", "abc123", "L3URH8qEUlRhbJErOXuJ/R5i21GJUY02kERb2c2p5w0",
     "s%3Aabc123.L3URH8qEUlRhbJErOXuJ%2FR5i21GJUY02kERb2c2p5w0"},
    {"keyboard cat", "tobi", "k/MBGA3LV/De+0YTROxcLuurjbOQXyaa2veNodQBZc4",
     "s%3Atobi.k%2FMBGA3LV%2FDe%2B0YTROxcLuurjbOQXyaa2veNodQBZc4"},
    {"old-secret", "Xk3_9zQ-aB7", "3dM4Zn33R4Fw9IbRXcQzkEN/7HVLeYkdlljk3NQKghQ",
     "s%3AXk3_9zQ-aB7.3dM4Zn33R4Fw9IbRXcQzkEN%2F7HVLeYkdlljk3NQKghQ"},
};

TEST(CookieSignerTest, MatchesKnownExpressSessionVectors) {
  for (const Vector& v : kVectors) {
    auto signer = MakeSigner({v.secret});
    ASSERT_NE(signer, nullptr);
    EXPECT_EQ(signer->Sign(v.id), std::string("s:") + v.id + "." + v.sig);
    EXPECT_EQ(signer->EncodedValue(v.id), v.encoded);
    EXPECT_EQ(ReferenceSig(v.secret, v.id), v.sig);
    const VerifiedCookie c = signer->VerifyValue(v.encoded);
    EXPECT_TRUE(c.ok()) << CookieVerdictName(c.verdict());
    EXPECT_EQ(c.id(), v.id);
    EXPECT_EQ(c.key_index(), 0);
  }
}

TEST(CookieSignerTest, SignatureMatchesIndependentHmac) {
  auto signer = MakeSigner({"s3cr3t-with-some-length"});
  for (std::string id :
       std::vector<std::string>{"a", "ab", "abc", "0123456789abcdefABCDEF_-xyz",
                                std::string(100, 'z')}) {
    EXPECT_EQ(signer->Sign(id),
              "s:" + id + "." + ReferenceSig("s3cr3t-with-some-length", id));
    EXPECT_TRUE(signer->VerifyValue(signer->EncodedValue(id)).ok());
  }
}

TEST(CookieSignerTest, AcceptsUnencodedForm) {
  auto signer = MakeSigner({"keyboard cat"});
  const VerifiedCookie c = signer->VerifyValue(
      "s:abc123.L3URH8qEUlRhbJErOXuJ/R5i21GJUY02kERb2c2p5w0");
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.id(), "abc123");
}

TEST(CookieSignerTest, RotationSignsWithFirstAndVerifiesWithAll) {
  auto old_signer = MakeSigner({"old-secret"});
  auto rotated = MakeSigner({"new-secret", "old-secret"});
  const std::string old_cookie = old_signer->EncodedValue("sess-1");
  const VerifiedCookie c = rotated->VerifyValue(old_cookie);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.key_index(), 1);  // re-issue advised
  const std::string new_cookie = rotated->EncodedValue("sess-1");
  EXPECT_NE(new_cookie, old_cookie);
  EXPECT_EQ(rotated->VerifyValue(new_cookie).key_index(), 0);
  // Once the old secret is dropped, old cookies stop verifying.
  auto retired = MakeSigner({"new-secret"});
  EXPECT_EQ(retired->VerifyValue(old_cookie).verdict(),
            CookieVerdict::kBadSignature);
  EXPECT_TRUE(retired->VerifyValue(new_cookie).ok());
}

TEST(CookieSignerTest, UnknownKeyIsBadSignature) {
  auto signer = MakeSigner({"keyboard cat"});
  auto other = MakeSigner({"another cat"});
  EXPECT_EQ(signer->VerifyValue(other->EncodedValue("abc123")).verdict(),
            CookieVerdict::kBadSignature);
}

TEST(CookieSignerTest, ForgedCookiesAreRejected) {
  auto signer = MakeSigner({"keyboard cat"});
  // Same signature, different id.
  EXPECT_EQ(
      signer
          ->VerifyValue("s%3Aabc124.L3URH8qEUlRhbJErOXuJ%2FR5i21GJUY02kERb2"
                        "c2p5w0")
          .verdict(),
      CookieVerdict::kBadSignature);
  // One signature character flipped.
  EXPECT_EQ(
      signer
          ->VerifyValue("s%3Aabc123.M3URH8qEUlRhbJErOXuJ%2FR5i21GJUY02kERb2"
                        "c2p5w0")
          .verdict(),
      CookieVerdict::kBadSignature);
  // An id containing a '.' is split at the last '.', as cookie-signature
  // does, so a signed "a.b" verifies as id "a.b" and nothing else.
  const std::string dotted = signer->EncodedValue("a.b");
  const VerifiedCookie c = signer->VerifyValue(dotted);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.id(), "a.b");
}

TEST(CookieSignerTest, MalformedValues) {
  auto signer = MakeSigner({"keyboard cat"});
  const std::string sig = "L3URH8qEUlRhbJErOXuJ%2FR5i21GJUY02kERb2c2p5w0";
  for (const std::string& bad : std::vector<std::string>{
           std::string("abc123.") + sig,          // no "s:" (unsigned)
           std::string("s%3Aabc123"),             // no signature
           std::string("s%3A.") + sig,            // empty id
           std::string("s%3Aabc123.") + "short",  // signature too short
           std::string("s%3Aabc123.") + sig + "A",
           std::string("s%3Aabc123.L3URH8qEUlRhbJErOXuJ%"
                       "2FR5i21GJUY02kERb2c2p5w="),  // padding char
           std::string("s%3A") + std::string(200, 'a') + "." + sig,  // long id
           std::string("s%3Aab%20c.") + sig,  // space in id
           std::string(1000, 'x'),
       }) {
    EXPECT_EQ(signer->VerifyValue(bad).verdict(), CookieVerdict::kMalformed)
        << bad;
  }
}

TEST(CookieSignerTest, VerifyHeaderFindsTheNamedCookie) {
  auto signer = MakeSigner({"keyboard cat"});
  const std::string header =
      "theme=dark; connect.sid=" + signer->EncodedValue("abc123") + "; x=y";
  const VerifiedCookie c = signer->VerifyHeader(header, "connect.sid");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.id(), "abc123");
  EXPECT_EQ(signer->VerifyHeader(header, "sid").verdict(),
            CookieVerdict::kMissing);
  EXPECT_EQ(signer->VerifyHeader("connect.sid=", "connect.sid").verdict(),
            CookieVerdict::kMissing);
  EXPECT_EQ(signer->VerifyHeader("", "connect.sid").verdict(),
            CookieVerdict::kMissing);
}

TEST(CookieSignerTest, CreateRejectsEmptySecrets) {
  EXPECT_FALSE(CookieSigner::Create({}).ok());
  EXPECT_FALSE(CookieSigner::Create({"good", ""}).ok());
}

TEST(CookieVerdictTest, NamesAreStable) {
  EXPECT_EQ(CookieVerdictName(CookieVerdict::kOk), "ok");
  EXPECT_EQ(CookieVerdictName(CookieVerdict::kMissing), "missing");
  EXPECT_EQ(CookieVerdictName(CookieVerdict::kMalformed), "malformed");
  EXPECT_EQ(CookieVerdictName(CookieVerdict::kBadSignature), "bad_signature");
}

TEST(Base64NoPadTest, StandardAlphabetWithoutPadding) {
  EXPECT_EQ(Base64NoPad(""), "");
  EXPECT_EQ(Base64NoPad("f"), "Zg");
  EXPECT_EQ(Base64NoPad("fo"), "Zm8");
  EXPECT_EQ(Base64NoPad("foo"), "Zm9v");
  EXPECT_EQ(Base64NoPad("\xfb\xff"), "+/8");
}

TEST(SetCookieTest, BuildsExpressStyleHeader) {
  SetCookieOptions o;
  o.secure = true;
  o.same_site = SameSite::kStrict;
  o.max_age_seconds = 86400;
  o.expires = absl::FromUnixSeconds(1767225600);  // 2026-01-01 00:00:00 UTC
  ASSERT_TRUE(o.Validate().ok());
  EXPECT_EQ(BuildSetCookie("connect.sid", "s%3Aabc.def", o),
            "connect.sid=s%3Aabc.def; Max-Age=86400; Path=/; "
            "Expires=Thu, 01 Jan 2026 00:00:00 GMT; HttpOnly; Secure; "
            "SameSite=Strict");
}

TEST(SetCookieTest, DefaultsAreHttpOnlyLaxRootPath) {
  EXPECT_EQ(BuildSetCookie("sid", "v", SetCookieOptions()),
            "sid=v; Path=/; HttpOnly; SameSite=Lax");
  SetCookieOptions o;
  o.http_only = false;
  o.same_site = SameSite::kUnset;
  o.domain = "example.com";
  EXPECT_EQ(BuildSetCookie("sid", "v", o), "sid=v; Domain=example.com; Path=/");
}

TEST(SetCookieTest, ClearCookieExpiresImmediatelyWithSameScope) {
  SetCookieOptions o;
  o.domain = "example.com";
  o.secure = true;
  const std::string clear = BuildClearCookie("connect.sid", o);
  EXPECT_EQ(clear,
            "connect.sid=; Max-Age=0; Domain=example.com; Path=/; "
            "Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; "
            "SameSite=Lax");
}

TEST(SetCookieTest, ValidateRejectsInjection) {
  SetCookieOptions o;
  o.path = "/; Domain=evil.com";
  EXPECT_FALSE(o.Validate().ok());
  o = SetCookieOptions();
  o.domain = "a\r\nSet-Cookie: x=y";
  EXPECT_FALSE(o.Validate().ok());
  o = SetCookieOptions();
  o.same_site = SameSite::kNone;
  EXPECT_FALSE(o.Validate().ok());
  o.secure = true;
  EXPECT_TRUE(o.Validate().ok());
  o.max_age_seconds = -1;
  EXPECT_FALSE(o.Validate().ok());
  EXPECT_TRUE(IsCookieName("connect.sid"));
  EXPECT_FALSE(IsCookieName("bad name"));
  EXPECT_FALSE(IsCookieName("a;b"));
  EXPECT_FALSE(IsCookieName(""));
}

// Cross-check against npm cookie-signature when it is installed: set
// SG_NODE_MODULES to a node_modules directory holding it (e.g. after
// `npm install --prefix /tmp/sg-node cookie-signature`,
// /tmp/sg-node/node_modules).
TEST(CookieSignerTest, MatchesNpmCookieSignatureWhenAvailable) {
  const char* dir = std::getenv("SG_NODE_MODULES");
  const std::string module =
      std::string(dir != nullptr ? dir : "/nonexistent") + "/cookie-signature";
  if (!std::filesystem::exists(module) ||
      std::system("node --version > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "node or " << module
                 << " absent (set SG_NODE_MODULES); core vectors cover it";
  }
  auto signer = MakeSigner({"keyboard cat", "old"});
  const std::string script =
      "node -e 'const s=require(\"" + module +
      "\");process.stdout.write(s.sign(\"sess-XYZ_09\",\"keyboard cat\"))'";
  FILE* p = popen(script.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256] = {};
  const size_t n = fread(buf, 1, sizeof(buf) - 1, p);
  ASSERT_EQ(pclose(p), 0);
  EXPECT_EQ("s:" + std::string(buf, n), signer->Sign("sess-XYZ_09"));
}

}  // namespace
}  // namespace sg::edge

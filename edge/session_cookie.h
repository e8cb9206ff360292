// express-session compatible signed session cookies.
//
// express-session stores "s:" + cookie-signature's sign(id, secret) in the
// cookie, where sign = id + "." + base64(HMAC-SHA256(secret, id)) with the
// standard alphabet and the '=' padding removed, and the whole value is
// encodeURIComponent-ed: "s%3A<id>.<sig with + and / as %2B %2F>". Cookies
// issued by an existing express app therefore keep verifying here, and
// cookies issued here work in the app.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sg::edge {

// Outcome of reading a session cookie, one value per rejection cause so the
// proxy can count them.
enum class CookieVerdict : uint8_t {
  kOk = 0,
  kMissing,       // no cookie of that name, or an empty value
  kMalformed,     // not "s:<id>.<43-char signature>", or id too long
  kBadSignature,  // well-formed, but no configured secret signed it
};
inline constexpr int kNumCookieVerdicts = 4;
// "ok", "missing", "malformed", "bad_signature".
std::string_view CookieVerdictName(CookieVerdict verdict);

// Longest session id accepted from a cookie.
inline constexpr size_t kMaxSessionIdBytes = 128;

// A verified cookie. The id is held inline (it is percent-decoded, so it
// cannot always be a view into the header). Trivially copyable.
class VerifiedCookie final {
 public:
  CookieVerdict verdict() const { return verdict_; }
  bool ok() const { return verdict_ == CookieVerdict::kOk; }
  // The session id; empty unless ok().
  std::string_view id() const { return {id_.data(), id_len_}; }
  // Index of the secret that verified it: 0 is the current signing secret,
  // > 0 an older one (re-issue the cookie to complete a rotation). -1
  // unless ok().
  int key_index() const { return key_index_; }

 private:
  friend class CookieSigner;
  CookieVerdict verdict_ = CookieVerdict::kMissing;
  int key_index_ = -1;
  uint8_t id_len_ = 0;
  std::array<char, kMaxSessionIdBytes> id_{};
};

// Signs with the first secret, verifies with any. Immutable after
// Create(); all methods are thread-safe. Verification does not allocate in
// this code (OpenSSL may allocate internally for the MAC context).
class CookieSigner final {
 public:
  // `secrets`: newest first, each non-empty. Fails if empty.
  static absl::StatusOr<std::unique_ptr<CookieSigner>> Create(
      std::vector<std::string> secrets);
  ~CookieSigner();
  CookieSigner(const CookieSigner&) = delete;
  CookieSigner& operator=(const CookieSigner&) = delete;

  // "s:<id>.<sig>" (decoded form). Precondition: id non-empty.
  std::string Sign(std::string_view id) const;
  // The cookie value as express-session writes it: Sign(id) URI-encoded.
  std::string EncodedValue(std::string_view id) const;

  // Verifies a raw (still percent-encoded) cookie value.
  VerifiedCookie VerifyValue(std::string_view raw_value) const;
  // Finds cookie `name` in a Cookie header and verifies it.
  VerifiedCookie VerifyHeader(std::string_view cookie_header,
                              std::string_view name) const;

  size_t num_secrets() const { return keys_.size(); }

 private:
  struct Key;
  CookieSigner() = default;
  // base64(HMAC-SHA256(secret, id)) without padding: 43 characters.
  bool Signature(const Key& key, std::string_view id, char out[43]) const;

  std::vector<std::unique_ptr<Key>> keys_;
};

enum class SameSite : uint8_t { kUnset, kLax, kStrict, kNone };

// Attributes of the Set-Cookie header.
struct SetCookieOptions {
  std::string path = "/";
  std::string domain;  // empty: host-only
  bool http_only = true;
  bool secure = false;
  SameSite same_site = SameSite::kLax;
  std::optional<int64_t> max_age_seconds;  // Max-Age, if set
  std::optional<absl::Time> expires;       // Expires, if set

  // Rejects control characters and ';' in path/domain, negative Max-Age,
  // and SameSite=None without Secure (browsers drop such cookies).
  absl::Status Validate() const;
};

// Builds a Set-Cookie header value "name=value; Max-Age=..; Domain=..;
// Path=/; Expires=..; HttpOnly; Secure; SameSite=Lax" (the attribute order
// of npm `cookie`). `value` is used as is: pass EncodedValue(id).
// Preconditions: `name` is an RFC 6265 token, options Validate().
std::string BuildSetCookie(std::string_view name, std::string_view value,
                           const SetCookieOptions& options);

// A Set-Cookie value that deletes the cookie: empty value, Max-Age=0 and
// Expires in 1970, with the same Path/Domain/flags as `options` (browsers
// only replace a cookie whose path and domain match).
std::string BuildClearCookie(std::string_view name,
                             const SetCookieOptions& options);

// True if `name` is a valid cookie name (RFC 6265 token).
bool IsCookieName(std::string_view name);

// Standard base64 without '=' padding. Exposed for tests.
std::string Base64NoPad(std::string_view bytes);

}  // namespace sg::edge

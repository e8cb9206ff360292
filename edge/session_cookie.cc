#include "edge/session_cookie.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstring>

#include "edge/http/cookie_header.h"
#include "edge/http/text_util.h"

namespace sg::edge {
namespace {

constexpr size_t kSigChars = 43;  // base64 of 32 bytes, no padding
constexpr char kB64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Encodes `n` bytes into `out` (4 * ceil(n / 3) minus padding characters).
size_t Base64Into(const unsigned char* in, size_t n, char* out) {
  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v =
        (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    out[o++] = kB64[(v >> 18) & 63];
    out[o++] = kB64[(v >> 12) & 63];
    out[o++] = kB64[(v >> 6) & 63];
    out[o++] = kB64[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{in[i]} << 16;
    out[o++] = kB64[(v >> 18) & 63];
    out[o++] = kB64[(v >> 12) & 63];
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8);
    out[o++] = kB64[(v >> 18) & 63];
    out[o++] = kB64[(v >> 12) & 63];
    out[o++] = kB64[(v >> 6) & 63];
  }
  return o;
}

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// Bytes encodeURIComponent leaves alone.
bool IsUriUnreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || std::strchr("-_.!~*'()", c) != nullptr;
}

// Bytes allowed in a session id read from a cookie.
bool IsIdChar(char c) {
  return c > 0x20 && c < 0x7f && c != '"' && c != ',' && c != ';' && c != '\\';
}

bool HasBadAttrChar(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ';') {
      return true;
    }
  }
  return false;
}

std::string HttpDate(absl::Time t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed",
                                          "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr",
                                            "May", "Jun", "Jul", "Aug",
                                            "Sep", "Oct", "Nov", "Dec"};
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond cs = absl::ToCivilSecond(t, utc);
  const int weekday = [&] {
    switch (absl::GetWeekday(cs)) {
      case absl::Weekday::sunday:
        return 0;
      case absl::Weekday::monday:
        return 1;
      case absl::Weekday::tuesday:
        return 2;
      case absl::Weekday::wednesday:
        return 3;
      case absl::Weekday::thursday:
        return 4;
      case absl::Weekday::friday:
        return 5;
      case absl::Weekday::saturday:
        return 6;
    }
    return 0;
  }();
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s, %02d %s %04lld %02d:%02d:%02d GMT",
                kDays[weekday], cs.day(), kMonths[cs.month() - 1],
                static_cast<long long>(cs.year()), cs.hour(), cs.minute(),
                cs.second());
  return buf;
}

void AppendAttributes(std::string* out, const SetCookieOptions& o) {
  if (o.max_age_seconds.has_value()) {
    out->append(Cat("; Max-Age=", *o.max_age_seconds));
  }
  if (!o.domain.empty()) out->append(Cat("; Domain=", o.domain));
  if (!o.path.empty()) out->append(Cat("; Path=", o.path));
  if (o.expires.has_value()) {
    out->append(Cat("; Expires=", HttpDate(*o.expires)));
  }
  if (o.http_only) out->append("; HttpOnly");
  if (o.secure) out->append("; Secure");
  switch (o.same_site) {
    case SameSite::kUnset:
      break;
    case SameSite::kLax:
      out->append("; SameSite=Lax");
      break;
    case SameSite::kStrict:
      out->append("; SameSite=Strict");
      break;
    case SameSite::kNone:
      out->append("; SameSite=None");
      break;
  }
}

}  // namespace

struct CookieSigner::Key {
  EVP_MAC_CTX* ctx = nullptr;  // initialized with the secret; only dup'ed
  ~Key() { EVP_MAC_CTX_free(ctx); }
};

std::string_view CookieVerdictName(CookieVerdict verdict) {
  switch (verdict) {
    case CookieVerdict::kOk:
      return "ok";
    case CookieVerdict::kMissing:
      return "missing";
    case CookieVerdict::kMalformed:
      return "malformed";
    case CookieVerdict::kBadSignature:
      return "bad_signature";
  }
  return "unknown";
}

std::string Base64NoPad(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4, '\0');
  out.resize(Base64Into(reinterpret_cast<const unsigned char*>(bytes.data()),
                        bytes.size(), out.data()));
  return out;
}

absl::StatusOr<std::unique_ptr<CookieSigner>> CookieSigner::Create(
    std::vector<std::string> secrets) {
  if (secrets.empty()) {
    return absl::InvalidArgumentError("at least one cookie secret is needed");
  }
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  if (mac == nullptr) return absl::InternalError("OpenSSL has no HMAC");
  auto signer = std::unique_ptr<CookieSigner>(new CookieSigner());
  absl::Status status;
  for (size_t i = 0; i < secrets.size() && status.ok(); ++i) {
    if (secrets[i].empty()) {
      status =
          absl::InvalidArgumentError(Cat("cookie secret ", i, " is empty"));
      break;
    }
    auto key = std::make_unique<Key>();
    key->ctx = EVP_MAC_CTX_new(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    if (key->ctx == nullptr ||
        EVP_MAC_init(key->ctx,
                     reinterpret_cast<const unsigned char*>(secrets[i].data()),
                     secrets[i].size(), params) != 1) {
      status = absl::InternalError("HMAC-SHA256 initialisation failed");
      break;
    }
    signer->keys_.push_back(std::move(key));
  }
  EVP_MAC_free(mac);
  // Scrub the caller's copies we own.
  for (std::string& s : secrets) OPENSSL_cleanse(s.data(), s.size());
  if (!status.ok()) return status;
  return signer;
}

CookieSigner::~CookieSigner() = default;

bool CookieSigner::Signature(const Key& key, std::string_view id,
                             char out[kSigChars]) const {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(key.ctx);
  if (ctx == nullptr) return false;
  unsigned char mac[32];
  size_t mac_len = 0;
  const bool ok =
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(id.data()),
                     id.size()) == 1 &&
      EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) == 1 && mac_len == 32;
  EVP_MAC_CTX_free(ctx);
  if (!ok) return false;
  Base64Into(mac, sizeof(mac), out);
  return true;
}

std::string CookieSigner::Sign(std::string_view id) const {
  char sig[kSigChars];
  if (!Signature(*keys_[0], id, sig)) return {};
  return Cat("s:", id, ".", std::string_view(sig, kSigChars));
}

std::string CookieSigner::EncodedValue(std::string_view id) const {
  const std::string signed_value = Sign(id);
  std::string out;
  out.reserve(signed_value.size() + 16);
  for (char c : signed_value) {
    if (IsUriUnreserved(c)) {
      out.push_back(c);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const auto b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

VerifiedCookie CookieSigner::VerifyValue(std::string_view raw_value) const {
  VerifiedCookie result;
  if (raw_value.empty()) return result;  // kMissing
  result.verdict_ = CookieVerdict::kMalformed;
  // "s:" + id + "." + 43 signature characters, after decoding.
  char decoded[2 + kMaxSessionIdBytes + 1 + kSigChars];
  const std::optional<size_t> n = DecodeCookieValue(raw_value, decoded);
  if (!n.has_value()) return result;
  const std::string_view value(decoded, *n);
  if (value.size() < 2 + 1 + 1 + kSigChars || value.substr(0, 2) != "s:") {
    return result;
  }
  // cookie-signature splits at the LAST '.'; a base64 signature has none.
  const size_t dot = value.rfind('.');
  if (dot == std::string_view::npos || dot < 3) return result;  // empty id
  const std::string_view id = value.substr(2, dot - 2);
  const std::string_view sig = value.substr(dot + 1);
  if (sig.size() != kSigChars || id.size() > kMaxSessionIdBytes) {
    return result;
  }
  for (char c : sig) {
    if (!IsBase64Char(c)) return result;
  }
  for (char c : id) {
    if (!IsIdChar(c)) return result;
  }
  result.verdict_ = CookieVerdict::kBadSignature;
  for (size_t k = 0; k < keys_.size(); ++k) {
    char expected[kSigChars];
    if (!Signature(*keys_[k], id, expected)) continue;
    if (CRYPTO_memcmp(expected, sig.data(), kSigChars) == 0) {
      result.verdict_ = CookieVerdict::kOk;
      result.key_index_ = static_cast<int>(k);
      std::memcpy(result.id_.data(), id.data(), id.size());
      result.id_len_ = static_cast<uint8_t>(id.size());
      return result;
    }
  }
  return result;
}

VerifiedCookie CookieSigner::VerifyHeader(std::string_view cookie_header,
                                          std::string_view name) const {
  const std::optional<std::string_view> raw = FindCookie(cookie_header, name);
  if (!raw.has_value()) return VerifiedCookie();
  return VerifyValue(*raw);
}

absl::Status SetCookieOptions::Validate() const {
  if (HasBadAttrChar(path) || HasBadAttrChar(domain)) {
    return absl::InvalidArgumentError(
        "cookie path/domain must not contain ';' or control characters");
  }
  if (max_age_seconds.has_value() && *max_age_seconds < 0) {
    return absl::InvalidArgumentError("cookie Max-Age must be >= 0");
  }
  if (same_site == SameSite::kNone && !secure) {
    return absl::InvalidArgumentError("SameSite=None requires Secure");
  }
  return absl::OkStatus();
}

bool IsCookieName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c <= 0x20 || c >= 0x7f || std::strchr("()<>@,;:\\\"/[]?={}", c)) {
      return false;
    }
  }
  return true;
}

std::string BuildSetCookie(std::string_view name, std::string_view value,
                           const SetCookieOptions& options) {
  std::string out = Cat(name, "=", value);
  AppendAttributes(&out, options);
  return out;
}

std::string BuildClearCookie(std::string_view name,
                             const SetCookieOptions& options) {
  SetCookieOptions clear = options;
  clear.max_age_seconds = 0;
  clear.expires = absl::UnixEpoch();
  return BuildSetCookie(name, "", clear);
}

}  // namespace sg::edge

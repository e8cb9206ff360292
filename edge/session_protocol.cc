#include "edge/session_protocol.h"

#include <array>
#include <charconv>
#include <cstdint>

#include "edge/http/text_util.h"
#include "edge/proxy_headers.h"

namespace sg::edge {
namespace {

constexpr char kB64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kB64[i])] = i;
  t['-'] = 62;  // URL-safe alphabet
  t['_'] = 63;
  return t;
}
constexpr std::array<int8_t, 256> kDecode = MakeDecodeTable();

}  // namespace

std::string_view SessionStatusName(SessionStatus status) {
  switch (status) {
    case SessionStatus::kNone:
      return "none";
    case SessionStatus::kLoaded:
      return "loaded";
    case SessionStatus::kExpired:
      return "expired";
    case SessionStatus::kUnavailable:
      return "unavailable";
  }
  return "none";
}

bool RawDirectives::Offer(std::string_view name, std::string_view value) {
  if (!IsSessionHeader(name)) return false;
  auto take = [&](std::optional<std::string_view>& slot) {
    if (!slot) slot = value;
  };
  if (EqualsIgnoreCase(name, kHdrSet)) {
    take(set);
  } else if (EqualsIgnoreCase(name, kHdrPrincipal)) {
    take(principal);
  } else if (EqualsIgnoreCase(name, kHdrRegenerate)) {
    take(regenerate);
  } else if (EqualsIgnoreCase(name, kHdrDestroy)) {
    take(destroy);
  } else if (EqualsIgnoreCase(name, kHdrTtl)) {
    take(ttl);
  }
  return true;
}

SessionDirectives ParseDirectives(const RawDirectives& raw) {
  SessionDirectives out;
  if (raw.set) {
    if (auto decoded = DecodeBase64Flexible(*raw.set)) {
      out.data = std::move(*decoded);
    } else {
      ++out.invalid;
    }
  }
  if (raw.principal) {
    std::string_view p = TrimOws(*raw.principal);
    if (p.empty() || IsValidPrincipal(p)) {
      out.principal = std::string(p);
    } else {
      ++out.invalid;
    }
  }
  if (raw.regenerate) out.regenerate = ParseTruthy(*raw.regenerate);
  if (raw.destroy) out.destroy = ParseTruthy(*raw.destroy);
  if (raw.ttl) {
    if (auto ttl = ParseTtl(*raw.ttl)) {
      out.ttl = *ttl;
    } else {
      ++out.invalid;
    }
  }
  return out;
}

std::string EncodeSessionData(std::string_view data) {
  std::string out;
  AppendSessionData(data, out);
  return out;
}

void AppendSessionData(std::string_view data, std::string& out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t at = out.size();
  out.resize(at + (n + 2) / 3 * 4);
  char* o = out.data() + at;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
    *o++ = kAlphabet[v >> 18];
    *o++ = kAlphabet[v >> 12 & 63];
    *o++ = kAlphabet[v >> 6 & 63];
    *o++ = kAlphabet[v & 63];
  }
  if (i < n) {  // one or two bytes left: padded
    const uint32_t v = in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0);
    *o++ = kAlphabet[v >> 18];
    *o++ = kAlphabet[v >> 12 & 63];
    *o++ = i + 1 < n ? kAlphabet[v >> 6 & 63] : '=';
    *o++ = '=';
  }
}

std::optional<std::string> DecodeBase64Flexible(std::string_view text) {
  text = TrimSpace(text);
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int8_t v = kDecode[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

bool ParseTruthy(std::string_view value) {
  value = TrimOws(value);
  return value == "1" || EqualsIgnoreCase(value, "true") ||
         EqualsIgnoreCase(value, "yes");
}

std::optional<absl::Duration> ParseTtl(std::string_view value) {
  value = TrimOws(value);
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  auto [ptr, ec] =
      std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && ptr == value.data() + value.size()) {
    if (seconds <= 0) return std::nullopt;
    return absl::Seconds(seconds);
  }
  absl::Duration d;
  if (!absl::ParseDuration(std::string(value), &d) ||
      d <= absl::ZeroDuration()) {
    return std::nullopt;
  }
  return d;
}

bool IsValidPrincipal(std::string_view value) {
  if (value.empty() || value.size() > 256) return false;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

}  // namespace sg::edge

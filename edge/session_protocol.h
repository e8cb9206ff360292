// The header protocol between the edge and the upstream application.
//
// Edge -> upstream, on requests that went through the session flow (never
// on bypassed requests; any X-Session-* field a client sent is removed
// from every request first):
//   X-Session-Status: none | loaded | expired | unavailable
//     none        no valid session cookie (absent, malformed or forged)
//     loaded      the session was read; the three fields below are set
//     expired     a validly signed cookie whose session no longer exists
//     unavailable the session service could not be asked (fail-open)
//   X-Session-Id: <id>                      (loaded only)
//   X-Session-Data: <base64 of the data>    (loaded only; may be empty)
//   X-Session-Principal: <principal>        (loaded, authenticated only)
//
// Upstream -> edge, on the response (always removed before the client sees
// the response; ignored on bypassed requests):
//   X-Session-Set: <base64>      replace the session data; creates the
//                                session when there is none (lazy creation)
//   X-Session-Principal: <p>     log in as p: rotate the id and mark the
//                                session authenticated ("" = anonymous)
//   X-Session-Regenerate: 1      rotate the id, keep data and principal
//   X-Session-Destroy: 1         delete the session and clear the cookie
//   X-Session-TTL: <seconds>|<duration>   the session's TTL from now on
// Base64 may be standard or URL-safe, padded or not. Boolean fields accept
// 1/true/yes (anything else is false).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace sg::edge {

enum class SessionStatus : uint8_t { kNone, kLoaded, kExpired, kUnavailable };
inline constexpr int kNumSessionStatuses = 4;
// "none", "loaded", "expired", "unavailable".
std::string_view SessionStatusName(SessionStatus status);

// Field names (lower case, as compared).
inline constexpr std::string_view kHdrStatus = "x-session-status";
inline constexpr std::string_view kHdrId = "x-session-id";
inline constexpr std::string_view kHdrData = "x-session-data";
inline constexpr std::string_view kHdrPrincipal = "x-session-principal";
inline constexpr std::string_view kHdrSet = "x-session-set";
inline constexpr std::string_view kHdrRegenerate = "x-session-regenerate";
inline constexpr std::string_view kHdrDestroy = "x-session-destroy";
inline constexpr std::string_view kHdrTtl = "x-session-ttl";

// The raw directive values of one upstream response, as views into it.
// The first occurrence of each field counts.
struct RawDirectives {
  std::optional<std::string_view> set;
  std::optional<std::string_view> principal;
  std::optional<std::string_view> regenerate;
  std::optional<std::string_view> destroy;
  std::optional<std::string_view> ttl;

  // Records `value` if `name` is a directive field not yet seen. Returns
  // whether `name` is a session protocol field at all (x-session-*).
  bool Offer(std::string_view name, std::string_view value);
};

// What the upstream asked for, decoded and checked.
struct SessionDirectives {
  std::optional<std::string> data;       // decoded X-Session-Set
  std::optional<std::string> principal;  // X-Session-Principal
  bool regenerate = false;
  bool destroy = false;
  std::optional<absl::Duration> ttl;
  // Directives that were present but unusable (bad base64, bad TTL, a
  // principal with control characters); they are ignored and counted.
  int invalid = 0;

  bool any() const { return data || principal || regenerate || destroy || ttl; }
};

// Decodes and validates. Pure.
SessionDirectives ParseDirectives(const RawDirectives& raw);

// Standard base64 with padding (what X-Session-Data carries).
std::string EncodeSessionData(std::string_view data);
// The same, appended to `out`: with a reused `out`, no allocation.
void AppendSessionData(std::string_view data, std::string& out);
// Standard or URL-safe base64, padding optional, surrounding spaces
// ignored. nullopt on any other character or a bad length.
std::optional<std::string> DecodeBase64Flexible(std::string_view text);

// "1", "true", "yes" (any case) -> true.
bool ParseTruthy(std::string_view value);

// "3600" (seconds) or an absl duration ("30m", "1h"); must be > 0.
std::optional<absl::Duration> ParseTtl(std::string_view value);

// Whether a principal value is usable: 1..256 visible ASCII or space
// characters (no control characters, so it is safe in a header).
bool IsValidPrincipal(std::string_view value);

}  // namespace sg::edge

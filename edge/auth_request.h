// The auth_request endpoint's pure parts: which endpoint a request names,
// the original request nginx describes in headers, the CAS version token,
// and the headers of the check's answer. No HTTP I/O here; the proxy
// (edge/proxy/auth_endpoint.cc) applies these to real messages.
//
// Two endpoints under --auth-request-path (say /_sessiongrid/auth):
//
//  * check:  ANY <path>  (nginx auth_request / ingress-nginx auth-url)
//    The original request is described by
//      X-Original-URI: /path?query          (nginx: $request_uri), or
//      X-Original-URL: https://host/path?q  (ingress-nginx)
//      X-Original-Method: GET               (default GET)
//      X-Forwarded-For / X-Real-IP          (client address; believed only
//                                            from --trusted-proxies)
//    plus its own Cookie, User-Agent, Accept, Upgrade. Answer 200 (never
//    proxied) with, for auth_request_set:
//      X-Session-Bypass: <reason>     bypassed (no session call was made)
//      X-Session-Status: none|loaded|expired|unavailable   otherwise
//      X-Session-Id, X-Session-Data (base64), X-Session-Principal  (loaded)
//      X-Session-Version: <token>     (loaded) the version read, for CAS
//      X-Session-Set-Cookie: ...      a Set-Cookie value: a forged,
//                                     malformed or expired cookie is
//                                     cleared, an old-key one re-signed
//    The cookie travels in X-Session-Set-Cookie, not Set-Cookie, so that
//    it reaches the application (nginx proxy_set_header, ingress-nginx
//    auth-response-headers), which sends it unless its own commit issued a
//    cookie: a Set-Cookie nginx added itself (add_header) would come after
//    the application's and undo a session the same response created.
//    503 in --fail-mode=closed when the service cannot be asked.
//
//  * commit: POST <path>/commit  (the application's write-back)
//    Request headers: the original Cookie, the X-Session-Version the check
//    gave (optional), and the directives of session_protocol.h
//    (X-Session-Set, -Principal, -Regenerate, -Destroy, -TTL). Applied with
//    the proxy's semantics (SessionFlow::Apply: CAS on the version, re-read
//    and last-writer-wins on conflict, never resurrecting a destroyed
//    session). Answer 200 with the Set-Cookie the application must forward
//    to the browser (if any). When the write failed (service down, or the
//    CAS kept conflicting): 503 in --fail-mode=closed, else 200 with
//    X-Session-Result: failed (the response goes out without the change,
//    as the proxy does).
//
// Both answer only peers in --trusted-proxies or --auth-request-allow
// (loopback when both are empty); anyone else gets 403.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "edge/session_flow.h"
#include "sessiongrid/v1/session.pb.h"

namespace sg::edge {

// Request fields (lower case, as compared).
inline constexpr std::string_view kHdrOriginalUri = "x-original-uri";
inline constexpr std::string_view kHdrOriginalUrl = "x-original-url";
inline constexpr std::string_view kHdrOriginalMethod = "x-original-method";
inline constexpr std::string_view kHdrRealIp = "x-real-ip";
// Both directions: the version token.
inline constexpr std::string_view kHdrVersion = "x-session-version";
// Answer fields (as sent).
inline constexpr std::string_view kHdrBypassOut = "X-Session-Bypass";
inline constexpr std::string_view kHdrSetCookieOut = "X-Session-Set-Cookie";

enum class AuthEndpoint : uint8_t { kNone, kCheck, kCommit };

// Which endpoint `target` (a request-target, query allowed) names under
// `base` (--auth-request-path; empty: the feature is off, always kNone).
AuthEndpoint MatchAuthEndpoint(std::string_view target, std::string_view base);

// The original request, as views into the header values passed in.
struct OriginalRequest {
  std::string_view method;  // "GET" when no X-Original-Method was sent
  std::string_view target;  // origin-form: "/path?query"
};

// From the X-Original-URI, X-Original-URL and X-Original-Method values
// (empty = absent). The URI wins when both are sent; a URL must be
// absolute (scheme://authority[/path]) and gives its path and query ("/"
// when it has no path). INVALID_ARGUMENT with a message fit for the 400
// body when neither is present, the target is not origin-form, contains
// a control character or space, or the method is not a token.
absl::StatusOr<OriginalRequest> ParseOriginalRequest(
    std::string_view uri, std::string_view url, std::string_view method);

// The version a check read, as "<wall_millis>.<logical>.<node_id>", and
// back. Decode returns nullopt on anything malformed (the commit then
// reads the session itself).
std::string EncodeVersionToken(const sessiongrid::v1::Version& version);
std::optional<sessiongrid::v1::Version> DecodeVersionToken(
    std::string_view token);

// What the check does about the request's cookie.
enum class CookieAction : uint8_t {
  kNone,
  kClear,    // forged, malformed, or its session is gone
  kReissue,  // verified with an older secret: re-sign with the current one
};
CookieAction CheckCookieAction(const SessionState& state);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The answer headers of a check that ran the session flow (not bypassed):
// X-Session-Status, and when loaded -Id, -Data, -Principal, -Version;
// `set_cookie` becomes X-Session-Set-Cookie.
HeaderList CheckReplyHeaders(const SessionState& state,
                             const std::optional<std::string>& set_cookie);

}  // namespace sg::edge

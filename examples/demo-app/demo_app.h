// The demo upstream's request handling, without any networking: the header
// protocol of sessiongrid-edge seen from an application.
//
// From the edge, on requests that needed a session:
//   X-Session-Id         the session id (absent when there is no session)
//   X-Session-Data       the session's data, base64
//   X-Session-Principal  who is logged in, if anyone
//   X-Session-Status     none | loaded | expired | unavailable
// To the edge (it removes them before the client sees the response):
//   X-Session-Set        new data, base64; creates the session if needed
//   X-Session-Principal  sets the principal; the edge rotates the id
//   X-Session-Destroy    "1": delete the session, clear the cookie
//   X-Session-TTL        seconds: the session's TTL from now on
//
// The demo keeps its state in the session data as a flat JSON object,
// {"user":"alice","counter":3}.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"

namespace sg::demo {

// Header names of the protocol.
inline constexpr std::string_view kSessionIdHeader = "X-Session-Id";
inline constexpr std::string_view kSessionDataHeader = "X-Session-Data";
inline constexpr std::string_view kSessionPrincipalHeader =
    "X-Session-Principal";
inline constexpr std::string_view kSessionStatusHeader = "X-Session-Status";
inline constexpr std::string_view kSessionSetHeader = "X-Session-Set";
inline constexpr std::string_view kSessionDestroyHeader = "X-Session-Destroy";
inline constexpr std::string_view kSessionTtlHeader = "X-Session-TTL";

// Session TTL asked for at a login with "remember": true (30 days).
inline constexpr int64_t kRememberMeTtlSeconds = 30 * 24 * 3600;

// Longest user name accepted at login, in bytes.
inline constexpr size_t kMaxUsernameBytes = 64;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The first value of header `name` (case-insensitive), or "" if absent.
std::string_view FindHeader(const HeaderList& headers, std::string_view name);

struct DemoRequest {
  std::string method;  // "GET"
  std::string target;  // origin-form: "/path?query"
  HeaderList headers;
  std::string body;

  std::string_view Header(std::string_view name) const {
    return FindHeader(headers, name);
  }
};

struct DemoResponse {
  int status = 200;
  HeaderList headers;  // includes Content-Type; never Content-Length
  std::string body;

  std::string_view Header(std::string_view name) const {
    return FindHeader(headers, name);
  }
};

struct DemoAppOptions {
  // Optional directory whose regular files are served under /assets/
  // before the built-in ones. Empty: built-in assets only.
  std::string assets_dir;
  // The seed's broken app, kept to prove the edge's classifier matters:
  // every response (pages, assets, health included) asks the edge for a
  // session with X-Session-Set and sets the app's own connect.sid, as an
  // express-session app with saveUninitialized does. Only a classifier
  // that bypasses these requests keeps them cookie-free.
  bool session_on_every_request = false;

  // assets_dir, if set, must be an existing directory.
  absl::Status Validate() const;
};

// The session state the demo keeps, decoded from X-Session-Data.
struct DemoSession {
  std::string user;  // "" when anonymous
  int64_t counter = 0;
};

// Decodes base64 JSON session data; anything unreadable is an empty
// session (the app must never fail because of stored data).
DemoSession DecodeSessionData(std::string_view base64_data);
// {"user":"alice","counter":3} (no "user" when anonymous), base64.
std::string EncodeSessionData(const DemoSession& session);

// Routes:
//   GET  /                   HTML page: logged in or not, the counter
//   GET  /assets/NAME        main.js, style.css, logo.png built in; any other
//                            *.js / *.css answers a small generated body
//   GET  /api/health         {"status":"ok","timestamp":ISO 8601}
//   POST /api/auth/login     {"username","password"[,"remember":true]}
//                            -> principal + data (+ a 30-day TTL)
//   POST /api/auth/logout    X-Session-Destroy
//   GET|POST /api/counter    counter + 1 in the session (also at
//                            /api/user/counter)
//   GET  /api/whoami         who the session says you are (also at
//                            /api/user/whoami)
// HEAD is answered wherever GET is. Immutable after Create(); Handle() is
// thread-safe.
class DemoApp final {
 public:
  // `clock` must outlive the app.
  static absl::StatusOr<std::unique_ptr<DemoApp>> Create(DemoAppOptions options,
                                                         const Clock* clock);
  DemoApp(const DemoApp&) = delete;
  DemoApp& operator=(const DemoApp&) = delete;

  // Never fails: bad input becomes a 4xx response.
  DemoResponse Handle(const DemoRequest& request) const;

 private:
  DemoApp(DemoAppOptions options, const Clock* clock)
      : options_(std::move(options)), clock_(clock) {}

  DemoResponse Route(const DemoRequest& request) const;
  DemoResponse Page(const DemoRequest& request) const;
  DemoResponse Asset(std::string_view name) const;
  DemoResponse Health() const;
  DemoResponse Login(const DemoRequest& request) const;
  DemoResponse Logout(const DemoRequest& request) const;
  DemoResponse Counter(const DemoRequest& request) const;
  DemoResponse WhoAmI(const DemoRequest& request) const;

  const DemoAppOptions options_;
  const Clock* const clock_;
};

}  // namespace sg::demo

#include "examples/demo-app/demo_app.h"

#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/demo-app/mini_json.h"

namespace sg::demo {
namespace {

// Debian's Abseil has its own string_view type.
absl::string_view Av(std::string_view s) { return {s.data(), s.size()}; }

constexpr size_t kMaxAssetFileBytes = 1 << 20;

// A 1x1 RGB PNG.
constexpr unsigned char kLogoPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
    0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53, 0xde, 0x00, 0x00, 0x00,
    0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xd0, 0xce, 0xd9, 0x00,
    0x00, 0x02, 0x0d, 0x01, 0x48, 0x39, 0x67, 0xef, 0xd8, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

// The page's script calls the /api/user/ paths: the default edge rules
// count them as auth-required, so the edge loads the session for them from
// any client, loopback included (the page itself is usually bypassed).
constexpr std::string_view kMainJs = R"JS(// SessionGrid demo page script.
async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res.json();
}
function show(state) {
  document.getElementById('state').textContent = state.loggedIn
      ? `logged in as ${state.user}, counter ${state.counter}`
      : `not logged in, counter ${state.counter}`;
}
async function refresh() { show(await call('GET', '/api/user/whoami')); }
document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('login').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    await call('POST', '/api/auth/login',
               { username: form.username.value, password: form.password.value });
    refresh();
  });
  document.getElementById('count').addEventListener('click', async () => {
    await call('POST', '/api/user/counter');
    refresh();
  });
  document.getElementById('logout').addEventListener('click', async () => {
    await call('POST', '/api/auth/logout');
    refresh();
  });
  refresh();
});
)JS";

constexpr std::string_view kStyleCss = R"CSS(/* SessionGrid demo */
body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }
#state { font-weight: bold; }
img.logo { width: 16px; height: 16px; vertical-align: middle; }
)CSS";

std::string_view PathOf(std::string_view target) {
  const size_t q = target.find_first_of("?#");
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::string_view ContentTypeFor(std::string_view name) {
  const size_t dot = name.rfind('.');
  const std::string ext = absl::AsciiStrToLower(
      Av(dot == std::string_view::npos ? "" : name.substr(dot + 1)));
  if (ext == "js" || ext == "mjs") return "application/javascript";
  if (ext == "css") return "text/css";
  if (ext == "png") return "image/png";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "json") return "application/json";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

DemoResponse Json(int status, std::string body) {
  DemoResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = std::move(body);
  return r;
}

DemoResponse JsonError(int status, std::string_view message) {
  return Json(status,
              absl::StrCat(R"({"ok":false,"error":)", JsonQuote(message), "}"));
}

DemoResponse MethodNotAllowed(std::string_view allow) {
  DemoResponse r = JsonError(405, "method not allowed");
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

bool IsGet(const DemoRequest& request) {
  return request.method == "GET" || request.method == "HEAD";
}

// The state the edge sent. Data only counts when the session was loaded.
DemoSession SessionOf(const DemoRequest& request) {
  if (request.Header(kSessionStatusHeader) != "loaded") return DemoSession{};
  DemoSession session = DecodeSessionData(request.Header(kSessionDataHeader));
  // The principal is the edge's word for who is logged in.
  const std::string_view principal = request.Header(kSessionPrincipalHeader);
  if (!principal.empty()) session.user = std::string(principal);
  return session;
}

// A safe single file name: no separators, no dot-files, printable ASCII.
bool IsPlainFileName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name[0] == '.') return false;
  for (const char c : name) {
    if (c == '/' || c == '\\' || c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

std::string_view FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, Av(name))) return value;
  }
  return {};
}

absl::Status DemoAppOptions::Validate() const {
  if (assets_dir.empty()) return absl::OkStatus();
  struct stat st;
  if (stat(assets_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("assets_dir must be a directory: ", assets_dir));
  }
  return absl::OkStatus();
}

DemoSession DecodeSessionData(std::string_view base64_data) {
  DemoSession session;
  std::string json;
  if (base64_data.empty() ||
      !absl::Base64Unescape(
          absl::string_view(base64_data.data(), base64_data.size()), &json)) {
    return session;
  }
  absl::StatusOr<JsonObject> object = ParseFlatJsonObject(json);
  if (!object.ok()) return session;
  if (auto it = object->find("user");
      it != object->end() && it->second.kind == JsonValue::Kind::kString) {
    session.user = it->second.text;
  }
  if (auto it = object->find("counter");
      it != object->end() && it->second.kind == JsonValue::Kind::kNumber) {
    int64_t counter = 0;
    if (absl::SimpleAtoi(it->second.text, &counter) && counter >= 0) {
      session.counter = counter;
    }
  }
  return session;
}

std::string EncodeSessionData(const DemoSession& session) {
  std::string json = "{";
  if (!session.user.empty()) {
    absl::StrAppend(&json, R"("user":)", JsonQuote(session.user), ",");
  }
  absl::StrAppend(&json, R"("counter":)", session.counter, "}");
  return absl::Base64Escape(json);
}

absl::StatusOr<std::unique_ptr<DemoApp>> DemoApp::Create(DemoAppOptions options,
                                                         const Clock* clock) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::unique_ptr<DemoApp>(new DemoApp(std::move(options), clock));
}

DemoResponse DemoApp::Handle(const DemoRequest& request) const {
  DemoResponse r = Route(request);
  if (!options_.session_on_every_request) return r;
  // What the seed's express-session did on every request: a session is
  // saved (X-Session-Set, which creates one when there is none) unless the
  // route already wrote or destroyed it, and the app's own cookie is set.
  if (r.Header(kSessionSetHeader).empty() &&
      r.Header(kSessionDestroyHeader).empty()) {
    r.headers.emplace_back(std::string(kSessionSetHeader),
                           EncodeSessionData(SessionOf(request)));
  }
  if (!absl::StrContains(Av(r.Header("Set-Cookie")), "connect.sid=")) {
    r.headers.emplace_back("Set-Cookie",
                           "connect.sid=s%3Aset-by-broken-app.unsigned; "
                           "Path=/; HttpOnly");
  }
  return r;
}

DemoResponse DemoApp::Route(const DemoRequest& request) const {
  const std::string_view path = PathOf(request.target);
  if (path == "/") {
    if (!IsGet(request)) return MethodNotAllowed("GET, HEAD");
    return Page(request);
  }
  if (absl::StartsWith(Av(path), "/assets/")) {
    if (!IsGet(request)) return MethodNotAllowed("GET, HEAD");
    return Asset(path.substr(std::string_view("/assets/").size()));
  }
  if (path == "/api/health") {
    if (!IsGet(request)) return MethodNotAllowed("GET, HEAD");
    return Health();
  }
  if (path == "/api/auth/login") {
    if (request.method != "POST") return MethodNotAllowed("POST");
    return Login(request);
  }
  if (path == "/api/auth/logout") {
    if (request.method != "POST") return MethodNotAllowed("POST");
    return Logout(request);
  }
  if (path == "/api/counter" || path == "/api/user/counter") {
    if (request.method != "GET" && request.method != "POST") {
      return MethodNotAllowed("GET, POST");
    }
    return Counter(request);
  }
  if (path == "/api/whoami" || path == "/api/user/whoami") {
    if (!IsGet(request)) return MethodNotAllowed("GET, HEAD");
    return WhoAmI(request);
  }
  if (absl::StartsWith(Av(path), "/api/")) return JsonError(404, "not found");
  DemoResponse r;
  r.status = 404;
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.body = "not found\n";
  return r;
}

DemoResponse DemoApp::Page(const DemoRequest& request) const {
  const DemoSession session = SessionOf(request);
  std::string status(request.Header(kSessionStatusHeader));
  if (status.empty()) status = "(no session lookup: bypassed)";
  const std::string state =
      session.user.empty()
          ? absl::StrCat("not logged in, counter ", session.counter)
          : absl::StrCat("logged in as ", HtmlEscape(session.user),
                         ", counter ", session.counter);
  DemoResponse r;
  r.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = absl::StrCat(
      "<!doctype html>\n<html lang=\"en\">\n<head>\n"
      "<meta charset=\"utf-8\">\n<title>SessionGrid demo</title>\n"
      "<link rel=\"stylesheet\" href=\"/assets/style.css\">\n"
      "<script src=\"/assets/main.js\" defer></script>\n"
      "</head>\n<body>\n"
      "<h1><img class=\"logo\" src=\"/assets/logo.png\" alt=\"\"> "
      "SessionGrid demo</h1>\n"
      "<p>You are: <span id=\"state\" data-logged-in=\"",
      session.user.empty() ? "false" : "true", "\" data-counter=\"",
      session.counter, "\">", state, "</span></p>\n",
      "<p>Session status the edge sent with this page: <code>",
      HtmlEscape(status), "</code></p>\n",
      "<form id=\"login\">\n"
      "<input name=\"username\" placeholder=\"user\" required>\n"
      "<input name=\"password\" type=\"password\" placeholder=\"password\" "
      "required>\n"
      "<button type=\"submit\">Log in</button>\n</form>\n"
      "<p><button id=\"count\">Count</button> "
      "<button id=\"logout\">Log out</button></p>\n"
      "</body>\n</html>\n");
  return r;
}

DemoResponse DemoApp::Asset(std::string_view name) const {
  DemoResponse r;
  r.headers.emplace_back("Cache-Control", "public, max-age=3600");
  if (!options_.assets_dir.empty() && IsPlainFileName(name)) {
    std::ifstream file(absl::StrCat(options_.assets_dir, "/", Av(name)),
                       std::ios::binary);
    struct stat st;
    if (file &&
        stat(absl::StrCat(options_.assets_dir, "/", Av(name)).c_str(), &st) ==
            0 &&
        S_ISREG(st.st_mode) &&
        static_cast<size_t>(st.st_size) <= kMaxAssetFileBytes) {
      r.body.assign(std::istreambuf_iterator<char>(file), {});
      r.headers.emplace_back("Content-Type", std::string(ContentTypeFor(name)));
      return r;
    }
  }
  if (name == "main.js") {
    r.body = std::string(kMainJs);
  } else if (name == "style.css") {
    r.body = std::string(kStyleCss);
  } else if (name == "logo.png") {
    r.body.assign(reinterpret_cast<const char*>(kLogoPng), sizeof(kLogoPng));
  } else if (IsPlainFileName(name) &&
             absl::EndsWithIgnoreCase(Av(name), ".js")) {
    // The seed's load test asks for /assets/file0.js .. file69.js.
    r.body = absl::StrCat("// demo asset ", Av(name), "\n");
  } else if (IsPlainFileName(name) &&
             absl::EndsWithIgnoreCase(Av(name), ".css")) {
    r.body = absl::StrCat("/* demo asset ", Av(name), " */\n");
  } else {
    r.status = 404;
    r.headers.clear();
    r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    r.body = "not found\n";
    return r;
  }
  r.headers.emplace_back("Content-Type", std::string(ContentTypeFor(name)));
  return r;
}

DemoResponse DemoApp::Health() const {
  DemoResponse r = Json(
      200, absl::StrCat(R"({"status":"ok","timestamp":")",
                        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", clock_->Now(),
                                         absl::UTCTimeZone()),
                        R"("})"));
  // Deliberate: apps in the wild set the session cookie on responses that
  // never needed a session (express-session with saveUninitialized, or a
  // middleware order mistake). The edge must strip it from bypassed
  // requests; the E2E suite checks that no client sees this header.
  r.headers.emplace_back("Set-Cookie", "connect.sid=leaked-by-app; Path=/");
  return r;
}

DemoResponse DemoApp::Login(const DemoRequest& request) const {
  absl::StatusOr<JsonObject> body = ParseFlatJsonObject(request.body);
  if (!body.ok()) return JsonError(400, "body must be a JSON object");
  const auto username = body->find("username");
  const auto password = body->find("password");
  if (username == body->end() || password == body->end() ||
      username->second.kind != JsonValue::Kind::kString ||
      password->second.kind != JsonValue::Kind::kString ||
      username->second.text.empty() || password->second.text.empty()) {
    return JsonError(401, "username and password required");
  }
  const std::string& user = username->second.text;
  if (user.size() > kMaxUsernameBytes) {
    return JsonError(400, "username too long");
  }
  for (const char c : user) {
    // The principal travels in a header, and the edge accepts visible
    // ASCII and spaces only.
    if (c < 0x20 || c > 0x7e) {
      return JsonError(400, "username must be printable ASCII");
    }
  }
  if (request.Header(kSessionStatusHeader) == "unavailable") {
    return JsonError(503, "sessions are unavailable, try again later");
  }
  // Anonymous state (the counter) carries over into the logged-in session.
  DemoSession session = SessionOf(request);
  session.user = user;
  DemoResponse r =
      Json(200, absl::StrCat(R"({"ok":true,"user":)", JsonQuote(user), "}"));
  r.headers.emplace_back(std::string(kSessionPrincipalHeader), user);
  r.headers.emplace_back(std::string(kSessionSetHeader),
                         EncodeSessionData(session));
  if (const auto remember = body->find("remember");
      remember != body->end() &&
      remember->second.kind == JsonValue::Kind::kBool &&
      remember->second.boolean) {
    r.headers.emplace_back(std::string(kSessionTtlHeader),
                           absl::StrCat(kRememberMeTtlSeconds));
  }
  return r;
}

DemoResponse DemoApp::Logout(const DemoRequest& request) const {
  DemoResponse r = Json(200, R"({"ok":true})");
  r.headers.emplace_back(std::string(kSessionDestroyHeader), "1");
  return r;
}

DemoResponse DemoApp::Counter(const DemoRequest& request) const {
  if (request.Header(kSessionStatusHeader) == "unavailable") {
    // Writing a fresh counter now could overwrite the real one later.
    return JsonError(503, "sessions are unavailable, try again later");
  }
  DemoSession session = SessionOf(request);
  ++session.counter;
  DemoResponse r = Json(
      200, absl::StrCat(R"({"counter":)", session.counter, R"(,"user":)",
                        session.user.empty() ? "null" : JsonQuote(session.user),
                        "}"));
  r.headers.emplace_back(std::string(kSessionSetHeader),
                         EncodeSessionData(session));
  return r;
}

DemoResponse DemoApp::WhoAmI(const DemoRequest& request) const {
  const DemoSession session = SessionOf(request);
  std::string_view status = request.Header(kSessionStatusHeader);
  if (status.empty()) status = "bypassed";
  return Json(
      200, absl::StrCat(R"({"loggedIn":)",
                        session.user.empty() ? "false" : "true", R"(,"user":)",
                        session.user.empty() ? "null" : JsonQuote(session.user),
                        R"(,"counter":)", session.counter,
                        R"(,"sessionStatus":)", JsonQuote(status), "}"));
}

}  // namespace sg::demo

#include "edge/auth_request.h"

#include <charconv>

#include "edge/http/text_util.h"
#include "edge/proxy_headers.h"
#include "edge/session_protocol.h"

namespace sg::edge {
namespace {

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9')) {
    return true;
  }
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// Visible ASCII and obs-text; no space, no control byte, no '#'.
bool IsTargetByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f && c != '#';
}

std::string_view StripQuery(std::string_view target) {
  return target.substr(0, target.find('?'));
}

}  // namespace

AuthEndpoint MatchAuthEndpoint(std::string_view target, std::string_view base) {
  if (base.empty()) return AuthEndpoint::kNone;
  std::string_view path = StripQuery(target);
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == base) return AuthEndpoint::kCheck;
  if (path.size() == base.size() + 7 && path.substr(0, base.size()) == base &&
      path.substr(base.size()) == "/commit") {
    return AuthEndpoint::kCommit;
  }
  return AuthEndpoint::kNone;
}

absl::StatusOr<OriginalRequest> ParseOriginalRequest(std::string_view uri,
                                                     std::string_view url,
                                                     std::string_view method) {
  OriginalRequest out;
  method = TrimOws(method);
  out.method = method.empty() ? std::string_view("GET") : method;
  for (char c : out.method) {
    if (!IsTokenChar(c)) {
      return absl::InvalidArgumentError(
          "X-Original-Method is not an HTTP method token");
    }
  }
  uri = TrimOws(uri);
  url = TrimOws(url);
  if (!uri.empty()) {
    out.target = uri;
  } else if (!url.empty()) {
    const size_t scheme = url.find("://");
    if (scheme == std::string_view::npos || scheme == 0) {
      return absl::InvalidArgumentError(
          "X-Original-URL must be an absolute URL (scheme://host/path)");
    }
    const std::string_view rest = url.substr(scheme + 3);
    const size_t path = rest.find_first_of("/?");
    if (path == std::string_view::npos) {
      out.target = "/";
    } else if (rest[path] == '?') {
      // "https://host?q": the path is "/"; keep the query out of the
      // classifier's path rules by treating the target as "/".
      out.target = "/";
    } else {
      out.target = rest.substr(path);
    }
  } else {
    return absl::InvalidArgumentError(
        "missing X-Original-URI (nginx: proxy_set_header X-Original-URI "
        "$request_uri) or X-Original-URL");
  }
  if (out.target.front() != '/') {
    return absl::InvalidArgumentError(
        "the original URI must start with '/' (origin-form)");
  }
  for (char c : out.target) {
    if (!IsTargetByte(c)) {
      return absl::InvalidArgumentError(
          "the original URI contains a space, control character or '#'");
    }
  }
  return out;
}

std::string EncodeVersionToken(const sessiongrid::v1::Version& version) {
  return Cat(version.wall_millis(), ".", version.logical(), ".",
             version.node_id());
}

std::optional<sessiongrid::v1::Version> DecodeVersionToken(
    std::string_view token) {
  token = TrimOws(token);
  const size_t a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  const size_t b = token.find('.', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  int64_t wall = 0;
  uint32_t logical = 0;
  const std::string_view w = token.substr(0, a);
  const std::string_view l = token.substr(a + 1, b - a - 1);
  auto [pw, ew] = std::from_chars(w.data(), w.data() + w.size(), wall);
  if (ew != std::errc() || pw != w.data() + w.size() || w.empty() || wall < 0) {
    return std::nullopt;
  }
  auto [pl, el] = std::from_chars(l.data(), l.data() + l.size(), logical);
  if (el != std::errc() || pl != l.data() + l.size() || l.empty()) {
    return std::nullopt;
  }
  const std::string_view node = token.substr(b + 1);
  if (node.size() > 256) return std::nullopt;
  for (char c : node) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return std::nullopt;
  }
  sessiongrid::v1::Version v;
  v.set_wall_millis(wall);
  v.set_logical(logical);
  v.set_node_id(std::string(node));
  return v;
}

CookieAction CheckCookieAction(const SessionState& state) {
  switch (state.cookie) {
    case CookieVerdict::kMissing:
      return CookieAction::kNone;
    case CookieVerdict::kMalformed:
    case CookieVerdict::kBadSignature:
      return CookieAction::kClear;
    case CookieVerdict::kOk:
      break;
  }
  if (state.status == SessionStatus::kExpired) return CookieAction::kClear;
  if (state.status == SessionStatus::kLoaded && state.key_index > 0) {
    return CookieAction::kReissue;
  }
  // Unavailable: the session may well exist; never clear it.
  return CookieAction::kNone;
}

HeaderList CheckReplyHeaders(const SessionState& state,
                             const std::optional<std::string>& set_cookie) {
  HeaderList out;
  out.emplace_back("X-Session-Status",
                   std::string(SessionStatusName(state.status)));
  if (state.status == SessionStatus::kLoaded) {
    out.emplace_back("X-Session-Id", state.id);
    out.emplace_back("X-Session-Data", EncodeSessionData(state.data));
    if (!state.principal.empty()) {
      out.emplace_back("X-Session-Principal", state.principal);
    }
    out.emplace_back("X-Session-Version", EncodeVersionToken(state.version));
  }
  if (set_cookie) out.emplace_back(std::string(kHdrSetCookieOut), *set_cookie);
  return out;
}

}  // namespace sg::edge

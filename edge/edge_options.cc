#include "edge/edge_options.h"


#include "common/bearer_token.h"
#include "common/tls_credentials.h"
#include "edge/http/text_util.h"
#include "edge/proxy_headers.h"

namespace sg::edge {
namespace {

std::string_view Msg(const absl::Status& s) {
  return {s.message().data(), s.message().size()};
}

}  // namespace

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = TrimSpace(text.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view text) {
  text = TrimSpace(text);
  constexpr std::string_view kWhat = "address";
  // The shared parser takes ports 1..65535 only.
  if (text.size() >= 2 && text.substr(text.size() - 2) == ":0") {
    std::string any_port(text);
    any_port.back() = '1';
    auto hp = ::sg::ParseHostPort(any_port, kWhat);
    if (!hp.ok()) return ::sg::ParseHostPort(text, kWhat).status();
    hp->port = 0;
    return hp;
  }
  return ::sg::ParseHostPort(text, kWhat);
}

absl::StatusOr<HostPort> ParseUpstreamUrl(std::string_view text) {
  text = TrimSpace(text);
  constexpr std::string_view kScheme = "http://";
  if (!StartsWithIgnoreCase(text, kScheme)) {
    return absl::InvalidArgumentError(
        Cat("expected http://HOST:PORT, got \"", text, "\""));
  }
  text.remove_prefix(kScheme.size());
  if (!text.empty() && text.back() == '/') text.remove_suffix(1);
  if (text.find('/') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "a path prefix is not supported: use http://HOST:PORT");
  }
  auto hp = ParseHostPort(text);
  if (!hp.ok()) return hp.status();
  if (hp->port == 0) return absl::InvalidArgumentError("upstream port is 0");
  return hp;
}

absl::StatusOr<SameSite> ParseSameSite(std::string_view text) {
  if (EqualsIgnoreCase(text, "lax")) return SameSite::kLax;
  if (EqualsIgnoreCase(text, "strict")) return SameSite::kStrict;
  if (EqualsIgnoreCase(text, "none")) return SameSite::kNone;
  if (EqualsIgnoreCase(text, "unset")) return SameSite::kUnset;
  return absl::InvalidArgumentError(
      Cat("expected lax, strict, none or unset, got \"", text, "\""));
}

absl::Status ResolveCookieOptions(EdgeOptions* o) {
  if (o->cookie_insecure && o->cookie.secure) {
    return absl::InvalidArgumentError(
        "cookie_insecure contradicts --cookie-secure");
  }
  if (o->production && !o->cookie_insecure) o->cookie.secure = true;
  constexpr std::string_view kHost = "__Host-";
  if (o->cookie_host_prefix && !StartsWithIgnoreCase(o->cookie_name, kHost)) {
    o->cookie_name = Cat(kHost, o->cookie_name);
  }
  return absl::OkStatus();
}

absl::Status EdgeOptions::Validate() const {
  auto bad = [](std::string_view field, std::string_view why) {
    return absl::InvalidArgumentError(Cat(field, " ", why));
  };
  if (auto s = ParseHostPort(listen); !s.ok()) {
    return bad("listen", Msg(s.status()));
  }
  if (auto s = ParseHostPort(admin_listen); !s.ok()) {
    return bad("admin_listen", Msg(s.status()));
  }
  if (upstream.empty() && auth_request_path.empty()) {
    return bad("upstream", "is required (http://HOST:PORT)");
  }
  if (!upstream.empty()) {
    if (auto s = ParseUpstreamUrl(upstream); !s.ok()) {
      return bad("upstream", Msg(s.status()));
    }
  }
  if (!auth_request_path.empty()) {
    const std::string_view p = auth_request_path;
    if (p.front() != '/' || p.size() < 2 || p.back() == '/') {
      return bad("auth_request_path",
                 "must start with '/', not end with '/' and not be \"/\"");
    }
    for (char c : p) {
      const auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f || c == '?' || c == '#' || c == '%') {
        return bad("auth_request_path",
                   "must be a plain path (no space, '?', '#', '%')");
      }
    }
  }
  if (session_service.empty()) {
    return bad("session_service", "is required (HOST:PORT[,HOST:PORT...])");
  }
  {
    // Checked here under the edge's flag names (the client would cite its
    // own); reads the files.
    security::ChannelTlsOptions tls;
    tls.ca_file = session_service_tls_ca;
    tls.cert_file = session_service_tls_cert;
    tls.key_file = session_service_tls_key;
    tls.ca_flag = "--session-service-tls-ca";
    tls.cert_flag = "--session-service-tls-cert";
    tls.key_flag = "--session-service-tls-key";
    if (absl::Status s = tls.Validate(); !s.ok()) return s;
    if (!session_service_token_file.empty()) {
      absl::StatusOr<std::string> token = security::ReadTokenFile(
          session_service_token_file, "--session-service-token-file");
      if (!token.ok()) return token.status();
    }
  }
  if (threads < 0 || threads > 256) return bad("threads", "must be 0..256");
  if (session_batch_in_flight < 1 || session_batch_in_flight > 64) {
    return bad("session_batch_in_flight", "must be 1..64");
  }
  if (!IsCookieName(cookie_name)) {
    return bad("cookie_name", "must be a cookie name token");
  }
  if (cookie_secrets.empty()) return bad("cookie_secrets", "must not be empty");
  for (const std::string& s : cookie_secrets) {
    if (s.empty()) return bad("cookie_secrets", "has an empty secret");
  }
  if (!cookie.http_only) {
    return bad("cookie_options", "the session cookie is always HttpOnly");
  }
  // RFC 6265bis cookie prefixes: a browser drops a prefixed cookie that
  // breaks their rules, so refuse them here instead of silently losing
  // every session.
  if (StartsWithIgnoreCase(cookie_name, "__Host-")) {
    if (!cookie.secure) {
      return bad("cookie_host_prefix",
                 "(__Host- cookie name) requires Secure: --production or "
                 "--cookie-secure, not --cookie-insecure");
    }
    if (cookie.path != "/" || !cookie.domain.empty()) {
      return bad("cookie_host_prefix",
                 "(__Host- cookie name) requires Path=/ and no Domain");
    }
  }
  if (StartsWithIgnoreCase(cookie_name, "__Secure-") && !cookie.secure) {
    return bad("cookie_name",
               "__Secure- prefix requires Secure: --production or "
               "--cookie-secure");
  }
  if (cookie.same_site == SameSite::kNone && !cookie.secure) {
    return bad("cookie_samesite", "none requires --cookie-secure");
  }
  if (cookie.max_age_seconds && *cookie.max_age_seconds < 0) {
    return bad("cookie_max_age", "must be >= 0");
  }
  if (absl::Status s = cookie.Validate(); !s.ok()) {
    return bad("cookie_options", Msg(s));
  }
  if (session_ttl < absl::ZeroDuration()) {
    return bad("session_ttl", "must be >= 0");
  }
  if (absl::Status s = anon_limit.Validate(); !s.ok()) return s;
  if (session_timeout <= absl::ZeroDuration()) {
    return bad("session_timeout", "must be > 0");
  }
  if (breaker.failure_threshold < 1) {
    return bad("breaker_failures", "must be >= 1");
  }
  if (breaker.cooldown <= absl::ZeroDuration()) {
    return bad("breaker_cooldown", "must be > 0");
  }
  if (max_header_bytes < 1024 || max_header_bytes > (1u << 24)) {
    return bad("max_header_bytes", "must be 1KiB..16MiB");
  }
  if (max_request_line_bytes < 256 ||
      max_request_line_bytes > max_header_bytes) {
    return bad("max_request_line_bytes", "must be 256..max_header_bytes");
  }
  if (max_connections < 1) return bad("max_connections", "must be >= 1");
  if (max_body_bytes == 0) return bad("max_body_bytes", "must be > 0");
  for (auto [name, d] : {std::pair<const char*, absl::Duration>{
                             "header_timeout", header_timeout},
                         {"idle_timeout", idle_timeout},
                         {"upstream_connect_timeout", upstream_connect_timeout},
                         {"upstream_timeout", upstream_timeout},
                         {"upstream_idle_timeout", upstream_idle_timeout},
                         {"stats_interval", stats_interval}}) {
    if (d <= absl::ZeroDuration()) return bad(name, "must be > 0");
  }
  if (upstream_max_idle < 0) return bad("upstream_max_idle", "must be >= 0");
  if (drain_delay < absl::ZeroDuration()) {
    return bad("drain_delay", "must be >= 0");
  }
  if (drain_timeout <= absl::ZeroDuration()) {
    return bad("drain_timeout", "must be > 0");
  }
  for (auto [name, path] : {std::pair<const char*, const std::string&>{
                                "session_health_path", session_health_path},
                            {"dashboard_path", dashboard_path}}) {
    if (!path.empty() && path.front() != '/') {
      return bad(name, "must start with '/' (or be empty)");
    }
  }
  if (max_sessions < 0) return bad("max_sessions", "must be >= 0");
  return absl::OkStatus();
}

}  // namespace sg::edge

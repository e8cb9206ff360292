// Configuration of the edge node. Only main.cc fills it from flags.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/host_port.h"
#include "edge/anon_session_limiter.h"
#include "edge/circuit_breaker.h"
#include "edge/session_cookie.h"

namespace sg::edge {

enum class FailMode : uint8_t { kOpen, kClosed };

// A parsed HOST:PORT ("0.0.0.0:8080", "[::1]:0", "localhost:9090"): the
// one shared type of common/host_port.h.
using HostPort = ::sg::HostPort;
// HOST:PORT or [IPv6]:PORT by the shared parser (common/host_port.h),
// which also allows port 0 here: a listener on port 0 picks a free port.
absl::StatusOr<HostPort> ParseHostPort(std::string_view text);
// "http://HOST:PORT" (path must be empty or "/"); https is not supported.
absl::StatusOr<HostPort> ParseUpstreamUrl(std::string_view text);
// "lax", "strict", "none", "unset" (no attribute).
absl::StatusOr<SameSite> ParseSameSite(std::string_view text);
// Comma-separated list, entries trimmed, empty entries dropped.
std::vector<std::string> SplitList(std::string_view text);

struct EdgeOptions {
  // Listeners. Port 0 picks a free port (the log line says which).
  std::string listen = "0.0.0.0:8080";
  std::string admin_listen = "0.0.0.0:9090";
  // Where requests go: http://HOST:PORT. Resolved once at start. May be
  // empty with auth_request_path: the edge then only answers nginx.
  std::string upstream;
  // The session service: "a:1,b:2" or "dns:///name:port".
  std::string session_service;
  // TLS to the session service (not an HTTPS listener): the PEM CA that
  // signs the servers (empty: plaintext), a client certificate and key to
  // present (servers with --tls-client-ca), the name the certificates are
  // checked against instead of the host dialled, and a file holding a
  // bearer token sent with every call.
  std::string session_service_tls_ca;
  std::string session_service_tls_cert;
  std::string session_service_tls_key;
  std::string session_service_tls_server_name;
  std::string session_service_token_file;
  // I/O threads, each with its own io_context; 0 = hardware concurrency.
  int threads = 0;

  // Classifier: enforce, or shadow (count decisions, enforce none).
  bool shadow = false;
  bool production = false;
  std::vector<std::string> trusted_proxies;

  // Session cookie. `cookie_secrets`: newest first; the first signs.
  // HttpOnly always (the cookie is the edge's; no script needs it).
  std::string cookie_name = "connect.sid";
  std::vector<std::string> cookie_secrets;
  SetCookieOptions cookie;
  // Secure follows `production` unless `cookie_insecure` (a production
  // site served over plain HTTP); see ResolveCookieOptions().
  bool cookie_insecure = false;
  // Prefix the cookie name with "__Host-": browsers then accept it only
  // Secure, Path=/ and without Domain, so no subdomain can set or
  // overwrite it (fixation from a sibling host).
  bool cookie_host_prefix = false;
  // New anonymous sessions per client IP (--anon-session-*).
  AnonSessionLimiterOptions anon_limit;
  absl::Duration session_ttl = absl::ZeroDuration();  // service default
  FailMode fail_mode = FailMode::kOpen;
  absl::Duration session_timeout = absl::Milliseconds(250);
  // Coalesce concurrent Gets/Creates into BatchGet/BatchCreate RPCs.
  bool session_batching = true;
  // Batch RPCs outstanding at once per kind. One gives the largest batches
  // and the fewest gRPC wakeups (measured here: ~25k session requests/s
  // with 1, ~21k with 2, ~14k with 4, at lower p50 too); a request that
  // arrives while a batch is out waits at most one round trip. Raise it
  // when one slow node should not hold back the next batch.
  int session_batch_in_flight = 1;
  // Get/Create/Update/Delete multiplexed on SessionService/Stream streams
  // (the client's SessionPipeline) instead of unary and batch RPCs.
  bool session_streaming = false;
  CircuitBreakerOptions breaker;

  // HTTP limits and timeouts.
  uint64_t max_header_bytes = 32 * 1024;              // 431 beyond
  uint64_t max_request_line_bytes = 8 * 1024;         // 414 beyond
  // Open client connections on the main listener; beyond it a new one is
  // answered 503 and closed at once. Each takes one descriptor (two while
  // proxied): keep it under RLIMIT_NOFILE.
  int64_t max_connections = 20000;
  uint64_t max_body_bytes = 10 * 1024 * 1024;         // 413 beyond
  absl::Duration header_timeout = absl::Seconds(10);  // 408
  absl::Duration idle_timeout = absl::Seconds(60);    // keep-alive idle
  absl::Duration upstream_connect_timeout = absl::Seconds(2);  // 504
  absl::Duration upstream_timeout = absl::Seconds(30);         // response; 504
  absl::Duration upstream_idle_timeout = absl::Seconds(30);
  int upstream_max_idle = 64;  // pooled idle connections per thread

  // Drain on SIGTERM.
  absl::Duration drain_delay = absl::Seconds(5);
  absl::Duration drain_timeout = absl::Seconds(30);

  // The seed's endpoints on the main listener ("" disables one).
  std::string session_health_path = "/api/session-health";
  std::string dashboard_path = "/api/production-monitor/dashboard";
  int64_t max_sessions = 10000;     // "maxSessions" shown

  // nginx auth_request mode (edge/auth_request.h): the check endpoint's
  // path ("" = off) and <path>/commit. Reachable from trusted_proxies and
  // these CIDRs only (loopback when both are empty).
  std::string auth_request_path;
  std::vector<std::string> auth_request_allow;
  uint64_t memory_limit_bytes = 0;  // 0: cgroup limit, else MemTotal
  absl::Duration stats_interval = absl::Seconds(1);

  // INVALID_ARGUMENT naming the field (as the flag spells it with '_').
  absl::Status Validate() const;
};

// Derives the cookie settings that depend on others, before Validate():
// Secure under `production` (unless `cookie_insecure`), and the "__Host-"
// prefix on the name. INVALID_ARGUMENT for contradicting flags
// (--cookie-insecure with --cookie-secure).
absl::Status ResolveCookieOptions(EdgeOptions* options);

}  // namespace sg::edge

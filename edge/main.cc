// sessiongrid-edge: flags, wiring and signals. Everything else lives in
// sg_edge (edge/) and sg_classifier (edge/classifier/).
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/flags.h"
#include "common/log.h"
#include "edge/classifier/classifier.h"
#include "edge/classifier/rules.h"
#include "edge/edge_options.h"
#include "edge/edge_server.h"
#include "edge/http/text_util.h"

namespace {

// Fails with exit code 2 naming the flag, as the FlagSet does.
[[noreturn]] void FlagError(std::string_view flag, std::string_view message) {
  std::fprintf(stderr, "error: flag --%.*s: %.*s\n",
               static_cast<int>(flag.size()), flag.data(),
               static_cast<int>(message.size()), message.data());
  std::exit(2);
}

std::vector<std::string> ReadSecrets(const std::string& path) {
  std::ifstream in(path);
  if (!in) FlagError("cookie-secret-file", "cannot read " + path);
  std::vector<std::string> secrets;
  std::string line;
  while (std::getline(in, line)) {
    std::string_view s = sg::edge::TrimSpace(line);
    if (s.empty() || s.front() == '#') continue;
    secrets.emplace_back(s);
  }
  if (secrets.empty()) FlagError("cookie-secret-file", path + " has no secret");
  return secrets;
}

std::string RandomSecret() {
  std::random_device rd;
  std::string out;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 64; ++i) out.push_back(kHex[rd() % 16]);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  sg::edge::EdgeOptions o;
  std::string classifier_mode = "enforce";
  std::string fail_mode = "open";
  std::string same_site = "lax";
  std::string trusted_proxies;
  std::string auth_request_allow;
  std::string secret_file;
  std::string rules_file;
  absl::Duration cookie_max_age = absl::Hours(24);
  int64_t threads = 0;
  int64_t breaker_failures = o.breaker.failure_threshold;
  int64_t upstream_max_idle = o.upstream_max_idle;
  int64_t max_sessions = o.max_sessions;
  int64_t batch_in_flight = o.session_batch_in_flight;
  int64_t anon_slots = static_cast<int64_t>(o.anon_limit.slots);

  sg::FlagSet flags("sessiongrid-edge",
                    "the SessionGrid edge node: an HTTP/1.1 reverse proxy "
                    "that bypasses sessions for bots, probes and assets",
                    "SESSIONGRID_EDGE");
  flags.AddString("listen", &o.listen,
                  "HOST:PORT for proxied traffic; port 0 picks a free port.");
  flags.AddString("admin-listen", &o.admin_listen,
                  "HOST:PORT for /healthz, /readyz and /metrics.");
  flags.AddString("upstream", &o.upstream,
                  "The application: http://HOST:PORT (required unless "
                  "--auth-request-path is set).");
  flags.AddString("session-service", &o.session_service,
                  "Session service: HOST:PORT[,HOST:PORT...] or "
                  "dns:///NAME:PORT (required).");
  flags.AddString("session-service-tls-ca", &o.session_service_tls_ca,
                  "PEM CA of the session service: connect to it with TLS "
                  "(empty: plaintext). Not an HTTPS listener.");
  flags.AddString("session-service-tls-cert", &o.session_service_tls_cert,
                  "PEM client certificate presented to the session service "
                  "(with --session-service-tls-key; for --tls-client-ca).");
  flags.AddString("session-service-tls-key", &o.session_service_tls_key,
                  "PEM private key of --session-service-tls-cert.");
  flags.AddString("session-service-tls-server-name",
                  &o.session_service_tls_server_name,
                  "Name the session service's certificates are checked "
                  "against instead of the host dialled.");
  flags.AddString("session-service-token-file", &o.session_service_token_file,
                  "File holding a bearer token sent on every session "
                  "service call.");
  flags.AddString("rules", &rules_file,
                  "Classifier rules file (see edge/rules/default.yaml); "
                  "empty: the built-in seed defaults.");
  flags.AddCustom(
      "classifier-mode", classifier_mode,
      "enforce, or shadow (count decisions, bypass nothing).",
      [&](std::string_view v) {
        if (v != "enforce" && v != "shadow") {
          return absl::InvalidArgumentError("expected enforce or shadow");
        }
        classifier_mode = std::string(v);
        return absl::OkStatus();
      });
  flags.AddBool("production", &o.production,
                "Enable rule 10 (unauthenticated_html_request), and mark "
                "the session cookie Secure (see --cookie-insecure).");
  flags.AddString("trusted-proxies", &trusted_proxies,
                  "Comma-separated CIDRs whose X-Forwarded-For (and "
                  "X-Forwarded-Proto/-Host) is believed.");
  flags.AddString("cookie-name", &o.cookie_name, "Session cookie name.");
  flags.AddString("cookie-secret-file", &secret_file,
                  "File with one secret per line; the first signs, all "
                  "verify. Empty: a random secret per process (cookies do "
                  "not survive a restart; development only).");
  flags.AddBool("cookie-secure", &o.cookie.secure,
                "Mark the cookie Secure (HTTPS only); on by default under "
                "--production.");
  flags.AddBool("cookie-insecure", &o.cookie_insecure,
                "Under --production, leave Secure off (a site served over "
                "plain HTTP; the cookie can then be read on the wire).");
  flags.AddBool("cookie-host-prefix", &o.cookie_host_prefix,
                "Name the cookie __Host-<--cookie-name>: browsers keep it "
                "only Secure, Path=/ and host-only, so no subdomain can "
                "set it. Needs Secure.");
  flags.AddCustom("cookie-samesite", same_site, "lax, strict, none or unset.",
                  [&](std::string_view v) {
                    auto s = sg::edge::ParseSameSite(v);
                    if (!s.ok()) return s.status();
                    o.cookie.same_site = *s;
                    return absl::OkStatus();
                  });
  flags.AddDuration("cookie-max-age", &cookie_max_age,
                    "Cookie Max-Age; 0: a browser-session cookie.");
  flags.AddDouble("anon-session-rate", &o.anon_limit.rate,
                  "New anonymous sessions each client IP (IPv6: each /64) "
                  "may make the edge create per second; 0: no limit. "
                  "Logins and existing sessions are never limited.");
  flags.AddDouble("anon-session-burst", &o.anon_limit.burst,
                  "Anonymous sessions a client may create at once before "
                  "--anon-session-rate applies.");
  flags.AddCustom(
      "anon-session-over-limit", "proxy",
      "Over the limit: proxy (the response goes out without a session or "
      "cookie) or reject (429 with Retry-After instead of the response).",
      [&](std::string_view v) {
        auto a = sg::edge::ParseOverLimitAction(v);
        if (!a.ok()) return a.status();
        o.anon_limit.over_limit = *a;
        return absl::OkStatus();
      });
  flags.AddInt("anon-session-table-slots", &anon_slots,
               "Clients the limit tracks at once (a power of two; 32 bytes "
               "each, allocated at start). Beyond it the least recently "
               "seen client of a slot's set is forgotten.");
  flags.AddDuration("session-ttl", &o.session_ttl,
                    "TTL of sessions the edge creates; 0: the service's "
                    "default.");
  flags.AddCustom(
      "fail-mode", fail_mode,
      "When the session service is down: open (proxy with "
      "X-Session-Status: unavailable) or closed (503).",
      [&](std::string_view v) {
        if (v == "open") {
          o.fail_mode = sg::edge::FailMode::kOpen;
        } else if (v == "closed") {
          o.fail_mode = sg::edge::FailMode::kClosed;
        } else {
          return absl::InvalidArgumentError("expected open or closed");
        }
        return absl::OkStatus();
      });
  flags.AddDuration("session-timeout", &o.session_timeout,
                    "Deadline of each session service call.");
  flags.AddBool("session-batching", &o.session_batching,
                "Coalesce concurrent session reads and creates into batch "
                "RPCs (each goes alone under light load).");
  flags.AddBool("session-streaming", &o.session_streaming,
                "Send session calls on a few long-lived SessionService/Stream "
                "streams, answered out of order (instead of unary and batch "
                "RPCs; needs servers of this version).");
  flags.AddInt("session-batch-in-flight", &batch_in_flight,
               "Batch RPCs outstanding at once per kind (fewer: larger "
               "batches, fewer wakeups; more: lower latency).");
  flags.AddInt("breaker-failures", &breaker_failures,
               "Consecutive session service failures that open the circuit "
               "breaker.");
  flags.AddDuration("breaker-cooldown", &o.breaker.cooldown,
                    "How long an open breaker skips the service before one "
                    "probe call.");
  flags.AddInt("threads", &threads,
               "I/O threads (one io_context each); 0: one per core.");
  flags.AddBytes("max-header-bytes", &o.max_header_bytes,
                 "Largest request head; larger gets 431.");
  flags.AddBytes("max-request-line-bytes", &o.max_request_line_bytes,
                 "Longest request line (method, target, version); longer "
                 "gets 414.");
  flags.AddInt("max-connections", &o.max_connections,
               "Open client connections on the main listener; beyond it a "
               "new connection gets 503 and is closed at once.");
  flags.AddBytes("max-body-bytes", &o.max_body_bytes,
                 "Largest request body; larger gets 413.");
  flags.AddDuration("header-timeout", &o.header_timeout,
                    "Time to receive a request head (and each body read); "
                    "408 after.");
  flags.AddDuration("idle-timeout", &o.idle_timeout,
                    "Keep-alive idle time, and the limit on each write to a "
                    "client.");
  flags.AddDuration("upstream-connect-timeout", &o.upstream_connect_timeout,
                    "Upstream connect limit; 504 after (502 if refused).");
  flags.AddDuration("upstream-timeout", &o.upstream_timeout,
                    "Upstream response limit (head, and each body read); "
                    "504 after.");
  flags.AddDuration("upstream-idle-timeout", &o.upstream_idle_timeout,
                    "How long a pooled upstream connection may stay idle.");
  flags.AddInt("upstream-max-idle", &upstream_max_idle,
               "Idle upstream connections kept per thread.");
  flags.AddDuration("drain-delay", &o.drain_delay,
                    "On SIGTERM/SIGINT, how long to keep serving with "
                    "/readyz failing before the listener closes.");
  flags.AddDuration("drain-timeout", &o.drain_timeout,
                    "Then, how long in-flight requests may take.");
  flags.AddString("session-health-path", &o.session_health_path,
                  "Path of the seed's session-health JSON on the main "
                  "listener; empty disables it.");
  flags.AddString("dashboard-path", &o.dashboard_path,
                  "Path of the seed's production-monitor JSON on the main "
                  "listener; empty disables it.");
  flags.AddInt("max-sessions", &max_sessions,
               "The maxSessions figure shown by the session-health JSON.");
  flags.AddBytes("memory-limit", &o.memory_limit_bytes,
                 "Memory the JSON endpoints compare RSS with; 0: the cgroup "
                 "limit, else the machine's memory.");
  flags.AddDuration("stats-interval", &o.stats_interval,
                    "How often the session count (NodeStats) is refreshed.");
  flags.AddString("auth-request-path", &o.auth_request_path,
                  "nginx auth_request mode: answer the check at this path "
                  "(e.g. /_sessiongrid/auth; X-Original-URI/-URL and "
                  "X-Original-Method describe the request) and the "
                  "application's write-back at POST <path>/commit, "
                  "locally, never proxied; --upstream becomes optional. "
                  "Empty: off.");
  flags.AddString("auth-request-allow", &auth_request_allow,
                  "Comma-separated CIDRs that may call the auth_request "
                  "endpoints besides --trusted-proxies (e.g. the "
                  "application pods, for the commit); when both are empty, "
                  "loopback only.");
  flags.ParseOrExit(argc, argv);

  o.shadow = classifier_mode == "shadow";
  o.threads = static_cast<int>(threads);
  o.breaker.failure_threshold = static_cast<int>(breaker_failures);
  o.upstream_max_idle = static_cast<int>(upstream_max_idle);
  o.max_sessions = max_sessions;
  o.session_batch_in_flight = static_cast<int>(batch_in_flight);
  o.trusted_proxies = sg::edge::SplitList(trusted_proxies);
  o.auth_request_allow = sg::edge::SplitList(auth_request_allow);
  if (cookie_max_age < absl::ZeroDuration()) {
    FlagError("cookie-max-age", "must be >= 0");
  }
  if (cookie_max_age > absl::ZeroDuration()) {
    o.cookie.max_age_seconds = absl::ToInt64Seconds(cookie_max_age);
  }
  if (anon_slots < 0) FlagError("anon-session-table-slots", "must be > 0");
  o.anon_limit.slots = static_cast<size_t>(anon_slots);
  {
    std::random_device rd;
    o.anon_limit.seed = (uint64_t{rd()} << 32) ^ rd();
  }
  if (absl::Status s = sg::edge::ResolveCookieOptions(&o); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", flags.DescribeOptionError(s).c_str());
    return 2;
  }
  if (secret_file.empty()) {
    o.cookie_secrets = {RandomSecret()};
    sg::LogWarn(
        "no --cookie-secret-file: using a random secret; cookies "
        "will not survive a restart or work across edges");
  } else {
    o.cookie_secrets = ReadSecrets(secret_file);
  }
  if (absl::Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", flags.DescribeOptionError(s).c_str());
    return 2;
  }

  sg::classifier::Rules rules = sg::classifier::Rules::SeedDefaults();
  if (!rules_file.empty()) {
    auto loaded = sg::classifier::LoadRulesFile(rules_file);
    if (!loaded.ok())
      FlagError("rules", std::string(loaded.status().message()));
    rules = *std::move(loaded);
  }
  rules.session_cookie_name = o.cookie_name;
  sg::classifier::ClassifierOptions copts;
  copts.production = o.production;
  copts.trusted_proxies = o.trusted_proxies;
  auto classifier = sg::classifier::Classifier::Create(rules, copts);
  if (!classifier.ok()) {
    FlagError(rules_file.empty() ? "trusted-proxies" : "rules",
              std::string(classifier.status().message()));
  }

  // Block the stop signals before any thread starts, so only sigwait sees
  // them.
  // A proxy holds two descriptors per proxied connection: use all the
  // descriptors the hard limit allows.
  if (rlimit lim;
      getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (rlimit lim; getrlimit(RLIMIT_NOFILE, &lim) == 0 &&
                  lim.rlim_cur != RLIM_INFINITY &&
                  static_cast<uint64_t>(o.max_connections) > lim.rlim_cur) {
    sg::LogWarn("max-connections exceeds the descriptor limit: accepts will "
                "fail (and back off) before the limit is reached",
                {{"max_connections", std::to_string(o.max_connections)},
                 {"rlimit_nofile", std::to_string(lim.rlim_cur)}});
  }

  // Deadlock detection walks a global graph on every Mutex acquisition: a
  // debugging aid, not for the request path.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = sg::edge::EdgeServer::Create(o, classifier->get());
  if (!server.ok()) {
    sg::LogError("cannot start",
                 {{"error", std::string(server.status().message())}});
    return 1;
  }
  if (absl::Status s = (*server)->Start(); !s.ok()) {
    sg::LogError("cannot listen", {{"error", std::string(s.message())}});
    return 1;
  }
  sg::LogInfo("listening", {{"address", (*server)->address()},
                            {"admin", (*server)->admin_address()},
                            {"upstream", o.upstream},
                            {"classifier_mode", classifier_mode},
                            {"fail_mode", fail_mode},
                            {"session_calls", o.session_streaming ? "stream"
                                              : o.session_batching ? "batch"
                                                                   : "unary"}});

  int sig = 0;
  sigwait(&stop_signals, &sig);
  sg::LogInfo("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  // A second signal during the drain means "now".
  std::thread([stop_signals] {
    int again = 0;
    sigwait(&stop_signals, &again);
    sg::LogWarn("second signal during drain: exiting now");
    std::_Exit(1);
  }).detach();
  const int left = (*server)->Drain();
  if (left > 0) {
    sg::LogWarn("drain timeout", {{"connections_cut", std::to_string(left)}});
  }
  server->reset();
  sg::LogInfo("stopped");
  return 0;
}

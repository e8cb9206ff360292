#include "edge/metrics.h"

#include <cstdlib>

namespace sg::edge {
namespace {

// Thin names over common/prometheus_text.h for the many calls below.
using prometheus::Label;

void Header(std::string* out, std::string_view name, std::string_view type,
            std::string_view help) {
  prometheus::AppendHeader(out, name, type, help);
}

void Sample(std::string* out, std::string_view name, std::string_view labels,
            uint64_t value) {
  prometheus::AppendSample(out, name, labels, value);
}

void SampleInt(std::string* out, std::string_view name, std::string_view labels,
               int64_t value) {
  prometheus::AppendSample(out, name, labels, value);
}

}  // namespace

std::string_view SessionMethodName(SessionMethod method) {
  switch (method) {
    case SessionMethod::kGet:
      return "get";
    case SessionMethod::kCreate:
      return "create";
    case SessionMethod::kUpdate:
      return "update";
    case SessionMethod::kDelete:
      return "delete";
    case SessionMethod::kRegenerate:
      return "regenerate";
  }
  return "unknown";
}

std::string_view CallResultName(CallResult result) {
  switch (result) {
    case CallResult::kOk:
      return "ok";
    case CallResult::kNotFound:
      return "not_found";
    case CallResult::kConflict:
      return "conflict";
    case CallResult::kError:
      return "error";
    case CallResult::kRejected:
      return "rejected";
    case CallResult::kInvalid:
      return "invalid";
  }
  return "unknown";
}

EdgeMetrics::EdgeMetrics(std::vector<std::string> reason_names)
    : reason_names_(std::move(reason_names)),
      upstream_latency_(Histogram::DefaultBounds()) {
  // A broken invariant of the caller, not bad input.
  if (reason_names_.empty() || reason_names_[0] != "session_required") {
    std::abort();
  }
  reason_names_.push_back("edge_endpoint");
  decisions_.reset(new Counter[reason_names_.size()]);
  for (size_t i = 0; i < reason_names_.size(); ++i) decisions_[i] = 0;
  for (int m = 0; m < kNumSessionMethods; ++m) {
    call_latency_.push_back(
        std::make_unique<Histogram>(Histogram::DefaultBounds()));
  }
}

void EdgeMetrics::CountCall(SessionMethod m, CallResult r,
                            absl::Duration latency) {
  Add(calls_[static_cast<int>(m) * kNumCallResults + static_cast<int>(r)]);
  if (r != CallResult::kRejected) {
    call_latency_[static_cast<int>(m)]->Observe(latency);
  }
}

uint64_t EdgeMetrics::calls(SessionMethod m, CallResult r) const {
  return Load(
      calls_[static_cast<int>(m) * kNumCallResults + static_cast<int>(r)]);
}

void EdgeMetrics::CountResponse(int status) {
  const int cls = status / 100;
  Add(responses_[(cls >= 1 && cls <= 5) ? cls : 0]);
}

void EdgeMetrics::CountLocalReply(int status) {
  for (size_t i = 0; i < kLocalReplyCodes.size(); ++i) {
    if (kLocalReplyCodes[i] == status) {
      Add(local_replies_[i]);
      return;
    }
  }
}

std::pair<uint64_t, uint64_t> EdgeMetrics::DecisionTotals() const {
  uint64_t total = 0;
  uint64_t bypassed = 0;
  for (size_t i = 0; i < reason_names_.size(); ++i) {
    const uint64_t n = decisions(static_cast<uint16_t>(i));
    total += n;
    if (i != 0) bypassed += n;
  }
  return {total, bypassed};
}

std::string EdgeMetrics::Render(const MetricsGauges& g) const {
  std::string out;
  out.reserve(16384);

  Header(&out, "sg_edge_requests_total", "counter",
         "Requests by classifier decision and reason (in shadow mode the "
         "decision is counted but not enforced).");
  for (size_t i = 0; i < reason_names_.size(); ++i) {
    std::string labels = Label("decision", i == 0 ? "session" : "bypass");
    labels.append(",").append(Label("reason", reason_names_[i]));
    Sample(&out, "sg_edge_requests_total", labels,
           decisions(static_cast<uint16_t>(i)));
  }
  Header(&out, "sg_edge_classifier_shadow_mode", "gauge",
         "1 when the classifier runs in shadow mode (decisions not "
         "enforced).");
  SampleInt(&out, "sg_edge_classifier_shadow_mode", "", g.shadow ? 1 : 0);

  Header(&out, "sg_edge_session_status_total", "counter",
         "Session-flow requests by the X-Session-Status sent upstream.");
  for (int s = 0; s < kNumSessionStatuses; ++s) {
    Sample(&out, "sg_edge_session_status_total",
           Label("status", SessionStatusName(static_cast<SessionStatus>(s))),
           Load(session_status_[s]));
  }

  Header(&out, "sg_edge_cookies_rejected_total", "counter",
         "Session cookies that were present but not accepted, by verdict.");
  for (CookieVerdict v :
       {CookieVerdict::kMalformed, CookieVerdict::kBadSignature}) {
    Sample(&out, "sg_edge_cookies_rejected_total",
           Label("verdict", CookieVerdictName(v)), cookies(v));
  }
  Header(&out, "sg_edge_cookies_verified_total", "counter",
         "Session cookies verified, by the key that signed them.");
  Sample(&out, "sg_edge_cookies_verified_total", Label("key", "current"),
         cookies(CookieVerdict::kOk) - Load(cookie_old_key_));
  Sample(&out, "sg_edge_cookies_verified_total", Label("key", "previous"),
         Load(cookie_old_key_));

  Header(&out, "sg_edge_session_calls_total", "counter",
         "Calls to the session service by method and result (rejected: "
         "not attempted because the circuit breaker was open).");
  for (int m = 0; m < kNumSessionMethods; ++m) {
    for (int r = 0; r < kNumCallResults; ++r) {
      std::string labels =
          Label("method", SessionMethodName(static_cast<SessionMethod>(m)));
      labels.append(",").append(
          Label("result", CallResultName(static_cast<CallResult>(r))));
      Sample(&out, "sg_edge_session_calls_total", labels,
             Load(calls_[m * kNumCallResults + r]));
    }
  }
  Header(&out, "sg_edge_session_call_duration_seconds", "histogram",
         "Latency of session service calls by method.");
  for (int m = 0; m < kNumSessionMethods; ++m) {
    call_latency_[m]->Render(
        &out, "sg_edge_session_call_duration_seconds",
        Label("method", SessionMethodName(static_cast<SessionMethod>(m))));
  }

  Header(&out, "sg_edge_sessions_created_total", "counter",
         "Sessions created (lazily, on the upstream's X-Session-Set or "
         "X-Session-Principal).");
  Sample(&out, "sg_edge_sessions_created_total", "", Load(sessions_created_));
  Header(&out, "sg_edge_sessions_destroyed_total", "counter",
         "Sessions destroyed on the upstream's X-Session-Destroy.");
  Sample(&out, "sg_edge_sessions_destroyed_total", "",
         Load(sessions_destroyed_));
  Header(&out, "sg_edge_sessions_rotated_total", "counter",
         "Session ids rotated (login or X-Session-Regenerate).");
  Sample(&out, "sg_edge_sessions_rotated_total", "", Load(sessions_rotated_));
  Header(&out, "sg_edge_session_write_conflicts_total", "counter",
         "Session writes whose expected version had changed: overwritten "
         "(last writer wins) or dropped (the session was gone).");
  Sample(&out, "sg_edge_session_write_conflicts_total",
         Label("resolution", "overwritten"), Load(conflicts_overwritten_));
  Sample(&out, "sg_edge_session_write_conflicts_total",
         Label("resolution", "dropped"), Load(conflicts_dropped_));
  Header(&out, "sg_edge_session_write_failures_total", "counter",
         "Upstream session directives that could not be applied because "
         "the service failed.");
  Sample(&out, "sg_edge_session_write_failures_total", "",
         Load(session_write_failures_));
  Header(&out, "sg_edge_anon_sessions_limited_total", "counter",
         "New anonymous sessions refused by --anon-session-rate, by "
         "--anon-session-over-limit: proxied without a session, or 429.");
  Sample(&out, "sg_edge_anon_sessions_limited_total", Label("action", "proxy"),
         Load(anon_limited_[0]));
  Sample(&out, "sg_edge_anon_sessions_limited_total", Label("action", "reject"),
         Load(anon_limited_[1]));
  Header(&out, "sg_edge_session_invalid_directives_total", "counter",
         "X-Session-* response fields from the upstream that were ignored "
         "as malformed.");
  Sample(&out, "sg_edge_session_invalid_directives_total", "",
         Load(invalid_directives_));

  Header(&out, "sg_edge_session_breaker_state", "gauge",
         "Session service circuit breaker: 0 closed, 1 open, 2 half-open.");
  SampleInt(&out, "sg_edge_session_breaker_state", "", g.breaker_state);
  Header(&out, "sg_edge_session_breaker_opened_total", "counter",
         "Times the session service circuit breaker opened.");
  SampleInt(&out, "sg_edge_session_breaker_opened_total", "", g.breaker_opened);
  if (g.active_sessions) {
    Header(&out, "sg_edge_service_sessions", "gauge",
           "Live sessions reported by the session service (NodeStats, "
           "cached).");
    SampleInt(&out, "sg_edge_service_sessions", "", *g.active_sessions);
  }

  Header(&out, "sg_edge_upstream_response_duration_seconds", "histogram",
         "Time from sending a request upstream to its response head.");
  upstream_latency_.Render(&out, "sg_edge_upstream_response_duration_seconds",
                           "");
  Header(&out, "sg_edge_upstream_errors_total", "counter",
         "Upstream failures by kind.");
  static constexpr std::string_view kUpstreamErrorNames[] = {
      "connect", "connect_timeout", "response_timeout", "protocol"};
  for (int e = 0; e < kNumUpstreamErrors; ++e) {
    Sample(&out, "sg_edge_upstream_errors_total",
           Label("kind", kUpstreamErrorNames[e]), Load(upstream_errors_[e]));
  }
  Header(&out, "sg_edge_upstream_connections_total", "counter",
         "Upstream connections used: opened anew or reused from the pool.");
  Sample(&out, "sg_edge_upstream_connections_total", Label("kind", "opened"),
         Load(upstream_opened_));
  Sample(&out, "sg_edge_upstream_connections_total", Label("kind", "reused"),
         Load(upstream_reused_));
  Header(&out, "sg_edge_upstream_retries_total", "counter",
         "Body-less idempotent requests retried on a fresh connection after "
         "a pooled one turned out closed.");
  Sample(&out, "sg_edge_upstream_retries_total", "", Load(upstream_retries_));
  Header(&out, "sg_edge_upstream_idle_connections", "gauge",
         "Idle pooled upstream connections.");
  SampleInt(&out, "sg_edge_upstream_idle_connections", "",
            g.upstream_idle_connections);

  Header(&out, "sg_edge_responses_total", "counter",
         "Responses sent to clients by status class.");
  for (int c = 1; c <= 5; ++c) {
    Sample(&out, "sg_edge_responses_total",
           Label("code", std::string(1, static_cast<char>('0' + c)) + "xx"),
           Load(responses_[c]));
  }
  Header(&out, "sg_edge_local_replies_total", "counter",
         "Responses the edge generated itself (errors, limits, timeouts).");
  for (size_t i = 0; i < kLocalReplyCodes.size(); ++i) {
    Sample(&out, "sg_edge_local_replies_total",
           Label("code", std::to_string(kLocalReplyCodes[i])),
           Load(local_replies_[i]));
  }

  Header(&out, "sg_edge_open_connections", "gauge",
         "Open client connections by listener.");
  SampleInt(&out, "sg_edge_open_connections", Label("listener", "proxy"),
            open_.load(std::memory_order_relaxed));
  SampleInt(&out, "sg_edge_open_connections", Label("listener", "admin"),
            admin_open_.load(std::memory_order_relaxed));
  Header(&out, "sg_edge_connections_accepted_total", "counter",
         "Client connections accepted by listener.");
  Sample(&out, "sg_edge_connections_accepted_total", Label("listener", "proxy"),
         Load(accepted_));
  Sample(&out, "sg_edge_connections_accepted_total", Label("listener", "admin"),
         Load(admin_accepted_));
  Header(&out, "sg_edge_connections_refused_total", "counter",
         "Client connections over --max-connections (503 and closed).");
  Sample(&out, "sg_edge_connections_refused_total", "", Load(refused_));
  Header(&out, "sg_edge_tunnels_total", "counter",
         "Upgraded (WebSocket) connections tunnelled.");
  Sample(&out, "sg_edge_tunnels_total", "", Load(tunnels_total_));
  Header(&out, "sg_edge_open_tunnels", "gauge", "Open upgraded tunnels.");
  SampleInt(&out, "sg_edge_open_tunnels", "",
            tunnels_open_.load(std::memory_order_relaxed));

  Header(&out, "sg_edge_draining", "gauge", "1 once SIGTERM started a drain.");
  SampleInt(&out, "sg_edge_draining", "", g.draining ? 1 : 0);
  Header(&out, "sg_edge_process_resident_memory_bytes", "gauge",
         "Resident set size of the edge process.");
  SampleInt(&out, "sg_edge_process_resident_memory_bytes", "", g.rss_bytes);
  Header(&out, "sg_edge_uptime_seconds", "gauge", "Seconds since start.");
  prometheus::AppendSample(&out, "sg_edge_uptime_seconds", "",
                           g.uptime_seconds);
  return out;
}

}  // namespace sg::edge

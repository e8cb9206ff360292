// The edge's counters, gauges and histograms, rendered in the Prometheus
// text exposition format (version 0.0.4). Lock-free: every update is a
// relaxed atomic add, so request threads never contend on a mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "common/prometheus_text.h"
#include "edge/session_cookie.h"
#include "edge/session_protocol.h"

namespace sg::edge {

// The shared lock-free latency histogram (common/prometheus_text.h).
using Histogram = prometheus::Histogram;

// Session service RPCs the edge makes.
enum class SessionMethod : uint8_t {
  kGet,
  kCreate,
  kUpdate,
  kDelete,
  kRegenerate,
};
inline constexpr int kNumSessionMethods = 5;
std::string_view SessionMethodName(SessionMethod method);

// How a session call ended.
enum class CallResult : uint8_t {
  kOk,
  kNotFound,
  kConflict,  // FAILED_PRECONDITION (version mismatch)
  kError,     // service unhealthy (counts against the breaker)
  kRejected,  // not attempted: circuit breaker open
  kInvalid,   // other errors (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...)
};
inline constexpr int kNumCallResults = 6;
std::string_view CallResultName(CallResult result);

// Upstream failures by kind.
enum class UpstreamError : uint8_t {
  kConnect,          // refused / unreachable -> 502
  kConnectTimeout,   // -> 504
  kResponseTimeout,  // -> 504
  kProtocol,         // unparsable response, reset mid-message -> 502
};
inline constexpr int kNumUpstreamErrors = 4;

// Replies the edge produced itself, by status code.
inline constexpr std::array<int, 15> kLocalReplyCodes = {
    400, 403, 404, 405, 408, 413, 414, 429, 431, 500, 501, 502, 503, 504, 505};

// Values read at render time from other components.
struct MetricsGauges {
  int breaker_state = 0;  // BreakerState as int
  int64_t breaker_opened = 0;
  bool draining = false;
  bool shadow = false;
  int64_t rss_bytes = 0;
  double uptime_seconds = 0;
  int64_t upstream_idle_connections = 0;
  std::optional<int64_t> active_sessions;  // from the service's NodeStats
};

// All edge metrics. One instance per process, shared by every thread.
class EdgeMetrics final {
 public:
  // `reason_names[i]` is the label of classifier reason id i; reason id 0
  // must be "session_required". One extra reason, "edge_endpoint", counts
  // the edge's own JSON endpoints when the classifier would have kept the
  // session.
  explicit EdgeMetrics(std::vector<std::string> reason_names);
  EdgeMetrics(const EdgeMetrics&) = delete;
  EdgeMetrics& operator=(const EdgeMetrics&) = delete;

  uint16_t edge_endpoint_reason() const {
    return static_cast<uint16_t>(reason_names_.size() - 1);
  }
  size_t num_reasons() const { return reason_names_.size(); }
  std::string_view reason_name(uint16_t id) const { return reason_names_[id]; }

  // --- updates (thread-safe, lock-free) ---
  void CountDecision(uint16_t reason_id) { Add(decisions_[reason_id]); }
  void CountCookie(CookieVerdict verdict) {
    Add(cookies_[static_cast<int>(verdict)]);
  }
  void CountCookieOldKey() { Add(cookie_old_key_); }
  void CountSessionStatus(SessionStatus s) {
    Add(session_status_[static_cast<int>(s)]);
  }
  void CountCall(SessionMethod m, CallResult r, absl::Duration latency);
  void CountUpstreamError(UpstreamError e) {
    Add(upstream_errors_[static_cast<int>(e)]);
  }
  void ObserveUpstream(absl::Duration d) { upstream_latency_.Observe(d); }
  void CountResponse(int status);
  void CountLocalReply(int status);
  void CountSessionCreated() { Add(sessions_created_); }
  void CountSessionDestroyed() { Add(sessions_destroyed_); }
  void CountSessionRotated() { Add(sessions_rotated_); }
  void CountConflict(bool dropped) {
    Add(dropped ? conflicts_dropped_ : conflicts_overwritten_);
  }
  void CountInvalidDirective(int n) {
    invalid_directives_.fetch_add(n, std::memory_order_relaxed);
  }
  void CountSessionWriteFailure() { Add(session_write_failures_); }
  // A new anonymous session refused by --anon-session-rate: the response
  // went out without it (proxy) or was replaced by a 429 (reject).
  void CountAnonSessionLimited(bool rejected) {
    Add(anon_limited_[rejected ? 1 : 0]);
  }
  uint64_t anon_sessions_limited(bool rejected) const {
    return Load(anon_limited_[rejected ? 1 : 0]);
  }
  void CountUpstreamConnection(bool reused) {
    Add(reused ? upstream_reused_ : upstream_opened_);
  }
  void CountUpstreamRetry() { Add(upstream_retries_); }
  void ConnectionOpened(bool admin) {
    Add(admin ? admin_accepted_ : accepted_);
    (admin ? admin_open_ : open_).fetch_add(1, std::memory_order_relaxed);
  }
  // A connection over --max-connections, answered 503 and closed.
  void CountConnectionRefused() { Add(refused_); }
  void ConnectionClosed(bool admin) {
    (admin ? admin_open_ : open_).fetch_sub(1, std::memory_order_relaxed);
  }
  void TunnelOpened() {
    Add(tunnels_total_);
    tunnels_open_.fetch_add(1, std::memory_order_relaxed);
  }
  void TunnelClosed() { tunnels_open_.fetch_sub(1, std::memory_order_relaxed); }

  // --- reads ---
  int64_t open_connections() const {
    return open_.load(std::memory_order_relaxed);
  }
  uint64_t decisions(uint16_t reason_id) const {
    return decisions_[reason_id].load(std::memory_order_relaxed);
  }
  // Totals over all reasons: (total, bypassed).
  std::pair<uint64_t, uint64_t> DecisionTotals() const;
  uint64_t cookies(CookieVerdict v) const {
    return cookies_[static_cast<int>(v)].load(std::memory_order_relaxed);
  }
  uint64_t calls(SessionMethod m, CallResult r) const;
  uint64_t sessions_created() const { return Load(sessions_created_); }
  uint64_t sessions_destroyed() const { return Load(sessions_destroyed_); }

  // The whole exposition.
  std::string Render(const MetricsGauges& gauges) const;

 private:
  using Counter = std::atomic<uint64_t>;
  static void Add(Counter& c) { c.fetch_add(1, std::memory_order_relaxed); }
  static uint64_t Load(const Counter& c) {
    return c.load(std::memory_order_relaxed);
  }

  std::vector<std::string> reason_names_;
  std::unique_ptr<Counter[]> decisions_;
  std::array<Counter, kNumCookieVerdicts> cookies_{};
  Counter cookie_old_key_{0};
  std::array<Counter, kNumSessionStatuses> session_status_{};
  std::array<Counter, kNumSessionMethods * kNumCallResults> calls_{};
  std::vector<std::unique_ptr<Histogram>> call_latency_;  // by method
  Histogram upstream_latency_;
  std::array<Counter, kNumUpstreamErrors> upstream_errors_{};
  std::array<Counter, 6> responses_{};  // by status class 0..5
  std::array<Counter, kLocalReplyCodes.size()> local_replies_{};
  Counter sessions_created_{0};
  Counter sessions_destroyed_{0};
  Counter sessions_rotated_{0};
  Counter conflicts_overwritten_{0};
  Counter conflicts_dropped_{0};
  Counter invalid_directives_{0};
  Counter session_write_failures_{0};
  std::array<Counter, 2> anon_limited_{};  // proxy, reject
  Counter upstream_opened_{0};
  Counter upstream_reused_{0};
  Counter upstream_retries_{0};
  Counter accepted_{0};
  Counter admin_accepted_{0};
  Counter refused_{0};
  std::atomic<int64_t> open_{0};
  std::atomic<int64_t> admin_open_{0};
  Counter tunnels_total_{0};
  std::atomic<int64_t> tunnels_open_{0};
};

// Appends a Prometheus label value, escaping backslash, quote and newline.
using prometheus::AppendLabelValue;

}  // namespace sg::edge

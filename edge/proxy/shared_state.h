// Process-wide state of the proxy, shared by every I/O thread: options,
// the classifier, metrics, the session client and flow, the upstream
// address and the drain flags.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/time/time.h"
#include "common/http_admin/handler_table.h"
#include "edge/classifier/classifier.h"
#include "edge/edge_options.h"
#include "edge/grpc_backend.h"
#include "edge/metrics.h"
#include "edge/proxy/asio_types.h"
#include "edge/service_monitor.h"
#include "edge/session_cookie.h"
#include "edge/session_flow.h"
#include "edge/status_json.h"
#include "sessiongrid/client.h"

namespace sg::edge::proxy {

// Filled once by the server before the I/O threads start; afterwards only
// the atomics change. Every member is safe to read from any thread.
struct Shared {
  EdgeOptions options;
  const classifier::Classifier* classifier = nullptr;
  classifier::CidrSet trusted_proxies;
  std::unique_ptr<EdgeMetrics> metrics;
  std::unique_ptr<client::Client> client;
  std::unique_ptr<client::SessionBatcher> batcher;
  std::unique_ptr<client::SessionPipeline> pipeline;
  std::unique_ptr<GrpcSessionBackend> backend;
  std::unique_ptr<CookieSigner> signer;
  std::unique_ptr<SessionFlow> flow;
  std::unique_ptr<ServiceMonitor> monitor;
  tcp::endpoint upstream;
  bool has_upstream = false;  // false: auth_request only (404 elsewhere)
  // Peers the auth_request endpoints answer (empty when they are off).
  classifier::CidrSet auth_request_allow;
  std::string upstream_authority;  // Host for requests that had none
  absl::Time start_time;
  int64_t memory_limit = 0;
  std::string hostname;
  bool kubernetes = false;
  std::atomic<bool> draining{false};  // /readyz fails
  std::atomic<bool> closing{false};   // listener closed: finish and close
  std::atomic<int64_t> pool_idle{0};
  // The admin listener's routes (admin_server.h), over this struct.
  http_admin::HandlerTable admin_handlers;

  // The breaker is open or the background poll cannot reach the service.
  bool ServiceKnownDown() const;
  // Ready: not draining, and in fail-closed mode the service answers.
  std::pair<bool, std::string_view> Ready() const;
  // Values /metrics reads at render time.
  MetricsGauges Gauges() const;
  // What the seed's JSON endpoints show.
  StatusSnapshot Snapshot() const;
};

}  // namespace sg::edge::proxy

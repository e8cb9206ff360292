#include "edge/proxy/admin_server.h"

#include <string>
#include <utility>

#include "common/http_admin/connection.h"
#include "edge/status_json.h"

namespace sg::edge::proxy {

http_admin::HandlerTable MakeAdminHandlers(Shared* shared) {
  using http_admin::Response;
  http_admin::HandlerTable table;
  auto health = [shared] {
    const StatusSnapshot snap = shared->Snapshot();
    return Response{IsHealthy(snap) ? 200 : 503, std::string(http_admin::kJson),
                    RenderSessionHealth(snap)};
  };
  auto dashboard = [shared] {
    return Response{200, std::string(http_admin::kJson),
                    RenderDashboard(shared->Snapshot())};
  };
  // A later Add replaces an earlier one: should a configured path clash
  // with a fixed route, the fixed route wins (/healthz first).
  table.Add(shared->options.dashboard_path, dashboard);
  table.Add("/api/production-monitor/dashboard", dashboard);
  table.Add(shared->options.session_health_path, health);
  table.Add("/api/session-health", health);
  table.Add("/metrics", [shared] {
    return Response{200, std::string(http_admin::kPrometheusText),
                    shared->metrics->Render(shared->Gauges())};
  });
  table.Add("/readyz", [shared] {
    auto [ready, why] = shared->Ready();
    return Response{ready ? 200 : 503, std::string(http_admin::kTextPlain),
                    std::string(why) + "\n"};
  });
  table.Add("/healthz", [] {
    return Response{200, std::string(http_admin::kTextPlain), "ok\n"};
  });
  return table;
}

void ServeAdminConnection(Shared* shared, tcp::socket socket) {
  EdgeMetrics* metrics = shared->metrics.get();
  http_admin::ServeConnection(
      &shared->admin_handlers, std::move(socket),
      {[metrics] { metrics->ConnectionOpened(/*admin=*/true); },
       [metrics] { metrics->ConnectionClosed(/*admin=*/true); }});
}

}  // namespace sg::edge::proxy

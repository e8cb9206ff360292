#include "server/service/node_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/host_port.h"
#include "common/http_admin/server.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/service/admin_service.h"
#include "server/service/rpc_metrics.h"
#include "server/service/server_metrics.h"
#include "server/service/session_service.h"
#include "server/store/expiry_sweeper.h"

namespace sg::service {

absl::Status ServerOptions::Validate() const {
  size_t colon = listen.rfind(':');
  if (listen.empty() || colon == std::string::npos || colon + 1 == listen.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen must be HOST:PORT, got '", listen, "'"));
  }
  if (drain_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--drain-timeout must not be negative");
  }
  if (!metrics_listen.empty()) {
    const size_t c = metrics_listen.rfind(':');
    if (c == std::string::npos || c + 1 == metrics_listen.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics_listen must be HOST:PORT or empty, got '",
                       metrics_listen, "'"));
    }
  }
  if (sweep_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--sweep-interval must be positive");
  }
  SG_RETURN_IF_ERROR(tls.Validate());
  SG_RETURN_IF_ERROR(governor.Validate());
  if (cluster.enabled()) SG_RETURN_IF_ERROR(cluster.Validate());
  return store.Validate();
}

class NodeServer::Impl {
 public:
  ServerOptions options;
  // Outlives the gRPC server, whose interceptors record into it.
  std::unique_ptr<RpcMetrics> rpc_metrics;
  std::unique_ptr<store::SessionStore> store;
  std::unique_ptr<store::ExpirySweeper> sweeper;
  std::unique_ptr<store::MemoryGovernor> governor;
  std::unique_ptr<store::LocalBackend> local_backend;
  std::unique_ptr<replication::Cluster> cluster;
  // Before the services that hold it.
  std::unique_ptr<security::TokenGuard> admin_guard;
  std::unique_ptr<SessionServiceImpl> session_service;
  std::unique_ptr<AdminServiceImpl> admin_service;
  std::unique_ptr<grpc::Server> server;
  // Cluster nodes: health follows whether the node can coordinate.
  std::thread health_watch;
  absl::Mutex health_mu;
  bool stopping ABSL_GUARDED_BY(health_mu) = false;
  // What gRPC health answers for the session service, also for /readyz
  // (kubelet's gRPC probes speak no TLS; its HTTP probes reach this).
  std::atomic<bool> serving{false};
  int port = 0;
  bool drained = false;
  // Last: stopped before anything its /metrics handler reads goes away.
  std::unique_ptr<http_admin::Server> metrics_server;

  void SetServing(bool now) {
    serving.store(now);
    grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
    health->SetServingStatus("", now);
    health->SetServingStatus(kSessionServiceName, now);
  }

  // One scrape of /metrics; runs on the metrics server's thread.
  std::string RenderMetrics() const {
    ServerMetricsSnapshot snap;
    admin_service->FillNodeStats(&snap.node);
    snap.memory_pressure = governor->Stats().pressure;
    if (cluster != nullptr) {
      cluster->FillStatus(&snap.cluster.emplace(), snap.node);
      snap.anti_entropy_repaired = cluster->anti_entropy_repaired();
    }
    return RenderServerMetrics(snap, rpc_metrics.get());
  }
};

NodeServer::NodeServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NodeServer::~NodeServer() {
  if (!impl_->drained) {
    absl::Status s = Drain();
    if (!s.ok()) LogError("drain failed", {{"error", s.ToString()}});
  }
}

absl::StatusOr<std::unique_ptr<NodeServer>> NodeServer::Start(
    const ServerOptions& options, Clock* clock) {
  SG_RETURN_IF_ERROR(options.Validate());
  auto impl = std::make_unique<Impl>();
  impl->options = options;

  // One budget: resolve it, size RocksDB's cache from it, then govern.
  store::MemoryProbe* probe = store::MemoryProbe::System();
  const store::ResolvedMemoryLimit limit =
      store::ResolveMemoryLimit(options.governor, probe);
  if (options.governor.memory_limit_auto && limit.source != "cgroup v2 memory.max") {
    LogWarn("memory-limit=auto: no cgroup v2 memory.max; falling back",
            {{"limit_bytes", absl::StrCat(limit.bytes)}, {"source", limit.source}});
  }
  impl->options.governor.memory_limit_bytes = limit.bytes;
  impl->options.store.memory_limit_bytes = limit.bytes;
  if (limit.bytes > 0) {
    // Few arenas, and large blocks returned when freed: RSS then tracks
    // what is in use, which the governor reads as pressure.
    store::TuneMallocForBudget(2);
  }
  const bool clustered = options.cluster.enabled();
  impl->options.store.replicated = clustered;
  impl->options.cluster.node_id = options.store.node_id;
  impl->options.cluster.tombstone_ttl = options.store.tombstone_ttl;
  if (clustered) {
    // The cap holds for the cluster: the coordinator enforces it.
    impl->options.cluster.max_sessions_per_principal =
        options.store.max_sessions_per_principal;
    impl->options.store.max_sessions_per_principal = 0;
  }
  if (clustered && impl->options.cluster.advertise_address.empty()) {
    // Peers and clients must be told an address they can dial.
    SG_ASSIGN_OR_RETURN(HostPort listen, ParseHostPort(options.listen, "--listen"));
    if (IsWildcardHost(listen.host)) {
      const std::string host = Hostname();
      if (host.empty() || !Resolvable(host)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--advertise-address is required: --listen ", options.listen,
            " is a wildcard and this host's name '", host,
            "' does not resolve"));
      }
      listen.host = host;
      listen.kind = HostKind::kName;
    }
    impl->options.cluster.advertise_address = listen.ToString();
  }
  const ServerOptions& resolved = impl->options;

  SG_ASSIGN_OR_RETURN(impl->store, store::SessionStore::Open(resolved.store, clock));
  LogInfo("store opened", {{"data_dir", options.store.data_dir},
                           {"sessions", absl::StrCat(impl->store->Stats().sessions)}});
  const store::RocksDbMemoryPlan plan = store::PlanRocksDbMemory(resolved.store);
  LogInfo("memory budget",
          {{"limit_bytes", absl::StrCat(limit.bytes)},
           {"source", limit.source},
           {"block_cache_bytes", absl::StrCat(plan.block_cache_bytes)},
           {"write_buffer_bytes", absl::StrCat(plan.write_buffer_bytes)},
           {"warn", absl::StrCat(resolved.governor.memory_warn)},
           {"critical", absl::StrCat(resolved.governor.memory_critical)},
           {"emergency", absl::StrCat(resolved.governor.memory_emergency)},
           {"max_sessions", absl::StrCat(resolved.store.max_sessions)},
           {"max_sessions_per_principal",
            absl::StrCat(resolved.store.max_sessions_per_principal)},
           {"max_disk_bytes", absl::StrCat(resolved.governor.max_disk_bytes)}});

  store::SessionBackend* backend = nullptr;
  if (clustered) {
    SG_ASSIGN_OR_RETURN(impl->cluster,
                        replication::Cluster::Start(resolved.cluster,
                                                    impl->store.get(), clock));
    backend = impl->cluster->coordinator();
  } else {
    impl->local_backend = std::make_unique<store::LocalBackend>(impl->store.get());
    backend = impl->local_backend.get();
  }
  impl->session_service = std::make_unique<SessionServiceImpl>(
      backend, options.allow_client_ids);
  impl->admin_service = std::make_unique<AdminServiceImpl>(
      impl->store.get(), clock, options.store.node_id, options.listen);
  impl->governor = std::make_unique<store::MemoryGovernor>(
      resolved.governor, impl->store.get(), probe, clock);
  impl->admin_service->set_governor(impl->governor.get());
  impl->admin_guard = std::make_unique<security::TokenGuard>(options.admin_token);
  impl->admin_service->set_admin_guard(impl->admin_guard.get());
  impl->session_service->set_admin_guard(impl->admin_guard.get());

  if (!options.metrics_listen.empty()) {
    http_admin::HandlerTable routes;
    const Impl* raw = impl.get();
    routes.Add("/metrics", [raw] {
      return http_admin::Response{200, std::string(http_admin::kPrometheusText),
                                  raw->RenderMetrics()};
    });
    // Plain-HTTP probes, for when the gRPC port is TLS only: /healthz while
    // the process answers, /readyz as gRPC health (NOT_SERVING: 503).
    routes.Add("/healthz", [] {
      return http_admin::Response{200, std::string(http_admin::kTextPlain),
                                  "ok\n"};
    });
    routes.Add("/readyz", [raw] {
      const bool serving = raw->serving.load();
      return http_admin::Response{serving ? 200 : 503,
                                  std::string(http_admin::kTextPlain),
                                  serving ? "serving\n" : "not serving\n"};
    });
    impl->rpc_metrics = std::make_unique<RpcMetrics>(RpcMetrics::NodeMethods());
    absl::StatusOr<std::unique_ptr<http_admin::Server>> metrics =
        http_admin::Server::Start(options.metrics_listen, std::move(routes));
    if (metrics.ok()) {
      impl->metrics_server = *std::move(metrics);
    } else if (options.metrics_listen_required) {
      return metrics.status();
    } else {
      LogWarn(
          "metrics listener skipped (set --metrics-listen, or empty to "
          "silence this)",
          {{"error", metrics.status().ToString()}});
    }
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  SG_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                      security::MakeServerCredentials(options.tls));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &impl->port);
  // gRPC sets SO_REUSEPORT by default: a second server on a taken port
  // would then start and silently take a share of its connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(impl->session_service.get());
  builder.RegisterService(impl->admin_service.get());
  if (impl->metrics_server != nullptr) {
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(impl->rpc_metrics->MakeInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  // Room for the largest session plus the envelope, so an oversized payload
  // reaches our own check and gets a clear INVALID_ARGUMENT; batches get at
  // least 4 MiB (the client's batcher stays below that).
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::max<size_t>(
      options.store.max_session_bytes + 64 * 1024, kMaxBatchMessageBytes)));
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        " (address in use, or not an address of this host)"));
  }
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  impl->admin_service->set_advertised_address(absl::StrCat(host, ":", impl->port));
  if (impl->cluster != nullptr) {
    impl->admin_service->set_cluster(impl->cluster.get());
    if (absl::EndsWith(resolved.cluster.advertise_address, ":0")) {
      // --listen asked for a free port: advertise the one we got.
      const std::string& a = resolved.cluster.advertise_address;
      impl->cluster->membership()->set_client_address(
          absl::StrCat(a.substr(0, a.size() - 2), ":", impl->port));
    }
    impl->admin_service->set_advertised_address(
        impl->cluster->membership()->client_address());
  }

  const bool ready = impl->cluster == nullptr || impl->cluster->can_coordinate();
  impl->SetServing(ready);
  impl->server->GetHealthCheckService()->SetServingStatus(kAdminServiceName,
                                                          true);
  if (impl->cluster != nullptr) {
    Impl* raw = impl.get();
    impl->health_watch = std::thread([raw, ready]() mutable {
      bool serving = ready;
      for (;;) {
        {
          absl::MutexLock lock(&raw->health_mu);
          auto stop = [raw]() ABSL_SHARED_LOCKS_REQUIRED(raw->health_mu) {
            return raw->stopping;
          };
          raw->health_mu.AwaitWithTimeout(absl::Condition(&stop),
                                          absl::Milliseconds(200));
          if (raw->stopping) return;
        }
        const bool now = raw->cluster->can_coordinate();
        if (now == serving) continue;
        serving = now;
        LogInfo(now ? "health SERVING: enough members known to coordinate"
                    : "health NOT_SERVING: too few members known to reach W");
        raw->SetServing(now);
      }
    });
  }

  impl->sweeper = std::make_unique<store::ExpirySweeper>(impl->store.get(),
                                                         options.sweep_interval);
  impl->governor->Start();

  const std::string address = absl::StrCat(host, ":", impl->port);
  const char* tls = !options.tls.enabled()               ? "off"
                    : options.tls.client_ca_file.empty() ? "on"
                                                         : "mutual";
  const char* admin_auth = options.admin_token.empty() ? "off" : "token";
  if (!options.admin_token.empty() && !options.tls.enabled()) {
    LogWarn("the admin token travels in clear without --tls-cert: anyone who "
            "can read client traffic can reuse it");
  }
  if (impl->metrics_server != nullptr) {
    LogInfo("listening", {{"address", address},
                          {"node_id", options.store.node_id},
                          {"tls", tls},
                          {"admin_auth", admin_auth},
                          {"metrics", impl->metrics_server->address()}});
  } else {
    LogInfo("listening", {{"address", address},
                          {"node_id", options.store.node_id},
                          {"tls", tls},
                          {"admin_auth", admin_auth}});
  }
  return std::unique_ptr<NodeServer>(new NodeServer(std::move(impl)));
}

int NodeServer::port() const { return impl_->port; }

int NodeServer::peer_port() const {
  return impl_->cluster == nullptr ? 0 : impl_->cluster->peer_port();
}

std::string NodeServer::metrics_address() const {
  return impl_->metrics_server == nullptr ? ""
                                          : impl_->metrics_server->address();
}

std::string NodeServer::address() const {
  const std::string& listen = impl_->options.listen;
  return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", impl_->port);
}

absl::Status NodeServer::Drain() {
  if (impl_->drained) return absl::OkStatus();
  impl_->drained = true;
  absl::Duration timeout = impl_->options.drain_timeout;

  LogInfo("drain: health NOT_SERVING");
  if (impl_->health_watch.joinable()) {
    {
      absl::MutexLock lock(&impl_->health_mu);
      impl_->stopping = true;
    }
    impl_->health_watch.join();
  }
  impl_->serving.store(false);
  impl_->server->GetHealthCheckService()->Shutdown();
  if (impl_->cluster != nullptr) {
    impl_->cluster->BeginDrain();
    const int64_t left = impl_->cluster->HandOffHints();
    LogInfo("drain: hints handed off", {{"left", absl::StrCat(left)}});
  }

  LogInfo("drain: stop accepting, finishing in-flight calls",
          {{"timeout", absl::FormatDuration(timeout)}});
  absl::Time start = absl::Now();
  impl_->session_service->CloseStreams();
  impl_->server->Shutdown(absl::ToChronoTime(absl::Now() + timeout));
  impl_->server->Wait();
  LogInfo("drain: calls finished",
          {{"took", absl::FormatDuration(absl::Now() - start)}});
  // Scrapes may watch the drain up to here, not the teardown after it.
  if (impl_->metrics_server != nullptr) impl_->metrics_server->Stop();

  if (impl_->cluster != nullptr) {
    // Calls finished after the first hand-off may have left new hints.
    (void)impl_->cluster->HandOffHints();
    LogInfo("drain: stopping replication");
    impl_->cluster->Stop();
  }
  impl_->sweeper->Stop();
  impl_->governor->Stop();
  LogInfo("drain: flushing store");
  absl::Status closed = impl_->store->Close();
  if (!closed.ok()) {
    LogError("drain: store close failed", {{"error", closed.ToString()}});
    return closed;
  }
  LogInfo("drain: done");
  return absl::OkStatus();
}

}  // namespace sg::service

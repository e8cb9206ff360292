// NodeServer: one session node — store, sweeper, gRPC services, health and
// reflection — with an ordered drain.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/tls_credentials.h"
#include "server/replication/cluster.h"
#include "server/store/memory_governor.h"
#include "server/store/session_store.h"

namespace sg::service {

struct ServerOptions {
  // HOST:PORT; port 0 picks a free port (see NodeServer::port()).
  std::string listen = "0.0.0.0:7400";
  absl::Duration drain_timeout = absl::Seconds(20);
  absl::Duration sweep_interval = absl::Seconds(5);
  store::StoreOptions store;
  // Memory budget, watermarks and the disk cap. A memory_limit_auto budget
  // is resolved at Start (and store.memory_limit_bytes set from it).
  store::GovernorOptions governor;
  // Peers, quorums, hints, anti-entropy. Without peers the node runs alone
  // on its local store, exactly as a single node always has.
  replication::ClusterOptions cluster;
  // Honour CreateRequest.id (a trusted application's own ids).
  bool allow_client_ids = false;
  // HOST:PORT of the Prometheus /metrics listener (port 0: a free port, see
  // NodeServer::metrics_address()); empty: none.
  std::string metrics_listen;
  // Whether a metrics address that cannot be bound fails Start. When
  // false (the address is only a default), it is logged and skipped.
  bool metrics_listen_required = true;
  // TLS on the client port (--tls-cert, --tls-key, --tls-client-ca); off
  // when no certificate is given.
  security::ServerTlsOptions tls;
  // Bearer token of the admin calls (--admin-token-file); empty: open.
  std::string admin_token;

  absl::Status Validate() const;
};

// Names under which health is reported, besides "" (the whole node).
inline constexpr const char* kSessionServiceName =
    "sessiongrid.v1.SessionService";
inline constexpr const char* kAdminServiceName = "sessiongrid.v1.AdminService";
// The smallest largest-message a node accepts, so batches fit.
inline constexpr size_t kMaxBatchMessageBytes = 4 << 20;

class NodeServer final {
 public:
  // Opens the store, binds, and starts serving. `clock` must outlive it.
  static absl::StatusOr<std::unique_ptr<NodeServer>> Start(
      const ServerOptions& options, Clock* clock);
  ~NodeServer();
  NodeServer(const NodeServer&) = delete;
  NodeServer& operator=(const NodeServer&) = delete;

  // The bound port and "HOST:PORT" address.
  int port() const;
  std::string address() const;
  // The bound peer port (0 without a cluster).
  int peer_port() const;
  // "HOST:PORT" of the bound metrics listener ("" without one).
  std::string metrics_address() const;

  // The shutdown sequence, each phase logged: health NOT_SERVING, hand
  // pending hints to a live peer, stop accepting and let in-flight calls
  // finish within drain_timeout, stop the replication threads, the sweeper
  // and the memory governor, flush and close the store. Idempotent.
  absl::Status Drain();

 private:
  class Impl;
  explicit NodeServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sg::service

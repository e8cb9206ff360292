// gRPC AdminService: what this node holds and how the cluster is doing.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "common/bearer_token.h"
#include "common/clock.h"
#include <atomic>

#include "absl/synchronization/mutex.h"
#include "server/replication/cluster.h"
#include "server/store/memory_governor.h"
#include "server/store/session_store.h"
#include "sessiongrid/v1/admin.grpc.pb.h"

namespace sg::service {

// Thread-safe; `store` and `clock` must outlive the service.
class AdminServiceImpl final
    : public sessiongrid::v1::AdminService::CallbackService {
 public:
  AdminServiceImpl(store::SessionStore* store, Clock* clock,
                   std::string node_id, std::string advertised_address);

  grpc::ServerUnaryReactor* NodeStats(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::NodeStatsRequest* request,
      sessiongrid::v1::NodeStatsResponse* response) override;
  grpc::ServerUnaryReactor* ClusterStatus(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::ClusterStatusRequest* request,
      sessiongrid::v1::ClusterStatusResponse* response) override;
  // This node's own record of an id (no coordination).
  grpc::ServerUnaryReactor* ReadLocal(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::ReadLocalRequest* request,
      sessiongrid::v1::ReadLocalResponse* response) override;

  // Checks the admin token of ReadLocal (an --admin-token-file); null or
  // off: open. Set once, before serving; must outlive the service.
  void set_admin_guard(const security::TokenGuard* guard) {
    admin_guard_ = guard;
  }

  // The cluster this node belongs to (null: a single node). Set once the
  // cluster is up; must outlive the service.
  void set_cluster(const replication::Cluster* cluster) {
    cluster_.store(cluster, std::memory_order_release);
  }

  // Fills this node's stats (also used by ClusterStatus).
  // evictions_by_reason holds, per reason ("memory", "max_sessions",
  // "max_disk", "per_principal"), the total under the reason's name (these
  // sum to `evictions`) and the split by class under "REASON/anonymous" and
  // "REASON/authenticated".
  void FillNodeStats(sessiongrid::v1::NodeStats* out) const;

  // The governor whose level and limit NodeStats reports (none: level
  // "none", limit 0). Set once, before serving; must outlive the service.
  void set_governor(const store::MemoryGovernor* governor) {
    governor_ = governor;
  }

  // The address peers and operators reach this node on (set once the port
  // is bound).
  void set_advertised_address(std::string address) {
    absl::MutexLock lock(&mu_);
    advertised_address_ = std::move(address);
  }
  std::string advertised_address() const {
    absl::MutexLock lock(&mu_);
    return advertised_address_;
  }

 private:
  store::SessionStore* const store_;
  const store::MemoryGovernor* governor_ = nullptr;
  const security::TokenGuard* admin_guard_ = nullptr;
  Clock* const clock_;
  const std::string node_id_;
  mutable absl::Mutex mu_;
  // Set after the port is bound, read by ClusterStatus on gRPC threads.
  std::string advertised_address_ ABSL_GUARDED_BY(mu_);
  std::atomic<const replication::Cluster*> cluster_{nullptr};
  const absl::Time start_time_;
};

}  // namespace sg::service

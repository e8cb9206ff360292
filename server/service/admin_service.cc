#include "server/service/admin_service.h"

#include "common/process_memory.h"
#include "server/service/convert.h"

namespace sg::service {
namespace v1 = ::sessiongrid::v1;

AdminServiceImpl::AdminServiceImpl(store::SessionStore* store, Clock* clock,
                                   std::string node_id,
                                   std::string advertised_address)
    : store_(store),
      clock_(clock),
      node_id_(std::move(node_id)),
      advertised_address_(std::move(advertised_address)),
      start_time_(clock->Now()) {}

void AdminServiceImpl::FillNodeStats(v1::NodeStats* out) const {
  store::StoreStats stats = store_->Stats();
  absl::Time now = clock_->Now();
  out->set_node_id(node_id_);
  out->set_build_version(SG_BUILD_VERSION);
  ToProto(now - start_time_, out->mutable_uptime());
  ToProto(start_time_, out->mutable_start_time());
  out->set_sessions(stats.sessions);
  out->set_anonymous_sessions(stats.anonymous_sessions);
  out->set_authenticated_sessions(stats.authenticated_sessions);
  out->set_disk_bytes(stats.disk_bytes);
  out->set_expirations(stats.expirations);
  out->set_creates(stats.creates);
  if (const replication::Cluster* cluster =
          cluster_.load(std::memory_order_acquire)) {
    const replication::CoordinatorStats c =
        cluster->coordinator()->stats();
    out->set_coordinated_calls(c.coordinated_calls);
    out->set_coordinated_calls_not_owner(c.coordinated_calls_not_owner);
    out->set_quorum_writes(c.writes_acked);
    out->set_quorum_write_failures(c.writes_failed);
    out->set_read_repairs(c.read_repairs);
    out->set_hints_pending(cluster->hints_pending());
    out->set_hints_replayed(cluster->hints_replayed());
  }
  out->set_reads(stats.reads);
  out->set_writes(stats.writes);
  out->set_deletes(stats.deletes);
  out->set_sweeps(stats.sweeps);
  out->set_evictions(stats.evictions.total);
  auto& by_reason = *out->mutable_evictions_by_reason();
  for (int r = 0; r < store::kEvictionReasons; ++r) {
    const auto reason = static_cast<store::EvictionReason>(r);
    const std::string name(store::EvictionReasonName(reason));
    by_reason[name] = stats.evictions.ByReason(reason);
    for (int c = 0; c < store::kSessionClasses; ++c) {
      const auto session_class = static_cast<store::SessionClass>(c);
      std::string key = name + "/";
      key.append(store::SessionClassName(session_class));
      by_reason[key] = stats.evictions.by[r][c];
    }
  }
  v1::MemoryUsage* memory = out->mutable_memory();
  memory->set_block_cache_bytes(stats.block_cache_bytes);
  memory->set_memtable_bytes(stats.memtable_bytes);
  memory->set_table_readers_bytes(stats.table_readers_bytes);
  int64_t structures = store_->MemoryUsage().structures_bytes;
  if (governor_ != nullptr) {
    structures += governor_->structures_bytes();
    out->set_memory_level(
        std::string(store::MemoryLevelName(governor_->level())));
    memory->set_limit_bytes(
        static_cast<int64_t>(governor_->options().memory_limit_bytes));
  } else {
    out->set_memory_level("none");
  }
  memory->set_node_structures_bytes(structures);
  memory->set_process_rss_bytes(ProcessRssBytes());
  memory->set_cgroup_usage_bytes(CgroupMemoryUsageBytes().value_or(0));
}

grpc::ServerUnaryReactor* AdminServiceImpl::NodeStats(
    grpc::CallbackServerContext* ctx, const v1::NodeStatsRequest* request,
    v1::NodeStatsResponse* response) {
  FillNodeStats(response->mutable_stats());
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::ClusterStatus(
    grpc::CallbackServerContext* ctx, const v1::ClusterStatusRequest* request,
    v1::ClusterStatusResponse* response) {
  v1::NodeStats self_stats;
  FillNodeStats(&self_stats);
  const replication::Cluster* cluster = cluster_.load(std::memory_order_acquire);
  if (cluster != nullptr) {
    cluster->FillStatus(response, self_stats);
  } else {
    // A single node: the cluster is this node.
    v1::NodeStatus* self = response->add_nodes();
    self->set_node_id(node_id_);
    self->set_address(advertised_address());
    self->set_state("SERVING");
    self->set_liveness("ALIVE");
    self->set_ring_share(1.0);
    self->set_self(true);
    *self->mutable_stats() = self_stats;
    response->set_node_count(1);
    response->set_serving_count(1);
    response->set_replication_factor(1);
    response->set_write_quorum(1);
    response->set_read_quorum(1);
    response->set_status("HEALTHY");
  }
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::ReadLocal(
    grpc::CallbackServerContext* ctx, const v1::ReadLocalRequest* request,
    v1::ReadLocalResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  // A record's data is a user's session: only for operators.
  if (admin_guard_ != nullptr) {
    if (grpc::Status denied = admin_guard_->Check(*ctx, "admin"); !denied.ok()) {
      reactor->Finish(denied);
      return reactor;
    }
  }
  absl::StatusOr<store::LocalEntry> entry = store_->ReadLocal(request->id());
  if (!entry.ok()) {
    reactor->Finish(ToGrpcStatus(entry.status()));
    return reactor;
  }
  response->set_node_id(node_id_);
  if (entry->session) ToProto(*entry->session, response->mutable_session());
  if (entry->tombstone) {
    ToProto(entry->tombstone->version,
            response->mutable_tombstone()->mutable_version());
    ToProto(entry->tombstone->gc_deadline,
            response->mutable_tombstone()->mutable_gc_time());
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace sg::service

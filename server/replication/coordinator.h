// Coordinator: the cluster's SessionBackend. The node that receives a call
// coordinates it: writes go to all N owners of the id and are answered after
// W acks (a hint is kept for each owner that missed one), reads ask R owners
// (more when they know nothing) and take the newest version, with tombstones
// winning; stale replicas seen on a read are repaired in the background.
// Compare-and-set calls are serialised at the id's first live owner.
//
// Thread safety: thread-safe; replies run on gRPC completion threads or
// inline. Nothing here blocks on a peer.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "server/replication/hint_log.h"
#include "server/replication/membership.h"
#include "server/store/session_backend.h"
#include "sessiongrid/v1/session.pb.h"

namespace sg::replication {

struct CoordinatorOptions {
  int replication_factor = 3;
  int write_quorum = 2;
  int read_quorum = 1;
  absl::Duration replica_timeout = absl::Seconds(1);
  // Cluster-wide cap (0: none); the local stores run without one.
  int64_t max_sessions_per_principal = 0;
};

struct CoordinatorStats {
  int64_t writes_acked = 0;
  int64_t writes_failed = 0;  // fewer than W acks
  int64_t read_repairs = 0;
  int64_t forwarded_cas = 0;
  int64_t per_principal_evictions = 0;
  int64_t replicated_evictions = 0;
  int64_t coordinated_calls = 0;  // about one id (not Create)
  int64_t coordinated_calls_not_owner = 0;
};

class Coordinator final : public store::SessionBackend {
 public:
  // Everything passed must outlive the coordinator.
  Coordinator(CoordinatorOptions options, store::SessionStore* store,
              Membership* membership, HintLog* hints, Clock* clock);

  void Create(store::CreateParams params,
              store::Reply<store::SessionRecord> done) override;
  void Get(std::string id, bool touch,
           store::Reply<store::SessionRecord> done) override;
  void Touch(std::string id, std::optional<absl::Duration> ttl,
             store::Reply<store::SessionRecord> done) override;
  void Update(std::string id, store::UpdateParams params,
              store::Reply<store::SessionRecord> done) override;
  void Delete(std::string id, std::optional<store::Hlc> expected_version,
              store::Reply<bool> done) override;
  void Regenerate(std::string id, std::optional<std::string> principal,
                  store::Reply<store::SessionRecord> done) override;
  void ListByPrincipal(std::string principal, size_t limit,
                       store::Reply<std::vector<store::SessionRecord>> done)
      override;
  void DeleteByPrincipal(std::string principal,
                         store::Reply<int64_t> done) override;
  // Scatter-gather from every member, merged (session_listing.cc).
  void ListSessions(std::string page_token, size_t page_size,
                    bool include_data,
                    store::Reply<store::SessionPage> done) override;

  // A compare-and-set forwarded by a peer: coordinated here, never
  // forwarded again.
  void CoordinateUpdate(std::string id, store::UpdateParams params,
                        store::Reply<store::SessionRecord> done);
  void CoordinateDelete(std::string id, store::Hlc expected,
                        store::Reply<bool> done);

  // Replicates a delete this node's store made on its own (an eviction).
  void ReplicateEviction(const store::EvictedSession& evicted);

  CoordinatorStats stats() const;

  // Waits (up to `timeout`) until no peer call's callback is pending, so
  // the coordinator, hints and membership may be destroyed.
  void WaitForCallbacks(absl::Duration timeout);
  const CoordinatorOptions& options() const { return options_; }

  // Owners of `id` under the current ring (N capped by the ring's size).
  std::vector<std::string> OwnersOf(std::string_view id) const;

 private:
  struct ReadResult {
    std::optional<store::SessionRecord> newest;
    bool tombstoned = false;
  };
  // Writes `mutation` to every owner of `id`; replies OK after W acks,
  // UNAVAILABLE naming the acks once W can no longer be reached.
  void Write(const std::string& id, rpb::Mutation mutation,
             store::Reply<bool> done);
  // Reads `id` from `want` owners. Unless `strict`, owners that know nothing
  // make it ask the next one. UNAVAILABLE when fewer than `want` answer.
  void Read(const std::string& id, int want, bool strict,
            store::Reply<ReadResult> done);
  void ReadLive(const std::string& id, int want, bool strict,
                store::Reply<store::SessionRecord> done);

  // Writes a freshly prepared session (Create, a client-chosen id checked).
  void WriteNew(store::SessionRecord record,
                store::Reply<store::SessionRecord> done);
  void RunCasUpdate(std::string id, store::UpdateParams params,
                    store::Reply<store::SessionRecord> done);
  void RunCasDelete(std::string id, store::Hlc expected,
                    store::Reply<bool> done);
  void DeleteKnown(std::string id, store::Reply<bool> done);
  // The first live owner that is not draining (else the first live one),
  // where compare-and-set runs; its stub, or null
  // when that is this node (or unreachable: it then runs here).
  std::string CasOwner(const std::string& id) const;
  std::shared_ptr<rpb::ReplicaService::Stub> CasOwnerStub(
      const std::string& id) const;
  // Sends a compare-and-set to the peer that coordinates it.
  void Forward(std::shared_ptr<rpb::ReplicaService::Stub> stub,
               rpb::CoordinateRequest request,
               store::Reply<rpb::CoordinateResponse> done);
  // Keeps the candidates a quorum read confirms as the principal's.
  void Confirm(std::string principal, std::vector<store::SessionRecord> candidates,
               size_t limit, store::Reply<std::vector<store::SessionRecord>> done);
  // Calls done, then (for a principal with a cap) trims its sessions.
  void AfterPrincipalWrite(store::SessionRecord record,
                           store::Reply<store::SessionRecord> done);

  // Serialises compare-and-set calls per id on this node; beyond
  // kMaxQueuedCas waiting calls for one id, `reject` runs instead.
  static constexpr size_t kMaxQueuedCas = 64;
  void Serialise(const std::string& id, absl::AnyInvocable<void()> run,
                 absl::AnyInvocable<void()> reject);
  // Owners a read must reach to meet every write quorum: N - W + 1.
  int QuorumRead() const {
    return options_.replication_factor - options_.write_quorum + 1;
  }
  void Release(const std::string& id);

  const CoordinatorOptions options_;
  store::SessionStore* const store_;
  Membership* const membership_;
  HintLog* const hints_;
  Clock* const clock_;

  absl::Mutex cas_mu_;
  absl::flat_hash_map<std::string, std::deque<absl::AnyInvocable<void()>>>
      cas_queues_ ABSL_GUARDED_BY(cas_mu_);

  std::atomic<int64_t> writes_acked_{0};
  std::atomic<int64_t> writes_failed_{0};
  std::atomic<int64_t> read_repairs_{0};
  std::atomic<int64_t> forwarded_cas_{0};
  std::atomic<int64_t> per_principal_evictions_{0};
  std::atomic<int64_t> replicated_evictions_{0};
  std::atomic<int64_t> coordinated_calls_{0};
  // Peer calls whose callbacks have not run yet (Stop waits for them).
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> coordinated_calls_not_owner_{0};
  // A token held by a peer call's callback: while any exists,
  // WaitForCallbacks waits.
  std::shared_ptr<void> Track();
  // Counts a call about `id` coordinated here.
  void CountCall(const std::string& id);
};

}  // namespace sg::replication

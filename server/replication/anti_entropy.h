// AntiEntropy: every interval, this node compares digests of the key ranges
// it shares with each live peer and copies the differences both ways, so a
// replica that lost its disk, or was away longer than the hint window,
// converges. A digest is the XOR of entry hashes per bucket of ring tokens
// (a two-level Merkle tree: bucket digests, then the differing buckets'
// entries); tombstones are entries too, and win.
//
// Thread safety: one background thread; stats() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/replication/membership.h"
#include "server/store/session_store.h"

namespace sg::replication {

struct AntiEntropyOptions {
  absl::Duration interval = absl::Seconds(60);
  uint32_t buckets = 256;
  // Entries copied per second at most (either way), so repair never
  // crowds out client traffic.
  int64_t max_entries_per_second = 20000;
  absl::Duration rpc_timeout = absl::Seconds(10);
  int replication_factor = 3;
};

struct PeerRepairStats {
  absl::Time last_round = absl::InfinitePast();
  int64_t last_repaired = 0;
  int64_t total_repaired = 0;
  int64_t rounds = 0;
};

// The digests one side computes: per bucket, XOR of entry hashes and count.
struct BucketDigests {
  std::vector<uint64_t> digest;
  std::vector<uint64_t> count;
};

// What a replica holds for one id, as anti-entropy compares it.
struct VersionedEntry {
  std::string id;
  store::Hlc version;
  bool tombstone = false;
};

// Entries of `store` that both `self` and `peer` own under `ring`.
absl::StatusOr<BucketDigests> ComputeDigests(store::SessionStore& store,
                                             const Ring& ring, int n,
                                             const std::string& self,
                                             const std::string& peer,
                                             uint32_t buckets);
// The entries of the `wanted` buckets (one scan), by bucket.
absl::StatusOr<std::vector<std::vector<VersionedEntry>>> BucketEntries(
    store::SessionStore& store, const Ring& ring, int n,
    const std::string& self, const std::string& peer, uint32_t buckets,
    const std::vector<uint32_t>& wanted);
uint32_t BucketOf(std::string_view id, uint32_t buckets);

class AntiEntropy final {
 public:
  AntiEntropy(AntiEntropyOptions options, store::SessionStore* store,
              Membership* membership, Clock* clock);
  ~AntiEntropy();

  void Start();
  void Stop();  // idempotent

  // One round with every live peer now; returns entries copied.
  int64_t RunRound();

  // After a membership change: sends every local entry to the owners the
  // new ring gives it that the old one did not (a joining node gets its
  // ranges; a leaving node's ranges get their new third owner). Returns
  // the entries sent.
  int64_t Rebalance(const Ring& before, const Ring& after);
  int64_t rebalanced() const { return rebalanced_.load(); }

  PeerRepairStats stats_for(const std::string& node_id) const;
  int64_t total_repaired() const { return total_repaired_.load(); }

 private:
  void Loop();
  absl::StatusOr<int64_t> RoundWith(const std::string& peer);
  void Throttle(int64_t entries);

  const AntiEntropyOptions options_;
  store::SessionStore* const store_;
  Membership* const membership_;
  Clock* const clock_;
  std::atomic<int64_t> total_repaired_{0};
  std::atomic<int64_t> rebalanced_{0};
  std::shared_ptr<const Ring> last_ring_;  // the loop thread's

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, PeerRepairStats> stats_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sg::replication

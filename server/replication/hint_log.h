// HintLog: writes kept for owners that were down (hinted handoff), in the
// store's hints column family, and replayed when they return.
//
// Key: target node id, NUL, 8-byte big-endian sequence. Value: the deadline
// stamp (written + --hint-window; the compaction filter drops late ones),
// then the serialized Mutation. Bounded by count and bytes; a full log
// drops new hints (anti-entropy repairs what they would have).
//
// Thread safety: all methods thread-safe. The replay thread is the only
// sender of hints.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
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

struct HintOptions {
  absl::Duration hint_window = absl::Hours(3);
  int64_t max_hints = 1'000'000;
  int64_t max_hint_bytes = 256ll << 20;
  absl::Duration replay_interval = absl::Milliseconds(250);
  absl::Duration replay_timeout = absl::Seconds(2);
  int replay_batch = 256;
};

class HintLog final {
 public:
  // Counts the hints already stored. `store`, `membership` and `clock` must
  // outlive the log.
  HintLog(HintOptions options, store::SessionStore* store,
          Membership* membership, Clock* clock);
  ~HintLog();

  void Start();
  void Stop();  // idempotent; joins the replay thread

  // Keeps `mutation` for `target` until it is replayed or its deadline
  // (now + hint_window, or `deadline` when given) passes. False when
  // the log is full or the store refused it.
  bool Add(const std::string& target, const rpb::Mutation& mutation,
           absl::Time deadline = absl::InfinitePast());

  int64_t pending() const { return pending_.load(); }
  int64_t pending_for(const std::string& target) const;
  int64_t dropped() const { return dropped_.load(); }
  int64_t replayed() const { return replayed_.load(); }

  // Sends every pending hint to `send` in batches (drain: a live peer takes
  // them over) and deletes those it accepted. Returns how many moved.
  int64_t HandOff(const std::function<bool(const std::vector<rpb::Hint>&)>& send);

 private:
  static constexpr absl::Duration kRecountInterval = absl::Minutes(1);
  void Loop();
  // Recounts the stored hints (pending, bytes, per target) by a scan.
  void Recount();
  // Replays `target`'s hints while it answers; returns the number sent.
  int64_t ReplayTo(const std::string& target);
  void Forget(const std::string& target, int64_t bytes);

  const HintOptions options_;
  store::SessionStore* const store_;
  Membership* const membership_;
  Clock* const clock_;
  std::atomic<uint64_t> sequence_;
  std::atomic<int64_t> pending_{0};
  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> replayed_{0};

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> per_target_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sg::replication

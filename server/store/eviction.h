// Eviction vocabulary shared by the store and the memory governor: why a
// session was evicted, its class, the counters, and the sampling helpers of
// the approximate-LRU policy.
//
// The policy keeps no per-session state in memory. Ids are uniformly random,
// so a seek to a random id lands on a uniformly random stored session; the
// next few sessions of the wanted class form a random sample, and the one
// accessed least recently is evicted. Anonymous sessions go first; an
// authenticated session is evicted only when no anonymous one is left.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sg::store {

enum class EvictionReason : int {
  kMemory = 0,        // the memory governor at critical or emergency level
  kMaxSessions = 1,   // StoreOptions::max_sessions
  kMaxDisk = 2,       // GovernorOptions::max_disk_bytes
  kPerPrincipal = 3,  // StoreOptions::max_sessions_per_principal
};
inline constexpr int kEvictionReasons = 4;

enum class SessionClass : int { kAnonymous = 0, kAuthenticated = 1 };
inline constexpr int kSessionClasses = 2;

// "memory", "max_sessions", "max_disk", "per_principal".
std::string_view EvictionReasonName(EvictionReason reason);
// "anonymous", "authenticated".
std::string_view SessionClassName(SessionClass session_class);

// A snapshot of the eviction counters.
struct EvictionStats {
  int64_t total = 0;
  // [reason][class]
  std::array<std::array<int64_t, kSessionClasses>, kEvictionReasons> by = {};

  int64_t ByReason(EvictionReason reason) const;
  int64_t ByClass(SessionClass session_class) const;
};

// Lock-free counters. Thread-safe.
class EvictionCounters final {
 public:
  void Add(EvictionReason reason, SessionClass session_class) {
    counts_[static_cast<int>(reason)][static_cast<int>(session_class)]
        .fetch_add(1, std::memory_order_relaxed);
  }
  EvictionStats Snapshot() const;

 private:
  std::array<std::array<std::atomic<int64_t>, kSessionClasses>,
             kEvictionReasons>
      counts_ = {};
};

// One sampled session.
struct EvictionCandidate {
  std::string id;
  absl::Time last_access;
  absl::Time create_time;
};

// Index of the least recently used candidate (ties: the older create time,
// then the smaller id, so the choice is deterministic). `candidates` must not
// be empty.
size_t LeastRecentlyUsed(std::span<const EvictionCandidate> candidates);

// Id-shaped keys to seek to: 43 characters drawn uniformly from the id
// alphabet, so a seek lands on a uniformly random stored id. Seeded, so
// tests are reproducible. Thread-safe.
class RandomKeySource final {
 public:
  // seed 0: seeded from std::random_device.
  explicit RandomKeySource(uint64_t seed);
  std::string Next();

 private:
  absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sg::store

#include "server/store/eviction.h"

#include "server/store/session_store.h"

namespace sg::store {
namespace {

constexpr char kIdAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

std::string_view EvictionReasonName(EvictionReason reason) {
  switch (reason) {
    case EvictionReason::kMemory:
      return "memory";
    case EvictionReason::kMaxSessions:
      return "max_sessions";
    case EvictionReason::kMaxDisk:
      return "max_disk";
    case EvictionReason::kPerPrincipal:
      return "per_principal";
  }
  return "unknown";
}

std::string_view SessionClassName(SessionClass session_class) {
  return session_class == SessionClass::kAuthenticated ? "authenticated"
                                                       : "anonymous";
}

int64_t EvictionStats::ByReason(EvictionReason reason) const {
  const auto& row = by[static_cast<int>(reason)];
  return row[0] + row[1];
}

int64_t EvictionStats::ByClass(SessionClass session_class) const {
  int64_t n = 0;
  for (const auto& row : by) n += row[static_cast<int>(session_class)];
  return n;
}

EvictionStats EvictionCounters::Snapshot() const {
  EvictionStats stats;
  for (int r = 0; r < kEvictionReasons; ++r) {
    for (int c = 0; c < kSessionClasses; ++c) {
      stats.by[r][c] = counts_[r][c].load(std::memory_order_relaxed);
      stats.total += stats.by[r][c];
    }
  }
  return stats;
}

size_t LeastRecentlyUsed(std::span<const EvictionCandidate> candidates) {
  size_t best = 0;
  for (size_t i = 1; i < candidates.size(); ++i) {
    const EvictionCandidate& a = candidates[i];
    const EvictionCandidate& b = candidates[best];
    if (a.last_access != b.last_access) {
      if (a.last_access < b.last_access) best = i;
    } else if (a.create_time != b.create_time) {
      if (a.create_time < b.create_time) best = i;
    } else if (a.id < b.id) {
      best = i;
    }
  }
  return best;
}

RandomKeySource::RandomKeySource(uint64_t seed)
    : rng_(seed != 0 ? seed : std::random_device{}()) {}

std::string RandomKeySource::Next() {
  std::string key(kSessionIdLength, 'A');
  absl::MutexLock lock(&mu_);
  uint64_t bits = 0;
  int left = 0;
  for (char& c : key) {
    if (left < 6) {
      bits = rng_();
      left = 64;
    }
    c = kIdAlphabet[bits & 63];
    bits >>= 6;
    left -= 6;
  }
  return key;
}

}  // namespace sg::store

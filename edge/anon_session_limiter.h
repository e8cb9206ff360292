// How fast each client IP may make the edge create anonymous sessions: a
// token bucket per client in a table of fixed size.
//
// Memory is bounded whatever the number of clients: the table is allocated
// (and touched) once, `slots` entries of 32 bytes in sets of 4. A client's
// key (an IPv4 address, or the /64 of an IPv6 address: one host usually
// holds a whole /64) hashes, with a per-process random seed, to one set;
// a client not in its set takes the slot used least recently. The
// trade-off: a flood from more distinct clients than the table holds
// evicts buckets, and an evicted client starts again with a full burst. So
// under such a flood each client is limited to at most `burst` sessions per
// eviction rather than `rate`/s — never worse than one fresh client — and
// an innocent client never shares (and never drains) another's bucket.
// The seed keeps an attacker from aiming at a victim's set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "edge/classifier/ip.h"

namespace sg::edge {

// What the edge does with a request whose client is over the limit.
enum class OverLimitAction : uint8_t {
  kProxy = 0,  // answer the app's response without creating a session
  kReject,     // 429 with Retry-After instead of the app's response
};
inline constexpr int kNumOverLimitActions = 2;
// "proxy", "reject".
std::string_view OverLimitActionName(OverLimitAction action);
absl::StatusOr<OverLimitAction> ParseOverLimitAction(std::string_view text);

struct AnonSessionLimiterOptions {
  // New anonymous sessions per client per second; 0 turns the limit off.
  double rate = 20;
  // Sessions a client may create at once (the bucket's size), >= 1.
  double burst = 200;
  OverLimitAction over_limit = OverLimitAction::kProxy;
  // Table entries: a power of two, 4..2^24.
  size_t slots = 64 * 1024;
  // Seeds the table's hash (main.cc passes a random one).
  uint64_t seed = 0;

  bool enabled() const { return rate > 0; }
  // INVALID_ARGUMENT naming the field as the flag spells it with '_'.
  absl::Status Validate() const;
};

// The key a client is counted under: an IPv4 address, or an IPv6 /64.
struct ClientKey {
  uint64_t hi = 0;
  uint64_t lo = 0;
  static ClientKey Of(const classifier::IpAddress& ip);
  friend bool operator==(const ClientKey&, const ClientKey&) = default;
};

// Thread-safe: each set of 4 slots has its own mutex.
class AnonSessionLimiter final {
 public:
  struct Verdict {
    bool allowed = true;
    // When denied: how long until the client has a token again (>= 1 s,
    // rounded up to whole seconds for Retry-After).
    absl::Duration retry_after = absl::ZeroDuration();
  };

  // `clock` must outlive the limiter. Options must Validate().
  static absl::StatusOr<std::unique_ptr<AnonSessionLimiter>> Create(
      const AnonSessionLimiterOptions& options, const Clock* clock);
  AnonSessionLimiter(const AnonSessionLimiter&) = delete;
  AnonSessionLimiter& operator=(const AnonSessionLimiter&) = delete;
  ~AnonSessionLimiter();

  // Takes one token from the client's bucket if it has one.
  Verdict Acquire(const classifier::IpAddress& client);

  const AnonSessionLimiterOptions& options() const { return options_; }
  // Bytes of the table: fixed at Create().
  size_t table_bytes() const;
  // Clients the table tracks now (<= slots); for tests. Locks every set.
  size_t tracked() const;

 private:
  struct Set;
  AnonSessionLimiter(const AnonSessionLimiterOptions& options,
                     const Clock* clock);
  size_t SetIndex(const ClientKey& key) const;

  const AnonSessionLimiterOptions options_;
  const Clock* const clock_;
  const size_t num_sets_;
  std::unique_ptr<Set[]> sets_;
};

}  // namespace sg::edge

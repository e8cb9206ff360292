#include "edge/anon_session_limiter.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "edge/http/text_util.h"

namespace sg::edge {
namespace {

constexpr int kWays = 4;
constexpr int64_t kEmpty = std::numeric_limits<int64_t>::min();

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

// 4 slots of 32 bytes and their mutex. A slot is free when last_ns is
// kEmpty.
struct AnonSessionLimiter::Set {
  struct Slot {
    uint64_t hi = 0;
    uint64_t lo = 0;
    double tokens = 0;
    int64_t last_ns = kEmpty;
  };
  absl::Mutex mu;
  Slot slots[kWays] ABSL_GUARDED_BY(mu);
};

std::string_view OverLimitActionName(OverLimitAction action) {
  return action == OverLimitAction::kReject ? "reject" : "proxy";
}

absl::StatusOr<OverLimitAction> ParseOverLimitAction(std::string_view text) {
  if (text == "proxy") return OverLimitAction::kProxy;
  if (text == "reject") return OverLimitAction::kReject;
  return absl::InvalidArgumentError(
      Cat("expected proxy or reject, got \"", text, "\""));
}

absl::Status AnonSessionLimiterOptions::Validate() const {
  if (!(rate >= 0) || !std::isfinite(rate)) {
    return absl::InvalidArgumentError(
        "anon_session_rate must be a number >= 0 (0: off)");
  }
  if (!(burst >= 1) || !std::isfinite(burst)) {
    return absl::InvalidArgumentError("anon_session_burst must be >= 1");
  }
  if (slots < kWays || slots > (size_t{1} << 24) ||
      (slots & (slots - 1)) != 0) {
    return absl::InvalidArgumentError(
        "anon_session_table_slots must be a power of two in 4..16777216");
  }
  return absl::OkStatus();
}

ClientKey ClientKey::Of(const classifier::IpAddress& ip) {
  // IPv4 (stored mapped) keeps all its bits; IPv6 keeps its /64.
  if (ip.is_v4()) return {ip.hi(), ip.lo()};
  return {ip.hi(), 0};
}

absl::StatusOr<std::unique_ptr<AnonSessionLimiter>> AnonSessionLimiter::Create(
    const AnonSessionLimiterOptions& options, const Clock* clock) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::unique_ptr<AnonSessionLimiter>(
      new AnonSessionLimiter(options, clock));
}

AnonSessionLimiter::AnonSessionLimiter(const AnonSessionLimiterOptions& options,
                                       const Clock* clock)
    : options_(options),
      clock_(clock),
      num_sets_(options.slots / kWays),
      // Value-initialized: every page is written now, so the resident size
      // does not grow later as clients arrive.
      sets_(new Set[num_sets_]()) {}

AnonSessionLimiter::~AnonSessionLimiter() = default;

size_t AnonSessionLimiter::SetIndex(const ClientKey& key) const {
  const uint64_t h = Mix(Mix(key.hi ^ options_.seed) ^ key.lo);
  return static_cast<size_t>(h & (num_sets_ - 1));
}

AnonSessionLimiter::Verdict AnonSessionLimiter::Acquire(
    const classifier::IpAddress& client) {
  if (!options_.enabled()) return {};
  const ClientKey key = ClientKey::Of(client);
  const int64_t now = absl::ToUnixNanos(clock_->Now());
  Set& set = sets_[SetIndex(key)];
  absl::MutexLock lock(&set.mu);
  Set::Slot* slot = nullptr;
  for (Set::Slot& s : set.slots) {
    if (s.last_ns != kEmpty && s.hi == key.hi && s.lo == key.lo) {
      slot = &s;
      break;
    }
  }
  if (slot == nullptr) {
    // Free slot, else the one used least recently.
    slot = &set.slots[0];
    for (Set::Slot& s : set.slots) {
      if (s.last_ns < slot->last_ns) slot = &s;
    }
    slot->hi = key.hi;
    slot->lo = key.lo;
    slot->tokens = options_.burst;
    slot->last_ns = now;
  }
  if (now > slot->last_ns) {
    const double elapsed = static_cast<double>(now - slot->last_ns) * 1e-9;
    slot->tokens =
        std::min(options_.burst, slot->tokens + elapsed * options_.rate);
  }
  // A clock that stepped back does not refill, and keeps the later stamp.
  slot->last_ns = std::max(slot->last_ns, now);
  Verdict v;
  if (slot->tokens >= 1) {
    slot->tokens -= 1;
    return v;
  }
  v.allowed = false;
  const double wait_s = (1 - slot->tokens) / options_.rate;
  v.retry_after = absl::Seconds(std::max(1.0, std::ceil(wait_s)));
  return v;
}

size_t AnonSessionLimiter::table_bytes() const {
  return num_sets_ * sizeof(Set);
}

size_t AnonSessionLimiter::tracked() const {
  size_t n = 0;
  for (size_t i = 0; i < num_sets_; ++i) {
    absl::MutexLock lock(&sets_[i].mu);
    for (const Set::Slot& s : sets_[i].slots) n += s.last_ns != kEmpty;
  }
  return n;
}

}  // namespace sg::edge

// MemoryGovernor: holds a node to one memory budget and to its disk and
// session caps.
//
// Pressure is max(the process's anonymous RSS, what the store accounts for:
// block cache with memtables charged to it, table readers, its own
// structures) divided by the limit. Anonymous memory (heap, stacks) is what
// the kernel's OOM killer cannot take back; the accounted figure covers the
// case where RSS lags behind what RocksDB has already committed. Neither
// the file-backed part of RSS (the code of the binary and its libraries,
// 15-25 MiB, which the kernel drops and reads again) nor the cgroup's
// memory.current (it includes page cache) is counted: the kernel reclaims
// both before it kills anything, and counting the code put a node with a
// 40 MiB budget at the critical level while its anonymous memory was
// 13-17 MiB (bench/tight-budget.sh).
//
// Levels rise at once when pressure crosses a watermark and fall only when
// pressure is `hysteresis` below it, so a node hovering at a watermark does
// not flap. Actions accumulate with the level:
//   warn       block cache shrunk to half, memtables flushed (every
//              flush_interval while at warn or above), freed heap returned to
//              the OS (malloc_trim, every trim_interval)
//   critical   block cache at a quarter; anonymous sessions evicted for
//              "memory" in batches (critical_evict_fraction of the sessions
//              every critical_evict_interval), least recently used first
//   emergency  block cache at a tenth; larger, more frequent batches, which
//              reach authenticated sessions once no anonymous one is left;
//              new anonymous sessions refused with RESOURCE_EXHAUSTED
//              (authenticated creates and every other call still served)
// Every level change is logged.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/store/session_store.h"

namespace sg::store {

enum class MemoryLevel : int { kNone = 0, kWarn, kCritical, kEmergency };

// "none", "warn", "critical", "emergency".
std::string_view MemoryLevelName(MemoryLevel level);

// What the kernel says about this process's memory, and the one allocator
// call the governor makes. An interface so tests can fake pressure.
// Implementations must be thread-safe.
class MemoryProbe {
 public:
  virtual ~MemoryProbe() = default;
  // Resident anonymous memory (ProcessAnonymousRssBytes).
  virtual int64_t AnonymousRssBytes() = 0;
  // cgroup v2 memory.current / memory.max; nullopt when absent or "max".
  virtual std::optional<int64_t> CgroupUsageBytes() = 0;
  virtual std::optional<int64_t> CgroupLimitBytes() = 0;
  // MemTotal of the machine; 0 if unknown.
  virtual int64_t PhysicalMemoryBytes() = 0;
  // Returns freed heap memory to the OS (glibc malloc_trim).
  virtual void ReleaseFreeMemory() = 0;

  // The real process; never null, never destroyed.
  static MemoryProbe* System();
};

// Checked by Validate(). Field names match the server's flags
// (memory_warn <-> --memory-warn).
struct GovernorOptions {
  // The budget in bytes; 0 = none (watermarks never fire). With
  // memory_limit_auto the budget is resolved by ResolveMemoryLimit().
  uint64_t memory_limit_bytes = 0;
  bool memory_limit_auto = false;
  // Watermarks as fractions of the limit: 0 < warn < critical < emergency
  // <= 1.
  double memory_warn = 0.70;
  double memory_critical = 0.85;
  double memory_emergency = 0.95;
  // A level is left only once pressure is this far below its watermark.
  // Range [0, memory_warn).
  double memory_hysteresis = 0.05;
  // SST files plus live WAL; 0 = no cap. Over it, sessions are evicted
  // (reason "max_disk") and the space compacted away.
  uint64_t max_disk_bytes = 0;

  // Pacing. Memory is measured every memory_interval (cheap: /proc/self/statm
  // and RocksDB counters); disk and the session cap every disk_interval.
  absl::Duration memory_interval = absl::Milliseconds(100);
  absl::Duration disk_interval = absl::Seconds(1);
  absl::Duration flush_interval = absl::Seconds(10);
  absl::Duration trim_interval = absl::Seconds(2);
  absl::Duration critical_evict_interval = absl::Seconds(1);
  absl::Duration emergency_evict_interval = absl::Milliseconds(250);
  // Share of the stored sessions evicted per batch, and the bounds of a
  // batch.
  double critical_evict_fraction = 0.005;
  double emergency_evict_fraction = 0.02;
  int64_t min_evict_batch = 64;
  int64_t max_evict_batch = 20000;

  absl::Status Validate() const;
};

// Parses the --memory-limit value into `options`: "auto" (cgroup v2
// memory.max), "0" or "none" (no limit), or a byte size with an optional
// KiB/MiB/GiB suffix. INVALID_ARGUMENT starting "memory_limit" otherwise.
absl::Status ParseMemoryLimit(std::string_view text, GovernorOptions* options);

// What `auto` leaves of a cgroup limit for the file-backed pages of the
// binary and its libraries (at most half the limit).
inline constexpr int64_t kMappedCodeReserveBytes = int64_t{32} << 20;

struct ResolvedMemoryLimit {
  uint64_t bytes = 0;
  std::string source;  // for the start-up log line
};
// The limit to enforce: memory_limit_bytes, or with memory_limit_auto the
// cgroup v2 memory.max less kMappedCodeReserveBytes, falling back to the
// machine's physical memory
// (the source says so) when there is no cgroup limit.
ResolvedMemoryLimit ResolveMemoryLimit(const GovernorOptions& options,
                                       MemoryProbe* probe);

// The level after `current` given `pressure` (see the header comment).
MemoryLevel NextMemoryLevel(MemoryLevel current, double pressure,
                            const GovernorOptions& options);

// Makes glibc malloc's resident memory follow what is in use, for a node
// held to a budget. Process-wide; call early.
//   - At most `arenas` arenas. Each thread that meets a locked arena
//     otherwise opens a new one (up to 8 per core), and freed memory
//     scattered across many arenas stays resident.
//   - Blocks of 512 KiB and more are always their own mappings, returned to
//     the kernel when freed. glibc otherwise raises that threshold on the
//     first such free, and RocksDB's 1 MiB memtable blocks then land in the
//     heap, where a flushed memtable's memory is returned or kept by
//     chance: in a soak RSS fell 16 MiB at one flush and nothing at the
//     next (bench/soak.sh, RESULTS.md).
void TuneMallocForBudget(int arenas);

struct GovernorStats {
  MemoryLevel level = MemoryLevel::kNone;
  double pressure = 0;  // measured / limit; 0 without a limit
  int64_t limit_bytes = 0;
  int64_t anon_rss_bytes = 0;
  int64_t cgroup_usage_bytes = 0;  // 0 when not in a cgroup v2
  int64_t accounted_bytes = 0;     // the store's total + the governor's own
  int64_t disk_bytes = 0;          // as of the last disk pass (0 if none)
  int64_t level_changes = 0;
  int64_t memtable_flushes = 0;
  int64_t trims = 0;
  int64_t memory_eviction_batches = 0;
  int64_t disk_reclaims = 0;
};

// Thread-safety: TickMemory() and TickDisk() serialise themselves and may
// be called from any thread; Start() runs them on two threads of the
// governor's own (disk work may block in a compaction, which must not hold
// up memory measurement). The store, probe and clock must outlive the
// governor; stop it (Stop() or destruction) before closing the store.
class MemoryGovernor final {
 public:
  // Called on a governor thread after each level change.
  using LevelCallback =
      std::function<void(MemoryLevel from, MemoryLevel to,
                         const GovernorStats& stats)>;

  // `options` must be valid with the limit resolved (memory_limit_auto is
  // ignored here).
  MemoryGovernor(const GovernorOptions& options, SessionStore* store,
                 MemoryProbe* probe, Clock* clock,
                 LevelCallback on_level_change = nullptr);
  ~MemoryGovernor();
  MemoryGovernor(const MemoryGovernor&) = delete;
  MemoryGovernor& operator=(const MemoryGovernor&) = delete;

  // Starts the threads; the first passes run at once. Call at most once.
  void Start();
  // Stops and joins the threads; a pass in progress finishes first.
  // Idempotent.
  void Stop();

  // One memory pass: measure, move the level, act.
  void TickMemory();
  // One pass over the caps: evicts down to max_sessions (a backstop for
  // concurrent creates overshooting it) and enforces max_disk_bytes.
  absl::Status TickDisk();

  MemoryLevel level() const;
  GovernorStats Stats() const;
  // Bytes of the governor's own state.
  int64_t structures_bytes() const { return sizeof(*this); }
  const GovernorOptions& options() const { return options_; }

 private:
  void RunLoop(absl::Duration interval, bool disk);
  int64_t BatchSize(double fraction) const;

  const GovernorOptions options_;
  SessionStore* const store_;
  MemoryProbe* const probe_;
  Clock* const clock_;
  const LevelCallback on_level_change_;

  // Held for a whole pass: one memory pass, one disk pass at a time.
  absl::Mutex memory_pass_mu_;
  absl::Mutex disk_pass_mu_;
  // Action pacing, owned by the memory pass.
  double cache_scale_ ABSL_GUARDED_BY(memory_pass_mu_) = 1.0;
  absl::Time last_flush_ ABSL_GUARDED_BY(memory_pass_mu_) =
      absl::InfinitePast();
  absl::Time last_trim_ ABSL_GUARDED_BY(memory_pass_mu_) =
      absl::InfinitePast();
  absl::Time last_evict_ ABSL_GUARDED_BY(memory_pass_mu_) =
      absl::InfinitePast();

  mutable absl::Mutex mu_;
  GovernorStats stats_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar wake_;

  absl::Mutex join_mu_;  // serialises Stop() callers around the joins
  std::thread memory_thread_;
  std::thread disk_thread_;
};

}  // namespace sg::store

#include "server/store/memory_governor.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/process_memory.h"
#include "common/status_macros.h"

namespace sg::store {
namespace {

class SystemProbe final : public MemoryProbe {
 public:
  int64_t AnonymousRssBytes() override { return ProcessAnonymousRssBytes(); }
  std::optional<int64_t> CgroupUsageBytes() override {
    return CgroupMemoryUsageBytes();
  }
  std::optional<int64_t> CgroupLimitBytes() override {
    return CgroupMemoryLimitBytes();
  }
  int64_t PhysicalMemoryBytes() override {
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? int64_t{pages} * page : 0;
  }
  void ReleaseFreeMemory() override { malloc_trim(0); }
};

// Block cache capacity, as a share of the planned size, at each level.
double CacheScale(MemoryLevel level) {
  switch (level) {
    case MemoryLevel::kNone:
      return 1.0;
    case MemoryLevel::kWarn:
      return 0.5;
    case MemoryLevel::kCritical:
      return 0.25;
    case MemoryLevel::kEmergency:
      return 0.1;
  }
  return 1.0;
}

MemoryLevel RawLevel(double pressure, const GovernorOptions& o) {
  if (pressure >= o.memory_emergency) return MemoryLevel::kEmergency;
  if (pressure >= o.memory_critical) return MemoryLevel::kCritical;
  if (pressure >= o.memory_warn) return MemoryLevel::kWarn;
  return MemoryLevel::kNone;
}

bool InUnitInterval(double v) { return v > 0.0 && v <= 1.0; }

}  // namespace

std::string_view MemoryLevelName(MemoryLevel level) {
  switch (level) {
    case MemoryLevel::kNone:
      return "none";
    case MemoryLevel::kWarn:
      return "warn";
    case MemoryLevel::kCritical:
      return "critical";
    case MemoryLevel::kEmergency:
      return "emergency";
  }
  return "unknown";
}

MemoryProbe* MemoryProbe::System() {
  static SystemProbe* probe = new SystemProbe();
  return probe;
}

absl::Status GovernorOptions::Validate() const {
  if (!(memory_warn > 0.0 && memory_warn < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory_warn must be in (0, 1), got ", memory_warn));
  }
  if (!(memory_critical > memory_warn && memory_critical < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory_critical must be above memory_warn (",
                     memory_warn, ") and below 1, got ", memory_critical));
  }
  if (!(memory_emergency > memory_critical && memory_emergency <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory_emergency must be above memory_critical (",
                     memory_critical, ") and at most 1, got ",
                     memory_emergency));
  }
  if (!(memory_hysteresis >= 0.0 && memory_hysteresis < memory_warn)) {
    return absl::InvalidArgumentError(
        "memory_hysteresis must be in [0, memory_warn)");
  }
  // Catches a forgotten unit ("--memory-limit=256").
  if (memory_limit_bytes != 0 && memory_limit_bytes < (8u << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "memory_limit of ", memory_limit_bytes,
        " bytes is too small to run a node (at least 8MiB)"));
  }
  if (memory_interval <= absl::ZeroDuration() ||
      disk_interval <= absl::ZeroDuration() ||
      flush_interval <= absl::ZeroDuration() ||
      trim_interval <= absl::ZeroDuration() ||
      critical_evict_interval <= absl::ZeroDuration() ||
      emergency_evict_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("governor intervals must be positive");
  }
  if (!InUnitInterval(critical_evict_fraction) ||
      !InUnitInterval(emergency_evict_fraction)) {
    return absl::InvalidArgumentError("evict fractions must be in (0, 1]");
  }
  if (min_evict_batch < 1 || max_evict_batch < min_evict_batch) {
    return absl::InvalidArgumentError(
        "evict batch bounds must satisfy 1 <= min <= max");
  }
  return absl::OkStatus();
}

absl::Status ParseMemoryLimit(std::string_view text, GovernorOptions* options) {
  std::string lower = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())));
  if (lower == "auto") {
    options->memory_limit_auto = true;
    options->memory_limit_bytes = 0;
    return absl::OkStatus();
  }
  options->memory_limit_auto = false;
  if (lower == "none" || lower == "0") {
    options->memory_limit_bytes = 0;
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> bytes = ParseByteSize(text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "memory_limit must be a size (e.g. 256MiB), auto or none: ",
        bytes.status().message()));
  }
  options->memory_limit_bytes = *bytes;
  return absl::OkStatus();
}

ResolvedMemoryLimit ResolveMemoryLimit(const GovernorOptions& options,
                                       MemoryProbe* probe) {
  if (!options.memory_limit_auto) {
    return {options.memory_limit_bytes,
            options.memory_limit_bytes == 0 ? "none" : "--memory-limit"};
  }
  if (std::optional<int64_t> cgroup = probe->CgroupLimitBytes();
      cgroup && *cgroup > 0) {
    // The watermarks judge anonymous memory; the container's limit also
    // holds the mapped code, which must stay resident to run well.
    const int64_t reserve = std::min(kMappedCodeReserveBytes, *cgroup / 2);
    return {static_cast<uint64_t>(*cgroup - reserve),
            absl::StrCat("cgroup v2 memory.max less ", reserve >> 20,
                         " MiB for mapped code")};
  }
  return {static_cast<uint64_t>(std::max<int64_t>(0, probe->PhysicalMemoryBytes())),
          "physical memory (no cgroup v2 memory.max limits this process)"};
}

MemoryLevel NextMemoryLevel(MemoryLevel current, double pressure,
                            const GovernorOptions& options) {
  const MemoryLevel rising = RawLevel(pressure, options);
  if (rising > current) return rising;
  const MemoryLevel falling =
      RawLevel(pressure + options.memory_hysteresis, options);
  return falling < current ? falling : current;
}

void TuneMallocForBudget(int arenas) {
  mallopt(M_ARENA_MAX, arenas);
  // Setting it also turns off glibc's dynamic threshold.
  mallopt(M_MMAP_THRESHOLD, 512 << 10);
}

MemoryGovernor::MemoryGovernor(const GovernorOptions& options,
                               SessionStore* store, MemoryProbe* probe,
                               Clock* clock, LevelCallback on_level_change)
    : options_(options),
      store_(store),
      probe_(probe),
      clock_(clock),
      on_level_change_(std::move(on_level_change)) {
  absl::MutexLock lock(&mu_);
  stats_.limit_bytes = static_cast<int64_t>(options_.memory_limit_bytes);
}

MemoryGovernor::~MemoryGovernor() { Stop(); }

void MemoryGovernor::Start() {
  memory_thread_ =
      std::thread([this] { RunLoop(options_.memory_interval, false); });
  if (options_.max_disk_bytes > 0 || store_->options().max_sessions > 0) {
    disk_thread_ =
        std::thread([this] { RunLoop(options_.disk_interval, true); });
  }
}

void MemoryGovernor::Stop() {
  absl::MutexLock join_lock(&join_mu_);
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    wake_.SignalAll();
  }
  if (memory_thread_.joinable()) memory_thread_.join();
  if (disk_thread_.joinable()) disk_thread_.join();
}

void MemoryGovernor::RunLoop(absl::Duration interval, bool disk) {
  while (true) {
    if (disk) {
      absl::Status s = TickDisk();
      if (!s.ok()) LogWarn("disk cap pass failed", {{"error", s.ToString()}});
    } else {
      TickMemory();
    }
    absl::MutexLock lock(&mu_);
    // Real time on purpose: the interval paces work, it is not a TTL.
    const absl::Time deadline = absl::Now() + interval;
    while (!stop_) {
      if (wake_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
    }
    if (stop_) return;
  }
}

MemoryLevel MemoryGovernor::level() const {
  absl::MutexLock lock(&mu_);
  return stats_.level;
}

GovernorStats MemoryGovernor::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

int64_t MemoryGovernor::BatchSize(double fraction) const {
  const int64_t sessions = store_->session_count();
  const int64_t scaled = static_cast<int64_t>(std::ceil(fraction * sessions));
  return std::clamp(scaled, options_.min_evict_batch, options_.max_evict_batch);
}

void MemoryGovernor::TickMemory() {
  absl::MutexLock pass(&memory_pass_mu_);
  const absl::Time now = clock_->Now();
  const int64_t anon_rss = probe_->AnonymousRssBytes();
  const std::optional<int64_t> cgroup = probe_->CgroupUsageBytes();
  const int64_t accounted = store_->MemoryUsage().total() + structures_bytes();
  const int64_t limit = static_cast<int64_t>(options_.memory_limit_bytes);
  const double pressure =
      limit > 0 ? static_cast<double>(std::max(anon_rss, accounted)) / limit : 0.0;

  MemoryLevel before, after;
  GovernorStats snapshot;
  {
    absl::MutexLock lock(&mu_);
    before = stats_.level;
    after = NextMemoryLevel(before, pressure, options_);
    stats_.level = after;
    stats_.pressure = pressure;
    stats_.anon_rss_bytes = anon_rss;
    stats_.cgroup_usage_bytes = cgroup.value_or(0);
    stats_.accounted_bytes = accounted;
    if (after != before) ++stats_.level_changes;
    snapshot = stats_;
  }
  const bool rose = after > before;
  if (after != before) {
    store_->SetRefuseAnonymousCreates(after == MemoryLevel::kEmergency);
    const std::initializer_list<LogField> fields = {
        {"from", std::string(MemoryLevelName(before))},
        {"to", std::string(MemoryLevelName(after))},
        {"pressure", absl::StrFormat("%.3f", pressure)},
        {"anon_rss_bytes", absl::StrCat(anon_rss)},
        {"accounted_bytes", absl::StrCat(accounted)},
        {"limit_bytes", absl::StrCat(limit)},
        {"anonymous_creates",
         after == MemoryLevel::kEmergency ? "refused" : "accepted"}};
    if (rose) {
      LogWarn("memory level changed", fields);
    } else {
      LogInfo("memory level changed", fields);
    }
    if (on_level_change_) on_level_change_(before, after, snapshot);
  }

  if (const double scale = CacheScale(after); scale != cache_scale_) {
    store_->ScaleBlockCache(scale);
    cache_scale_ = scale;
  }
  if (after == MemoryLevel::kNone) return;

  int64_t flushes = 0, trims = 0, batches = 0;
  if (rose || now - last_flush_ >= options_.flush_interval) {
    absl::Status s = store_->FlushMemtables(/*wait=*/false);
    if (!s.ok()) LogWarn("memtable flush failed", {{"error", s.ToString()}});
    last_flush_ = now;
    ++flushes;
  }
  if (after >= MemoryLevel::kCritical) {
    const bool emergency = after == MemoryLevel::kEmergency;
    const absl::Duration every = emergency ? options_.emergency_evict_interval
                                           : options_.critical_evict_interval;
    if (rose || now - last_evict_ >= every) {
      const int64_t batch =
          BatchSize(emergency ? options_.emergency_evict_fraction
                              : options_.critical_evict_fraction);
      // Logged-in users are shed for memory only in an emergency: their
      // sessions are the valuable ones, and on a disk-backed store evicting
      // them frees little memory.
      absl::StatusOr<EvictionResult> evicted = store_->Evict(
          batch, EvictionReason::kMemory, /*include_authenticated=*/emergency);
      if (!evicted.ok()) {
        LogWarn("memory eviction failed",
                {{"error", evicted.status().ToString()}});
      }
      last_evict_ = now;
      ++batches;
    }
  }
  // After the flush and evictions, so what they freed goes back too.
  if (rose || now - last_trim_ >= options_.trim_interval) {
    probe_->ReleaseFreeMemory();
    last_trim_ = now;
    ++trims;
  }
  absl::MutexLock lock(&mu_);
  stats_.memtable_flushes += flushes;
  stats_.trims += trims;
  stats_.memory_eviction_batches += batches;
}

absl::Status MemoryGovernor::TickDisk() {
  absl::MutexLock pass(&disk_pass_mu_);
  const int64_t max_sessions = store_->options().max_sessions;
  if (max_sessions > 0) {
    const int64_t excess = store_->session_count() - max_sessions;
    if (excess > 0) {
      SG_RETURN_IF_ERROR(
          store_->Evict(excess, EvictionReason::kMaxSessions).status());
    }
  }
  if (options_.max_disk_bytes == 0) return absl::OkStatus();
  const int64_t cap = static_cast<int64_t>(options_.max_disk_bytes);
  int64_t disk = store_->DiskBytes();
  int reclaims = 0;
  auto record = [&] {
    absl::MutexLock lock(&mu_);
    stats_.disk_bytes = disk;
    stats_.disk_reclaims += reclaims;
  };
  if (disk <= cap) {
    record();
    return absl::OkStatus();
  }
  // Over the cap. Removed sessions (expired, deleted, evicted) hold space
  // until a compaction drops them: reclaim that before evicting anything.
  SG_RETURN_IF_ERROR(store_->ReclaimDisk());
  ++reclaims;
  disk = store_->DiskBytes();
  if (disk > cap) {
    // Sessions take about equal space: keep the share that fits in 90 % of
    // the cap, so the next writes do not cross it again at once.
    const int64_t sessions = store_->session_count();
    const double keep = 0.9 * static_cast<double>(cap) / disk;
    const int64_t excess = std::max<int64_t>(
        sessions - static_cast<int64_t>(keep * sessions),
        std::min(sessions, options_.min_evict_batch));
    LogWarn("disk over max_disk_bytes: evicting",
            {{"disk_bytes", absl::StrCat(disk)},
             {"max_disk_bytes", absl::StrCat(cap)},
             {"sessions", absl::StrCat(sessions)},
             {"evicting", absl::StrCat(excess)}});
    SG_RETURN_IF_ERROR(
        store_->Evict(excess, EvictionReason::kMaxDisk).status());
    SG_RETURN_IF_ERROR(store_->ReclaimDisk());
    ++reclaims;
    disk = store_->DiskBytes();
  }
  record();
  return absl::OkStatus();
}

}  // namespace sg::store

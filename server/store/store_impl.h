// Internal to sg_store: the SessionStore implementation class shared by the
// files that implement it (one concern each: session_store.cc opens, closes
// and runs the single-session operations; principal_index.cc, sweep.cc,
// store_eviction.cc, replica_apply.cc, hint_log.cc, resource_usage.cc and
// session_scan.cc the rest). Nothing outside server/store includes it.
#pragma once

#include "server/store/session_store.h"


#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "server/store/expiry_compaction_filter.h"
#include "server/store/record_codec.h"

namespace sg::store {
namespace internal {

constexpr size_t kStripes = 1024;  // power of two
// Serialise per-principal cap enforcement; taken before any id stripe.
constexpr size_t kPrincipalStripes = 256;  // power of two
// Expired records an eviction sample collects at most before removing them.
constexpr size_t kMaxExpiredPerSample = 256;
constexpr size_t kDefaultBlockCacheBytes = 64 << 20;
constexpr size_t kMinDerivedBlockCacheBytes = 8 << 20;
// Smaller memtables make more, smaller level-0 files, and under a write
// flood RocksDB stalls for them (bench/tight-budget.sh).
constexpr size_t kMinWriteBufferBytes = 8 << 20;
constexpr size_t kMaxDerivedWriteBufferBytes = 64 << 20;
constexpr char kFormatKey[] = "format_version";
constexpr char kFormatVersion[] = "1";
constexpr char kNodeIdKey[] = "node_id";
// Sweeps delete in batches so one sweep never holds a huge WriteBatch.
constexpr size_t kSweepBatch = 256;

// Column family order in handles_.
enum Cf : size_t {
  kDefault = 0,
  kSessions,
  kPrincipal,
  kTombstones,
  kMeta,
  kHints
};
constexpr const char* kCfNames[] = {"default", "sessions", "principal",
                                    "tombstones", "meta", "hints"};

inline std::string_view View(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}
inline rocksdb::Slice ToSlice(std::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

// Maps a RocksDB error on an operation to a Status.
inline absl::Status FromRocks(const rocksdb::Status& s, const char* what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return absl::UnavailableError(msg);
  }
  if (s.IsShutdownInProgress()) return absl::FailedPreconditionError(msg);
  return absl::InternalError(msg);
}

// Maps an Open failure to a Status that names the data dir and says what to
// do about it.
inline absl::Status OpenError(const rocksdb::Status& s, const std::string& dir) {
  const std::string detail = s.ToString();
  if (absl::StrContains(detail, "/LOCK") ||
      absl::StrContains(detail, "lock hold")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session store data dir ", dir,
        " is locked: another process (or another store in this process) has "
        "it open (",
        detail, ")"));
  }
  if (absl::StrContains(detail, "Permission denied")) {
    return absl::PermissionDeniedError(absl::StrCat(
        "session store data dir ", dir, " is not accessible: ", detail));
  }
  if (s.IsCorruption()) {
    return absl::DataLossError(
        absl::StrCat("session store data dir ", dir, " is corrupt: ", detail));
  }
  std::error_code ec;
  if (s.IsPathNotFound() &&
      std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec)) {
    // An existing DB that references a file that is gone.
    return absl::DataLossError(absl::StrCat(
        "session store data dir ", dir, " is corrupt or incomplete: ", detail));
  }
  return absl::UnavailableError(
      absl::StrCat("cannot open session store data dir ", dir, ": ", detail));
}

inline absl::Status NotFound() { return absl::NotFoundError("session not found"); }

inline absl::Status CheckTtl(absl::Duration ttl, absl::Duration max_ttl) {
  if (ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ttl must be positive");
  }
  if (ttl > max_ttl) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl ", absl::FormatDuration(ttl), " exceeds max_ttl ",
                     absl::FormatDuration(max_ttl)));
  }
  return absl::OkStatus();
}

inline absl::Status CheckPrincipal(std::string_view principal) {
  if (principal.size() > kMaxPrincipalBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal is ", principal.size(), " bytes; the limit is ",
                     kMaxPrincipalBytes));
  }
  return absl::OkStatus();
}

// The smallest key greater than every key starting with `prefix`, or empty
// when there is none (prefix of 0xFF bytes).
inline std::string PrefixUpperBound(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last != 0xFF) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

// A session's contribution to the class counters.
struct Presence {
  bool present = false;
  bool authenticated = false;
  absl::Time expire_time;

  static Presence Of(const SessionRecord& r) {
    return Presence{true, r.authenticated(), r.expire_time};
  }
};

}  // namespace internal
using namespace internal;  // NOLINT: the implementation files' vocabulary

class SessionStore::Impl {
 public:
  Impl(const StoreOptions& options, Clock* clock)
      : options_(options),
        clock_(clock),
        hlc_(clock, options.node_id),
        plan_(PlanRocksDbMemory(options)),
        filters_(std::make_shared<ExpiryFilterFactory>(clock)),
        stripes_(new absl::Mutex[kStripes]),
        principal_stripes_(new absl::Mutex[kPrincipalStripes]),
        random_keys_(options.eviction_seed) {
    write_options_.sync = options.sync_writes;
    write_options_.disableWAL = false;
  }

  ~Impl() {
    // Destruction without Close(): close anyway; nobody is left to report a
    // flush error to, and the WAL still holds every acknowledged write.
    if (!closed_.load()) (void)Close();
  }

  absl::Status Open();
  absl::Status Close();

  absl::StatusOr<SessionRecord> Create(CreateParams params);
  std::vector<absl::StatusOr<SessionRecord>> CreateMany(
      std::vector<CreateParams> params);
  absl::StatusOr<SessionRecord> Get(std::string_view id, bool touch);
  absl::StatusOr<SessionRecord> Touch(std::string_view id,
                                      std::optional<absl::Duration> ttl);
  absl::StatusOr<SessionRecord> Update(std::string_view id,
                                       UpdateParams params);
  absl::StatusOr<bool> Delete(std::string_view id,
                              std::optional<Hlc> expected_version);
  absl::StatusOr<SessionRecord> Regenerate(
      std::string_view id, std::optional<std::string> principal);
  absl::StatusOr<std::vector<SessionRecord>> ListByPrincipal(
      std::string_view principal, size_t limit);
  absl::StatusOr<int64_t> DeleteByPrincipal(std::string_view principal);
  absl::StatusOr<int64_t> SweepExpired();
  absl::Status CompactAll();
  absl::StatusOr<bool> ApplyReplicated(const SessionRecord& record,
                                       std::optional<Hlc> expected);
  absl::StatusOr<bool> ApplyReplicatedTouch(std::string_view id,
                                            absl::Time expire_time,
                                            absl::Time last_access_time,
                                            absl::Duration ttl);
  absl::StatusOr<bool> ApplyReplicatedDelete(std::string_view id,
                                             const Hlc& version,
                                             absl::Time deleted_expire_time,
                                             std::optional<Hlc> expected);
  absl::StatusOr<SessionRecord> PrepareCreate(CreateParams params);
  absl::StatusOr<SessionRecord> PrepareUpdate(const SessionRecord& current,
                                              UpdateParams params);
  absl::StatusOr<bool> PrepareTouch(SessionRecord* record,
                                    std::optional<absl::Duration> ttl);
  Hlc NextVersion() { return hlc_.Next(); }
  absl::StatusOr<LocalEntry> ReadLocal(std::string_view id);
  absl::Status ForEachEntry(
      const std::function<bool(std::string_view, const SessionRecord*,
                               const TombstoneInfo*)>& fn);
  absl::StatusOr<ScanPage> ScanSessions(const ScanOptions& options);
  void SetEvictionObserver(std::function<void(const EvictedSession&)> o) {
    absl::MutexLock lock(&observer_mu_);
    eviction_observer_ = std::make_shared<std::function<void(const EvictedSession&)>>(
        std::move(o));
  }
  // The observer now (null when none); callers call it without the lock.
  std::shared_ptr<std::function<void(const EvictedSession&)>> observer() {
    absl::MutexLock lock(&observer_mu_);
    return eviction_observer_;
  }
  absl::Status PutHint(std::string_view key, std::string_view value);
  absl::Status DeleteHint(std::string_view key);
  absl::Status ScanHints(
      std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& fn);
  StoreStats Stats() const;
  absl::StatusOr<RawCounts> CountRaw() const;

  absl::StatusOr<EvictionResult> Evict(int64_t count, EvictionReason reason,
                                       bool include_authenticated);
  void SetRefuseAnonymousCreates(bool refuse) {
    refuse_anonymous_.store(refuse, std::memory_order_relaxed);
  }
  bool refusing_anonymous_creates() const {
    return refuse_anonymous_.load(std::memory_order_relaxed);
  }
  int64_t session_count() const {
    return authenticated_.load() + anonymous_.load();
  }
  StoreMemoryUsage MemoryUsage() const;
  void ScaleBlockCache(double fraction);
  absl::Status FlushMemtables(bool wait);
  int64_t DiskBytes() const;
  absl::Status ReclaimDisk();

  const StoreOptions& options() const { return options_; }

 private:
  // What RemoveForEviction did.
  enum class Removal { kGone, kEvicted, kExpired };

  absl::StatusOr<SessionRecord> DoUpdate(std::string_view id,
                                         UpdateParams params);
  absl::StatusOr<SessionRecord> DoRegenerate(
      std::string_view id, std::optional<std::string> principal);

  // Fills `sample` with up to eviction_sample live sessions of the wanted
  // class, read in key order from a random id on (wrapping once), and
  // `expired` with expired records met on the way. Sets *full_cycle when
  // the whole family was read.
  absl::Status Sample(bool authenticated, std::vector<EvictionCandidate>* sample,
                      std::vector<std::string>* expired, bool* full_cycle);
  // Removes `id` under its stripe lock after re-reading it: an expired record
  // counts as an expiration; a live one (unless `expired_only`) is evicted
  // for `reason` only if it (still) has the class `authenticated` and, when
  // given, `principal`.
  absl::StatusOr<Removal> RemoveForEviction(
      std::string_view id, bool authenticated,
      std::optional<std::string_view> principal, EvictionReason reason,
      absl::Time now, bool expired_only = false);
  // Evicts the least recently used sessions of `principal` beyond
  // max_sessions_per_principal, never `keep_id`. Takes the principal's
  // stripe, then id stripes: callers hold no stripe lock.
  absl::Status EnforcePrincipalCap(std::string_view principal,
                                   std::string_view keep_id);
  void EnforcePrincipalCapOrLog(std::string_view principal,
                                std::string_view keep_id);
  absl::Mutex& PrincipalStripeFor(std::string_view principal) {
    return principal_stripes_[absl::Hash<std::string_view>{}(principal) &
                              (kPrincipalStripes - 1)];
  }

  absl::Status CheckOpen() const {
    if (closed_.load(std::memory_order_acquire)) {
      return absl::FailedPreconditionError("session store is closed");
    }
    return absl::OkStatus();
  }

  rocksdb::ColumnFamilyHandle* cf(Cf which) const { return handles_[which]; }

  // Keys of `which` whose value's leading stamp is at or before `stamp` (or
  // unreadable): a scan without filling the cache.
  absl::StatusOr<std::vector<std::string>> KeysStampedBy(Cf which,
                                                         int64_t stamp,
                                                         const char* what) {
    rocksdb::ReadOptions scan;
    scan.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan, cf(which)));
    std::vector<std::string> keys;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::optional<int64_t> own = codec::PeekStamp(View(it->value()));
      if (!own || *own <= stamp) keys.emplace_back(View(it->key()));
    }
    SG_RETURN_IF_ERROR(FromRocks(it->status(), what));
    return keys;
  }

  // Re-reads `key` (the caller holds its stripe lock) and deletes it unless
  // it was extended or renewed past `stamp` since the scan.
  absl::Status DeleteIfStillStampedBy(Cf which, const std::string& key,
                                      int64_t stamp) {
    rocksdb::PinnableSlice value;
    rocksdb::Status s = db_->Get(read_options_, cf(which), key, &value);
    if (s.IsNotFound()) return absl::OkStatus();
    SG_RETURN_IF_ERROR(FromRocks(s, "sweep: re-reading a stamped key"));
    std::optional<int64_t> own = codec::PeekStamp(View(value));
    if (own && *own > stamp) return absl::OkStatus();
    return FromRocks(db_->Delete(write_options_, cf(which), key), "sweeping");
  }

  absl::Mutex& StripeFor(std::string_view id) {
    return stripes_[absl::Hash<std::string_view>{}(id) & (kStripes - 1)];
  }

  // Reads the stored record of `id` (expired or not). NOT_FOUND when absent.
  absl::Status ReadRecord(std::string_view id, SessionRecord* out) const;
  // Reads the tombstone of `id`; nullopt when there is none.
  absl::StatusOr<std::optional<codec::Tombstone>> ReadTombstone(
      std::string_view id) const;

  // Adds the puts/deletes that move the record of `id` from `before` to
  // `after` (either may be null) into `batch`, index entries included.
  void StageRecord(const SessionRecord* before, const SessionRecord* after,
                   std::string_view id, rocksdb::WriteBatch* batch);
  // A tombstone at `version`, kept for tombstone_ttl and, on a replicated
  // store, at least until `deleted_expire_time`.
  void StageTombstone(std::string_view id, const Hlc& version,
                      rocksdb::WriteBatch* batch,
                      absl::Time deleted_expire_time = absl::InfinitePast());
  // Creates `record` under a client-chosen id: ALREADY_EXISTS when the id
  // holds a session or a tombstone.
  absl::Status CommitClientIdCreate(const SessionRecord& record);
  // Makes room for one more session at max_sessions (anonymous first).
  absl::Status MakeRoomForOne(bool anonymous);

  // Writes `batch` and moves the class counters from `before` to `after`.
  // Callers hold the stripe lock of every id the batch changes.
  absl::Status Commit(rocksdb::WriteBatch* batch, const Presence& before,
                      const Presence& after);
  // Writes `batch`, which holds only new sessions under ids the store
  // picked (no stripe lock needed), and counts each of `created`.
  absl::Status CommitCreated(rocksdb::WriteBatch* batch,
                             const std::vector<Presence>& created);
  // Moves the class counters from `before` to `after`; under count_mu_.
  void CountLocked(const Presence& before, const Presence& after)
      ABSL_SHARED_LOCKS_REQUIRED(count_mu_);

  // Slides the expiry of a live record to now + ttl. Returns whether the
  // new expiry must be persisted (see StoreOptions::touch_after).
  bool ApplyTouch(SessionRecord* record, absl::Duration ttl,
                  absl::Time now) const;
  absl::StatusOr<SessionRecord> PersistTouch(std::string_view id,
                                             std::optional<absl::Duration> ttl);

  // Removes the record of `id` (if any) plus its index entry, leaving a
  // tombstone. Caller holds the stripe lock. Returns whether it was live.
  absl::StatusOr<bool> DeleteLocked(std::string_view id,
                                    const std::optional<Hlc>& expected,
                                    absl::Time now);

  // Counts stored records by class and observes their versions in the HLC.
  absl::Status CountAtOpen();

  const StoreOptions options_;
  Clock* const clock_;
  HlcClock hlc_;
  const RocksDbMemoryPlan plan_;
  rocksdb::ReadOptions read_options_;
  rocksdb::WriteOptions write_options_;

  std::shared_ptr<ExpiryFilterFactory> filters_;
  std::shared_ptr<rocksdb::Cache> cache_;
  rocksdb::DB* db_ = nullptr;  // owned; deleted by Close()
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::atomic<bool> closed_{true};

  // Serialises read-modify-write operations per id.
  std::unique_ptr<absl::Mutex[]> stripes_;
  std::unique_ptr<absl::Mutex[]> principal_stripes_;
  RandomKeySource random_keys_;
  std::atomic<bool> refuse_anonymous_{false};
  EvictionCounters evictions_;
  absl::Mutex observer_mu_;
  std::shared_ptr<std::function<void(const EvictedSession&)>> eviction_observer_
      ABSL_GUARDED_BY(observer_mu_);
  std::atomic<int64_t> refused_creates_{0};

  // Class counters. Every write that changes them holds count_mu_ shared; a
  // sweep holds it exclusively to take its snapshot and to publish its
  // recount, so each write lands on exactly one side of the snapshot.
  mutable absl::Mutex count_mu_;
  std::atomic<int64_t> authenticated_{0};
  std::atomic<int64_t> anonymous_{0};
  bool recounting_ ABSL_GUARDED_BY(count_mu_) = false;
  absl::Time recount_now_ ABSL_GUARDED_BY(count_mu_);
  std::atomic<int64_t> recount_delta_auth_{0};
  std::atomic<int64_t> recount_delta_anon_{0};

  // One sweep (and Close) at a time.
  absl::Mutex sweep_mu_;

  std::atomic<int64_t> expirations_{0};
  std::atomic<int64_t> creates_{0};
  std::atomic<int64_t> reads_{0};
  std::atomic<int64_t> writes_{0};
  std::atomic<int64_t> deletes_{0};
  std::atomic<int64_t> sweeps_{0};
};

}  // namespace sg::store

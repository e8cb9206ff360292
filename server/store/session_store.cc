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
namespace {

constexpr size_t kStripes = 1024;  // power of two
// Serialise per-principal cap enforcement; taken before any id stripe.
constexpr size_t kPrincipalStripes = 256;  // power of two
// Expired records an eviction sample collects at most before removing them.
constexpr size_t kMaxExpiredPerSample = 256;
constexpr size_t kDefaultBlockCacheBytes = 64 << 20;
constexpr size_t kMinDerivedBlockCacheBytes = 8 << 20;
constexpr size_t kMinWriteBufferBytes = 2 << 20;
constexpr size_t kMaxDerivedWriteBufferBytes = 64 << 20;
constexpr char kFormatKey[] = "format_version";
constexpr char kFormatVersion[] = "1";
constexpr char kNodeIdKey[] = "node_id";
// Sweeps delete in batches so one sweep never holds a huge WriteBatch.
constexpr size_t kSweepBatch = 256;

// Column family order in handles_.
enum Cf : size_t { kDefault = 0, kSessions, kPrincipal, kTombstones, kMeta };
constexpr const char* kCfNames[] = {"default", "sessions", "principal",
                                    "tombstones", "meta"};

std::string_view View(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}
rocksdb::Slice ToSlice(std::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

// Maps a RocksDB error on an operation to a Status.
absl::Status FromRocks(const rocksdb::Status& s, const char* what) {
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
absl::Status OpenError(const rocksdb::Status& s, const std::string& dir) {
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

absl::Status NotFound() { return absl::NotFoundError("session not found"); }

absl::Status CheckTtl(absl::Duration ttl, absl::Duration max_ttl) {
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

absl::Status CheckPrincipal(std::string_view principal) {
  if (principal.size() > kMaxPrincipalBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal is ", principal.size(), " bytes; the limit is ",
                     kMaxPrincipalBytes));
  }
  return absl::OkStatus();
}

// The smallest key greater than every key starting with `prefix`, or empty
// when there is none (prefix of 0xFF bytes).
std::string PrefixUpperBound(std::string prefix) {
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

}  // namespace

RocksDbMemoryPlan PlanRocksDbMemory(const StoreOptions& options) {
  RocksDbMemoryPlan plan;
  plan.block_cache_bytes = options.block_cache_bytes;
  if (plan.block_cache_bytes == 0) {
    plan.block_cache_bytes =
        options.memory_limit_bytes == 0
            ? kDefaultBlockCacheBytes
            : std::max(kMinDerivedBlockCacheBytes,
                       static_cast<size_t>(kRocksDbBudgetShare *
                                           options.memory_limit_bytes));
  }
  plan.write_buffer_bytes = options.write_buffer_bytes;
  if (plan.write_buffer_bytes == 0) {
    size_t wanted = std::max({plan.block_cache_bytes / 4, kMinWriteBufferBytes,
                              16 * options.max_session_bytes});
    plan.write_buffer_bytes =
        std::min({wanted, plan.block_cache_bytes / 2,
                  kMaxDerivedWriteBufferBytes});
  }
  return plan;
}

absl::Status StoreOptions::Validate() const {
  if (data_dir.empty()) return absl::InvalidArgumentError("data_dir is empty");
  if (node_id.empty()) return absl::InvalidArgumentError("node_id is empty");
  if (max_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_ttl must be positive");
  }
  if (default_ttl <= absl::ZeroDuration() || default_ttl > max_ttl) {
    return absl::InvalidArgumentError(
        "default_ttl must be positive and at most max_ttl");
  }
  if (!(touch_after >= 0.0 && touch_after <= 1.0)) {
    return absl::InvalidArgumentError("touch_after must be in [0, 1]");
  }
  if (tombstone_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("tombstone_ttl must be positive");
  }
  if (max_session_bytes == 0) {
    return absl::InvalidArgumentError("max_session_bytes must be positive");
  }
  if (block_cache_bytes != 0 && write_buffer_bytes > block_cache_bytes) {
    return absl::InvalidArgumentError(
        "write_buffer_bytes must not exceed block_cache_bytes (memtables are "
        "charged to the block cache)");
  }
  if (memory_limit_bytes != 0 && block_cache_bytes > memory_limit_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block_cache_bytes ", block_cache_bytes,
        " exceeds the memory limit of ", memory_limit_bytes, " bytes"));
  }
  if (max_sessions < 0) {
    return absl::InvalidArgumentError(
        "max_sessions must not be negative (0: no cap)");
  }
  if (max_sessions_per_principal < 0) {
    return absl::InvalidArgumentError(
        "max_sessions_per_principal must not be negative (0: no cap)");
  }
  if (eviction_sample < 1 || eviction_sample > 1024) {
    return absl::InvalidArgumentError("eviction_sample must be in [1, 1024]");
  }
  return absl::OkStatus();
}

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
  absl::StatusOr<bool> ApplyReplicated(const SessionRecord& record);
  absl::StatusOr<bool> ApplyReplicatedDelete(std::string_view id,
                                             const Hlc& version);
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
  void ScaleCaches(double fraction);
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
  void StageTombstone(std::string_view id, const Hlc& version,
                      rocksdb::WriteBatch* batch);

  // Writes `batch` and moves the class counters from `before` to `after`.
  // Callers hold the stripe lock of every id the batch changes.
  absl::Status Commit(rocksdb::WriteBatch* batch, const Presence& before,
                      const Presence& after);

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
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
  rocksdb::DB* db_ = nullptr;  // owned; deleted by Close()
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::atomic<bool> closed_{true};

  // Serialises read-modify-write operations per id.
  std::unique_ptr<absl::Mutex[]> stripes_;
  std::unique_ptr<absl::Mutex[]> principal_stripes_;
  RandomKeySource random_keys_;
  std::atomic<bool> refuse_anonymous_{false};
  EvictionCounters evictions_;
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

// ---------------------------------------------------------------------------
// Open / Close

absl::Status SessionStore::Impl::Open() {
  SG_RETURN_IF_ERROR(options_.Validate());
  const std::string& dir = options_.data_dir;

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec == std::errc::permission_denied) {
    return absl::PermissionDeniedError(
        absl::StrCat("session store data dir ", dir,
                     " is not accessible to this process: ", ec.message()));
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create session store data dir ", dir, ": ", ec.message()));
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("session store data dir ", dir, " is not a directory"));
  }
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("session store data dir ", dir,
                     " is not readable and writable by this process"));
  }

  cache_ = rocksdb::NewLRUCache(plan_.block_cache_bytes);
  write_buffers_ = std::make_shared<rocksdb::WriteBufferManager>(
      plan_.write_buffer_bytes, cache_);

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.paranoid_checks = true;
  db_options.write_buffer_manager = write_buffers_;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.keep_log_file_num = 4;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache_;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_size = 8 << 10;
  table.format_version = 5;

  rocksdb::CompressionType compression = rocksdb::kNoCompression;
  for (rocksdb::CompressionType c : rocksdb::GetSupportedCompressions()) {
    if (c == rocksdb::kLZ4Compression) compression = c;
    if (c == rocksdb::kSnappyCompression &&
        compression == rocksdb::kNoCompression) {
      compression = c;
    }
  }

  auto cf_options = [&](size_t write_buffer) {
    rocksdb::ColumnFamilyOptions o;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    o.compression = compression;
    o.write_buffer_size = std::max<size_t>(write_buffer, 256 << 10);
    o.compaction_filter_factory = filters_;
    return o;
  };
  rocksdb::ColumnFamilyOptions sessions =
      cf_options(plan_.write_buffer_bytes / 2);
  // Point lookups dominate: a memtable bloom filter spares misses a search.
  sessions.memtable_whole_key_filtering = true;
  sessions.memtable_prefix_bloom_size_ratio = 0.02;
  size_t small_buffer = plan_.write_buffer_bytes / 8;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = {
      {kCfNames[kDefault], cf_options(small_buffer)},
      {kCfNames[kSessions], sessions},
      {kCfNames[kPrincipal], cf_options(small_buffer)},
      {kCfNames[kTombstones], cf_options(small_buffer)},
      {kCfNames[kMeta], cf_options(small_buffer)},
  };
  // The default and meta families hold no stamped values.
  descriptors[kDefault].options.compaction_filter_factory = nullptr;
  descriptors[kMeta].options.compaction_filter_factory = nullptr;

  // No reclamation until the initial count below is done.
  filters_->Pause();
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, dir, descriptors, &handles_, &db_);
  if (!s.ok()) {
    filters_->Resume();
    db_ = nullptr;
    handles_.clear();
    return OpenError(s, dir);
  }
  closed_.store(false, std::memory_order_release);

  // Refuse a data dir written in an unknown format.
  std::string format;
  s = db_->Get(read_options_, cf(kMeta), kFormatKey, &format);
  absl::Status status;
  if (s.IsNotFound()) {
    rocksdb::WriteBatch batch;
    batch.Put(cf(kMeta), kFormatKey, kFormatVersion);
    batch.Put(cf(kMeta), kNodeIdKey, options_.node_id);
    status =
        FromRocks(db_->Write(write_options_, &batch), "writing store metadata");
  } else if (!s.ok()) {
    status = OpenError(s, dir);
  } else if (format != kFormatVersion) {
    status = absl::FailedPreconditionError(
        absl::StrCat("session store data dir ", dir, " has format version ",
                     format, "; this build reads ", kFormatVersion));
  }
  if (status.ok()) status = CountAtOpen();
  filters_->Resume();
  if (!status.ok()) {
    (void)Close();
    return status;
  }
  return absl::OkStatus();
}

absl::Status SessionStore::Impl::CountAtOpen() {
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;
  int64_t auth = 0, anon = 0;
  Hlc max_version;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(scan, cf(kSessions)));
    SessionRecord record;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::Status st =
          codec::DecodeRecord(View(it->key()), View(it->value()), &record);
      if (!st.ok()) {
        return absl::DataLossError(absl::StrCat("session store data dir ",
                                                options_.data_dir,
                                                " is corrupt: ", st.message()));
      }
      (record.authenticated() ? auth : anon)++;
      if (record.version > max_version) max_version = record.version;
    }
    if (!it->status().ok()) {
      return OpenError(it->status(), options_.data_dir);
    }
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(scan, cf(kTombstones)));
    codec::Tombstone t;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (codec::DecodeTombstone(View(it->value()), &t).ok() &&
          t.version > max_version) {
        max_version = t.version;
      }
    }
    if (!it->status().ok()) {
      return OpenError(it->status(), options_.data_dir);
    }
  }
  // Versions from before a restart stay older than new ones even if the wall
  // clock stepped back.
  hlc_.Observe(max_version);
  authenticated_.store(auth);
  anonymous_.store(anon);
  return absl::OkStatus();
}

absl::Status SessionStore::Impl::Close() {
  absl::MutexLock sweep_lock(&sweep_mu_);
  if (closed_.exchange(true, std::memory_order_acq_rel)) {
    return absl::OkStatus();
  }
  absl::Status status;
  if (db_ != nullptr) {
    rocksdb::FlushOptions flush;
    flush.wait = true;
    status = FromRocks(db_->Flush(flush, handles_), "flushing memtables");
    if (status.ok()) {
      status = FromRocks(db_->FlushWAL(/*sync=*/true), "syncing the WAL");
    }
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      (void)db_->DestroyColumnFamilyHandle(h);
    }
    handles_.clear();
    absl::Status close = FromRocks(db_->Close(), "closing RocksDB");
    if (status.ok()) status = close;
    delete db_;
    db_ = nullptr;
  }
  return status;
}

// ---------------------------------------------------------------------------
// Helpers

absl::Status SessionStore::Impl::ReadRecord(std::string_view id,
                                            SessionRecord* out) const {
  rocksdb::PinnableSlice value;
  rocksdb::Status s =
      db_->Get(read_options_, cf(kSessions), ToSlice(id), &value);
  if (s.IsNotFound()) return NotFound();
  SG_RETURN_IF_ERROR(FromRocks(s, "reading session"));
  return codec::DecodeRecord(id, View(value), out);
}

absl::StatusOr<std::optional<codec::Tombstone>>
SessionStore::Impl::ReadTombstone(std::string_view id) const {
  rocksdb::PinnableSlice value;
  rocksdb::Status s =
      db_->Get(read_options_, cf(kTombstones), ToSlice(id), &value);
  if (s.IsNotFound()) return std::optional<codec::Tombstone>();
  SG_RETURN_IF_ERROR(FromRocks(s, "reading tombstone"));
  codec::Tombstone t;
  SG_RETURN_IF_ERROR(codec::DecodeTombstone(View(value), &t));
  return std::optional<codec::Tombstone>(std::move(t));
}

void SessionStore::Impl::StageRecord(const SessionRecord* before,
                                     const SessionRecord* after,
                                     std::string_view id,
                                     rocksdb::WriteBatch* batch) {
  std::string key, value;
  if (before != nullptr && before->authenticated() &&
      (after == nullptr || after->principal != before->principal)) {
    codec::PrincipalKey(before->principal, id, &key);
    batch->Delete(cf(kPrincipal), key);
  }
  if (after == nullptr) {
    if (before != nullptr) batch->Delete(cf(kSessions), ToSlice(id));
    return;
  }
  codec::EncodeRecord(*after, &value);
  batch->Put(cf(kSessions), ToSlice(id), value);
  if (after->authenticated()) {
    // Rewritten on every write: the entry carries the session's expiry so the
    // compaction filter reclaims both together.
    codec::PrincipalKey(after->principal, id, &key);
    codec::EncodeIndexValue(after->expire_time, &value);
    batch->Put(cf(kPrincipal), key, value);
  }
}

void SessionStore::Impl::StageTombstone(std::string_view id, const Hlc& version,
                                        rocksdb::WriteBatch* batch) {
  std::string value;
  codec::EncodeTombstone(
      codec::Tombstone{version, clock_->Now() + options_.tombstone_ttl},
      &value);
  batch->Put(cf(kTombstones), ToSlice(id), value);
}

absl::Status SessionStore::Impl::Commit(rocksdb::WriteBatch* batch,
                                        const Presence& before,
                                        const Presence& after) {
  absl::ReaderMutexLock lock(&count_mu_);
  SG_RETURN_IF_ERROR(
      FromRocks(db_->Write(write_options_, batch), "writing session"));
  auto counter = [&](bool auth) -> std::atomic<int64_t>& {
    return auth ? authenticated_ : anonymous_;
  };
  auto recount_delta = [&](bool auth) -> std::atomic<int64_t>& {
    return auth ? recount_delta_auth_ : recount_delta_anon_;
  };
  if (before.present) counter(before.authenticated).fetch_sub(1);
  if (after.present) counter(after.authenticated).fetch_add(1);
  if (recounting_) {
    // The running sweep counts only records live at recount_now_; records
    // expired by then are its own to remove, so their removal (by anyone,
    // the compaction filter included) must not be counted twice.
    if (before.present && before.expire_time > recount_now_) {
      recount_delta(before.authenticated).fetch_sub(1);
    }
    if (after.present) recount_delta(after.authenticated).fetch_add(1);
  }
  return absl::OkStatus();
}

bool SessionStore::Impl::ApplyTouch(SessionRecord* record, absl::Duration ttl,
                                    absl::Time now) const {
  const absl::Time persisted = record->expire_time;
  const bool ttl_changed = ttl != record->ttl;
  record->ttl = ttl;
  record->expire_time = now + ttl;
  record->last_access_time = now;
  return ttl_changed ||
         record->expire_time - persisted >= options_.touch_after * ttl;
}

// ---------------------------------------------------------------------------
// Operations

absl::StatusOr<SessionRecord> SessionStore::Impl::Create(CreateParams params) {
  SG_RETURN_IF_ERROR(CheckOpen());
  if (params.data.size() > options_.max_session_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("session data is ", params.data.size(),
                     " bytes; the limit is ", options_.max_session_bytes));
  }
  SG_RETURN_IF_ERROR(CheckPrincipal(params.principal));
  const absl::Duration ttl = params.ttl.value_or(options_.default_ttl);
  SG_RETURN_IF_ERROR(CheckTtl(ttl, options_.max_ttl));

  const bool anonymous = params.principal.empty();
  if (anonymous && refuse_anonymous_.load(std::memory_order_relaxed)) {
    refused_creates_.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        "node memory is at the emergency level: new anonymous sessions are "
        "refused");
  }
  if (options_.max_sessions > 0) {
    const int64_t excess = session_count() - options_.max_sessions + 1;
    if (excess > 0) {
      if (anonymous && anonymous_.load() <= 0) {
        // Only logged-in users are stored: a visitor must not push one out.
        refused_creates_.fetch_add(1, std::memory_order_relaxed);
        return absl::ResourceExhaustedError(absl::StrCat(
            "max_sessions (", options_.max_sessions,
            ") reached and every stored session is authenticated: new "
            "anonymous sessions are refused"));
      }
      SG_RETURN_IF_ERROR(
          Evict(excess, EvictionReason::kMaxSessions, true).status());
    }
  }

  SessionRecord record;
  record.id = NewSessionId();
  record.data = std::move(params.data);
  record.principal = std::move(params.principal);
  const absl::Time now = clock_->Now();
  record.create_time = now;
  record.last_access_time = now;
  record.expire_time = now + ttl;
  record.ttl = ttl;
  record.version = hlc_.Next();

  // A fresh 256-bit id cannot collide, so no stripe lock is needed.
  rocksdb::WriteBatch batch;
  StageRecord(nullptr, &record, record.id, &batch);
  SG_RETURN_IF_ERROR(Commit(&batch, Presence{}, Presence::Of(record)));
  creates_.fetch_add(1, std::memory_order_relaxed);
  if (!anonymous) EnforcePrincipalCapOrLog(record.principal, record.id);
  return record;
}

absl::StatusOr<SessionRecord> SessionStore::Impl::Get(std::string_view id,
                                                      bool touch) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  SessionRecord record;
  SG_RETURN_IF_ERROR(ReadRecord(id, &record));
  const absl::Time now = clock_->Now();
  if (record.expire_time <= now) return NotFound();
  reads_.fetch_add(1, std::memory_order_relaxed);
  if (!touch) return record;
  if (!ApplyTouch(&record, record.ttl, now)) return record;
  return PersistTouch(id, std::nullopt);
}

absl::StatusOr<SessionRecord> SessionStore::Impl::Touch(
    std::string_view id, std::optional<absl::Duration> ttl) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  if (ttl) SG_RETURN_IF_ERROR(CheckTtl(*ttl, options_.max_ttl));
  // Lock-free first look: most touches persist nothing.
  SessionRecord record;
  SG_RETURN_IF_ERROR(ReadRecord(id, &record));
  const absl::Time now = clock_->Now();
  if (record.expire_time <= now) return NotFound();
  if (!ApplyTouch(&record, ttl.value_or(record.ttl), now)) return record;
  return PersistTouch(id, ttl);
}

absl::StatusOr<SessionRecord> SessionStore::Impl::PersistTouch(
    std::string_view id, std::optional<absl::Duration> ttl) {
  absl::MutexLock lock(&StripeFor(id));
  SessionRecord record;
  SG_RETURN_IF_ERROR(ReadRecord(id, &record));
  const absl::Time now = clock_->Now();
  if (record.expire_time <= now) return NotFound();
  const Presence before = Presence::Of(record);
  SessionRecord updated = record;
  // Another thread may have persisted meanwhile; decide again.
  if (!ApplyTouch(&updated, ttl.value_or(record.ttl), now)) return updated;
  updated.version = hlc_.Next();
  rocksdb::WriteBatch batch;
  StageRecord(&record, &updated, id, &batch);
  SG_RETURN_IF_ERROR(Commit(&batch, before, Presence::Of(updated)));
  writes_.fetch_add(1, std::memory_order_relaxed);
  return updated;
}

absl::StatusOr<SessionRecord> SessionStore::Impl::Update(std::string_view id,
                                                         UpdateParams params) {
  const bool sets_principal = params.principal && !params.principal->empty();
  absl::StatusOr<SessionRecord> updated = DoUpdate(id, std::move(params));
  if (updated.ok() && sets_principal) {
    EnforcePrincipalCapOrLog(updated->principal, updated->id);
  }
  return updated;
}

absl::StatusOr<SessionRecord> SessionStore::Impl::DoUpdate(
    std::string_view id, UpdateParams params) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  if (params.data && params.data->size() > options_.max_session_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("session data is ", params.data->size(),
                     " bytes; the limit is ", options_.max_session_bytes));
  }
  if (params.principal) SG_RETURN_IF_ERROR(CheckPrincipal(*params.principal));
  if (params.ttl) SG_RETURN_IF_ERROR(CheckTtl(*params.ttl, options_.max_ttl));

  absl::MutexLock lock(&StripeFor(id));
  SessionRecord record;
  SG_RETURN_IF_ERROR(ReadRecord(id, &record));
  const absl::Time now = clock_->Now();
  if (record.expire_time <= now) return NotFound();
  if (params.expected_version && *params.expected_version != record.version) {
    return absl::FailedPreconditionError(
        "session version does not match expected_version");
  }
  SessionRecord updated = record;
  if (params.data) updated.data = std::move(*params.data);
  if (params.principal) updated.principal = std::move(*params.principal);
  if (params.ttl) updated.ttl = *params.ttl;
  updated.expire_time = now + updated.ttl;
  updated.last_access_time = now;
  updated.version = hlc_.Next();

  rocksdb::WriteBatch batch;
  StageRecord(&record, &updated, id, &batch);
  SG_RETURN_IF_ERROR(
      Commit(&batch, Presence::Of(record), Presence::Of(updated)));
  writes_.fetch_add(1, std::memory_order_relaxed);
  return updated;
}

absl::StatusOr<bool> SessionStore::Impl::DeleteLocked(
    std::string_view id, const std::optional<Hlc>& expected, absl::Time now) {
  SessionRecord record;
  absl::Status read = ReadRecord(id, &record);
  if (absl::IsNotFound(read)) return false;
  SG_RETURN_IF_ERROR(read);
  const bool live = record.expire_time > now;
  if (live && expected && *expected != record.version) {
    return absl::FailedPreconditionError(
        "session version does not match expected_version");
  }
  rocksdb::WriteBatch batch;
  StageRecord(&record, nullptr, id, &batch);
  StageTombstone(id, hlc_.Next(), &batch);
  SG_RETURN_IF_ERROR(Commit(&batch, Presence::Of(record), Presence{}));
  // An expired leftover leaves the count as an expiration.
  (live ? deletes_ : expirations_).fetch_add(1, std::memory_order_relaxed);
  return live;
}

absl::StatusOr<bool> SessionStore::Impl::Delete(
    std::string_view id, std::optional<Hlc> expected_version) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  absl::MutexLock lock(&StripeFor(id));
  return DeleteLocked(id, expected_version, clock_->Now());
}

absl::StatusOr<SessionRecord> SessionStore::Impl::Regenerate(
    std::string_view id, std::optional<std::string> principal) {
  const bool sets_principal = principal && !principal->empty();
  absl::StatusOr<SessionRecord> fresh = DoRegenerate(id, std::move(principal));
  if (fresh.ok() && sets_principal) {
    EnforcePrincipalCapOrLog(fresh->principal, fresh->id);
  }
  return fresh;
}

absl::StatusOr<SessionRecord> SessionStore::Impl::DoRegenerate(
    std::string_view id, std::optional<std::string> principal) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  if (principal) SG_RETURN_IF_ERROR(CheckPrincipal(*principal));

  absl::MutexLock lock(&StripeFor(id));
  SessionRecord record;
  SG_RETURN_IF_ERROR(ReadRecord(id, &record));
  const absl::Time now = clock_->Now();
  if (record.expire_time <= now) return NotFound();

  SessionRecord fresh = record;
  fresh.id = NewSessionId();  // fresh: no other writer can know it yet
  if (principal) fresh.principal = std::move(*principal);
  fresh.last_access_time = now;
  fresh.expire_time = now + fresh.ttl;
  const Hlc tombstone_version = hlc_.Next();
  fresh.version = hlc_.Next();

  rocksdb::WriteBatch batch;
  StageRecord(&record, nullptr, id, &batch);
  StageTombstone(id, tombstone_version, &batch);
  StageRecord(nullptr, &fresh, fresh.id, &batch);
  SG_RETURN_IF_ERROR(Commit(&batch, Presence::Of(record), Presence::Of(fresh)));
  writes_.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

absl::StatusOr<std::vector<SessionRecord>> SessionStore::Impl::ListByPrincipal(
    std::string_view principal, size_t limit) {
  SG_RETURN_IF_ERROR(CheckOpen());
  if (principal.empty()) {
    return absl::InvalidArgumentError("principal must not be empty");
  }
  SG_RETURN_IF_ERROR(CheckPrincipal(principal));
  std::vector<SessionRecord> out;
  if (limit == 0) return out;

  const std::string prefix = codec::PrincipalPrefix(principal);
  const std::string upper = PrefixUpperBound(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions scan;
  scan.iterate_upper_bound = &upper_slice;
  const absl::Time now = clock_->Now();
  const int64_t now_stamp = codec::TimeToStamp(now);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan, cf(kPrincipal)));
  for (it->Seek(prefix); it->Valid() && out.size() < limit; it->Next()) {
    std::optional<std::string_view> id =
        codec::IdFromPrincipalKey(View(it->key()), principal);
    if (!id) continue;  // a longer principal that shares the prefix
    std::optional<int64_t> stamp = codec::PeekStamp(View(it->value()));
    if (!stamp || *stamp <= now_stamp) continue;
    SessionRecord record;
    absl::Status st = ReadRecord(*id, &record);
    if (absl::IsNotFound(st)) continue;
    SG_RETURN_IF_ERROR(st);
    if (record.expire_time <= now || record.principal != principal) continue;
    out.push_back(std::move(record));
  }
  SG_RETURN_IF_ERROR(FromRocks(it->status(), "scanning principal index"));
  return out;
}

absl::StatusOr<int64_t> SessionStore::Impl::DeleteByPrincipal(
    std::string_view principal) {
  SG_RETURN_IF_ERROR(CheckOpen());
  if (principal.empty()) {
    return absl::InvalidArgumentError("principal must not be empty");
  }
  SG_RETURN_IF_ERROR(CheckPrincipal(principal));

  // Collect first, then delete each under its own stripe lock.
  std::vector<std::string> ids;
  {
    const std::string prefix = codec::PrincipalPrefix(principal);
    const std::string upper = PrefixUpperBound(prefix);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions scan;
    scan.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(scan, cf(kPrincipal)));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      if (auto id = codec::IdFromPrincipalKey(View(it->key()), principal)) {
        ids.emplace_back(*id);
      }
    }
    SG_RETURN_IF_ERROR(FromRocks(it->status(), "scanning principal index"));
  }

  int64_t deleted = 0;
  std::string index_key;
  for (const std::string& id : ids) {
    absl::MutexLock lock(&StripeFor(id));
    SessionRecord record;
    absl::Status read = ReadRecord(id, &record);
    if (!read.ok() && !absl::IsNotFound(read)) return read;
    if (read.ok() && record.principal == principal) {
      SG_ASSIGN_OR_RETURN(bool live,
                          DeleteLocked(id, std::nullopt, clock_->Now()));
      if (live) ++deleted;
      continue;
    }
    // The session is gone (reclaimed by compaction) or moved to another
    // principal: the entry is stale.
    codec::PrincipalKey(principal, id, &index_key);
    rocksdb::WriteBatch batch;
    batch.Delete(cf(kPrincipal), index_key);
    SG_RETURN_IF_ERROR(Commit(&batch, Presence{}, Presence{}));
  }
  return deleted;
}

absl::StatusOr<int64_t> SessionStore::Impl::SweepExpired() {
  absl::MutexLock sweep_lock(&sweep_mu_);
  SG_RETURN_IF_ERROR(CheckOpen());

  // Pause reclamation, then read the clock: a compaction filter made before
  // the pause judges by an earlier time, so it only removes records this
  // sweep would remove too (see Commit()).
  filters_->Pause();
  struct ResumeFilters {
    ExpiryFilterFactory* f;
    ~ResumeFilters() { f->Resume(); }
  } resume{filters_.get()};
  const absl::Time now = clock_->Now();
  const int64_t now_stamp = codec::TimeToStamp(now);

  const rocksdb::Snapshot* snapshot;
  {
    absl::MutexLock lock(&count_mu_);
    snapshot = db_->GetSnapshot();
    recounting_ = true;
    recount_now_ = now;
    recount_delta_auth_.store(0);
    recount_delta_anon_.store(0);
  }
  struct EndRecount {
    Impl* impl;
    const rocksdb::Snapshot* snapshot;
    bool published = false;
    ~EndRecount() {
      if (!published) {
        absl::MutexLock lock(&impl->count_mu_);
        impl->recounting_ = false;
      }
      impl->db_->ReleaseSnapshot(snapshot);
    }
  } end_recount{this, snapshot};

  int64_t live_auth = 0, live_anon = 0, removed = 0;
  std::vector<std::string> expired;
  // Removes the collected candidates, each rechecked under its stripe lock
  // against the current (not the snapshot) state.
  auto remove_expired = [&]() -> absl::Status {
    for (const std::string& id : expired) {
      absl::MutexLock lock(&StripeFor(id));
      SessionRecord record;
      absl::Status read = ReadRecord(id, &record);
      if (absl::IsNotFound(read)) continue;
      SG_RETURN_IF_ERROR(read);
      if (record.expire_time > now) continue;  // revived meanwhile
      rocksdb::WriteBatch batch;
      StageRecord(&record, nullptr, id, &batch);
      SG_RETURN_IF_ERROR(Commit(&batch, Presence::Of(record), Presence{}));
      ++removed;
      expirations_.fetch_add(1, std::memory_order_relaxed);
    }
    expired.clear();
    return absl::OkStatus();
  };

  {
    rocksdb::ReadOptions scan;
    scan.snapshot = snapshot;
    scan.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(scan, cf(kSessions)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view value = View(it->value());
      std::optional<int64_t> stamp = codec::PeekStamp(value);
      if (!stamp) {
        return absl::DataLossError(
            absl::StrCat("malformed session value in ", options_.data_dir));
      }
      if (*stamp > now_stamp) {
        (codec::PeekAuthenticated(value) ? live_auth : live_anon)++;
        continue;
      }
      expired.emplace_back(View(it->key()));
      if (expired.size() >= kSweepBatch) SG_RETURN_IF_ERROR(remove_expired());
    }
    SG_RETURN_IF_ERROR(FromRocks(it->status(), "scanning sessions"));
    SG_RETURN_IF_ERROR(remove_expired());
  }
  {
    absl::MutexLock lock(&count_mu_);
    const int64_t counted = authenticated_.load() + anonymous_.load();
    const int64_t auth = live_auth + recount_delta_auth_.load();
    const int64_t anon = live_anon + recount_delta_anon_.load();
    authenticated_.store(auth);
    anonymous_.store(anon);
    recounting_ = false;
    end_recount.published = true;
    // Every removal since the last recount moved the counters, except the
    // compaction filter's: records it dropped (all expired) are the
    // difference, and leave the count as expirations.
    if (counted > auth + anon) {
      expirations_.fetch_add(counted - (auth + anon),
                             std::memory_order_relaxed);
    }
  }

  // Index entries carry their session's expiry; an expired one whose session
  // was already reclaimed by compaction is removed here.
  {
    SG_ASSIGN_OR_RETURN(
        std::vector<std::string> stale,
        KeysStampedBy(kPrincipal, now_stamp, "scanning principal index"));
    for (const std::string& key : stale) {
      std::optional<codec::PrincipalKeyParts> parts =
          codec::SplitPrincipalKey(key);
      if (!parts) {
        SG_RETURN_IF_ERROR(FromRocks(
            db_->Delete(write_options_, cf(kPrincipal), key), "sweeping"));
        continue;
      }
      absl::MutexLock lock(&StripeFor(parts->id));
      SG_RETURN_IF_ERROR(DeleteIfStillStampedBy(kPrincipal, key, now_stamp));
    }
  }

  // Tombstones past their GC deadline.
  {
    SG_ASSIGN_OR_RETURN(
        std::vector<std::string> old,
        KeysStampedBy(kTombstones, now_stamp, "scanning tombstones"));
    for (const std::string& id : old) {
      absl::MutexLock lock(&StripeFor(id));
      SG_RETURN_IF_ERROR(DeleteIfStillStampedBy(kTombstones, id, now_stamp));
    }
  }

  sweeps_.fetch_add(1, std::memory_order_relaxed);
  return removed;
}

absl::Status SessionStore::Impl::CompactAll() {
  SG_RETURN_IF_ERROR(CheckOpen());
  rocksdb::CompactRangeOptions compact;
  // Rewrite the bottommost level too, so the filter sees every record.
  compact.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForce;
  for (Cf which : {kSessions, kPrincipal, kTombstones}) {
    SG_RETURN_IF_ERROR(FromRocks(
        db_->CompactRange(compact, cf(which), nullptr, nullptr), "compacting"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> SessionStore::Impl::ApplyReplicated(
    const SessionRecord& incoming) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(incoming.id));
  if (incoming.data.size() > options_.max_session_bytes) {
    return absl::InvalidArgumentError("replicated session data too large");
  }
  SG_RETURN_IF_ERROR(CheckPrincipal(incoming.principal));
  if (incoming.version.is_zero()) {
    return absl::InvalidArgumentError("replicated session has no version");
  }
  if (incoming.ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("replicated session has no ttl");
  }
  hlc_.Observe(incoming.version);

  const std::string& id = incoming.id;
  absl::MutexLock lock(&StripeFor(id));
  SG_ASSIGN_OR_RETURN(std::optional<codec::Tombstone> tombstone,
                      ReadTombstone(id));
  if (tombstone && tombstone->version >= incoming.version) return false;

  SessionRecord current;
  absl::Status read = ReadRecord(id, &current);
  if (!read.ok() && !absl::IsNotFound(read)) return read;
  const bool present = read.ok();
  if (present && current.version >= incoming.version) return false;

  const absl::Time now = clock_->Now();
  rocksdb::WriteBatch batch;
  Presence before = present ? Presence::Of(current) : Presence{};
  Presence after;
  if (incoming.expire_time <= now) {
    // The newest write says the session has expired: nothing to keep.
    StageRecord(present ? &current : nullptr, nullptr, id, &batch);
  } else {
    StageRecord(present ? &current : nullptr, &incoming, id, &batch);
    after = Presence::Of(incoming);
  }
  if (tombstone) batch.Delete(cf(kTombstones), id);
  SG_RETURN_IF_ERROR(Commit(&batch, before, after));
  writes_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

absl::StatusOr<bool> SessionStore::Impl::ApplyReplicatedDelete(
    std::string_view id, const Hlc& version) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  if (version.is_zero()) {
    return absl::InvalidArgumentError("replicated delete has no version");
  }
  hlc_.Observe(version);

  absl::MutexLock lock(&StripeFor(id));
  SessionRecord current;
  absl::Status read = ReadRecord(id, &current);
  if (!read.ok() && !absl::IsNotFound(read)) return read;
  const bool present = read.ok();
  if (present && current.version >= version) return false;
  SG_ASSIGN_OR_RETURN(std::optional<codec::Tombstone> tombstone,
                      ReadTombstone(id));
  if (!present && tombstone && tombstone->version >= version) return false;

  rocksdb::WriteBatch batch;
  StageRecord(present ? &current : nullptr, nullptr, id, &batch);
  StageTombstone(id, version, &batch);
  SG_RETURN_IF_ERROR(
      Commit(&batch, present ? Presence::Of(current) : Presence{}, Presence{}));
  if (present) {
    (current.expire_time > clock_->Now() ? deletes_ : expirations_)
        .fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

StoreStats SessionStore::Impl::Stats() const {
  StoreStats stats;
  stats.authenticated_sessions = authenticated_.load();
  stats.anonymous_sessions = anonymous_.load();
  stats.sessions = stats.authenticated_sessions + stats.anonymous_sessions;
  stats.expirations = expirations_.load(std::memory_order_relaxed);
  stats.creates = creates_.load(std::memory_order_relaxed);
  stats.reads = reads_.load(std::memory_order_relaxed);
  stats.writes = writes_.load(std::memory_order_relaxed);
  stats.deletes = deletes_.load(std::memory_order_relaxed);
  stats.sweeps = sweeps_.load(std::memory_order_relaxed);
  stats.evictions = evictions_.Snapshot();
  stats.refused_creates = refused_creates_.load(std::memory_order_relaxed);
  if (closed_.load(std::memory_order_acquire)) return stats;

  auto aggregated = [&](const std::string& property) -> int64_t {
    uint64_t v = 0;
    return db_->GetAggregatedIntProperty(property, &v) ? static_cast<int64_t>(v)
                                                       : 0;
  };
  stats.memtable_bytes =
      aggregated(rocksdb::DB::Properties::kCurSizeAllMemTables);
  stats.table_readers_bytes =
      aggregated(rocksdb::DB::Properties::kEstimateTableReadersMem);
  stats.disk_bytes = DiskBytes();
  stats.block_cache_bytes = static_cast<int64_t>(cache_->GetUsage());
  stats.block_cache_capacity_bytes =
      static_cast<int64_t>(cache_->GetCapacity());
  return stats;
}

// ---------------------------------------------------------------------------
// Eviction and resource controls

absl::Status SessionStore::Impl::Sample(bool authenticated,
                                        std::vector<EvictionCandidate>* sample,
                                        std::vector<std::string>* expired,
                                        bool* full_cycle) {
  sample->clear();
  expired->clear();
  *full_cycle = false;
  const size_t want = static_cast<size_t>(options_.eviction_sample);
  const int64_t now_stamp = codec::TimeToStamp(clock_->Now());
  const std::string start = random_keys_.Next();

  rocksdb::ReadOptions scan;
  scan.fill_cache = false;  // sampling must not push out the working set
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan, cf(kSessions)));
  bool wrapped = false;
  it->Seek(start);
  while (sample->size() < want && expired->size() < kMaxExpiredPerSample) {
    if (!it->Valid()) {
      SG_RETURN_IF_ERROR(FromRocks(it->status(), "sampling sessions"));
      if (wrapped) break;
      wrapped = true;
      it->SeekToFirst();
      continue;
    }
    std::string_view key = View(it->key());
    if (wrapped && key >= start) break;
    std::optional<codec::SessionMeta> meta =
        codec::PeekSessionMeta(View(it->value()));
    if (!meta) {
      return absl::DataLossError(
          absl::StrCat("malformed session value in ", options_.data_dir));
    }
    if (codec::TimeToStamp(meta->expire_time) <= now_stamp) {
      expired->emplace_back(key);
    } else if (meta->authenticated() == authenticated) {
      sample->push_back(EvictionCandidate{std::string(key),
                                          meta->last_access_time,
                                          meta->create_time});
    }
    it->Next();
  }
  *full_cycle = sample->size() < want && expired->size() < kMaxExpiredPerSample;
  return absl::OkStatus();
}

absl::StatusOr<SessionStore::Impl::Removal>
SessionStore::Impl::RemoveForEviction(std::string_view id, bool authenticated,
                                      std::optional<std::string_view> principal,
                                      EvictionReason reason, absl::Time now,
                                      bool expired_only) {
  absl::MutexLock lock(&StripeFor(id));
  SessionRecord record;
  absl::Status read = ReadRecord(id, &record);
  if (absl::IsNotFound(read)) return Removal::kGone;
  SG_RETURN_IF_ERROR(read);
  const bool expired = record.expire_time <= now;
  if (!expired && (expired_only || record.authenticated() != authenticated ||
                   (principal && record.principal != *principal))) {
    return Removal::kGone;  // changed class or owner since it was sampled
  }
  rocksdb::WriteBatch batch;
  StageRecord(&record, nullptr, id, &batch);
  SG_RETURN_IF_ERROR(Commit(&batch, Presence::Of(record), Presence{}));
  if (expired) {
    expirations_.fetch_add(1, std::memory_order_relaxed);
    return Removal::kExpired;
  }
  evictions_.Add(reason, authenticated ? SessionClass::kAuthenticated
                                       : SessionClass::kAnonymous);
  return Removal::kEvicted;
}

absl::StatusOr<EvictionResult> SessionStore::Impl::Evict(
    int64_t count, EvictionReason reason, bool include_authenticated) {
  SG_RETURN_IF_ERROR(CheckOpen());
  EvictionResult result;
  // Set when a full pass found no live anonymous session although the
  // counter (which lags the compaction filter until a sweep) says some exist.
  bool anonymous_exhausted = false;
  std::vector<EvictionCandidate> sample;
  std::vector<std::string> expired;
  const int64_t max_rounds = 4 * count + 16;
  for (int64_t round = 0;
       result.evicted + result.expired < count && round < max_rounds;
       ++round) {
    const bool authenticated = anonymous_exhausted || anonymous_.load() <= 0;
    if (authenticated &&
        (!include_authenticated || authenticated_.load() <= 0)) {
      break;
    }
    bool full_cycle = false;
    SG_RETURN_IF_ERROR(Sample(authenticated, &sample, &expired, &full_cycle));
    const absl::Time now = clock_->Now();
    for (const std::string& id : expired) {
      if (result.evicted + result.expired >= count) break;
      SG_ASSIGN_OR_RETURN(Removal removal,
                          RemoveForEviction(id, authenticated, std::nullopt,
                                            reason, now, /*expired_only=*/true));
      if (removal == Removal::kExpired) ++result.expired;
    }
    if (sample.empty()) {
      if (!expired.empty() || !full_cycle) continue;
      if (authenticated) break;  // nothing live is left
      anonymous_exhausted = true;
      continue;
    }
    // The least recently used of the sample (should it have changed since,
    // the next one). After a full pass the sample holds every live session
    // of the class, so it is consumed in LRU order without another pass.
    while (!sample.empty() && result.evicted + result.expired < count) {
      const size_t i = LeastRecentlyUsed(sample);
      SG_ASSIGN_OR_RETURN(
          Removal removal,
          RemoveForEviction(sample[i].id, authenticated, std::nullopt, reason,
                            now));
      sample.erase(sample.begin() + static_cast<ptrdiff_t>(i));
      if (removal == Removal::kEvicted) ++result.evicted;
      if (removal == Removal::kExpired) ++result.expired;
      if (removal != Removal::kGone && !full_cycle) break;
    }
  }
  return result;
}

absl::Status SessionStore::Impl::EnforcePrincipalCap(
    std::string_view principal, std::string_view keep_id) {
  const int64_t cap = options_.max_sessions_per_principal;
  if (cap <= 0 || principal.empty()) return absl::OkStatus();
  SG_RETURN_IF_ERROR(CheckOpen());
  absl::MutexLock principal_lock(&PrincipalStripeFor(principal));

  const absl::Time now = clock_->Now();
  const int64_t now_stamp = codec::TimeToStamp(now);
  std::vector<EvictionCandidate> live;
  {
    const std::string prefix = codec::PrincipalPrefix(principal);
    const std::string upper = PrefixUpperBound(prefix);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions scan;
    scan.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(scan, cf(kPrincipal)));
    rocksdb::PinnableSlice value;
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      std::optional<std::string_view> id =
          codec::IdFromPrincipalKey(View(it->key()), principal);
      if (!id) continue;
      std::optional<int64_t> stamp = codec::PeekStamp(View(it->value()));
      if (!stamp || *stamp <= now_stamp) continue;
      value.Reset();
      rocksdb::Status s =
          db_->Get(read_options_, cf(kSessions), ToSlice(*id), &value);
      if (s.IsNotFound()) continue;
      SG_RETURN_IF_ERROR(FromRocks(s, "reading session"));
      std::optional<codec::SessionMeta> meta =
          codec::PeekSessionMeta(View(value));
      if (!meta || meta->expire_time <= now || meta->principal != principal) {
        continue;
      }
      live.push_back(EvictionCandidate{std::string(*id),
                                       meta->last_access_time,
                                       meta->create_time});
    }
    SG_RETURN_IF_ERROR(FromRocks(it->status(), "scanning principal index"));
  }
  int64_t excess = static_cast<int64_t>(live.size()) - cap;
  // The session just written stays whatever its stamps say.
  std::erase_if(live, [&](const EvictionCandidate& c) { return c.id == keep_id; });
  while (excess > 0 && !live.empty()) {
    const size_t i = LeastRecentlyUsed(live);
    SG_ASSIGN_OR_RETURN(
        Removal removal,
        RemoveForEviction(live[i].id, /*authenticated=*/true, principal,
                          EvictionReason::kPerPrincipal, now));
    (void)removal;  // evicted, expired meanwhile, or gone: one fewer either way
    live.erase(live.begin() + static_cast<ptrdiff_t>(i));
    --excess;
  }
  return absl::OkStatus();
}

void SessionStore::Impl::EnforcePrincipalCapOrLog(std::string_view principal,
                                                  std::string_view keep_id) {
  // The write that triggered this succeeded; a failure here only delays the
  // cap to the principal's next write.
  absl::Status s = EnforcePrincipalCap(principal, keep_id);
  if (!s.ok()) {
    LogWarn("per-principal session cap not enforced",
            {{"error", s.ToString()}});
  }
}

StoreMemoryUsage SessionStore::Impl::MemoryUsage() const {
  StoreMemoryUsage usage;
  usage.structures_bytes = static_cast<int64_t>(
      sizeof(Impl) + (kStripes + kPrincipalStripes) * sizeof(absl::Mutex));
  if (closed_.load(std::memory_order_acquire)) return usage;
  usage.block_cache_bytes = static_cast<int64_t>(cache_->GetUsage());
  usage.block_cache_capacity_bytes =
      static_cast<int64_t>(cache_->GetCapacity());
  uint64_t v = 0;
  if (db_->GetAggregatedIntProperty(
          rocksdb::DB::Properties::kCurSizeAllMemTables, &v)) {
    usage.memtable_bytes = static_cast<int64_t>(v);
  }
  if (db_->GetAggregatedIntProperty(
          rocksdb::DB::Properties::kEstimateTableReadersMem, &v)) {
    usage.table_readers_bytes = static_cast<int64_t>(v);
  }
  return usage;
}

void SessionStore::Impl::ScaleCaches(double fraction) {
  if (closed_.load(std::memory_order_acquire)) return;
  fraction = std::clamp(fraction, 0.01, 1.0);
  cache_->SetCapacity(
      static_cast<size_t>(fraction * plan_.block_cache_bytes));
  write_buffers_->SetBufferSize(static_cast<size_t>(
      std::max(fraction, 0.5) * plan_.write_buffer_bytes));
}

absl::Status SessionStore::Impl::FlushMemtables(bool wait) {
  SG_RETURN_IF_ERROR(CheckOpen());
  rocksdb::FlushOptions flush;
  flush.wait = wait;
  flush.allow_write_stall = true;
  return FromRocks(db_->Flush(flush, handles_), "flushing memtables");
}

int64_t SessionStore::Impl::DiskBytes() const {
  if (closed_.load(std::memory_order_acquire)) return 0;
  uint64_t sst = 0;
  int64_t bytes = 0;
  if (db_->GetAggregatedIntProperty(
          rocksdb::DB::Properties::kTotalSstFilesSize, &sst)) {
    bytes = static_cast<int64_t>(sst);
  }
  rocksdb::VectorLogPtr wal_files;
  if (db_->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& f : wal_files) {
      if (f->Type() == rocksdb::kAliveLogFile) {
        bytes += static_cast<int64_t>(f->SizeFileBytes());
      }
    }
  }
  return bytes;
}

absl::Status SessionStore::Impl::ReclaimDisk() {
  SG_RETURN_IF_ERROR(FlushMemtables(/*wait=*/true));
  rocksdb::CompactRangeOptions compact;
  // Let automatic compactions run alongside; include the bottommost level
  // (the families have a compaction filter), where deletes finally drop.
  compact.exclusive_manual_compaction = false;
  compact.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (Cf which : {kSessions, kPrincipal}) {
    SG_RETURN_IF_ERROR(FromRocks(
        db_->CompactRange(compact, cf(which), nullptr, nullptr),
        "compacting to reclaim disk"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RawCounts> SessionStore::Impl::CountRaw() const {
  SG_RETURN_IF_ERROR(CheckOpen());
  auto count = [&](Cf which) -> absl::StatusOr<int64_t> {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(which)));
    int64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    SG_RETURN_IF_ERROR(FromRocks(it->status(), "counting"));
    return n;
  };
  RawCounts counts;
  SG_ASSIGN_OR_RETURN(counts.sessions, count(kSessions));
  SG_ASSIGN_OR_RETURN(counts.principal_entries, count(kPrincipal));
  SG_ASSIGN_OR_RETURN(counts.tombstones, count(kTombstones));
  return counts;
}

// ---------------------------------------------------------------------------
// SessionStore: forwards to Impl.

absl::StatusOr<std::unique_ptr<SessionStore>> SessionStore::Open(
    const StoreOptions& options, Clock* clock) {
  if (clock == nullptr) return absl::InvalidArgumentError("clock is null");
  auto impl = std::make_unique<Impl>(options, clock);
  SG_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<SessionStore>(new SessionStore(std::move(impl)));
}

SessionStore::SessionStore(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
SessionStore::~SessionStore() = default;

absl::StatusOr<SessionRecord> SessionStore::Create(CreateParams params) {
  return impl_->Create(std::move(params));
}
absl::StatusOr<SessionRecord> SessionStore::Get(std::string_view id,
                                                bool touch) {
  return impl_->Get(id, touch);
}
absl::StatusOr<SessionRecord> SessionStore::Touch(
    std::string_view id, std::optional<absl::Duration> ttl) {
  return impl_->Touch(id, ttl);
}
absl::StatusOr<SessionRecord> SessionStore::Update(std::string_view id,
                                                   UpdateParams params) {
  return impl_->Update(id, std::move(params));
}
absl::StatusOr<bool> SessionStore::Delete(std::string_view id,
                                          std::optional<Hlc> expected_version) {
  return impl_->Delete(id, std::move(expected_version));
}
absl::StatusOr<SessionRecord> SessionStore::Regenerate(
    std::string_view id, std::optional<std::string> principal) {
  return impl_->Regenerate(id, std::move(principal));
}
absl::StatusOr<std::vector<SessionRecord>> SessionStore::ListByPrincipal(
    std::string_view principal, size_t limit) {
  return impl_->ListByPrincipal(principal, limit);
}
absl::StatusOr<int64_t> SessionStore::DeleteByPrincipal(
    std::string_view principal) {
  return impl_->DeleteByPrincipal(principal);
}
absl::StatusOr<int64_t> SessionStore::SweepExpired() {
  return impl_->SweepExpired();
}
absl::Status SessionStore::CompactAll() { return impl_->CompactAll(); }
absl::StatusOr<bool> SessionStore::ApplyReplicated(
    const SessionRecord& record) {
  return impl_->ApplyReplicated(record);
}
absl::StatusOr<bool> SessionStore::ApplyReplicatedDelete(std::string_view id,
                                                         const Hlc& version) {
  return impl_->ApplyReplicatedDelete(id, version);
}
StoreStats SessionStore::Stats() const { return impl_->Stats(); }
absl::StatusOr<RawCounts> SessionStore::RawCountsForTesting() const {
  return impl_->CountRaw();
}
absl::StatusOr<EvictionResult> SessionStore::Evict(
    int64_t count, EvictionReason reason, bool include_authenticated) {
  return impl_->Evict(count, reason, include_authenticated);
}
void SessionStore::SetRefuseAnonymousCreates(bool refuse) {
  impl_->SetRefuseAnonymousCreates(refuse);
}
bool SessionStore::refusing_anonymous_creates() const {
  return impl_->refusing_anonymous_creates();
}
int64_t SessionStore::session_count() const { return impl_->session_count(); }
StoreMemoryUsage SessionStore::MemoryUsage() const {
  return impl_->MemoryUsage();
}
void SessionStore::ScaleCaches(double fraction) {
  impl_->ScaleCaches(fraction);
}
absl::Status SessionStore::FlushMemtables(bool wait) {
  return impl_->FlushMemtables(wait);
}
int64_t SessionStore::DiskBytes() const { return impl_->DiskBytes(); }
absl::Status SessionStore::ReclaimDisk() { return impl_->ReclaimDisk(); }
absl::Status SessionStore::Close() { return impl_->Close(); }
const StoreOptions& SessionStore::options() const { return impl_->options(); }

}  // namespace sg::store

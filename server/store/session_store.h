// SessionStore: one node's durable session table on RocksDB.
//
// Layout (column families):
//   sessions   id -> SessionRecord (expiry stamped in the value, so reads and
//              the compaction filter can judge it without other state)
//   principal  principal '\0' id -> the session's expiry (exact secondary
//              index; the stamp lets the compaction filter reclaim it too)
//   tombstones id -> version + gc deadline of a deleted session
//   meta       node-level metadata
//
// Thread safety: every public method may be called from any thread, except
// that Close() must not race other calls (drain callers first). Read-modify-
// write operations on one id are serialised by a striped lock; Get without
// touch takes no lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/store/eviction.h"
#include "server/store/hlc.h"

namespace sg::store {

// Ids this store mints are 32 random bytes, base64url without padding:
// exactly 43 characters. Ids a trusted client chose (CreateParams::id) may
// have 22 (132 bits) to 128 characters of the same alphabet.
inline constexpr size_t kSessionIdLength = 43;
inline constexpr size_t kMinSessionIdLength = 22;
inline constexpr size_t kMaxSessionIdLength = 128;
inline constexpr size_t kMaxPrincipalBytes = 256;

// Returns INVALID_ARGUMENT unless `id` is 22-128 base64url characters.
// Cheap; no allocation.
absl::Status ValidateSessionId(std::string_view id);

// 256 bits from the OS CSPRNG (getrandom), base64url encoded without
// padding. Aborts the process if the kernel cannot supply randomness.
std::string NewSessionId();

// One session as stored. `last_access_time` is persisted only together with
// a new expiry; reads that touch return the current time in it.
struct SessionRecord {
  std::string id;
  std::string data;
  std::string principal;  // empty: anonymous
  absl::Time create_time;
  absl::Time last_access_time;
  absl::Time expire_time;
  // The TTL the session was created or last updated with; sliding expiry
  // extends by this much.
  absl::Duration ttl;
  Hlc version;

  bool authenticated() const { return !principal.empty(); }
};

// Checked by Validate(); Open() calls it.
struct StoreOptions {
  std::string data_dir;
  std::string node_id = "node";
  absl::Duration default_ttl = absl::Hours(24);
  absl::Duration max_ttl = absl::Hours(24 * 30);
  // Sliding expiry is persisted only after this fraction of the TTL passed
  // since the last persisted expiry. Range [0, 1]; 0 persists every touch.
  double touch_after = 0.25;
  absl::Duration tombstone_ttl = absl::Minutes(10);
  size_t max_session_bytes = 64 * 1024;
  bool sync_writes = false;
  // The node's memory budget (0: none). Only sizes the RocksDB caches here;
  // the MemoryGovernor enforces it.
  size_t memory_limit_bytes = 0;
  // RocksDB's one memory cap: the block cache, with memtables charged to it
  // through a WriteBufferManager of write_buffer_bytes. 0 derives the size
  // (see PlanRocksDbMemory).
  size_t block_cache_bytes = 0;
  size_t write_buffer_bytes = 0;
  // Caps enforced on write by evicting (0: none). At max_sessions a create
  // first evicts one session (anonymous first, approximately LRU); a new
  // anonymous session is refused (RESOURCE_EXHAUSTED) when every stored
  // session is authenticated. Above max_sessions_per_principal the
  // principal's least recently used session goes.
  int64_t max_sessions = 0;
  int64_t max_sessions_per_principal = 0;
  // Sessions of the wanted class sampled per eviction; larger is closer to
  // exact LRU and costlier. Range [1, 1024].
  int64_t eviction_sample = 16;
  // Seed of the eviction sampler's random seeks; 0 seeds from the OS.
  uint64_t eviction_seed = 0;
  // Set on a cluster node: evictions leave tombstones (and are reported to
  // the eviction observer, which replicates them as deletes), and every
  // tombstone lives at least until the deleted session would have expired,
  // so no repair can bring an evicted or deleted session back.
  bool replicated = false;

  absl::Status Validate() const;
};

// RocksDB memory sizes derived from StoreOptions. Explicit sizes win.
// Otherwise the block cache gets kRocksDbBudgetShare of memory_limit_bytes
// (64 MiB without a limit): RSS also holds gRPC buffers, malloc slack,
// compaction and iterator buffers, and the watermarks must fire before the
// limit. The memtable budget is a quarter of the cache, but at least 16
// max-size sessions and at most half the cache.
inline constexpr double kRocksDbBudgetShare = 0.30;
struct RocksDbMemoryPlan {
  size_t block_cache_bytes = 0;
  size_t write_buffer_bytes = 0;
};
RocksDbMemoryPlan PlanRocksDbMemory(const StoreOptions& options);

struct CreateParams {
  std::string data = {};
  std::string principal = {};                        // empty: anonymous
  std::optional<absl::Duration> ttl = std::nullopt;  // default_ttl when unset
  // Empty: the store mints one. Set: a trusted client's own id (the service
  // allows it only by flag); ALREADY_EXISTS when the id is or was in use.
  std::string id = {};
};

// Fields left unset keep their stored value.
struct UpdateParams {
  std::optional<std::string> data = std::nullopt;
  std::optional<std::string> principal = std::nullopt;  // "": anonymous
  std::optional<Hlc> expected_version = std::nullopt;   // compare-and-set
  std::optional<absl::Duration> ttl = std::nullopt;
};

// Operation counters run from Open. `sessions` (and its split by class) counts
// stored records: counted at Open, recounted exactly by every sweep and
// adjusted by every write since, so an expired record counts until a sweep
// removes it. The byte figures are RocksDB's: SST files plus live WAL, block
// cache usage (memtables are charged to it), memtables, table readers.
struct StoreStats {
  int64_t sessions = 0;
  int64_t authenticated_sessions = 0;
  int64_t anonymous_sessions = 0;
  int64_t disk_bytes = 0;
  int64_t block_cache_bytes = 0;
  int64_t memtable_bytes = 0;
  int64_t table_readers_bytes = 0;
  int64_t expirations = 0;  // sessions removed by sweeps
  // Sessions this node began storing: its own Creates, and replicated
  // writes of ids it did not hold.
  int64_t creates = 0;
  int64_t reads = 0;        // Get calls that found a live session
  // Persisted changes to existing sessions: Update, Regenerate, touches that
  // persisted, applied replicated writes.
  int64_t writes = 0;
  int64_t deletes = 0;  // live sessions deleted (Delete, DeleteByPrincipal)
  int64_t sweeps = 0;   // completed SweepExpired passes
  EvictionStats evictions;
  // Anonymous creates refused while SetRefuseAnonymousCreates(true) or at
  // max_sessions with only authenticated sessions stored.
  int64_t refused_creates = 0;
  int64_t block_cache_capacity_bytes = 0;
};
// Accounting: every session leaves the count through exactly one of
// `evictions`, `expirations` (sweeps, plus expired records an eviction or a
// delete came across, plus, at the next sweep, those the compaction filter
// reclaimed) and `deletes`. So on one node without replication, from Open:
//   creates == (sessions - sessions at Open) + evictions.total + expirations
//              + deletes
// holds after every sweep (between sweeps, `sessions` may still count
// records the compaction filter already dropped).

// Cheap memory figures for the governor (no file system access).
struct StoreMemoryUsage {
  int64_t block_cache_bytes = 0;  // usage, memtables included
  int64_t block_cache_capacity_bytes = 0;
  int64_t memtable_bytes = 0;
  int64_t table_readers_bytes = 0;  // outside the cache
  // The store's own structures outside RocksDB (locks, counters).
  int64_t structures_bytes = 0;
  // What the store holds in total: cache (memtables included) + table
  // readers + structures.
  int64_t total() const {
    return block_cache_bytes + table_readers_bytes + structures_bytes;
  }
};

// What one node holds for an id, read without coordination.
struct TombstoneInfo {
  Hlc version;
  absl::Time gc_deadline;
};
struct LocalEntry {
  std::optional<SessionRecord> session;  // live sessions only
  std::optional<TombstoneInfo> tombstone;
};

// One page of the key-ordered scan (ListSessions).
struct ScanOptions {
  // Exclusive: the scan starts after this id (empty: at the first).
  std::string after;
  // Entries returned at most (live sessions, plus tombstones when asked).
  size_t limit = 100;
  // Without it, returned records carry no data.
  bool include_data = true;
  // Also return tombstones before their GC deadline (a cluster's merge
  // needs them: a member that missed a delete must not make it listed).
  bool include_tombstones = false;
};
struct ScanEntry {
  std::string id;
  LocalEntry entry;  // exactly one of session, tombstone set
};
struct ScanPage {
  std::vector<ScanEntry> entries;  // id order
  // Set when the scan stopped before the end (limit reached, or
  // kMaxScanExamined keys read): ids after resume_after are unseen.
  bool more = false;
  std::string resume_after;
};
// Keys one scan reads at most, expired ones included, so a page over a
// family full of expired records still answers promptly.
inline constexpr size_t kMaxScanExamined = 10000;

// A session this node evicted (memory or caps), for replication.
struct EvictedSession {
  std::string id;
  Hlc version;  // the tombstone's
  absl::Time expire_time;
};

struct EvictionResult {
  int64_t evicted = 0;  // live sessions evicted (counted in evictions)
  int64_t expired = 0;  // expired records found and removed (expirations)
};

// Raw key counts per column family, expired or not (tests and debugging).
struct RawCounts {
  int64_t sessions = 0;
  int64_t principal_entries = 0;
  int64_t tombstones = 0;
};

class SessionStore final {
 public:
  // Opens (creating if needed) the store under options.data_dir. Fails with
  // a clear message when the directory is locked by another process,
  // unreadable, or corrupt. `clock` must outlive the store.
  static absl::StatusOr<std::unique_ptr<SessionStore>> Open(
      const StoreOptions& options, Clock* clock);

  ~SessionStore();
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // Errors: INVALID_ARGUMENT for oversized data/principal or a bad TTL.
  absl::StatusOr<SessionRecord> Create(CreateParams params);

  // Creates each entry as Create would: one result per entry, in order, and
  // an entry's error fails that entry alone. The sessions whose ids the
  // store picks are written in one RocksDB WriteBatch (one WAL append, one
  // sync under sync_writes); a failed write fails each of them.
  std::vector<absl::StatusOr<SessionRecord>> CreateMany(
      std::vector<CreateParams> params);

  // NOT_FOUND when absent or expired (an expired session is never returned);
  // INVALID_ARGUMENT for a malformed id. With `touch`, slides the expiry as
  // Touch does. Without it, takes no lock and writes nothing.
  absl::StatusOr<SessionRecord> Get(std::string_view id, bool touch);

  // Slides the expiry to now + the session's TTL (or `ttl` when given, which
  // also becomes the session's TTL). Persists, with a new version, only when
  // the new expiry is at least touch_after * ttl past the persisted one (or
  // the TTL changed), so most touches are reads. The returned record always
  // carries the slid expiry and last_access_time = now; when nothing was
  // persisted, the stored expiry stays up to touch_after * ttl earlier until
  // a later touch persists. NOT_FOUND when absent or expired;
  // INVALID_ARGUMENT for a bad id or TTL.
  absl::StatusOr<SessionRecord> Touch(std::string_view id,
                                      std::optional<absl::Duration> ttl);

  // FAILED_PRECONDITION when expected_version is set and differs; NOT_FOUND
  // when absent or expired. Every update also slides the expiry to now + ttl
  // (the new `ttl` when given) and assigns a new version.
  absl::StatusOr<SessionRecord> Update(std::string_view id,
                                       UpdateParams params);

  // Returns false when there was no live session (an expired leftover is
  // still removed). Leaves a tombstone for tombstone_ttl so older replicated
  // writes cannot resurrect the id. FAILED_PRECONDITION when
  // expected_version is set and differs from a live session's version.
  absl::StatusOr<bool> Delete(std::string_view id,
                              std::optional<Hlc> expected_version);

  // New id with the same data and principal (or `principal` when given; ""
  // makes it anonymous); the old id is deleted (tombstoned) in the same
  // atomic write. The new session keeps create_time and ttl and expires at
  // now + ttl. NOT_FOUND when absent or expired.
  absl::StatusOr<SessionRecord> Regenerate(
      std::string_view id, std::optional<std::string> principal);

  // Live sessions of a principal, at most `limit` (0 returns none), in id
  // order. INVALID_ARGUMENT for an empty or oversized principal.
  absl::StatusOr<std::vector<SessionRecord>> ListByPrincipal(
      std::string_view principal, size_t limit);

  // Deletes every session of the principal (tombstoning each); returns how
  // many live sessions were deleted. Also drops stale index entries.
  absl::StatusOr<int64_t> DeleteByPrincipal(std::string_view principal);

  // One sweep: deletes expired sessions (and their index entries) and
  // garbage-collects old tombstones. Returns the sessions removed.
  absl::StatusOr<int64_t> SweepExpired();

  // Forces a manual compaction of all data (tests use it to prove the
  // compaction filter drops expired records).
  absl::Status CompactAll();

  // --- The coordinator's part of a write (nothing is stored) ---

  // Validates `params`, applies the emergency refusal, mints the id (or
  // takes params.id) and stamps the version and times. The result is what
  // ApplyReplicated stores on every owner. Errors as Create.
  absl::StatusOr<SessionRecord> PrepareCreate(CreateParams params);
  // The record `current` becomes under `params`, with a new version; checks
  // sizes, TTL and expected_version (FAILED_PRECONDITION) as Update does.
  absl::StatusOr<SessionRecord> PrepareUpdate(const SessionRecord& current,
                                              UpdateParams params);
  // Slides `record`'s expiry to now + ttl (its own TTL when unset) and
  // returns whether it must be persisted (see StoreOptions::touch_after);
  // when it must, also stamps a new version. INVALID_ARGUMENT for a bad TTL.
  absl::StatusOr<bool> PrepareTouch(SessionRecord* record,
                                    std::optional<absl::Duration> ttl);
  // A fresh version from this node's clock (deletes, regenerations).
  Hlc NextVersion();

  // --- The replica's part ---

  // Applies a write made elsewhere, last-writer-wins on version. Deletes
  // win: a no-op (returns false) whenever a tombstone of the id exists, and
  // when the stored session carries a version >= record.version. A newer
  // record that is already expired removes the stored one. At max_sessions
  // a new record first evicts. Returns true when applied.
  // With `expected` (a compare-and-set's write, whose coordinator read
  // `expected` from a quorum), refuses when a newer version is stored and
  // otherwise applies, so a replica that is only behind (it was down, or a
  // write timed out on it) is repaired rather than counted as a refusal.
  // Each replica still accepts one write per expected version: the one it
  // applies is newer than `expected`.
  absl::StatusOr<bool> ApplyReplicated(
      const SessionRecord& record,
      std::optional<Hlc> expected = std::nullopt);

  // Applies a sliding expiry made elsewhere: moves the stored session's
  // expiry, last access and TTL forward (never back), keeping its data and
  // version. False when absent, tombstoned or not later.
  absl::StatusOr<bool> ApplyReplicatedTouch(std::string_view id,
                                            absl::Time expire_time,
                                            absl::Time last_access_time,
                                            absl::Duration ttl);

  // Applies a delete made elsewhere at `version`: removes the stored session
  // whatever its version (ids are never reused, so a delete is terminal) and
  // leaves or advances a tombstone that lives until the latest of
  // tombstone_ttl from now, the stored session's expiry and
  // `deleted_expire_time`. Returns true when a live session was removed.
  // With `expected`, refuses when a newer version or a tombstone is stored
  // (another write won here) and otherwise deletes; returns whether it
  // applied.
  absl::StatusOr<bool> ApplyReplicatedDelete(
      std::string_view id, const Hlc& version,
      absl::Time deleted_expire_time = absl::InfinitePast(),
      std::optional<Hlc> expected = std::nullopt);

  // This node's own record or tombstone of `id`, without coordination.
  absl::StatusOr<LocalEntry> ReadLocal(std::string_view id);

  // Calls `fn` for every live session and every tombstone before its GC
  // deadline, in no particular order (anti-entropy, rebalancing). `fn`
  // returns false to stop. Reads a consistent snapshot; no cache fill.
  absl::Status ForEachEntry(
      const std::function<bool(std::string_view id, const SessionRecord* session,
                               const TombstoneInfo* tombstone)>& fn);

  // Live sessions (and, if asked, tombstones) with ids after
  // options.after, in id order, from one snapshot; expired sessions and
  // collectable tombstones are skipped. INVALID_ARGUMENT when limit is 0.
  absl::StatusOr<ScanPage> ScanSessions(const ScanOptions& options);

  // Called (on the evicting thread, without store locks held) for every
  // eviction when options.replicated is set. Set once, before use.
  void SetEvictionObserver(std::function<void(const EvictedSession&)> observer);

  // --- Hinted writes (their own column family; values opaque here) ---

  // `value` must start with an 8-byte stamp (codec::kStampBytes): the
  // deadline after which the compaction filter may drop the hint.
  absl::Status PutHint(std::string_view key, std::string_view value);
  absl::Status DeleteHint(std::string_view key);
  // Calls `fn` for hints whose key starts with `prefix`, in key order, until
  // it returns false.
  absl::Status ScanHints(
      std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>&
          fn);

  // Evicts up to `count` live sessions for `reason`: anonymous ones while
  // any remain, then (if `include_authenticated`) authenticated ones; inside
  // a class, the least recently used of a random sample of `eviction_sample`
  // (see eviction.h). Expired records met on the way are removed too and
  // count towards `count` (as expirations). On one node evictions leave no
  // tombstone; with options.replicated they do, and are reported to the
  // eviction observer so the cluster deletes them everywhere. Stops early when
  // nothing evictable is left. Thread-safe.
  absl::StatusOr<EvictionResult> Evict(int64_t count, EvictionReason reason,
                                       bool include_authenticated = true);

  // While `refuse` is set, Create of an anonymous session fails with
  // RESOURCE_EXHAUSTED; authenticated creates and all other calls proceed.
  // Thread-safe.
  void SetRefuseAnonymousCreates(bool refuse);
  bool refusing_anonymous_creates() const;

  // Sessions stored, by the class counters (cheap; see StoreStats).
  int64_t session_count() const;

  // Memory figures for the governor; cheap, thread-safe. Zeros once closed.
  StoreMemoryUsage MemoryUsage() const;

  // Sets the block cache capacity to `fraction` (0, 1] of the planned size
  // (entries over it are dropped at once); the memtable budget keeps its
  // planned size (see resource_usage.cc). Thread-safe.
  void ScaleBlockCache(double fraction);

  // Schedules a flush of every memtable (`wait`: and waits for it).
  absl::Status FlushMemtables(bool wait);

  // SST files plus live WAL, in bytes. Lists the WAL directory.
  int64_t DiskBytes() const;

  // Flushes memtables and compacts the session and index families so that
  // space of removed sessions is returned to the file system. Slow; call it
  // from a background thread.
  absl::Status ReclaimDisk();

  // Counts are exact as of the last sweep plus writes since. Thread-safe;
  // reads RocksDB properties, so not for a hot path.
  StoreStats Stats() const;

  // Scans every column family and counts raw keys. O(n); tests only.
  absl::StatusOr<RawCounts> RawCountsForTesting() const;

  // Flushes memtables and closes the DB. Idempotent (a second call returns
  // OK); every other method fails with FAILED_PRECONDITION afterwards. Must
  // not run concurrently with other calls.
  absl::Status Close();

  const StoreOptions& options() const;

 private:
  class Impl;
  explicit SessionStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sg::store

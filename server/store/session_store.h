// SessionStore: one node's durable session table on RocksDB.
//
// Layout (column families):
//   sessions   id -> SessionRecord (expiry stamped in the value, so reads and
//              the compaction filter can judge it without other state)
//   principal  principal '\0' id -> empty (exact secondary index)
//   tombstones id -> version + gc deadline of a deleted session
//   meta       node-level metadata
//
// Thread safety: every public method may be called from any thread.
// Read-modify-write operations on one id are serialised by a striped lock.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/store/hlc.h"

namespace sg::store {

// Ids are 32 random bytes, base64url without padding: exactly 43 characters.
inline constexpr size_t kSessionIdLength = 43;
inline constexpr size_t kMaxPrincipalBytes = 256;

// Returns INVALID_ARGUMENT unless `id` has the length and alphabet of an id
// this store mints.
absl::Status ValidateSessionId(std::string_view id);

// 256 bits from the OS CSPRNG (getrandom), base64url encoded.
std::string NewSessionId();

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

struct StoreOptions {
  std::string data_dir;
  std::string node_id = "node";
  absl::Duration default_ttl = absl::Hours(24);
  absl::Duration max_ttl = absl::Hours(24 * 30);
  // Sliding expiry is persisted only after this fraction of the TTL passed
  // since the last persisted expiry.
  double touch_after = 0.25;
  absl::Duration tombstone_ttl = absl::Minutes(10);
  size_t max_session_bytes = 64 * 1024;
  bool sync_writes = false;
  // RocksDB block cache, with memtables charged to it.
  size_t block_cache_bytes = 64 << 20;
  size_t write_buffer_bytes = 16 << 20;

  absl::Status Validate() const;
};

struct CreateParams {
  std::string data;
  std::string principal;
  std::optional<absl::Duration> ttl;  // default_ttl when unset
};

struct UpdateParams {
  std::optional<std::string> data;
  std::optional<std::string> principal;
  std::optional<Hlc> expected_version;  // compare-and-set when set
  std::optional<absl::Duration> ttl;
};

struct StoreStats {
  int64_t sessions = 0;
  int64_t authenticated_sessions = 0;
  int64_t anonymous_sessions = 0;
  int64_t disk_bytes = 0;
  int64_t block_cache_bytes = 0;
  int64_t memtable_bytes = 0;
  int64_t table_readers_bytes = 0;
  int64_t expirations = 0;
  int64_t creates = 0;
  int64_t reads = 0;
  int64_t writes = 0;
  int64_t deletes = 0;
  int64_t sweeps = 0;
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

  // NOT_FOUND when absent or expired (an expired session is never returned).
  // With `touch`, slides the expiry as Touch does.
  absl::StatusOr<SessionRecord> Get(std::string_view id, bool touch);

  // Slides the expiry by the session's TTL (or `ttl` when given). Persists
  // only when touch_after * ttl has passed since the last persisted expiry;
  // the returned record always carries the effective expiry.
  absl::StatusOr<SessionRecord> Touch(std::string_view id,
                                      std::optional<absl::Duration> ttl);

  // FAILED_PRECONDITION when expected_version is set and differs.
  absl::StatusOr<SessionRecord> Update(std::string_view id,
                                       UpdateParams params);

  // Returns false when there was no live session. Leaves a tombstone for
  // tombstone_ttl so older writes cannot resurrect the id.
  absl::StatusOr<bool> Delete(std::string_view id,
                              std::optional<Hlc> expected_version);

  // New id with the same data and principal (or `principal` when given);
  // the old id is deleted (tombstoned). NOT_FOUND when absent.
  absl::StatusOr<SessionRecord> Regenerate(
      std::string_view id, std::optional<std::string> principal);

  // Live sessions of a principal, at most `limit`.
  absl::StatusOr<std::vector<SessionRecord>> ListByPrincipal(
      std::string_view principal, size_t limit);

  // Deletes every session of the principal; returns how many.
  absl::StatusOr<int64_t> DeleteByPrincipal(std::string_view principal);

  // One sweep: deletes expired sessions (and their index entries) and
  // garbage-collects old tombstones. Returns the sessions removed.
  absl::StatusOr<int64_t> SweepExpired();

  // Forces a manual compaction of all data (tests use it to prove the
  // compaction filter drops expired records).
  absl::Status CompactAll();

  // Counts are exact as of the last sweep plus writes since.
  StoreStats Stats() const;

  // Flushes memtables and closes the DB. Idempotent; later calls fail with
  // FAILED_PRECONDITION.
  absl::Status Close();

  const StoreOptions& options() const;

 private:
  class Impl;
  explicit SessionStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sg::store

// The connect-redis importer: copies every `<prefix><id>` session from
// Redis into SessionGrid under the same id, so express-session cookies
// issued before a migration keep working. The same rules as the npm
// package's importer (integrations/express/lib/import-redis.js):
//   - the key's value (express-session's JSON) becomes the session data,
//     byte for byte; its remaining TTL (PTTL, rounded up to a second) the
//     session's TTL; a key without a TTL gets `default_ttl`, or the
//     server's --default-ttl when that is zero;
//   - skipped, and counted by reason: "expired" (gone between SCAN and
//     GET, or under a millisecond left), "bad_id" (not 22-128 base64url characters), "not_json_object",
//     "wrong_type" (not a string key), "exists" (the id is live or deleted
//     in SessionGrid: never overwritten, so re-running is safe),
//     "refused_invalid" and "refused_memory" (the server refused the entry);
//   - needs the server's --allow-client-ids (PERMISSION_DENIED otherwise,
//     reported as such).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/redis/redis_client.h"
#include "common/clock.h"
#include "sessiongrid/client.h"

namespace sg::client {

// Plain data with defaults; Validate() before use (ImportRedis does).
struct RedisImportOptions {
  // connect-redis' key prefix.
  std::string prefix = "sess:";
  // Read and check everything, write nothing (counts what would be
  // imported as imported; "exists" cannot be known without writing).
  bool dry_run = false;
  // TTL of keys without one (connect-redis' disableTTL); zero: the
  // server's --default-ttl.
  absl::Duration default_ttl = absl::ZeroDuration();
  // Keys per SCAN page and sessions per BatchCreate (1..1000).
  int batch = 500;
  // SCAN cursor to start from: "0" for the beginning, or the cursor an
  // interrupted run printed.
  std::string cursor = "0";
  // Deadline of each BatchCreate.
  absl::Duration rpc_timeout = absl::Seconds(10);

  // INVALID_ARGUMENT naming the field. No I/O.
  absl::Status Validate() const;
};

// What a run did so far.
struct RedisImportStats {
  int64_t scanned = 0;   // keys read from Redis
  int64_t imported = 0;  // sessions created (would be, in a dry run)
  std::map<std::string, int64_t> skipped;  // by reason
  // The SCAN cursor after the last page that was fully handled: where a
  // resumed run starts ("0" with done: nothing left).
  std::string cursor = "0";
  bool done = false;
  absl::Duration elapsed;

  int64_t skipped_total() const;
  // One line of JSON, the npm importer's summary format:
  // {"scanned":N,"imported":N,"skipped":{...},"cursor":"C","done":B,
  //  "elapsedMs":N,"dryRun":B}
  std::string ToJson(bool dry_run) const;
};

// Whether `id` is an id SessionGrid accepts from an application:
// 22-128 characters of [A-Za-z0-9_-].
bool IsImportableId(std::string_view id);

// Runs the import from `redis` into `sessions` (not used in a dry run)
// until SCAN completes, `*stop` turns true (checked between pages; may be
// null), or an error. `progress` runs after each page. `*stats` is kept up
// to date, so after an error or a stop its cursor resumes the run. Errors:
// Redis I/O and protocol errors as RedisClient returns them; the
// BatchCreate RPC's error; PERMISSION_DENIED naming --allow-client-ids.
// Not thread-safe; the clients must outlive the call.
absl::Status ImportRedis(
    redis::RedisClient& redis, const Client* sessions,
    const RedisImportOptions& options, const Clock& clock,
    const std::atomic<bool>* stop,
    absl::FunctionRef<void(const RedisImportStats&)> progress,
    RedisImportStats* stats);

}  // namespace sg::client

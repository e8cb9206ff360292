// Binary encodings of the values in the store's column families.
//
// Every value starts with an 8-byte little-endian stamp (Unix microseconds):
// the expiry of a session or index entry, the GC deadline of a tombstone. The
// compaction filter and the read path judge a value by that stamp alone.
//
// sessions value:   stamp | flags | varints(create, last_access, ttl,
//                   hlc.wall, hlc.logical) | len+node_id | len+principal | data
// principal value:  stamp (the session's expiry)
// tombstones value: stamp (gc deadline) | varints(hlc.wall, hlc.logical) |
//                   node_id
//
// Thread safety: all functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/store/hlc.h"
#include "server/store/session_store.h"

namespace sg::store::codec {

inline constexpr size_t kStampBytes = 8;

// Stamp helpers. Times are stored as Unix microseconds.
int64_t TimeToStamp(absl::Time t);
absl::Time StampToTime(int64_t micros);
// The stamp at the head of `value`, or nullopt when the value is too short.
std::optional<int64_t> PeekStamp(std::string_view value);

// Whether a sessions value belongs to an authenticated session, read from the
// flags byte without decoding the rest. False for a malformed value.
bool PeekAuthenticated(std::string_view value);

// The header fields of a sessions-CF value, decoded without copying the data
// (the eviction sampler reads many values and needs only these).
struct SessionMeta {
  absl::Time expire_time;
  absl::Time create_time;
  absl::Time last_access_time;
  std::string_view principal;  // points into the value
  bool authenticated() const { return !principal.empty(); }
};
// nullopt when the value is malformed.
std::optional<SessionMeta> PeekSessionMeta(std::string_view value);

// Appends the sessions-CF value of `record` (everything but the id) to `out`
// after clearing it.
void EncodeRecord(const SessionRecord& record, std::string* out);

// Decodes a sessions-CF value. DATA_LOSS when the value is malformed.
absl::Status DecodeRecord(std::string_view id, std::string_view value,
                          SessionRecord* out);

// The principal-index value: the session's expiry.
void EncodeIndexValue(absl::Time expire_time, std::string* out);

struct Tombstone {
  Hlc version;
  absl::Time gc_deadline;
};
void EncodeTombstone(const Tombstone& tombstone, std::string* out);
absl::Status DecodeTombstone(std::string_view value, Tombstone* out);

// Principal-index keys: principal '\0' id. Ids hold no NUL, so a key splits
// at its last NUL even when the principal itself holds NUL bytes.
void PrincipalKey(std::string_view principal, std::string_view id,
                  std::string* out);
// The scan prefix of a principal's keys: principal '\0'.
std::string PrincipalPrefix(std::string_view principal);
// Returns the id of `key` when it belongs to exactly `principal`.
std::optional<std::string_view> IdFromPrincipalKey(std::string_view key,
                                                   std::string_view principal);
// Splits any index key; nullopt when the key is malformed.
struct PrincipalKeyParts {
  std::string_view principal;
  std::string_view id;
};
std::optional<PrincipalKeyParts> SplitPrincipalKey(std::string_view key);

}  // namespace sg::store::codec

#include "server/store/store_impl.h"

namespace sg::store {

// The replica's part of every write: last-writer-wins with tombstones.

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

}  // namespace sg::store

// The replica's part of every write (last-writer-wins, deletes win), the
// uncoordinated reads replication needs, and the hinted-write family.
#include "server/store/store_impl.h"

namespace sg::store {

absl::StatusOr<bool> SessionStore::Impl::ApplyReplicated(
    const SessionRecord& incoming, std::optional<Hlc> expected) {
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
  const absl::Time now = clock_->Now();
  bool made_room = false;
  for (;;) {
    absl::ReleasableMutexLock lock(&StripeFor(id));
    // Deletes win: ids are never reused, so a tombstone is terminal.
    SG_ASSIGN_OR_RETURN(std::optional<codec::Tombstone> tombstone,
                        ReadTombstone(id));
    if (tombstone) return false;

    SessionRecord current;
    absl::Status read = ReadRecord(id, &current);
    if (!read.ok() && !absl::IsNotFound(read)) return read;
    const bool present = read.ok();
    if (expected && present && current.version > *expected) {
      return false;  // a compare-and-set's write meets a newer one here
    }
    if (present && current.version >= incoming.version) return false;
    const bool inserts = !present && incoming.expire_time > now;
    if (inserts && !made_room && options_.max_sessions > 0 &&
        session_count() >= options_.max_sessions) {
      // Eviction takes stripe locks of its own: release ours, then retry.
      lock.Release();
      SG_RETURN_IF_ERROR(MakeRoomForOne(/*anonymous=*/false));
      made_room = true;
      continue;
    }

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
    SG_RETURN_IF_ERROR(Commit(&batch, before, after));
    // A record this node did not hold counts as a create here, so the
    // node's accounting identity holds on every replica.
    (inserts ? creates_ : writes_).fetch_add(1, std::memory_order_relaxed);
    if (present && !after.present) {
      expirations_.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
  }
}

absl::StatusOr<bool> SessionStore::Impl::ApplyReplicatedDelete(
    std::string_view id, const Hlc& version, absl::Time deleted_expire_time,
    std::optional<Hlc> expected) {
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
  SG_ASSIGN_OR_RETURN(std::optional<codec::Tombstone> tombstone,
                      ReadTombstone(id));
  if (expected && ((present && current.version > *expected) || tombstone)) {
    return false;  // a newer write or a delete already won here
  }
  absl::Time expire = deleted_expire_time;
  if (present) expire = std::max(expire, current.expire_time);
  Hlc tombstone_version = version;
  if (tombstone) {
    // Already deleted: keep the tombstone, only ever extending it.
    if (!present && tombstone->version >= version &&
        tombstone->gc_deadline >= expire) {
      return false;
    }
    tombstone_version = std::max(tombstone->version, version);
    expire = std::max(expire, tombstone->gc_deadline);
  }

  rocksdb::WriteBatch batch;
  StageRecord(present ? &current : nullptr, nullptr, id, &batch);
  StageTombstone(id, tombstone_version, &batch, expire);
  SG_RETURN_IF_ERROR(
      Commit(&batch, present ? Presence::Of(current) : Presence{}, Presence{}));
  const bool live = present && current.expire_time > clock_->Now();
  if (present) {
    (live ? deletes_ : expirations_).fetch_add(1, std::memory_order_relaxed);
  }
  return expected ? true : live;  // a compare-and-set counts where it applied
}

absl::StatusOr<bool> SessionStore::Impl::ApplyReplicatedTouch(
    std::string_view id, absl::Time expire_time, absl::Time last_access_time,
    absl::Duration ttl) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  if (ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("replicated touch has no ttl");
  }
  absl::MutexLock lock(&StripeFor(id));
  SessionRecord current;
  absl::Status read = ReadRecord(id, &current);
  if (absl::IsNotFound(read)) return false;
  SG_RETURN_IF_ERROR(read);
  const absl::Time now = clock_->Now();
  if (current.expire_time <= now || expire_time <= current.expire_time) {
    return false;
  }
  SessionRecord touched = current;
  touched.expire_time = expire_time;
  touched.last_access_time = std::max(current.last_access_time, last_access_time);
  touched.ttl = ttl;
  rocksdb::WriteBatch batch;
  StageRecord(&current, &touched, id, &batch);
  SG_RETURN_IF_ERROR(
      Commit(&batch, Presence::Of(current), Presence::Of(touched)));
  writes_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

absl::StatusOr<LocalEntry> SessionStore::Impl::ReadLocal(std::string_view id) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  LocalEntry entry;
  SessionRecord record;
  absl::Status read = ReadRecord(id, &record);
  if (!read.ok() && !absl::IsNotFound(read)) return read;
  if (read.ok() && record.expire_time > clock_->Now()) {
    entry.session = std::move(record);
  }
  SG_ASSIGN_OR_RETURN(std::optional<codec::Tombstone> tombstone,
                      ReadTombstone(id));
  if (tombstone) {
    entry.tombstone = TombstoneInfo{tombstone->version, tombstone->gc_deadline};
  }
  return entry;
}

absl::Status SessionStore::Impl::ForEachEntry(
    const std::function<bool(std::string_view, const SessionRecord*,
                             const TombstoneInfo*)>& fn) {
  SG_RETURN_IF_ERROR(CheckOpen());
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* snapshot;
    ~Release() { db->ReleaseSnapshot(snapshot); }
  } release{db_, snapshot};
  rocksdb::ReadOptions scan;
  scan.snapshot = snapshot;
  scan.fill_cache = false;
  const absl::Time now = clock_->Now();
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan, cf(kSessions)));
    SessionRecord record;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      SG_RETURN_IF_ERROR(
          codec::DecodeRecord(View(it->key()), View(it->value()), &record));
      if (record.expire_time <= now) continue;
      if (!fn(record.id, &record, nullptr)) return absl::OkStatus();
    }
    SG_RETURN_IF_ERROR(FromRocks(it->status(), "scanning sessions"));
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan, cf(kTombstones)));
  codec::Tombstone t;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    SG_RETURN_IF_ERROR(codec::DecodeTombstone(View(it->value()), &t));
    if (t.gc_deadline <= now) continue;
    TombstoneInfo info{t.version, t.gc_deadline};
    if (!fn(View(it->key()), nullptr, &info)) return absl::OkStatus();
  }
  return FromRocks(it->status(), "scanning tombstones");
}

absl::Status SessionStore::Impl::PutHint(std::string_view key,
                                         std::string_view value) {
  SG_RETURN_IF_ERROR(CheckOpen());
  if (value.size() < codec::kStampBytes) {
    return absl::InvalidArgumentError("a hint value starts with its deadline");
  }
  return FromRocks(
      db_->Put(write_options_, cf(kHints), ToSlice(key), ToSlice(value)),
      "writing hint");
}

absl::Status SessionStore::Impl::DeleteHint(std::string_view key) {
  SG_RETURN_IF_ERROR(CheckOpen());
  return FromRocks(db_->Delete(write_options_, cf(kHints), ToSlice(key)),
                   "deleting hint");
}

absl::Status SessionStore::Impl::ScanHints(
    std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn) {
  SG_RETURN_IF_ERROR(CheckOpen());
  const std::string upper = PrefixUpperBound(std::string(prefix));
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;
  if (!upper.empty()) scan.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan, cf(kHints)));
  for (it->Seek(ToSlice(prefix)); it->Valid(); it->Next()) {
    if (!fn(View(it->key()), View(it->value()))) break;
  }
  return FromRocks(it->status(), "scanning hints");
}

}  // namespace sg::store

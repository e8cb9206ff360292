#include "server/store/store_impl.h"

namespace sg::store {

// Principal operations: list, log out everywhere, the per-principal cap.

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

}  // namespace sg::store

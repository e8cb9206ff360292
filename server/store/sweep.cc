#include "server/store/store_impl.h"

namespace sg::store {

// Expiry sweeps and forced compaction.

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

}  // namespace sg::store

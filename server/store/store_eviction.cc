#include "server/store/store_impl.h"

namespace sg::store {


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
  EvictedSession evicted;
  {
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
    const bool replicate = !expired && options_.replicated;
    if (replicate) {
      // In a cluster an eviction is a delete: the tombstone keeps repair
      // from copying the session back from another owner.
      evicted = EvictedSession{std::string(id), hlc_.Next(), record.expire_time};
      StageTombstone(id, evicted.version, &batch, record.expire_time);
    }
    SG_RETURN_IF_ERROR(Commit(&batch, Presence::Of(record), Presence{}));
    if (expired) {
      expirations_.fetch_add(1, std::memory_order_relaxed);
      return Removal::kExpired;
    }
    evictions_.Add(reason, authenticated ? SessionClass::kAuthenticated
                                         : SessionClass::kAnonymous);
    if (!replicate) return Removal::kEvicted;
  }
  if (auto observe = observer(); observe != nullptr && *observe) {
    (*observe)(evicted);
  }
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


}  // namespace sg::store

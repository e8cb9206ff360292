#include "server/store/store_impl.h"

namespace sg::store {

// The key-ordered scan behind ListSessions: the sessions family (and the
// tombstones family, merged in id order, when asked) from one snapshot.

absl::StatusOr<ScanPage> SessionStore::ScanSessions(const ScanOptions& options) {
  return impl_->ScanSessions(options);
}

absl::StatusOr<ScanPage> SessionStore::Impl::ScanSessions(
    const ScanOptions& options) {
  SG_RETURN_IF_ERROR(CheckOpen());
  if (options.limit == 0) {
    return absl::InvalidArgumentError("a scan needs a limit of at least 1");
  }
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* snapshot;
    ~Release() { db->ReleaseSnapshot(snapshot); }
  } release{db_, snapshot};
  rocksdb::ReadOptions scan;
  scan.snapshot = snapshot;
  scan.fill_cache = false;  // a listing must not push hot sessions out

  // Positions `it` at the first key after options.after.
  auto seek = [&](rocksdb::Iterator* it) {
    if (options.after.empty()) {
      it->SeekToFirst();
      return;
    }
    it->Seek(ToSlice(options.after));
    if (it->Valid() && View(it->key()) == options.after) it->Next();
  };
  std::unique_ptr<rocksdb::Iterator> sessions(
      db_->NewIterator(scan, cf(kSessions)));
  seek(sessions.get());
  std::unique_ptr<rocksdb::Iterator> tombstones;
  if (options.include_tombstones) {
    tombstones.reset(db_->NewIterator(scan, cf(kTombstones)));
    seek(tombstones.get());
  }
  auto valid = [](const std::unique_ptr<rocksdb::Iterator>& it) {
    return it != nullptr && it->Valid();
  };

  const absl::Time now = clock_->Now();
  ScanPage page;
  size_t examined = 0;
  std::string last;
  while (valid(sessions) || valid(tombstones)) {
    if (page.entries.size() >= options.limit || examined >= kMaxScanExamined) {
      page.more = true;
      page.resume_after = last;
      break;
    }
    // The smaller key next; a key in both families (never written so, but
    // a record and its tombstone must not both be listed) is one entry.
    const bool take_session =
        valid(sessions) &&
        (!valid(tombstones) || View(sessions->key()) <= View(tombstones->key()));
    const bool take_tombstone =
        valid(tombstones) &&
        (!valid(sessions) || View(tombstones->key()) <= View(sessions->key()));
    ++examined;
    ScanEntry entry;
    entry.id = std::string(take_session ? View(sessions->key())
                                        : View(tombstones->key()));
    if (take_tombstone) {
      codec::Tombstone t;
      SG_RETURN_IF_ERROR(codec::DecodeTombstone(View(tombstones->value()), &t));
      if (t.gc_deadline > now) {
        entry.entry.tombstone = TombstoneInfo{t.version, t.gc_deadline};
      }
      tombstones->Next();
    }
    if (take_session) {
      SessionRecord record;
      SG_RETURN_IF_ERROR(codec::DecodeRecord(View(sessions->key()),
                                             View(sessions->value()), &record));
      // A tombstone wins over a record of the same id: deletes are terminal.
      if (record.expire_time > now && !entry.entry.tombstone) {
        if (!options.include_data) record.data.clear();
        entry.entry.session = std::move(record);
      }
      sessions->Next();
    }
    last = entry.id;
    if (entry.entry.session || entry.entry.tombstone) {
      page.entries.push_back(std::move(entry));
    }
  }
  SG_RETURN_IF_ERROR(FromRocks(sessions->status(), "scanning sessions"));
  if (tombstones != nullptr) {
    SG_RETURN_IF_ERROR(FromRocks(tombstones->status(), "scanning tombstones"));
  }
  return page;
}

}  // namespace sg::store

#include "server/store/store_impl.h"

namespace sg::store {

RocksDbMemoryPlan PlanRocksDbMemory(const StoreOptions& options) {
  RocksDbMemoryPlan plan;
  plan.block_cache_bytes = options.block_cache_bytes;
  if (plan.block_cache_bytes == 0) {
    plan.block_cache_bytes =
        options.memory_limit_bytes == 0
            ? kDefaultBlockCacheBytes
            : std::max(kMinDerivedBlockCacheBytes,
                       static_cast<size_t>(kRocksDbBudgetShare *
                                           options.memory_limit_bytes));
  }
  plan.write_buffer_bytes = options.write_buffer_bytes;
  if (plan.write_buffer_bytes == 0) {
    size_t wanted = std::max({plan.block_cache_bytes / 4, kMinWriteBufferBytes,
                              16 * options.max_session_bytes});
    plan.write_buffer_bytes =
        std::min({wanted, plan.block_cache_bytes / 2,
                  kMaxDerivedWriteBufferBytes});
  }
  return plan;
}

absl::Status StoreOptions::Validate() const {
  if (data_dir.empty()) return absl::InvalidArgumentError("data_dir is empty");
  if (node_id.empty()) return absl::InvalidArgumentError("node_id is empty");
  if (max_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_ttl must be positive");
  }
  if (default_ttl <= absl::ZeroDuration() || default_ttl > max_ttl) {
    return absl::InvalidArgumentError(
        "default_ttl must be positive and at most max_ttl");
  }
  if (!(touch_after >= 0.0 && touch_after <= 1.0)) {
    return absl::InvalidArgumentError("touch_after must be in [0, 1]");
  }
  if (tombstone_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("tombstone_ttl must be positive");
  }
  if (max_session_bytes == 0) {
    return absl::InvalidArgumentError("max_session_bytes must be positive");
  }
  if (block_cache_bytes != 0 && write_buffer_bytes > block_cache_bytes) {
    return absl::InvalidArgumentError(
        "write_buffer_bytes must not exceed block_cache_bytes (memtables are "
        "charged to the block cache)");
  }
  if (memory_limit_bytes != 0 && block_cache_bytes > memory_limit_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block_cache_bytes ", block_cache_bytes,
        " exceeds the memory limit of ", memory_limit_bytes, " bytes"));
  }
  if (max_sessions < 0) {
    return absl::InvalidArgumentError(
        "max_sessions must not be negative (0: no cap)");
  }
  if (max_sessions_per_principal < 0) {
    return absl::InvalidArgumentError(
        "max_sessions_per_principal must not be negative (0: no cap)");
  }
  if (eviction_sample < 1 || eviction_sample > 1024) {
    return absl::InvalidArgumentError("eviction_sample must be in [1, 1024]");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Open / Close

absl::Status SessionStore::Impl::Open() {
  SG_RETURN_IF_ERROR(options_.Validate());
  const std::string& dir = options_.data_dir;

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec == std::errc::permission_denied) {
    return absl::PermissionDeniedError(
        absl::StrCat("session store data dir ", dir,
                     " is not accessible to this process: ", ec.message()));
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create session store data dir ", dir, ": ", ec.message()));
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("session store data dir ", dir, " is not a directory"));
  }
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("session store data dir ", dir,
                     " is not readable and writable by this process"));
  }

  cache_ = rocksdb::NewLRUCache(plan_.block_cache_bytes);
  // Memtables are charged to the block cache, within a budget of their own.
  auto write_buffers = std::make_shared<rocksdb::WriteBufferManager>(
      plan_.write_buffer_bytes, cache_);

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.paranoid_checks = true;
  db_options.write_buffer_manager = std::move(write_buffers);
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.keep_log_file_num = 4;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache_;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter in 4 KiB partitions under a small top level that
  // stays pinned: at millions of sessions the files' whole indexes and
  // filters (hundreds of KiB each) no longer fit the cache beside the
  // data, and a Get that misses one would read it whole again. A miss now
  // costs one partition (bench/scale.sh, RESULTS.md).
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.pin_top_level_index_and_filter = true;
  table.block_size = 8 << 10;
  table.format_version = 5;

  rocksdb::CompressionType compression = rocksdb::kNoCompression;
  for (rocksdb::CompressionType c : rocksdb::GetSupportedCompressions()) {
    if (c == rocksdb::kLZ4Compression) compression = c;
    if (c == rocksdb::kSnappyCompression &&
        compression == rocksdb::kNoCompression) {
      compression = c;
    }
  }

  auto cf_options = [&](size_t write_buffer) {
    rocksdb::ColumnFamilyOptions o;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    // Levels 0 and 1 are written again soon (flushes, then the L0->L1
    // compactions that a write flood keeps busy): compressing them cost a
    // create ~15% of its instructions (bench/instructions.sh). Below them,
    // where the data settles, blocks are compressed.
    o.compression_per_level = {rocksdb::kNoCompression,
                               rocksdb::kNoCompression, compression};
    o.compression = compression;
    o.write_buffer_size = std::max<size_t>(write_buffer, 256 << 10);
    o.compaction_filter_factory = filters_;
    return o;
  };
  // Sessions take most writes. Four memtables: one taking writes while up
  // to three wait for a flush, where RocksDB's two stopped every write as
  // soon as a flush fell behind.
  rocksdb::ColumnFamilyOptions sessions =
      cf_options(plan_.write_buffer_bytes * 3 / 4);
  sessions.max_write_buffer_number = 4;
  // Point lookups dominate: a memtable bloom filter spares misses a search.
  sessions.memtable_whole_key_filtering = true;
  sessions.memtable_prefix_bloom_size_ratio = 0.02;
  size_t small_buffer = plan_.write_buffer_bytes / 8;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = {
      {kCfNames[kDefault], cf_options(small_buffer)},
      {kCfNames[kSessions], sessions},
      {kCfNames[kPrincipal], cf_options(small_buffer)},
      {kCfNames[kTombstones], cf_options(small_buffer)},
      {kCfNames[kMeta], cf_options(small_buffer)},
      // Hint values start with their deadline stamp: the filter reclaims
      // hints past the hint window.
      {kCfNames[kHints], cf_options(small_buffer)},
  };
  // The default and meta families hold no stamped values.
  descriptors[kDefault].options.compaction_filter_factory = nullptr;
  descriptors[kMeta].options.compaction_filter_factory = nullptr;

  // No reclamation until the initial count below is done.
  filters_->Pause();
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, dir, descriptors, &handles_, &db_);
  if (!s.ok()) {
    filters_->Resume();
    db_ = nullptr;
    handles_.clear();
    return OpenError(s, dir);
  }
  closed_.store(false, std::memory_order_release);

  // Refuse a data dir written in an unknown format.
  std::string format;
  s = db_->Get(read_options_, cf(kMeta), kFormatKey, &format);
  absl::Status status;
  if (s.IsNotFound()) {
    rocksdb::WriteBatch batch;
    batch.Put(cf(kMeta), kFormatKey, kFormatVersion);
    batch.Put(cf(kMeta), kNodeIdKey, options_.node_id);
    status =
        FromRocks(db_->Write(write_options_, &batch), "writing store metadata");
  } else if (!s.ok()) {
    status = OpenError(s, dir);
  } else if (format != kFormatVersion) {
    status = absl::FailedPreconditionError(
        absl::StrCat("session store data dir ", dir, " has format version ",
                     format, "; this build reads ", kFormatVersion));
  }
  if (status.ok()) status = CountAtOpen();
  filters_->Resume();
  if (!status.ok()) {
    (void)Close();
    return status;
  }
  return absl::OkStatus();
}

absl::Status SessionStore::Impl::CountAtOpen() {
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;
  int64_t auth = 0, anon = 0;
  Hlc max_version;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(scan, cf(kSessions)));
    SessionRecord record;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::Status st =
          codec::DecodeRecord(View(it->key()), View(it->value()), &record);
      if (!st.ok()) {
        return absl::DataLossError(absl::StrCat("session store data dir ",
                                                options_.data_dir,
                                                " is corrupt: ", st.message()));
      }
      (record.authenticated() ? auth : anon)++;
      if (record.version > max_version) max_version = record.version;
    }
    if (!it->status().ok()) {
      return OpenError(it->status(), options_.data_dir);
    }
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(scan, cf(kTombstones)));
    codec::Tombstone t;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (codec::DecodeTombstone(View(it->value()), &t).ok() &&
          t.version > max_version) {
        max_version = t.version;
      }
    }
    if (!it->status().ok()) {
      return OpenError(it->status(), options_.data_dir);
    }
  }
  // Versions from before a restart stay older than new ones even if the wall
  // clock stepped back.
  hlc_.Observe(max_version);
  authenticated_.store(auth);
  anonymous_.store(anon);
  return absl::OkStatus();
}

absl::Status SessionStore::Impl::Close() {
  absl::MutexLock sweep_lock(&sweep_mu_);
  if (closed_.exchange(true, std::memory_order_acq_rel)) {
    return absl::OkStatus();
  }
  absl::Status status;
  if (db_ != nullptr) {
    rocksdb::FlushOptions flush;
    flush.wait = true;
    status = FromRocks(db_->Flush(flush, handles_), "flushing memtables");
    if (status.ok()) {
      status = FromRocks(db_->FlushWAL(/*sync=*/true), "syncing the WAL");
    }
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      (void)db_->DestroyColumnFamilyHandle(h);
    }
    handles_.clear();
    absl::Status close = FromRocks(db_->Close(), "closing RocksDB");
    if (status.ok()) status = close;
    delete db_;
    db_ = nullptr;
  }
  return status;
}

// ---------------------------------------------------------------------------
// Helpers

absl::Status SessionStore::Impl::ReadRecord(std::string_view id,
                                            SessionRecord* out) const {
  rocksdb::PinnableSlice value;
  rocksdb::Status s =
      db_->Get(read_options_, cf(kSessions), ToSlice(id), &value);
  if (s.IsNotFound()) return NotFound();
  SG_RETURN_IF_ERROR(FromRocks(s, "reading session"));
  return codec::DecodeRecord(id, View(value), out);
}

absl::StatusOr<std::optional<codec::Tombstone>>
SessionStore::Impl::ReadTombstone(std::string_view id) const {
  rocksdb::PinnableSlice value;
  rocksdb::Status s =
      db_->Get(read_options_, cf(kTombstones), ToSlice(id), &value);
  if (s.IsNotFound()) return std::optional<codec::Tombstone>();
  SG_RETURN_IF_ERROR(FromRocks(s, "reading tombstone"));
  codec::Tombstone t;
  SG_RETURN_IF_ERROR(codec::DecodeTombstone(View(value), &t));
  return std::optional<codec::Tombstone>(std::move(t));
}

void SessionStore::Impl::StageRecord(const SessionRecord* before,
                                     const SessionRecord* after,
                                     std::string_view id,
                                     rocksdb::WriteBatch* batch) {
  std::string key, value;
  if (before != nullptr && before->authenticated() &&
      (after == nullptr || after->principal != before->principal)) {
    codec::PrincipalKey(before->principal, id, &key);
    batch->Delete(cf(kPrincipal), key);
  }
  if (after == nullptr) {
    if (before != nullptr) batch->Delete(cf(kSessions), ToSlice(id));
    return;
  }
  codec::EncodeRecord(*after, &value);
  batch->Put(cf(kSessions), ToSlice(id), value);
  if (after->authenticated()) {
    // Rewritten on every write: the entry carries the session's expiry so the
    // compaction filter reclaims both together.
    codec::PrincipalKey(after->principal, id, &key);
    codec::EncodeIndexValue(after->expire_time, &value);
    batch->Put(cf(kPrincipal), key, value);
  }
}

void SessionStore::Impl::StageTombstone(std::string_view id, const Hlc& version,
                                        rocksdb::WriteBatch* batch,
                                        absl::Time deleted_expire_time) {
  absl::Time deadline = clock_->Now() + options_.tombstone_ttl;
  // In a cluster a replica that missed the delete may still hold the
  // session until it would have expired; the tombstone must outlive it.
  if (options_.replicated) deadline = std::max(deadline, deleted_expire_time);
  std::string value;
  codec::EncodeTombstone(codec::Tombstone{version, deadline}, &value);
  batch->Put(cf(kTombstones), ToSlice(id), value);
}

absl::Status SessionStore::Impl::Commit(rocksdb::WriteBatch* batch,
                                        const Presence& before,
                                        const Presence& after) {
  absl::ReaderMutexLock lock(&count_mu_);
  SG_RETURN_IF_ERROR(
      FromRocks(db_->Write(write_options_, batch), "writing session"));
  CountLocked(before, after);
  return absl::OkStatus();
}

absl::Status SessionStore::Impl::CommitCreated(
    rocksdb::WriteBatch* batch, const std::vector<Presence>& created) {
  absl::ReaderMutexLock lock(&count_mu_);
  SG_RETURN_IF_ERROR(
      FromRocks(db_->Write(write_options_, batch), "writing sessions"));
  for (const Presence& p : created) CountLocked(Presence{}, p);
  return absl::OkStatus();
}

void SessionStore::Impl::CountLocked(const Presence& before,
                                     const Presence& after) {
  auto counter = [&](bool auth) -> std::atomic<int64_t>& {
    return auth ? authenticated_ : anonymous_;
  };
  auto recount_delta = [&](bool auth) -> std::atomic<int64_t>& {
    return auth ? recount_delta_auth_ : recount_delta_anon_;
  };
  if (before.present) counter(before.authenticated).fetch_sub(1);
  if (after.present) counter(after.authenticated).fetch_add(1);
  if (recounting_) {
    // The running sweep counts only records live at recount_now_; records
    // expired by then are its own to remove, so their removal (by anyone,
    // the compaction filter included) must not be counted twice.
    if (before.present && before.expire_time > recount_now_) {
      recount_delta(before.authenticated).fetch_sub(1);
    }
    if (after.present) recount_delta(after.authenticated).fetch_add(1);
  }
}

bool SessionStore::Impl::ApplyTouch(SessionRecord* record, absl::Duration ttl,
                                    absl::Time now) const {
  const absl::Time persisted = record->expire_time;
  const bool ttl_changed = ttl != record->ttl;
  record->ttl = ttl;
  record->expire_time = now + ttl;
  record->last_access_time = now;
  return ttl_changed ||
         record->expire_time - persisted >= options_.touch_after * ttl;
}

// ---------------------------------------------------------------------------
// Operations

absl::StatusOr<SessionRecord> SessionStore::Impl::PrepareCreate(
    CreateParams params) {
  SG_RETURN_IF_ERROR(CheckOpen());
  if (!params.id.empty()) SG_RETURN_IF_ERROR(ValidateSessionId(params.id));
  if (params.data.size() > options_.max_session_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("session data is ", params.data.size(),
                     " bytes; the limit is ", options_.max_session_bytes));
  }
  SG_RETURN_IF_ERROR(CheckPrincipal(params.principal));
  const absl::Duration ttl = params.ttl.value_or(options_.default_ttl);
  SG_RETURN_IF_ERROR(CheckTtl(ttl, options_.max_ttl));
  if (params.principal.empty() &&
      refuse_anonymous_.load(std::memory_order_relaxed)) {
    refused_creates_.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        "node memory is at the emergency level: new anonymous sessions are "
        "refused");
  }
  SessionRecord record;
  record.id = params.id.empty() ? NewSessionId() : std::move(params.id);
  record.data = std::move(params.data);
  record.principal = std::move(params.principal);
  const absl::Time now = clock_->Now();
  record.create_time = now;
  record.last_access_time = now;
  record.expire_time = now + ttl;
  record.ttl = ttl;
  record.version = hlc_.Next();
  return record;
}

absl::Status SessionStore::Impl::MakeRoomForOne(bool anonymous) {
  if (options_.max_sessions <= 0) return absl::OkStatus();
  const int64_t excess = session_count() - options_.max_sessions + 1;
  if (excess <= 0) return absl::OkStatus();
  if (anonymous && anonymous_.load() <= 0) {
    // Only logged-in users are stored: a visitor must not push one out.
    refused_creates_.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrCat(
        "max_sessions (", options_.max_sessions,
        ") reached and every stored session is authenticated: new "
        "anonymous sessions are refused"));
  }
  return Evict(excess, EvictionReason::kMaxSessions, true).status();
}

absl::Status SessionStore::Impl::CommitClientIdCreate(
    const SessionRecord& record) {
  absl::MutexLock lock(&StripeFor(record.id));
  SG_ASSIGN_OR_RETURN(std::optional<codec::Tombstone> tombstone,
                      ReadTombstone(record.id));
  SessionRecord existing;
  absl::Status read = ReadRecord(record.id, &existing);
  if (!read.ok() && !absl::IsNotFound(read)) return read;
  if (tombstone || read.ok()) {
    // Ids are never reused: not even an expired or deleted one.
    return absl::AlreadyExistsError("session id is or was in use");
  }
  rocksdb::WriteBatch batch;
  StageRecord(nullptr, &record, record.id, &batch);
  return Commit(&batch, Presence{}, Presence::Of(record));
}

absl::StatusOr<SessionRecord> SessionStore::Impl::Create(CreateParams params) {
  const bool client_id = !params.id.empty();
  SG_ASSIGN_OR_RETURN(SessionRecord record, PrepareCreate(std::move(params)));
  const bool anonymous = record.principal.empty();
  SG_RETURN_IF_ERROR(MakeRoomForOne(anonymous));
  if (client_id) {
    SG_RETURN_IF_ERROR(CommitClientIdCreate(record));
  } else {
    // A fresh 256-bit id cannot collide, so no stripe lock is needed.
    rocksdb::WriteBatch batch;
    StageRecord(nullptr, &record, record.id, &batch);
    SG_RETURN_IF_ERROR(Commit(&batch, Presence{}, Presence::Of(record)));
  }
  creates_.fetch_add(1, std::memory_order_relaxed);
  if (!anonymous) EnforcePrincipalCapOrLog(record.principal, record.id);
  return record;
}

std::vector<absl::StatusOr<SessionRecord>> SessionStore::Impl::CreateMany(
    std::vector<CreateParams> params) {
  std::vector<absl::StatusOr<SessionRecord>> results;
  results.reserve(params.size());
  // The entries whose ids the store picks gather in `batch`; `staged`
  // indexes their results, `created` their counts.
  rocksdb::WriteBatch batch;
  std::vector<size_t> staged;
  std::vector<Presence> created;
  auto commit_staged = [&] {
    if (staged.empty()) return;
    if (absl::Status s = CommitCreated(&batch, created); !s.ok()) {
      for (size_t i : staged) results[i] = s;
    } else {
      creates_.fetch_add(static_cast<int64_t>(staged.size()),
                         std::memory_order_relaxed);
    }
    batch.Clear();
    staged.clear();
    created.clear();
  };
  for (CreateParams& p : params) {
    const bool client_id = !p.id.empty();
    absl::StatusOr<SessionRecord> record = PrepareCreate(std::move(p));
    if (record.ok()) {
      // At max_sessions room is made among the stored sessions, so the
      // staged ones are stored first: the cap holds as for single Creates.
      if (options_.max_sessions > 0 &&
          session_count() + static_cast<int64_t>(staged.size()) >=
              options_.max_sessions) {
        commit_staged();
      }
      if (absl::Status room = MakeRoomForOne(record->principal.empty());
          !room.ok()) {
        record = room;
      } else if (client_id) {
        // A chosen id is checked and written under its stripe, alone.
        if (absl::Status s = CommitClientIdCreate(*record); !s.ok()) {
          record = s;
        } else {
          creates_.fetch_add(1, std::memory_order_relaxed);
        }
      } else {
        StageRecord(nullptr, &*record, record->id, &batch);
        staged.push_back(results.size());
        created.push_back(Presence::Of(*record));
      }
    }
    results.push_back(std::move(record));
  }
  commit_staged();
  for (const absl::StatusOr<SessionRecord>& r : results) {
    if (r.ok() && r->authenticated()) {
      EnforcePrincipalCapOrLog(r->principal, r->id);
    }
  }
  return results;
}

absl::StatusOr<SessionRecord> SessionStore::Impl::Get(std::string_view id,
                                                      bool touch) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  SessionRecord record;
  SG_RETURN_IF_ERROR(ReadRecord(id, &record));
  const absl::Time now = clock_->Now();
  if (record.expire_time <= now) return NotFound();
  reads_.fetch_add(1, std::memory_order_relaxed);
  if (!touch) return record;
  if (!ApplyTouch(&record, record.ttl, now)) return record;
  return PersistTouch(id, std::nullopt);
}

absl::StatusOr<SessionRecord> SessionStore::Impl::Touch(
    std::string_view id, std::optional<absl::Duration> ttl) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  if (ttl) SG_RETURN_IF_ERROR(CheckTtl(*ttl, options_.max_ttl));
  // Lock-free first look: most touches persist nothing.
  SessionRecord record;
  SG_RETURN_IF_ERROR(ReadRecord(id, &record));
  const absl::Time now = clock_->Now();
  if (record.expire_time <= now) return NotFound();
  if (!ApplyTouch(&record, ttl.value_or(record.ttl), now)) return record;
  return PersistTouch(id, ttl);
}

absl::StatusOr<SessionRecord> SessionStore::Impl::PersistTouch(
    std::string_view id, std::optional<absl::Duration> ttl) {
  absl::MutexLock lock(&StripeFor(id));
  SessionRecord record;
  SG_RETURN_IF_ERROR(ReadRecord(id, &record));
  const absl::Time now = clock_->Now();
  if (record.expire_time <= now) return NotFound();
  const Presence before = Presence::Of(record);
  SessionRecord updated = record;
  // Another thread may have persisted meanwhile; decide again.
  if (!ApplyTouch(&updated, ttl.value_or(record.ttl), now)) return updated;
  updated.version = hlc_.Next();
  rocksdb::WriteBatch batch;
  StageRecord(&record, &updated, id, &batch);
  SG_RETURN_IF_ERROR(Commit(&batch, before, Presence::Of(updated)));
  writes_.fetch_add(1, std::memory_order_relaxed);
  return updated;
}

absl::StatusOr<SessionRecord> SessionStore::Impl::Update(std::string_view id,
                                                         UpdateParams params) {
  const bool sets_principal = params.principal && !params.principal->empty();
  absl::StatusOr<SessionRecord> updated = DoUpdate(id, std::move(params));
  if (updated.ok() && sets_principal) {
    EnforcePrincipalCapOrLog(updated->principal, updated->id);
  }
  return updated;
}

absl::StatusOr<SessionRecord> SessionStore::Impl::PrepareUpdate(
    const SessionRecord& current, UpdateParams params) {
  if (params.data && params.data->size() > options_.max_session_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("session data is ", params.data->size(),
                     " bytes; the limit is ", options_.max_session_bytes));
  }
  if (params.principal) SG_RETURN_IF_ERROR(CheckPrincipal(*params.principal));
  if (params.ttl) SG_RETURN_IF_ERROR(CheckTtl(*params.ttl, options_.max_ttl));
  if (params.expected_version && *params.expected_version != current.version) {
    return absl::FailedPreconditionError(
        "session version does not match expected_version");
  }
  const absl::Time now = clock_->Now();
  SessionRecord updated = current;
  if (params.data) updated.data = std::move(*params.data);
  if (params.principal) updated.principal = std::move(*params.principal);
  if (params.ttl) updated.ttl = *params.ttl;
  updated.expire_time = now + updated.ttl;
  updated.last_access_time = now;
  // Past the version it replaces even when that was read from a peer whose
  // clock is ahead: replicas accept a compare-and-set only once per version.
  hlc_.Observe(current.version);
  updated.version = hlc_.Next();
  return updated;
}

absl::StatusOr<bool> SessionStore::Impl::PrepareTouch(
    SessionRecord* record, std::optional<absl::Duration> ttl) {
  if (ttl) SG_RETURN_IF_ERROR(CheckTtl(*ttl, options_.max_ttl));
  if (!ApplyTouch(record, ttl.value_or(record->ttl), clock_->Now())) {
    return false;
  }
  record->version = hlc_.Next();
  return true;
}

absl::StatusOr<SessionRecord> SessionStore::Impl::DoUpdate(
    std::string_view id, UpdateParams params) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  if (params.data && params.data->size() > options_.max_session_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("session data is ", params.data->size(),
                     " bytes; the limit is ", options_.max_session_bytes));
  }
  if (params.principal) SG_RETURN_IF_ERROR(CheckPrincipal(*params.principal));
  if (params.ttl) SG_RETURN_IF_ERROR(CheckTtl(*params.ttl, options_.max_ttl));

  absl::MutexLock lock(&StripeFor(id));
  SessionRecord record;
  SG_RETURN_IF_ERROR(ReadRecord(id, &record));
  if (record.expire_time <= clock_->Now()) return NotFound();
  SG_ASSIGN_OR_RETURN(SessionRecord updated,
                      PrepareUpdate(record, std::move(params)));

  rocksdb::WriteBatch batch;
  StageRecord(&record, &updated, id, &batch);
  SG_RETURN_IF_ERROR(
      Commit(&batch, Presence::Of(record), Presence::Of(updated)));
  writes_.fetch_add(1, std::memory_order_relaxed);
  return updated;
}

absl::StatusOr<bool> SessionStore::Impl::DeleteLocked(
    std::string_view id, const std::optional<Hlc>& expected, absl::Time now) {
  SessionRecord record;
  absl::Status read = ReadRecord(id, &record);
  if (absl::IsNotFound(read)) return false;
  SG_RETURN_IF_ERROR(read);
  const bool live = record.expire_time > now;
  if (live && expected && *expected != record.version) {
    return absl::FailedPreconditionError(
        "session version does not match expected_version");
  }
  rocksdb::WriteBatch batch;
  StageRecord(&record, nullptr, id, &batch);
  StageTombstone(id, hlc_.Next(), &batch, record.expire_time);
  SG_RETURN_IF_ERROR(Commit(&batch, Presence::Of(record), Presence{}));
  // An expired leftover leaves the count as an expiration.
  (live ? deletes_ : expirations_).fetch_add(1, std::memory_order_relaxed);
  return live;
}

absl::StatusOr<bool> SessionStore::Impl::Delete(
    std::string_view id, std::optional<Hlc> expected_version) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  absl::MutexLock lock(&StripeFor(id));
  return DeleteLocked(id, expected_version, clock_->Now());
}

absl::StatusOr<SessionRecord> SessionStore::Impl::Regenerate(
    std::string_view id, std::optional<std::string> principal) {
  const bool sets_principal = principal && !principal->empty();
  absl::StatusOr<SessionRecord> fresh = DoRegenerate(id, std::move(principal));
  if (fresh.ok() && sets_principal) {
    EnforcePrincipalCapOrLog(fresh->principal, fresh->id);
  }
  return fresh;
}

absl::StatusOr<SessionRecord> SessionStore::Impl::DoRegenerate(
    std::string_view id, std::optional<std::string> principal) {
  SG_RETURN_IF_ERROR(CheckOpen());
  SG_RETURN_IF_ERROR(ValidateSessionId(id));
  if (principal) SG_RETURN_IF_ERROR(CheckPrincipal(*principal));

  absl::MutexLock lock(&StripeFor(id));
  SessionRecord record;
  SG_RETURN_IF_ERROR(ReadRecord(id, &record));
  const absl::Time now = clock_->Now();
  if (record.expire_time <= now) return NotFound();

  SessionRecord fresh = record;
  fresh.id = NewSessionId();  // fresh: no other writer can know it yet
  if (principal) fresh.principal = std::move(*principal);
  fresh.last_access_time = now;
  fresh.expire_time = now + fresh.ttl;
  const Hlc tombstone_version = hlc_.Next();
  fresh.version = hlc_.Next();

  rocksdb::WriteBatch batch;
  StageRecord(&record, nullptr, id, &batch);
  StageTombstone(id, tombstone_version, &batch, record.expire_time);
  StageRecord(nullptr, &fresh, fresh.id, &batch);
  SG_RETURN_IF_ERROR(Commit(&batch, Presence::Of(record), Presence::Of(fresh)));
  writes_.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

// ---------------------------------------------------------------------------
// SessionStore: forwards to Impl.

absl::StatusOr<std::unique_ptr<SessionStore>> SessionStore::Open(
    const StoreOptions& options, Clock* clock) {
  if (clock == nullptr) return absl::InvalidArgumentError("clock is null");
  auto impl = std::make_unique<Impl>(options, clock);
  SG_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<SessionStore>(new SessionStore(std::move(impl)));
}

SessionStore::SessionStore(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
SessionStore::~SessionStore() = default;

absl::StatusOr<SessionRecord> SessionStore::Create(CreateParams params) {
  return impl_->Create(std::move(params));
}
std::vector<absl::StatusOr<SessionRecord>> SessionStore::CreateMany(
    std::vector<CreateParams> params) {
  return impl_->CreateMany(std::move(params));
}
absl::StatusOr<SessionRecord> SessionStore::Get(std::string_view id,
                                                bool touch) {
  return impl_->Get(id, touch);
}
absl::StatusOr<SessionRecord> SessionStore::Touch(
    std::string_view id, std::optional<absl::Duration> ttl) {
  return impl_->Touch(id, ttl);
}
absl::StatusOr<SessionRecord> SessionStore::Update(std::string_view id,
                                                   UpdateParams params) {
  return impl_->Update(id, std::move(params));
}
absl::StatusOr<bool> SessionStore::Delete(std::string_view id,
                                          std::optional<Hlc> expected_version) {
  return impl_->Delete(id, std::move(expected_version));
}
absl::StatusOr<SessionRecord> SessionStore::Regenerate(
    std::string_view id, std::optional<std::string> principal) {
  return impl_->Regenerate(id, std::move(principal));
}
absl::StatusOr<std::vector<SessionRecord>> SessionStore::ListByPrincipal(
    std::string_view principal, size_t limit) {
  return impl_->ListByPrincipal(principal, limit);
}
absl::StatusOr<int64_t> SessionStore::DeleteByPrincipal(
    std::string_view principal) {
  return impl_->DeleteByPrincipal(principal);
}
absl::StatusOr<int64_t> SessionStore::SweepExpired() {
  return impl_->SweepExpired();
}
absl::Status SessionStore::CompactAll() { return impl_->CompactAll(); }
absl::StatusOr<bool> SessionStore::ApplyReplicated(const SessionRecord& record,
                                                  std::optional<Hlc> expected) {
  return impl_->ApplyReplicated(record, std::move(expected));
}
absl::StatusOr<bool> SessionStore::ApplyReplicatedDelete(
    std::string_view id, const Hlc& version, absl::Time deleted_expire_time,
    std::optional<Hlc> expected) {
  return impl_->ApplyReplicatedDelete(id, version, deleted_expire_time,
                                      std::move(expected));
}
absl::StatusOr<bool> SessionStore::ApplyReplicatedTouch(
    std::string_view id, absl::Time expire_time, absl::Time last_access_time,
    absl::Duration ttl) {
  return impl_->ApplyReplicatedTouch(id, expire_time, last_access_time, ttl);
}
absl::StatusOr<SessionRecord> SessionStore::PrepareCreate(CreateParams params) {
  return impl_->PrepareCreate(std::move(params));
}
absl::StatusOr<SessionRecord> SessionStore::PrepareUpdate(
    const SessionRecord& current, UpdateParams params) {
  return impl_->PrepareUpdate(current, std::move(params));
}
absl::StatusOr<bool> SessionStore::PrepareTouch(
    SessionRecord* record, std::optional<absl::Duration> ttl) {
  return impl_->PrepareTouch(record, ttl);
}
Hlc SessionStore::NextVersion() { return impl_->NextVersion(); }
absl::StatusOr<LocalEntry> SessionStore::ReadLocal(std::string_view id) {
  return impl_->ReadLocal(id);
}
absl::Status SessionStore::ForEachEntry(
    const std::function<bool(std::string_view, const SessionRecord*,
                             const TombstoneInfo*)>& fn) {
  return impl_->ForEachEntry(fn);
}
void SessionStore::SetEvictionObserver(
    std::function<void(const EvictedSession&)> observer) {
  impl_->SetEvictionObserver(std::move(observer));
}
absl::Status SessionStore::PutHint(std::string_view key,
                                   std::string_view value) {
  return impl_->PutHint(key, value);
}
absl::Status SessionStore::DeleteHint(std::string_view key) {
  return impl_->DeleteHint(key);
}
absl::Status SessionStore::ScanHints(
    std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn) {
  return impl_->ScanHints(prefix, fn);
}
StoreStats SessionStore::Stats() const { return impl_->Stats(); }
absl::StatusOr<RawCounts> SessionStore::RawCountsForTesting() const {
  return impl_->CountRaw();
}
absl::StatusOr<EvictionResult> SessionStore::Evict(
    int64_t count, EvictionReason reason, bool include_authenticated) {
  return impl_->Evict(count, reason, include_authenticated);
}
void SessionStore::SetRefuseAnonymousCreates(bool refuse) {
  impl_->SetRefuseAnonymousCreates(refuse);
}
bool SessionStore::refusing_anonymous_creates() const {
  return impl_->refusing_anonymous_creates();
}
int64_t SessionStore::session_count() const { return impl_->session_count(); }
StoreMemoryUsage SessionStore::MemoryUsage() const {
  return impl_->MemoryUsage();
}
void SessionStore::ScaleBlockCache(double fraction) {
  impl_->ScaleBlockCache(fraction);
}
absl::Status SessionStore::FlushMemtables(bool wait) {
  return impl_->FlushMemtables(wait);
}
int64_t SessionStore::DiskBytes() const { return impl_->DiskBytes(); }
absl::Status SessionStore::ReclaimDisk() { return impl_->ReclaimDisk(); }
absl::Status SessionStore::Close() { return impl_->Close(); }
const StoreOptions& SessionStore::options() const { return impl_->options(); }

}  // namespace sg::store

#include "server/store/store_impl.h"

namespace sg::store {

// Counters, memory and disk figures, cache scaling.

StoreStats SessionStore::Impl::Stats() const {
  StoreStats stats;
  stats.authenticated_sessions = authenticated_.load();
  stats.anonymous_sessions = anonymous_.load();
  stats.sessions = stats.authenticated_sessions + stats.anonymous_sessions;
  stats.expirations = expirations_.load(std::memory_order_relaxed);
  stats.creates = creates_.load(std::memory_order_relaxed);
  stats.reads = reads_.load(std::memory_order_relaxed);
  stats.writes = writes_.load(std::memory_order_relaxed);
  stats.deletes = deletes_.load(std::memory_order_relaxed);
  stats.sweeps = sweeps_.load(std::memory_order_relaxed);
  stats.evictions = evictions_.Snapshot();
  stats.refused_creates = refused_creates_.load(std::memory_order_relaxed);
  if (closed_.load(std::memory_order_acquire)) return stats;

  auto aggregated = [&](const std::string& property) -> int64_t {
    uint64_t v = 0;
    return db_->GetAggregatedIntProperty(property, &v) ? static_cast<int64_t>(v)
                                                       : 0;
  };
  stats.memtable_bytes =
      aggregated(rocksdb::DB::Properties::kCurSizeAllMemTables);
  stats.table_readers_bytes =
      aggregated(rocksdb::DB::Properties::kEstimateTableReadersMem);
  stats.disk_bytes = DiskBytes();
  stats.block_cache_bytes = static_cast<int64_t>(cache_->GetUsage());
  stats.block_cache_capacity_bytes =
      static_cast<int64_t>(cache_->GetCapacity());
  return stats;
}

StoreMemoryUsage SessionStore::Impl::MemoryUsage() const {
  StoreMemoryUsage usage;
  usage.structures_bytes = static_cast<int64_t>(
      sizeof(Impl) + (kStripes + kPrincipalStripes) * sizeof(absl::Mutex));
  if (closed_.load(std::memory_order_acquire)) return usage;
  usage.block_cache_bytes = static_cast<int64_t>(cache_->GetUsage());
  usage.block_cache_capacity_bytes =
      static_cast<int64_t>(cache_->GetCapacity());
  uint64_t v = 0;
  if (db_->GetAggregatedIntProperty(
          rocksdb::DB::Properties::kCurSizeAllMemTables, &v)) {
    usage.memtable_bytes = static_cast<int64_t>(v);
  }
  if (db_->GetAggregatedIntProperty(
          rocksdb::DB::Properties::kEstimateTableReadersMem, &v)) {
    usage.table_readers_bytes = static_cast<int64_t>(v);
  }
  return usage;
}

void SessionStore::Impl::ScaleBlockCache(double fraction) {
  if (closed_.load(std::memory_order_acquire)) return;
  fraction = std::clamp(fraction, 0.01, 1.0);
  cache_->SetCapacity(
      static_cast<size_t>(fraction * plan_.block_cache_bytes));
  // The memtable budget stays as planned: it is a small, bounded share of
  // the limit, and the governor's flushes already empty it. Shrunk, it
  // only makes each flush smaller: under a create flood level-0 files pile
  // up and RocksDB stalls or stops writes (bench/tight-budget.sh).
}

absl::Status SessionStore::Impl::FlushMemtables(bool wait) {
  SG_RETURN_IF_ERROR(CheckOpen());
  rocksdb::FlushOptions flush;
  flush.wait = wait;
  flush.allow_write_stall = true;
  return FromRocks(db_->Flush(flush, handles_), "flushing memtables");
}

int64_t SessionStore::Impl::DiskBytes() const {
  if (closed_.load(std::memory_order_acquire)) return 0;
  uint64_t sst = 0;
  int64_t bytes = 0;
  if (db_->GetAggregatedIntProperty(
          rocksdb::DB::Properties::kTotalSstFilesSize, &sst)) {
    bytes = static_cast<int64_t>(sst);
  }
  rocksdb::VectorLogPtr wal_files;
  if (db_->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& f : wal_files) {
      if (f->Type() == rocksdb::kAliveLogFile) {
        bytes += static_cast<int64_t>(f->SizeFileBytes());
      }
    }
  }
  return bytes;
}

absl::Status SessionStore::Impl::ReclaimDisk() {
  SG_RETURN_IF_ERROR(FlushMemtables(/*wait=*/true));
  rocksdb::CompactRangeOptions compact;
  // Let automatic compactions run alongside; include the bottommost level
  // (the families have a compaction filter), where deletes finally drop.
  compact.exclusive_manual_compaction = false;
  compact.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (Cf which : {kSessions, kPrincipal}) {
    SG_RETURN_IF_ERROR(FromRocks(
        db_->CompactRange(compact, cf(which), nullptr, nullptr),
        "compacting to reclaim disk"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RawCounts> SessionStore::Impl::CountRaw() const {
  SG_RETURN_IF_ERROR(CheckOpen());
  auto count = [&](Cf which) -> absl::StatusOr<int64_t> {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(which)));
    int64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    SG_RETURN_IF_ERROR(FromRocks(it->status(), "counting"));
    return n;
  };
  RawCounts counts;
  SG_ASSIGN_OR_RETURN(counts.sessions, count(kSessions));
  SG_ASSIGN_OR_RETURN(counts.principal_entries, count(kPrincipal));
  SG_ASSIGN_OR_RETURN(counts.tombstones, count(kTombstones));
  return counts;
}


}  // namespace sg::store

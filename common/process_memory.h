// What the kernel says about this process's memory.
#pragma once

#include <cstdint>
#include <optional>

namespace sg {

// Resident set size from /proc/self/statm; 0 if unreadable.
int64_t ProcessRssBytes();

// The anonymous part of it (heap, stacks, RocksDB's caches and memtables):
// RSS without the file-backed pages of the binary and its libraries, which
// the kernel drops and reads again under pressure instead of killing for
// them. From /proc/self/statm (resident - shared); 0 if unreadable.
int64_t ProcessAnonymousRssBytes();

// cgroup v2 memory.current / memory.max of this process's cgroup; nullopt
// when not in a cgroup v2 hierarchy or when memory.max is "max".
std::optional<int64_t> CgroupMemoryUsageBytes();
std::optional<int64_t> CgroupMemoryLimitBytes();

}  // namespace sg

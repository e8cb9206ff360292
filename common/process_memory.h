// What the kernel says about this process's memory.
#pragma once

#include <cstdint>
#include <optional>

namespace sg {

// Resident set size from /proc/self/statm; 0 if unreadable.
int64_t ProcessRssBytes();

// cgroup v2 memory.current / memory.max of this process's cgroup; nullopt
// when not in a cgroup v2 hierarchy or when memory.max is "max".
std::optional<int64_t> CgroupMemoryUsageBytes();
std::optional<int64_t> CgroupMemoryLimitBytes();

}  // namespace sg

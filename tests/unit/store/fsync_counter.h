// Counts the fsync(2) and fdatasync(2) calls of this test process, so a
// test can tell a store that syncs its writes from one that does not.
// fsync_counter.cc wraps the libc functions (they still sync).
#pragma once

#include <cstdint>

namespace sg::store::testing {

// fsync + fdatasync calls since the process started, from any thread.
int64_t FsyncCalls();

}  // namespace sg::store::testing

#include "tests/unit/store/fsync_counter.h"

#include <dlfcn.h>

#include <atomic>

namespace {

std::atomic<int64_t> g_calls{0};

using SyncFn = int (*)(int);

// The libc function this wrapper hides, looked up once.
SyncFn Next(const char* name) {
  return reinterpret_cast<SyncFn>(dlsym(RTLD_NEXT, name));
}

}  // namespace

// Defined in the test binary, these take the place of libc's for every
// caller in the process (RocksDB's WAL sync included).
extern "C" int fsync(int fd) {
  static const SyncFn real = Next("fsync");
  g_calls.fetch_add(1, std::memory_order_relaxed);
  return real(fd);
}

extern "C" int fdatasync(int fd) {
  static const SyncFn real = Next("fdatasync");
  g_calls.fetch_add(1, std::memory_order_relaxed);
  return real(fd);
}

namespace sg::store::testing {

int64_t FsyncCalls() { return g_calls.load(std::memory_order_relaxed); }

}  // namespace sg::store::testing

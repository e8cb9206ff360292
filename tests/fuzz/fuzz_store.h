// A SessionStore for the fuzz targets: opened once per process in a fresh
// temp dir (removed at exit), on a fake clock, replicated like a cluster
// node and capped so a long run stays bounded.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "common/clock.h"
#include "server/store/session_store.h"

namespace sg::fuzz {

inline store::SessionStore& FuzzStore() {
  static FakeClock* clock = new FakeClock();
  static store::SessionStore* store = [] {
    const char* tmp = getenv("TMPDIR");
    std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") +
                      "/sg-fuzz-store-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::string to_remove = dir;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(to_remove, ec);
    });
    store::StoreOptions options;
    options.data_dir = dir;
    options.node_id = "fuzz";
    options.replicated = true;
    options.max_sessions = 10'000;
    options.max_sessions_per_principal = 16;
    options.eviction_seed = 1;
    options.block_cache_bytes = 8 << 20;
    options.write_buffer_bytes = 2 << 20;
    auto opened = store::SessionStore::Open(options, clock);
    if (!opened.ok()) {
      std::fprintf(stderr, "fuzz store: %s\n",
                   std::string(opened.status().message()).c_str());
      std::abort();
    }
    return opened->release();
  }();
  return *store;
}

}  // namespace sg::fuzz

// sessiongrid-server: flags, wiring and signals. Everything else lives in
// sg_service and sg_store.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "server/service/node_server.h"
#include "server/store/memory_governor.h"

namespace {

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "node";
  }
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  sg::service::ServerOptions options;
  sg::store::StoreOptions& store = options.store;
  store.data_dir = "./sessiongrid-data";
  store.node_id = Hostname();
  uint64_t max_session_bytes = store.max_session_bytes;
  uint64_t block_cache_bytes = store.block_cache_bytes;
  uint64_t max_disk_bytes = options.governor.max_disk_bytes;

  sg::FlagSet flags("sessiongrid-server",
                    "a SessionGrid session node (gRPC: SessionService, "
                    "AdminService, grpc.health.v1, reflection)",
                    "SESSIONGRID");
  flags.AddString("listen", &options.listen,
                  "HOST:PORT to serve gRPC on; port 0 picks a free port.");
  flags.AddString("data-dir", &store.data_dir,
                  "Directory of the RocksDB data (created if missing).");
  flags.AddString("node-id", &store.node_id,
                  "This node's name in versions and cluster status (default: "
                  "the hostname).");
  flags.AddDuration("default-ttl", &store.default_ttl,
                    "TTL of a session created without one.");
  flags.AddDuration("max-ttl", &store.max_ttl,
                    "Largest TTL a client may ask for.");
  flags.AddBytes("max-session-bytes", &max_session_bytes,
                 "Largest session data accepted (e.g. 64KiB).");
  flags.AddDouble("touch-after", &store.touch_after,
                  "Sliding expiry is persisted only after this fraction of "
                  "the TTL has passed since the last persisted expiry (0-1).");
  flags.AddDuration("tombstone-ttl", &store.tombstone_ttl,
                    "How long a deleted session's tombstone blocks older "
                    "writes.");
  flags.AddBool("sync-writes", &store.sync_writes,
                "fsync the WAL on every write (machine-crash durability).");
  flags.AddDuration("drain-timeout", &options.drain_timeout,
                    "On SIGTERM/SIGINT, how long in-flight calls may take.");
  flags.AddDuration("sweep-interval", &options.sweep_interval,
                    "How often expired sessions are deleted.");
  flags.AddBytes("block-cache", &block_cache_bytes,
                 "RocksDB block cache, memtables charged to it (e.g. 64MiB); "
                 "0 sizes it from --memory-limit (30%), or 64MiB without "
                 "one.");
  flags.AddCustom(
      "memory-limit", "0",
      "The node's memory budget: a size (e.g. 256MiB), auto (the cgroup v2 "
      "memory.max of the container; the machine's memory when there is "
      "none, logged) or 0 for none. Sizes RocksDB's caches and drives the "
      "watermarks.",
      [&options](std::string_view text) {
        return sg::store::ParseMemoryLimit(text, &options.governor);
      });
  flags.AddDouble("memory-warn", &options.governor.memory_warn,
                  "Fraction of --memory-limit at which caches shrink, "
                  "memtables flush and freed heap is returned to the OS.");
  flags.AddDouble("memory-critical", &options.governor.memory_critical,
                  "Fraction of --memory-limit at which sessions are evicted "
                  "(anonymous first, least recently used).");
  flags.AddDouble("memory-emergency", &options.governor.memory_emergency,
                  "Fraction of --memory-limit at which new anonymous sessions "
                  "are refused (RESOURCE_EXHAUSTED) and eviction speeds up.");
  flags.AddInt("max-sessions", &store.max_sessions,
               "Sessions kept at most; beyond, the least recently used go, "
               "anonymous first (0: no cap).");
  flags.AddBytes("max-disk-bytes", &max_disk_bytes,
                 "Disk (SST files and WAL) the store may use; beyond, "
                 "sessions are evicted and the space compacted (0: no cap).");
  flags.AddInt("max-sessions-per-principal", &store.max_sessions_per_principal,
               "Sessions one principal may hold; a new one pushes out that "
               "principal's least recently used (0: no cap).");
  flags.ParseOrExit(argc, argv);
  store.max_session_bytes = max_session_bytes;
  store.block_cache_bytes = block_cache_bytes;
  options.governor.max_disk_bytes = max_disk_bytes;
  if (absl::Status s = options.Validate(); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", flags.DescribeOptionError(s).c_str());
    return 2;
  }

  // Before any thread starts, so only WaitForStopSignal sees them.
  sg::BlockStopSignals();

  auto server = sg::service::NodeServer::Start(options, sg::Clock::Real());
  if (!server.ok()) {
    sg::LogError("cannot start", {{"error", server.status().ToString()}});
    return 1;
  }

  const char* signal_name = sg::WaitForStopSignal();
  sg::LogInfo("signal received, draining", {{"signal", signal_name}});
  absl::Status drained = (*server)->Drain();
  return drained.ok() ? 0 : 1;
}

// sessiongrid-server: flags, wiring and signals. Everything else lives in
// sg_service and sg_store.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/bearer_token.h"
#include "common/flags.h"
#include "common/host_port.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "server/service/node_server.h"
#include "server/store/memory_governor.h"

int main(int argc, char** argv) {
  sg::service::ServerOptions options;
  sg::store::StoreOptions& store = options.store;
  store.data_dir = "./sessiongrid-data";
  store.node_id = sg::Hostname().empty() ? "node" : sg::Hostname();
  // A tombstone must outlive the hint window plus an anti-entropy period.
  store.tombstone_ttl = absl::Hours(4);
  sg::replication::ClusterOptions& cluster = options.cluster;
  int64_t replication_factor = cluster.replication_factor;
  int64_t write_quorum = cluster.write_quorum;
  int64_t read_quorum = cluster.read_quorum;
  uint64_t max_hint_bytes = cluster.max_hint_bytes;
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
                    "How often expired sessions are deleted (at least: a "
                    "pass that took T waits 9T, so sweeping a large store "
                    "takes a tenth of a core at most; expired sessions are "
                    "never served meanwhile).");
  flags.AddBytes("block-cache", &block_cache_bytes,
                 "RocksDB block cache, memtables charged to it (e.g. 64MiB); "
                 "0 sizes it from --memory-limit (30%), or 64MiB without "
                 "one.");
  flags.AddCustom(
      "memory-limit", "0",
      "The node's memory budget: a size (e.g. 256MiB), auto (the cgroup v2 "
      "memory.max of the container less 32MiB for mapped code; the "
      "machine's memory when there is none, logged) or 0 for none. Sizes "
      "RocksDB's caches and drives the watermarks, which judge anonymous "
      "memory (not the 15-25 MiB of mapped code).",
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
  flags.AddString("peer-listen", &cluster.peer_listen,
                  "HOST:PORT of the internal ReplicaService (peers only); "
                  "used when --peers or --peer-dns is set.");
  flags.AddCustom(
      "peers", "",
      "Peer ports of the cluster's nodes, HOST:PORT,...; may include this "
      "node, so every node can get the same list. Empty (and no "
      "--peer-dns): a single node.",
      [&cluster](std::string_view text) -> absl::Status {
        cluster.peers.clear();
        for (absl::string_view item :
             absl::StrSplit(absl::string_view(text.data(), text.size()), ',',
                            absl::SkipWhitespace())) {
          std::string peer(item);
          absl::StatusOr<sg::HostPort> parsed = sg::ParseHostPort(peer, "--peers");
          if (!parsed.ok()) return parsed.status();
          cluster.peers.push_back(parsed->ToString());
        }
        return absl::OkStatus();
      });
  flags.AddString("peer-dns", &cluster.peer_dns,
                  "NAME:PORT of a headless Service: every A/AAAA record is a "
                  "peer, re-resolved every few seconds.");
  flags.AddString("advertise-address", &cluster.advertise_address,
                  "HOST:PORT of this node's client port as peers and "
                  "operators should dial it (default: from --listen; "
                  "required when that is a wildcard and the hostname does "
                  "not resolve).");
  flags.AddInt("replication-factor", &replication_factor,
               "N: replicas of every session (capped by the cluster's size).");
  flags.AddInt("write-quorum", &write_quorum,
               "W: replicas that must acknowledge a write (<= N).");
  flags.AddInt("read-quorum", &read_quorum,
               "R: replicas a read asks (<= N); R + W > N reads every "
               "acknowledged write.");
  flags.AddDuration("hint-window", &cluster.hint_window,
                    "How long writes for a down replica are kept for it.");
  flags.AddInt("max-hints", &cluster.max_hints,
               "Hints kept at most (beyond, anti-entropy repairs).");
  flags.AddBytes("max-hint-bytes", &max_hint_bytes,
                 "Bytes of hints kept at most.");
  flags.AddDuration("anti-entropy-interval", &cluster.anti_entropy_interval,
                    "How often replicas compare digests and copy differences.");
  flags.AddInt("anti-entropy-rate", &cluster.anti_entropy_rate,
               "Entries anti-entropy copies per second at most.");
  flags.AddDuration("heartbeat-interval", &cluster.heartbeat_interval,
                    "How often each peer is pinged.");
  flags.AddDuration("suspect-after", &cluster.suspect_after,
                    "Silence after which a peer is SUSPECT.");
  flags.AddDuration("dead-after", &cluster.dead_after,
                    "Silence after which a peer is DEAD (its writes become "
                    "hints).");
  flags.AddDuration("replica-timeout", &cluster.replica_timeout,
                    "Deadline of each call to a peer.");
  // On by default, best effort: a default port already taken (several
  // nodes on one host) is logged and skipped; an explicit one must bind.
  options.metrics_listen = "0.0.0.0:9400";
  options.metrics_listen_required = false;
  flags.AddCustom(
      "metrics-listen", options.metrics_listen,
      "HOST:PORT to serve Prometheus text on /metrics (sessions, memory, "
      "RocksDB, RPC latency, peers, hints), and plain-HTTP probes: /healthz "
      "(200 while the process answers) and /readyz (200 while gRPC health is "
      "SERVING, else 503); port 0 picks a free port, empty disables it.",
      [&options](std::string_view text) {
        options.metrics_listen = std::string(text);
        options.metrics_listen_required = true;
        return absl::OkStatus();
      });
  flags.AddBool("allow-client-ids", &options.allow_client_ids,
                "Let clients choose session ids (CreateRequest.id, 22-128 "
                "base64url characters): only for a trusted application that "
                "mints random ids itself (express-session).");
  sg::security::ServerTlsOptions& tls = options.tls;
  flags.AddString("tls-cert", &tls.cert_file,
                  "PEM certificate chain of the gRPC port; with --tls-key it "
                  "serves TLS only (empty: plaintext). Re-read every "
                  "--tls-reload-interval, so a rotated file needs no restart.");
  flags.AddString("tls-key", &tls.key_file,
                  "PEM private key of --tls-cert.");
  flags.AddString("tls-client-ca", &tls.client_ca_file,
                  "PEM CA bundle: clients must present a certificate signed "
                  "by it (mutual TLS); empty: no client certificate asked.");
  flags.AddDuration("tls-reload-interval", &tls.reload_interval,
                    "How often the TLS files (server and peer) are re-read "
                    "(at least 1s).");
  std::string admin_token_file;
  flags.AddString("admin-token-file", &admin_token_file,
                  "File holding the admin bearer token: ReadLocal, "
                  "ListSessions, ListByPrincipal and DeleteByPrincipal then "
                  "need metadata 'authorization: Bearer <token>' "
                  "(UNAUTHENTICATED without, PERMISSION_DENIED when wrong). "
                  "Empty: open.");
  flags.AddString("peer-tls-cert", &cluster.peer_tls_cert_file,
                  "PEM certificate of the peer port, also presented on "
                  "calls to peers; with --peer-tls-key and --peer-tls-ca, "
                  "peers talk mutual TLS.");
  flags.AddString("peer-tls-key", &cluster.peer_tls_key_file,
                  "PEM private key of --peer-tls-cert.");
  flags.AddString("peer-tls-ca", &cluster.peer_tls_ca_file,
                  "PEM CA of the peers: the peer port accepts only callers "
                  "with a certificate it signed, peer calls trust only it. "
                  "Use a CA that signs no client certificates.");
  std::string peer_token_file;
  flags.AddString("peer-token-file", &peer_token_file,
                  "File holding the peers' shared bearer token: every peer "
                  "call carries it and the peer port refuses calls without "
                  "it (UNAUTHENTICATED) or with another (PERMISSION_DENIED).");
  flags.ParseOrExit(argc, argv);
  cluster.tls_reload_interval = tls.reload_interval;
  if (!peer_token_file.empty()) {
    absl::StatusOr<std::string> token =
        sg::security::ReadTokenFile(peer_token_file, "--peer-token-file");
    if (!token.ok()) {
      std::fprintf(stderr, "error: %s\n",
                   std::string(token.status().message()).c_str());
      return 2;
    }
    cluster.peer_token = *std::move(token);
  }
  if (!admin_token_file.empty()) {
    absl::StatusOr<std::string> token =
        sg::security::ReadTokenFile(admin_token_file, "--admin-token-file");
    if (!token.ok()) {
      std::fprintf(stderr, "error: %s\n",
                   std::string(token.status().message()).c_str());
      return 2;
    }
    options.admin_token = *std::move(token);
  }
  cluster.replication_factor = static_cast<int>(replication_factor);
  cluster.write_quorum = static_cast<int>(write_quorum);
  cluster.read_quorum = static_cast<int>(read_quorum);
  cluster.max_hint_bytes = static_cast<int64_t>(max_hint_bytes);
  cluster.node_id = store.node_id;
  cluster.tombstone_ttl = store.tombstone_ttl;
  store.max_session_bytes = max_session_bytes;
  store.block_cache_bytes = block_cache_bytes;
  options.governor.max_disk_bytes = max_disk_bytes;
  if (absl::Status s = options.Validate(); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", flags.DescribeOptionError(s).c_str());
    return 2;
  }

  // Before any thread starts, so only WaitForStopSignal sees them.
  sg::BlockStopSignals();
  // Deadlock detection walks a global graph on every Mutex acquisition
  // (Debian's Abseil is built with it on): a debugging aid, not for the
  // request path (TSan reports lock-order inversions in the test suites).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

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

// Cluster: one node's part of the replicated service — membership, the
// coordinator, hints, anti-entropy and the peer port — built from one
// Options struct and stopped in drain order.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/tls_credentials.h"
#include "server/replication/anti_entropy.h"
#include "server/replication/coordinator.h"
#include "server/replication/hint_log.h"
#include "server/replication/membership.h"
#include "server/store/session_store.h"
#include "sessiongrid/v1/admin.pb.h"

namespace sg::replication {

struct ClusterOptions {
  std::string node_id;
  // HOST:PORT of the ReplicaService; port 0 picks a free port.
  std::string peer_listen = "0.0.0.0:7401";
  std::vector<std::string> peers;  // HOST:PORT each; may include this node
  std::string peer_dns;            // NAME:PORT of a headless Service
  // What peers are told: the client address (--advertise-address) and the
  // peer address (derived: its host with the peer port, unless
  // peer_listen names a host).
  std::string advertise_address;
  std::string advertise_peer_address;
  int replication_factor = 3;
  int write_quorum = 2;
  int read_quorum = 1;
  absl::Duration hint_window = absl::Hours(3);
  int64_t max_hints = 1'000'000;
  int64_t max_hint_bytes = 256ll << 20;
  absl::Duration anti_entropy_interval = absl::Seconds(60);
  int64_t anti_entropy_rate = 20000;
  absl::Duration heartbeat_interval = absl::Milliseconds(500);
  absl::Duration suspect_after = absl::Seconds(2);
  absl::Duration dead_after = absl::Seconds(5);
  absl::Duration replica_timeout = absl::Seconds(1);
  int64_t max_sessions_per_principal = 0;
  // The store's, checked against the hint window and anti-entropy period.
  absl::Duration tombstone_ttl = absl::Hours(4);
  // Mutual TLS between peers (--peer-tls-cert, --peer-tls-key,
  // --peer-tls-ca, all three or none): the peer port serves this
  // certificate and accepts only callers presenting one signed by the peer
  // CA; outgoing peer calls present it and trust only that CA. Use a CA
  // that signs server certificates only, so no client certificate opens
  // the peer port. Files re-read every tls_reload_interval.
  std::string peer_tls_cert_file;
  std::string peer_tls_key_file;
  std::string peer_tls_ca_file;
  absl::Duration tls_reload_interval = absl::Seconds(60);
  // Shared bearer token of the peer port (--peer-token-file): every
  // peer call carries it, the peer port refuses calls without it
  // (UNAUTHENTICATED) or with another (PERMISSION_DENIED). Empty: none.
  std::string peer_token;

  // True when peers are configured: a node without any runs alone.
  bool enabled() const { return !peers.empty() || !peer_dns.empty(); }
  // Rejects W > N, R > N, non-positive values, a tombstone TTL that does
  // not exceed hint window + anti-entropy interval, bad addresses.
  absl::Status Validate() const;
  // The peer port's and the peer channels' TLS files, with the peer flags'
  // names for errors.
  security::ServerTlsOptions PeerServerTls() const;
  security::ChannelTlsOptions PeerChannelTls() const;
};

class Cluster final {
 public:
  // Starts the peer port and the background threads. `store` and `clock`
  // must outlive the cluster.
  static absl::StatusOr<std::unique_ptr<Cluster>> Start(
      const ClusterOptions& options, store::SessionStore* store, Clock* clock);
  ~Cluster();

  Coordinator* coordinator() { return coordinator_.get(); }
  const Coordinator* coordinator() const { return coordinator_.get(); }
  Membership* membership() { return membership_.get(); }
  int peer_port() const { return peer_port_; }

  // ClusterStatus as this node sees it; `self_stats` fills this node's.
  void FillStatus(sessiongrid::v1::ClusterStatusResponse* out,
                  const sessiongrid::v1::NodeStats& self_stats) const;

  // Drain, in order: tell peers, hand pending hints to a live peer, then
  // (after client calls finished) Stop().
  void BeginDrain();
  int64_t HandOffHints();
  // Stops threads and the peer port. Idempotent.
  void Stop();

  // Whether this node knows at least W members (itself included), so that
  // writes can be acknowledged; health is NOT_SERVING until then.
  bool can_coordinate() const {
    return static_cast<int>(membership_->ring()->size()) >= options_.write_quorum;
  }

  int64_t hints_pending() const { return hints_->pending(); }
  int64_t hints_replayed() const { return hints_->replayed(); }
  int64_t anti_entropy_repaired() const { return anti_entropy_->total_repaired(); }

 private:
  Cluster() = default;
  ClusterOptions options_;
  store::SessionStore* store_ = nullptr;
  Clock* clock_ = nullptr;
  std::unique_ptr<Membership> membership_;
  std::unique_ptr<HintLog> hints_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<AntiEntropy> anti_entropy_;
  std::unique_ptr<grpc::Service> replica_service_;
  std::unique_ptr<grpc::Server> peer_server_;
  int peer_port_ = 0;
  // True until Start has started every part: a Start that fails half-way
  // leaves nothing running for Stop to stop (and parts it never made).
  bool stopped_ = true;
};

}  // namespace sg::replication

#include "server/replication/cluster.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/host_port.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "server/replication/replica_service.h"

namespace sg::replication {
namespace v1 = ::sessiongrid::v1;

absl::Status ClusterOptions::Validate() const {
  if (node_id.empty()) return absl::InvalidArgumentError("--node-id must not be empty");
  if (replication_factor < 1) {
    return absl::InvalidArgumentError("--replication-factor must be at least 1");
  }
  if (write_quorum < 1 || write_quorum > replication_factor) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--write-quorum must be 1..--replication-factor (", replication_factor,
        "), got ", write_quorum));
  }
  if (read_quorum < 1 || read_quorum > replication_factor) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--read-quorum must be 1..--replication-factor (", replication_factor,
        "), got ", read_quorum));
  }
  if (hint_window <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--hint-window must be positive");
  }
  if (anti_entropy_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--anti-entropy-interval must be positive");
  }
  if (enabled() && !peers.empty() && peer_dns.empty()) {
    std::vector<std::string> distinct = peers;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    // The list may or may not include this node: with it, W entries are
    // needed; without it, W - 1.
    if (static_cast<int>(distinct.size()) + 1 < write_quorum) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--write-quorum ", write_quorum, " needs at least ", write_quorum,
          " nodes, but --peers lists ", distinct.size()));
    }
  }
  if (enabled() && tombstone_ttl <= hint_window + anti_entropy_interval) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tombstone-ttl (", absl::FormatDuration(tombstone_ttl),
        ") must exceed --hint-window + --anti-entropy-interval (",
        absl::FormatDuration(hint_window + anti_entropy_interval),
        "), or a replica returning late could bring deleted sessions back"));
  }
  for (const std::string& peer : peers) {
    SG_RETURN_IF_ERROR(ParseHostPort(peer, "--peers").status());
  }
  if (!peer_dns.empty()) {
    SG_RETURN_IF_ERROR(ParseHostPort(peer_dns, "--peer-dns").status());
  }
  SG_RETURN_IF_ERROR(ParseHostPort(peer_listen, "--peer-listen").status());
  const int tls_files = !peer_tls_cert_file.empty() + !peer_tls_key_file.empty() +
                        !peer_tls_ca_file.empty();
  if (tls_files != 0 && tls_files != 3) {
    return absl::InvalidArgumentError(
        "--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together "
        "(peers authenticate each other: mutual TLS)");
  }
  if (tls_files == 3) SG_RETURN_IF_ERROR(PeerServerTls().Validate());
  return absl::OkStatus();
}

security::ServerTlsOptions ClusterOptions::PeerServerTls() const {
  security::ServerTlsOptions tls;
  tls.cert_file = peer_tls_cert_file;
  tls.key_file = peer_tls_key_file;
  tls.client_ca_file = peer_tls_ca_file;
  tls.reload_interval = tls_reload_interval;
  tls.cert_flag = "--peer-tls-cert";
  tls.key_flag = "--peer-tls-key";
  tls.client_ca_flag = "--peer-tls-ca";
  return tls;
}

security::ChannelTlsOptions ClusterOptions::PeerChannelTls() const {
  security::ChannelTlsOptions tls;
  tls.ca_file = peer_tls_ca_file;
  tls.cert_file = peer_tls_cert_file;
  tls.key_file = peer_tls_key_file;
  // Peers are dialled by addresses from --peers or DNS; any certificate
  // from the dedicated peer CA is a peer.
  tls.verify_hostname = false;
  tls.reload_interval = tls_reload_interval;
  tls.ca_flag = "--peer-tls-ca";
  tls.cert_flag = "--peer-tls-cert";
  tls.key_flag = "--peer-tls-key";
  return tls;
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(
    const ClusterOptions& options, store::SessionStore* store, Clock* clock) {
  SG_RETURN_IF_ERROR(options.Validate());
  if (options.replication_factor > 1 &&
      options.read_quorum + options.write_quorum <=
          options.replication_factor) {
    LogWarn("R + W <= N: a read may miss the latest acknowledged write",
            {{"read_quorum", absl::StrCat(options.read_quorum)},
             {"write_quorum", absl::StrCat(options.write_quorum)},
             {"replication_factor", absl::StrCat(options.replication_factor)}});
  }
  std::unique_ptr<Cluster> c(new Cluster());
  c->options_ = options;
  c->store_ = store;
  c->clock_ = clock;

  MembershipOptions m;
  m.node_id = options.node_id;
  m.client_address = options.advertise_address;
  m.peers = options.peers;
  m.peer_dns = options.peer_dns;
  m.heartbeat_interval = options.heartbeat_interval;
  m.suspect_after = options.suspect_after;
  m.dead_after = options.dead_after;
  m.ping_timeout = std::min(options.replica_timeout, options.suspect_after);
  SG_ASSIGN_OR_RETURN(m.peer_credentials,
                      security::MakeChannelCredentials(options.PeerChannelTls()));
  m.peer_token = options.peer_token;
  c->membership_ = std::make_unique<Membership>(m, clock);

  HintOptions h;
  h.hint_window = options.hint_window;
  h.max_hints = options.max_hints;
  h.max_hint_bytes = options.max_hint_bytes;
  c->hints_ = std::make_unique<HintLog>(h, store, c->membership_.get(), clock);

  CoordinatorOptions co;
  co.replication_factor = options.replication_factor;
  co.write_quorum = options.write_quorum;
  co.read_quorum = options.read_quorum;
  co.replica_timeout = options.replica_timeout;
  co.max_sessions_per_principal = options.max_sessions_per_principal;
  c->coordinator_ = std::make_unique<Coordinator>(
      co, store, c->membership_.get(), c->hints_.get(), clock);

  AntiEntropyOptions ae;
  ae.interval = options.anti_entropy_interval;
  ae.max_entries_per_second = options.anti_entropy_rate;
  ae.replication_factor = options.replication_factor;
  c->anti_entropy_ =
      std::make_unique<AntiEntropy>(ae, store, c->membership_.get(), clock);

  c->replica_service_ = std::make_unique<ReplicaServiceImpl>(
      store, c->membership_.get(), c->hints_.get(), c->coordinator_.get(),
      options.replication_factor, options.peer_token);
  SG_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                      security::MakeServerCredentials(options.PeerServerTls()));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.peer_listen, credentials, &c->peer_port_);
  // No SO_REUSEPORT, as on --listen: a taken port is an error, not shared.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(c->replica_service_.get());
  c->peer_server_ = builder.BuildAndStart();
  if (c->peer_server_ == nullptr || c->peer_port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on --peer-listen ", options.peer_listen,
        " (address in use, or not an address of this host)"));
  }

  // What peers are told to dial: the listen host, or (when it is a
  // wildcard) the advertised client host, with the bound peer port.
  std::string peer_address = options.advertise_peer_address;
  if (peer_address.empty()) {
    absl::StatusOr<HostPort> listen =
        ParseHostPort(options.peer_listen, "--peer-listen");
    absl::StatusOr<HostPort> client =
        ParseHostPort(options.advertise_address, "--advertise-address");
    if (!listen.ok()) return listen.status();
    HostPort out = *listen;
    if (IsWildcardHost(out.host)) {
      if (!client.ok()) return client.status();
      out.host = client->host;
      out.kind = client->kind;
    }
    out.port = c->peer_port_;
    peer_address = out.ToString();
  }
  c->membership_->set_peer_address(peer_address);

  // Evictions are deletes the cluster agrees on.
  Coordinator* coordinator = c->coordinator_.get();
  store->SetEvictionObserver([coordinator](const store::EvictedSession& e) {
    coordinator->ReplicateEviction(e);
  });

  c->stopped_ = false;
  c->membership_->Start();
  c->hints_->Start();
  c->anti_entropy_->Start();
  LogInfo("cluster peer port listening",
          {{"peer_address", peer_address},
           {"node_id", options.node_id},
           {"replication_factor", absl::StrCat(options.replication_factor)},
           {"write_quorum", absl::StrCat(options.write_quorum)},
           {"read_quorum", absl::StrCat(options.read_quorum)},
           {"hints_pending", absl::StrCat(c->hints_->pending())},
           {"peer_tls", options.peer_tls_cert_file.empty() ? "off" : "mutual"},
           {"peer_auth", options.peer_token.empty() ? "off" : "token"}});
  if (!options.peer_token.empty() && options.peer_tls_cert_file.empty()) {
    LogWarn("the peer token travels in clear without --peer-tls-cert: anyone "
            "who can read peer traffic can reuse it");
  }
  return c;
}

Cluster::~Cluster() { Stop(); }

void Cluster::BeginDrain() {
  membership_->SetDraining();
  // Before the client port closes: a peer that still took this node for
  // an id's first owner would forward compare-and-sets to a port about to
  // close (and, once it has, for the seconds until the peer finds it dead).
  const int told = membership_->AnnounceDraining();
  LogInfo("drain: peers told", {{"answered", absl::StrCat(told)}});
}

int64_t Cluster::HandOffHints() {
  if (hints_->pending() == 0) return 0;
  // Any live peer takes them; it replays them as its own.
  for (const MemberView& m : membership_->Members()) {
    if (m.self || m.node_id.empty() || m.liveness != Liveness::kAlive) continue;
    auto stub = membership_->StubFor(m.node_id);
    if (stub == nullptr) continue;
    int64_t moved = hints_->HandOff([&](const std::vector<rpb::Hint>& batch) {
      rpb::HandoffRequest request;
      for (const rpb::Hint& h : batch) *request.add_hints() = h;
      rpb::HandoffResponse response;
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
      return stub->Handoff(&ctx, request, &response).ok();
    });
    LogInfo("drain: hints handed off",
            {{"to", m.node_id}, {"count", absl::StrCat(moved)},
             {"left", absl::StrCat(hints_->pending())}});
    if (hints_->pending() == 0) break;
  }
  return hints_->pending();
}

void Cluster::Stop() {
  if (stopped_) return;
  stopped_ = true;
  store_->SetEvictionObserver(nullptr);
  anti_entropy_->Stop();
  // Peer calls still in flight (a write's third replica, read repairs)
  // end at their deadline; their callbacks use what is freed below.
  coordinator_->WaitForCallbacks(3 * options_.replica_timeout);
  hints_->Stop();
  membership_->Stop();
  peer_server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  peer_server_->Wait();
}

void Cluster::FillStatus(v1::ClusterStatusResponse* out,
                         const v1::NodeStats& self_stats) const {
  std::shared_ptr<const Ring> ring = membership_->ring();
  const int n = std::min<int>(options_.replication_factor,
                              static_cast<int>(ring->size()));
  const int w = std::min(options_.write_quorum, n);
  out->set_replication_factor(options_.replication_factor);
  out->set_write_quorum(options_.write_quorum);
  out->set_read_quorum(options_.read_quorum);
  out->set_hints_pending(hints_->pending());

  int serving = 0;
  std::vector<MemberView> members = membership_->Members();
  for (const MemberView& m : members) {
    v1::NodeStatus* node = out->add_nodes();
    node->set_node_id(m.node_id);
    node->set_address(m.client_address);
    node->set_peer_address(m.peer_address);
    node->set_self(m.self);
    node->set_liveness(LivenessName(m.liveness));
    if (m.liveness_since != absl::InfinitePast()) {
      node->mutable_liveness_since()->set_seconds(absl::ToUnixSeconds(m.liveness_since));
    }
    const bool up = m.liveness != Liveness::kDead;
    node->set_state(m.draining ? "NOT_SERVING" : up ? "SERVING" : "UNREACHABLE");
    if (up && !m.draining) ++serving;
    if (!m.node_id.empty()) node->set_ring_share(ring->Share(m.node_id, n));
    if (m.self) {
      *node->mutable_stats() = self_stats;
    } else {
      node->mutable_stats()->set_node_id(m.node_id);
      node->mutable_stats()->set_sessions(m.sessions);
      node->set_hints_pending(hints_->pending_for(m.node_id));
      PeerRepairStats ae = anti_entropy_->stats_for(m.node_id);
      if (ae.last_round != absl::InfinitePast()) {
        node->mutable_last_anti_entropy()->set_seconds(
            absl::ToUnixSeconds(ae.last_round));
      }
      node->set_anti_entropy_repaired(ae.total_repaired);
    }
  }
  out->set_node_count(static_cast<int>(members.size()));
  out->set_serving_count(serving);

  int below_w = 0, below_n = 0;
  for (const Ring::Range& r : ring->Ranges(n)) {
    int live = 0;
    for (const std::string& owner : r.owners) {
      if (membership_->LivenessOf(owner) == Liveness::kAlive) ++live;
    }
    if (live < w) ++below_w;
    if (live < static_cast<int>(r.owners.size()) ||
        static_cast<int>(r.owners.size()) < options_.replication_factor) {
      ++below_n;
    }
  }
  out->set_ranges_below_write_quorum(below_w);
  out->set_status(below_w > 0 ? "UNAVAILABLE" : below_n > 0 ? "DEGRADED" : "HEALTHY");
}

}  // namespace sg::replication

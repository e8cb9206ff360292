#include "common/bearer_token.h"
#include "server/replication/membership.h"

#include <netdb.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/host_port.h"
#include "common/log.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace sg::replication {
namespace {

uint64_t RandomIncarnation() {
  uint64_t v = 0;
  while (getrandom(&v, sizeof(v), 0) != sizeof(v)) {
  }
  return v | 1;  // never 0, which means "unknown"
}

// Every A/AAAA record of NAME, as HOST:PORT strings.
std::vector<std::string> ResolveAll(const HostPort& target) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  std::vector<std::string> out;
  if (getaddrinfo(target.host.c_str(), nullptr, &hints, &result) != 0) {
    return out;
  }
  for (addrinfo* a = result; a != nullptr; a = a->ai_next) {
    char host[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof(host), nullptr, 0,
                    NI_NUMERICHOST) != 0) {
      continue;
    }
    std::string address = a->ai_family == AF_INET6
                              ? absl::StrCat("[", host, "]:", target.port)
                              : absl::StrCat(host, ":", target.port);
    if (std::find(out.begin(), out.end(), address) == out.end()) {
      out.push_back(address);
    }
  }
  freeaddrinfo(result);
  return out;
}

std::shared_ptr<rpb::ReplicaService::Stub> NewStub(
    const std::string& address, const MembershipOptions& options) {
  grpc::ChannelArguments args;
  // A returning peer must be reachable again within a heartbeat or two, not
  // after gRPC's default backoff of up to two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  if (!options.peer_token.empty()) {
    interceptors.push_back(
        security::MakeBearerTokenInterceptorFactory(options.peer_token));
  }
  return std::shared_ptr<rpb::ReplicaService::Stub>(rpb::ReplicaService::NewStub(
      grpc::experimental::CreateCustomChannelWithInterceptors(
          address,
          options.peer_credentials != nullptr
              ? options.peer_credentials
              : grpc::InsecureChannelCredentials(),
          args, std::move(interceptors))));
}

}  // namespace

const char* LivenessName(Liveness liveness) {
  switch (liveness) {
    case Liveness::kAlive:
      return "ALIVE";
    case Liveness::kSuspect:
      return "SUSPECT";
    case Liveness::kDead:
      return "DEAD";
  }
  return "DEAD";
}

Membership::Membership(MembershipOptions options, Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      incarnation_(RandomIncarnation()) {
  absl::MutexLock lock(&mu_);
  peer_address_ = options_.peer_address;
  client_address_ = options_.client_address;
  for (const std::string& address : options_.peers) {
    PeerAtLocked(address).configured = true;
  }
  RebuildRingLocked();
}

Membership::~Membership() { Stop(); }

void Membership::Start() {
  ResolveDns();
  PingAllNow();
  {
    absl::MutexLock lock(&mu_);
    auto answered = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return pings_outstanding_ == 0;
    };
    mu_.AwaitWithTimeout(absl::Condition(&answered),
                         options_.ping_timeout + absl::Milliseconds(100));
    UpdateLivenessLocked();
  }
  thread_ = std::thread([this] { Loop(); });
}

void Membership::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  // Ping callbacks use `this`: wait for the last ones (they end at their
  // deadline at the latest).
  absl::MutexLock lock(&mu_);
  auto answered = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return pings_outstanding_ == 0;
  };
  mu_.AwaitWithTimeout(absl::Condition(&answered),
                       options_.ping_timeout + absl::Seconds(1));
}

Membership::Peer& Membership::PeerAtLocked(const std::string& address) {
  auto& slot = peers_[address];
  if (slot == nullptr) {
    slot = std::make_unique<Peer>();
    slot->address = address;
    slot->since = clock_->Now();
    slot->stub = NewStub(address, options_);
  }
  return *slot;
}

void Membership::Loop() {
  absl::Time next_dns = clock_->Now() + options_.dns_interval;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), options_.heartbeat_interval);
      if (stopping_) return;
      UpdateLivenessLocked();
    }
    if (!options_.peer_dns.empty() && clock_->Now() >= next_dns) {
      ResolveDns();
      next_dns = clock_->Now() + options_.dns_interval;
    }
    SendPings();
  }
}

void Membership::ResolveDns() {
  if (options_.peer_dns.empty()) return;
  absl::StatusOr<HostPort> target = ParseHostPort(options_.peer_dns, "--peer-dns");
  if (!target.ok()) return;  // Validate() rejected this already
  std::vector<std::string> found = ResolveAll(*target);
  absl::MutexLock lock(&mu_);
  for (auto& [address, peer] : peers_) {
    const bool listed = std::find(options_.peers.begin(), options_.peers.end(),
                                  address) != options_.peers.end();
    const bool in_dns =
        std::find(found.begin(), found.end(), address) != found.end();
    peer->configured = listed || in_dns;
  }
  for (const std::string& address : found) PeerAtLocked(address).configured = true;
  RebuildRingLocked();
}

void Membership::FillSelf(rpb::Member* out) const {
  out->set_node_id(options_.node_id);
  out->set_peer_address(peer_address());
  out->set_client_address(client_address());
  out->set_incarnation(incarnation_);
  out->set_draining(draining_.load());
}

void Membership::FillKnownLocked(rpb::PingRequest* out) const {
  for (const auto& [address, peer] : peers_) {
    if (peer->node_id.empty() || peer->self || peer->duplicate) continue;
    rpb::Member* m = out->add_known();
    m->set_node_id(peer->node_id);
    m->set_peer_address(peer->address);
    m->set_client_address(peer->client_address);
  }
}

void Membership::PingAllNow() { SendPings(); }

void Membership::SendPings() {
  struct Call {
    grpc::ClientContext ctx;
    rpb::PingRequest request;
    rpb::PingResponse response;
  };
  std::vector<std::pair<std::string, std::shared_ptr<rpb::ReplicaService::Stub>>>
      targets;
  rpb::PingRequest request;
  FillSelf(request.mutable_from());
  {
    absl::MutexLock lock(&mu_);
    FillKnownLocked(&request);
    for (auto& [address, peer] : peers_) {
      if (peer->self || peer->ping_in_flight) continue;
      peer->ping_in_flight = true;
      ++pings_outstanding_;
      targets.emplace_back(address, peer->stub);
    }
  }
  for (auto& [address, stub] : targets) {
    auto call = std::make_shared<Call>();
    call->request = request;
    call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.ping_timeout));
    stub->async()->Ping(
        &call->ctx, &call->request, &call->response,
        [this, call, address = address](grpc::Status status) {
          absl::MutexLock lock(&mu_);
          Peer& peer = PeerAtLocked(address);
          peer.ping_in_flight = false;
          --pings_outstanding_;
          if (!status.ok()) {
            if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
                !peer.duplicate) {
              peer.duplicate = true;
              LogError("peer refuses us: duplicate node id; not forming a "
                       "cluster with it",
                       {{"peer", address}, {"node_id", options_.node_id},
                        {"error", status.error_message()}});
              RebuildRingLocked();
            }
            return;
          }
          const rpb::Member& them = call->response.self();
          if (them.node_id() == options_.node_id) {
            if (them.incarnation() == incarnation_) {
              if (!peer.self) {
                peer.self = true;
                RebuildRingLocked();
              }
              return;
            }
            if (!peer.duplicate) {
              peer.duplicate = true;
              LogError("another node has this node's --node-id; refusing to "
                       "form a cluster with it (node ids must be unique)",
                       {{"peer", address}, {"node_id", options_.node_id}});
              RebuildRingLocked();
            }
            return;
          }
          const bool changed = peer.node_id != them.node_id();
          peer.duplicate = false;
          peer.node_id = them.node_id();
          peer.client_address = them.client_address();
          peer.incarnation = them.incarnation();
          peer.draining = them.draining();
          peer.sessions = call->response.sessions();
          peer.last_ok = clock_->Now();
          if (peer.liveness != Liveness::kAlive) {
            LogInfo("peer alive", {{"peer", address}, {"node_id", peer.node_id}});
            peer.liveness = Liveness::kAlive;
            peer.since = clock_->Now();
          }
          for (const rpb::Member& m : call->response.known()) LearnLocked(m);
          if (changed) RebuildRingLocked();
        });
  }
}

void Membership::LearnLocked(const rpb::Member& member) {
  if (member.peer_address().empty() || member.node_id() == options_.node_id) {
    return;
  }
  if (peers_.contains(member.peer_address())) return;
  LogInfo("learned of a member", {{"peer", member.peer_address()},
                                  {"node_id", member.node_id()}});
  PeerAtLocked(member.peer_address());
}

void Membership::UpdateLivenessLocked() {
  const absl::Time now = clock_->Now();
  bool changed = false;
  for (auto& [address, peer] : peers_) {
    if (peer->self) continue;
    const absl::Duration silent = now - peer->last_ok;
    Liveness next = silent < options_.suspect_after ? Liveness::kAlive
                    : silent < options_.dead_after  ? Liveness::kSuspect
                                                    : Liveness::kDead;
    if (next == peer->liveness) continue;
    LogInfo("peer state", {{"peer", address},
                           {"node_id", peer->node_id},
                           {"state", LivenessName(next)}});
    peer->liveness = next;
    peer->since = now;
    changed = true;
  }
  if (changed) RebuildRingLocked();
}

void Membership::RebuildRingLocked() {
  std::vector<std::string> nodes = {options_.node_id};
  for (const auto& [address, peer] : peers_) {
    if (peer->node_id.empty() || peer->self || peer->duplicate) continue;
    if (!peer->configured && peer->liveness == Liveness::kDead) continue;
    nodes.push_back(peer->node_id);
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  if (ring_ != nullptr && nodes == ring_nodes_) return;
  if (ring_ != nullptr) {
    LogInfo("ring changed", {{"members", absl::StrCat(nodes.size())}});
  }
  ring_nodes_ = nodes;
  ring_ = std::make_shared<const Ring>(nodes, options_.virtual_nodes);
}

std::shared_ptr<const Ring> Membership::ring() const {
  absl::MutexLock lock(&mu_);
  return ring_;
}

Liveness Membership::LivenessOf(const std::string& node_id) const {
  if (node_id == options_.node_id) return Liveness::kAlive;
  absl::MutexLock lock(&mu_);
  Liveness best = Liveness::kDead;
  for (const auto& [address, peer] : peers_) {
    if (peer->node_id != node_id || peer->self || peer->duplicate) continue;
    if (static_cast<int>(peer->liveness) < static_cast<int>(best)) {
      best = peer->liveness;
    }
  }
  return best;
}

bool Membership::IsDraining(const std::string& node_id) const {
  if (node_id == options_.node_id) return draining_.load();
  absl::MutexLock lock(&mu_);
  for (const auto& [address, peer] : peers_) {
    if (peer->node_id == node_id && !peer->self && !peer->duplicate &&
        peer->draining) {
      return true;
    }
  }
  return false;
}

int Membership::AnnounceDraining() {
  // Its own calls, not the heartbeat's (one may be in flight without the
  // flag); the state is shared so a late answer touches nothing freed.
  struct State {
    absl::Mutex mu;
    int outstanding ABSL_GUARDED_BY(mu) = 0;
    int answered ABSL_GUARDED_BY(mu) = 0;
  };
  struct Call {
    grpc::ClientContext ctx;
    rpb::PingRequest request;
    rpb::PingResponse response;
  };
  auto state = std::make_shared<State>();
  rpb::PingRequest request;
  FillSelf(request.mutable_from());
  std::vector<std::shared_ptr<rpb::ReplicaService::Stub>> stubs;
  {
    absl::MutexLock lock(&mu_);
    FillKnownLocked(&request);
    for (const auto& [address, peer] : peers_) {
      if (peer->self || peer->duplicate || peer->node_id.empty()) continue;
      if (peer->liveness == Liveness::kDead) continue;
      stubs.push_back(peer->stub);
    }
  }
  {
    absl::MutexLock lock(&state->mu);
    state->outstanding = static_cast<int>(stubs.size());
  }
  for (const auto& stub : stubs) {
    auto call = std::make_shared<Call>();
    call->request = request;
    call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.ping_timeout));
    stub->async()->Ping(&call->ctx, &call->request, &call->response,
                        [call, state](grpc::Status status) {
                          absl::MutexLock lock(&state->mu);
                          --state->outstanding;
                          if (status.ok()) ++state->answered;
                        });
  }
  absl::MutexLock lock(&state->mu);
  auto done = [&state]() ABSL_SHARED_LOCKS_REQUIRED(state->mu) {
    return state->outstanding == 0;
  };
  state->mu.AwaitWithTimeout(absl::Condition(&done),
                             options_.ping_timeout + absl::Milliseconds(100));
  return state->answered;
}

std::shared_ptr<rpb::ReplicaService::Stub> Membership::StubFor(
    const std::string& node_id) const {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<rpb::ReplicaService::Stub> best;
  Liveness best_liveness = Liveness::kDead;
  for (const auto& [address, peer] : peers_) {
    if (peer->node_id != node_id || peer->self || peer->duplicate) continue;
    if (best == nullptr ||
        static_cast<int>(peer->liveness) < static_cast<int>(best_liveness)) {
      best = peer->stub;
      best_liveness = peer->liveness;
    }
  }
  return best;
}

std::vector<MemberView> Membership::Members() const {
  std::vector<MemberView> out;
  out.push_back(MemberView{options_.node_id, peer_address(),
                           client_address(), Liveness::kAlive,
                           absl::InfinitePast(), 0, true, draining_.load()});
  absl::MutexLock lock(&mu_);
  for (const auto& [address, peer] : peers_) {
    if (peer->self || peer->duplicate) continue;
    if (!peer->configured && peer->liveness == Liveness::kDead &&
        peer->node_id.empty()) {
      continue;
    }
    // One line per node id: the address it answers on best.
    // (Captured by name: clang 14 cannot capture a structured binding.)
    auto same = std::find_if(
        out.begin(), out.end(), [&id = peer->node_id](const MemberView& m) {
          return !id.empty() && m.node_id == id;
        });
    MemberView view{peer->node_id, peer->address,   peer->client_address,
                    peer->liveness, peer->since,    peer->sessions,
                    false,          peer->draining};
    if (same != out.end()) {
      if (static_cast<int>(peer->liveness) < static_cast<int>(same->liveness)) {
        *same = view;
      }
      continue;
    }
    out.push_back(view);
  }
  std::sort(out.begin() + 1, out.end(), [](const MemberView& a, const MemberView& b) {
    return a.node_id != b.node_id ? a.node_id < b.node_id
                                  : a.peer_address < b.peer_address;
  });
  return out;
}

std::vector<std::string> Membership::DuplicateIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [address, peer] : peers_) {
    if (peer->duplicate) out.push_back(address);
  }
  return out;
}

absl::Status Membership::OnPing(const rpb::PingRequest& request,
                                rpb::PingResponse* response, int64_t sessions) {
  const rpb::Member& from = request.from();
  if (from.node_id() == options_.node_id && from.incarnation() != incarnation_) {
    LogError("a peer has this node's --node-id; refusing it (node ids must be "
             "unique)",
             {{"peer", from.peer_address()}, {"node_id", options_.node_id}});
    return absl::FailedPreconditionError(absl::StrCat(
        "duplicate node id '", options_.node_id,
        "': node ids must be unique; this cluster already has one"));
  }
  FillSelf(response->mutable_self());
  response->set_sessions(sessions);
  absl::MutexLock lock(&mu_);
  LearnLocked(from);
  // A draining node says so in its own heartbeats: no need to wait for
  // ours to learn it. Only our own heartbeat's answer clears the flag: it
  // also proves our channel reaches the node again (after a restart it
  // may still be backing off, failing every call at once).
  if (auto it = peers_.find(from.peer_address()); it != peers_.end() &&
      !it->second->self && it->second->node_id == from.node_id() &&
      from.draining()) {
    it->second->draining = true;
  }
  for (const rpb::Member& m : request.known()) LearnLocked(m);
  for (const auto& [address, peer] : peers_) {
    if (peer->node_id.empty() || peer->self || peer->duplicate) continue;
    rpb::Member* m = response->add_known();
    m->set_node_id(peer->node_id);
    m->set_peer_address(peer->address);
    m->set_client_address(peer->client_address);
  }
  return absl::OkStatus();
}

}  // namespace sg::replication

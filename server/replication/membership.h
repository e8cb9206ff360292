// Membership: who the peers are (--peers, --peer-dns, and members learned
// from other nodes' pings), whether each is alive, suspect or dead
// (heartbeats), and the ring built from them.
//
// Thread safety: every method may be called from any thread. One background
// thread sends heartbeats and re-resolves DNS; ping answers arrive on gRPC
// threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/security/credentials.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/replication/ring.h"
#include "sessiongrid/replica/v1/replica.grpc.pb.h"

namespace sg::replication {

namespace rpb = ::sessiongrid::replica::v1;

enum class Liveness { kAlive, kSuspect, kDead };
const char* LivenessName(Liveness liveness);

struct MembershipOptions {
  std::string node_id;
  std::string peer_address;    // this node's, as peers reach it
  std::string client_address;  // this node's SessionService address
  std::vector<std::string> peers;  // HOST:PORT; may include this node
  std::string peer_dns;            // NAME:PORT; every A/AAAA record
  absl::Duration heartbeat_interval = absl::Milliseconds(500);
  absl::Duration suspect_after = absl::Seconds(2);
  absl::Duration dead_after = absl::Seconds(5);
  absl::Duration dns_interval = absl::Seconds(5);
  absl::Duration ping_timeout = absl::Milliseconds(500);
  int virtual_nodes = Ring::kDefaultVirtualNodes;
  // Of every peer channel: TLS (null: plaintext) and the bearer token its
  // calls carry (empty: none).
  std::shared_ptr<grpc::ChannelCredentials> peer_credentials;
  std::string peer_token;
};

// What the node knows of one member.
struct MemberView {
  std::string node_id;
  std::string peer_address;
  std::string client_address;
  Liveness liveness = Liveness::kDead;
  absl::Time liveness_since;
  int64_t sessions = 0;
  bool self = false;
  bool draining = false;
};

class Membership final {
 public:
  Membership(MembershipOptions options, Clock* clock);
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // This node's peer address, when known only once the port is bound.
  // Call before Start().
  void set_peer_address(std::string address) {
    absl::MutexLock lock(&mu_);
    peer_address_ = std::move(address);
  }
  void set_client_address(std::string address) {
    absl::MutexLock lock(&mu_);
    client_address_ = std::move(address);
  }
  std::string client_address() const {
    absl::MutexLock lock(&mu_);
    return client_address_;
  }
  std::string peer_address() const {
    absl::MutexLock lock(&mu_);
    return peer_address_;
  }

  // Sends a first round of heartbeats and waits (up to the ping timeout)
  // for their answers, so the node serves knowing its peers; then starts
  // the heartbeat thread.
  void Start();
  void Stop();  // idempotent; joins the thread

  // The current ring: this node plus every peer whose node id is known and
  // that is configured (listed or in DNS) or not dead. Never null.
  std::shared_ptr<const Ring> ring() const;

  const std::string& self_id() const { return options_.node_id; }
  uint64_t incarnation() const { return incarnation_; }

  // Liveness of a node id; this node is always alive; unknown ids are dead.
  Liveness LivenessOf(const std::string& node_id) const;
  // A stub for the node's peer port, or null when unknown or this node.
  std::shared_ptr<rpb::ReplicaService::Stub> StubFor(
      const std::string& node_id) const;

  // Every member, this node first.
  std::vector<MemberView> Members() const;
  // Node ids another process claims too (each logged loudly).
  std::vector<std::string> DuplicateIds() const;

  // Answers a peer's heartbeat (and learns of the members it knows).
  // FAILED_PRECONDITION when the sender has this node's id.
  absl::Status OnPing(const rpb::PingRequest& request,
                      rpb::PingResponse* response, int64_t sessions);

  // Told to peers from now on; they keep this node in the ring.
  void SetDraining() { draining_.store(true); }
  // Tells every peer at once that this node drains (one heartbeat each,
  // carrying the flag) and waits for their answers, at most the ping
  // timeout: from then on no peer picks this node to coordinate a
  // compare-and-set. Returns how many peers answered.
  int AnnounceDraining();
  // Whether the node said it drains (in its last heartbeat, either way);
  // a draining node still stores writes and answers reads until it stops.
  bool IsDraining(const std::string& node_id) const;

  // Sends one round of heartbeats at once (start-up; tests).
  void PingAllNow();

 private:
  struct Peer {
    std::string address;
    std::string node_id;
    std::string client_address;
    uint64_t incarnation = 0;
    bool configured = false;  // in --peers or DNS now
    bool self = false;
    bool duplicate = false;
    bool draining = false;
    bool ping_in_flight = false;
    absl::Time last_ok = absl::InfinitePast();
    Liveness liveness = Liveness::kDead;
    absl::Time since;
    int64_t sessions = 0;
    std::shared_ptr<rpb::ReplicaService::Stub> stub;
  };

  void Loop();
  void ResolveDns();
  void SendPings();
  void UpdateLivenessLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RebuildRingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Peer& PeerAtLocked(const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LearnLocked(const rpb::Member& member) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillSelf(rpb::Member* out) const;
  void FillKnownLocked(rpb::PingRequest* out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const MembershipOptions options_;
  Clock* const clock_;
  const uint64_t incarnation_;
  std::atomic<bool> draining_{false};

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Peer>> peers_
      ABSL_GUARDED_BY(mu_);  // by peer address
  std::string peer_address_ ABSL_GUARDED_BY(mu_);
  std::string client_address_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const Ring> ring_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> ring_nodes_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int pings_outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace sg::replication

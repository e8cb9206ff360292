// TestCluster: N real sessiongrid-server processes on loopback, wired as
// one cluster, with the faults the tests inject (kill -9, SIGSTOP, wiped
// data dirs, restarts) and the checks they need (ReadLocal, ClusterStatus).
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "sessiongrid/v1/admin.grpc.pb.h"
#include "sessiongrid/v1/session.grpc.pb.h"
#include "tests/testutil/subprocess.h"

namespace sg::testutil {

// A free TCP port on 127.0.0.1 (bound and released; tests use it at once),
// never one another live test process was given.
int FreePort();

// Polls `done` until it returns true or `timeout` passes; returns its last
// answer. The pause between polls is not a synchronisation: each poll
// checks the condition itself.
bool PollUntil(const std::function<bool()>& done, absl::Duration timeout);

struct NodeSpec {
  std::string host = "127.0.0.1";
  int client_port = 0;
  int peer_port = 0;
  std::string node_id;
  std::string data_dir;
  std::string client_address() const;
  std::string peer_address() const;
};

class TestCluster final {
 public:
  // Fast failure detection and repair so tests converge in seconds.
  static std::vector<std::string> FastFlags();

  // `size` nodes under `dir`; every node gets every node's peer address and
  // `extra` flags (per node: extra_per_node[i], if given).
  TestCluster(std::string server_bin, std::string dir, int size,
              std::vector<std::string> extra = {});
  ~TestCluster();

  // Starts node i (all when i < 0) and waits until it listens.
  void Start(int i = -1);
  // Adds a node that lists every node so far (the others learn of it).
  int AddNode(std::vector<std::string> extra = {});
  void Kill(int i);       // SIGKILL and reap
  void Terminate(int i);  // SIGTERM, wait for the drain to exit 0
  void Pause(int i);      // SIGSTOP
  void Resume(int i);     // SIGCONT
  void Wipe(int i);       // removes the data dir (node must be stopped)
  // Safe beside Kill/Terminate on another thread (load threads ask it).
  bool running(int i) const { return up_[i].load(); }
  int size() const { return static_cast<int>(nodes_.size()); }
  const NodeSpec& node(int i) const { return nodes_[i]; }
  Subprocess* process(int i) { return procs_[i].get(); }
  // Per-node flags appended on (re)start.
  void SetNodeFlags(int i, std::vector<std::string> flags);
  // A command the node runs under, e.g. {"/usr/bin/setpriv", "--reuid=…"}.
  void SetNodeWrapper(int i, std::vector<std::string> prefix);
  // Peers from DNS instead of a list: node i listens on 127.0.0.(i+1), all
  // on one peer port, and is told --peer-dns NAME:PORT (the test provides
  // a NAME that resolves to those addresses). Call before Start().
  void UsePeerDns(const std::string& name);
  // Credentials of the test's own stubs to the client ports (default:
  // plaintext), e.g. TLS when `extra` starts the nodes with --tls-cert.
  // Call before Start().
  void SetClientCredentials(std::shared_ptr<grpc::ChannelCredentials> c) {
    client_credentials_ = std::move(c);
  }

  // Thread-safe, also while node i restarts: a stub a restart replaces is
  // kept alive until the cluster is destroyed, so a caller still using it
  // gets an RPC error, never a dangling stub.
  sessiongrid::v1::SessionService::Stub& sessions(int i);
  sessiongrid::v1::AdminService::Stub& admin(int i);

  // This node's own record of `id`.
  absl::StatusOr<sessiongrid::v1::ReadLocalResponse> ReadLocal(
      int i, const std::string& id);
  absl::StatusOr<sessiongrid::v1::ClusterStatusResponse> Status(int i);
  // Waits until node i sees every running node ALIVE and the others DEAD.
  bool WaitForView(int i, absl::Duration timeout);
  // Waits until every running node has finished an anti-entropy round with
  // every other running node that started after `since`.
  bool WaitForAntiEntropyAfter(absl::Time since, absl::Duration timeout);
  // Waits until no running node has hints pending.
  bool WaitForNoHints(absl::Duration timeout);

 private:
  std::vector<std::string> ArgsFor(int i) const;
  void Connect(int i);

  const std::string server_bin_;
  const std::string dir_;
  std::vector<std::string> extra_;
  std::vector<std::vector<std::string>> node_flags_;
  std::vector<std::vector<std::string>> node_wrappers_;
  std::string peer_dns_;
  std::shared_ptr<grpc::ChannelCredentials> client_credentials_ =
      grpc::InsecureChannelCredentials();
  std::vector<NodeSpec> nodes_;
  std::vector<std::unique_ptr<Subprocess>> procs_;
  // running(i), for threads other than the one that starts and stops nodes;
  // a deque, so that AddNode never moves an element.
  std::deque<std::atomic<bool>> up_;
  // Load threads read the stubs while the test thread restarts nodes.
  mutable absl::Mutex stubs_mu_;
  std::vector<std::unique_ptr<sessiongrid::v1::SessionService::Stub>> session_stubs_
      ABSL_GUARDED_BY(stubs_mu_);
  std::vector<std::unique_ptr<sessiongrid::v1::AdminService::Stub>> admin_stubs_
      ABSL_GUARDED_BY(stubs_mu_);
  std::vector<std::unique_ptr<sessiongrid::v1::SessionService::Stub>> retired_session_stubs_
      ABSL_GUARDED_BY(stubs_mu_);
  std::vector<std::unique_ptr<sessiongrid::v1::AdminService::Stub>> retired_admin_stubs_
      ABSL_GUARDED_BY(stubs_mu_);
};

}  // namespace sg::testutil

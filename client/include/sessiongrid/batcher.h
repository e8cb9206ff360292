// SessionBatcher: coalesces concurrent Get and Create calls into BatchGet and
// BatchCreate RPCs, so many callers share one RPC's fixed cost.
//
// No timer: a call is sent at once while fewer than max_in_flight batches
// are outstanding; calls that arrive meanwhile wait and leave together when
// a batch returns. Under light load every call goes alone (no added
// latency); under heavy load batches grow on their own.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sessiongrid/client.h"
#include "sessiongrid/v1/session.grpc.pb.h"

namespace sg::client {

struct BatcherOptions {
  // Entries per RPC at most (the server takes up to 1000).
  int max_batch = 128;
  // Batches outstanding at once, per operation kind. One gives the largest
  // batches and the fewest wake-ups: measured ~2x the throughput of four
  // with 50 callers on 2 cores (bench/RESULTS.md).
  int max_in_flight = 1;
  // Deadline of each batch RPC.
  absl::Duration deadline = absl::Seconds(1);

  absl::Status Validate() const;
};

// Thread-safe. Callbacks run on gRPC callback threads (or the caller's, for
// a call rejected up front): keep them short. Not retried. The batcher must
// outlive every call it accepted; its destructor waits for them.
class SessionBatcher final {
 public:
  using SessionCallback =
      std::function<void(absl::StatusOr<sessiongrid::v1::Session>)>;

  // `client` must outlive the batcher.
  static absl::StatusOr<std::unique_ptr<SessionBatcher>> Create(
      const Client* client, BatcherOptions options = {});
  ~SessionBatcher();
  SessionBatcher(const SessionBatcher&) = delete;
  SessionBatcher& operator=(const SessionBatcher&) = delete;

  // Same semantics as Client::Get / Client::Create; `done` runs once.
  void Get(sessiongrid::v1::GetRequest request, SessionCallback done);
  void Create(sessiongrid::v1::CreateRequest request, SessionCallback done);

  // RPCs sent so far (for tests and load tools: entries / rpcs = batch size).
  int64_t rpcs_sent() const;

 private:
  template <typename Request>
  struct Lane {
    absl::Mutex mu;
    std::vector<std::pair<Request, SessionCallback>> queue ABSL_GUARDED_BY(mu);
    int in_flight ABSL_GUARDED_BY(mu) = 0;
  };

  SessionBatcher(const Client* client, BatcherOptions options);
  template <typename Request>
  void Enqueue(Lane<Request>& lane, Request request, SessionCallback done);
  template <typename Request>
  void Send(Lane<Request>& lane,
            std::vector<std::pair<Request, SessionCallback>> batch);
  // Sends one batch RPC; `start` issues it on the stub's async() surface.
  template <typename BatchRequest, typename BatchResponse, typename Request,
            typename StartFn>
  void SendBatchRpc(std::vector<std::pair<Request, SessionCallback>> batch,
                    std::function<void()> finished, StartFn start);
  void SendRpc(std::vector<std::pair<sessiongrid::v1::GetRequest,
                                     SessionCallback>> batch,
               std::function<void()> finished);
  void SendRpc(std::vector<std::pair<sessiongrid::v1::CreateRequest,
                                     SessionCallback>> batch,
               std::function<void()> finished);

  const Client* const client_;
  const BatcherOptions options_;
  Lane<sessiongrid::v1::GetRequest> gets_;
  Lane<sessiongrid::v1::CreateRequest> creates_;
  mutable absl::Mutex stats_mu_;
  int64_t rpcs_sent_ ABSL_GUARDED_BY(stats_mu_) = 0;
  int64_t outstanding_ ABSL_GUARDED_BY(stats_mu_) = 0;
};

}  // namespace sg::client

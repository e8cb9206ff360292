// SessionPipeline: Get/Touch/Create/Update/Delete multiplexed on a few
// long-lived SessionService/Stream streams. Each call is tagged with an id
// and answered when its reply arrives, in any order, so one slow call
// holds up no other (no head-of-line blocking), and calls that are made
// while a write is out share the next message (batching without a timer).
//
// What happens to a call whose stream ends before its answer:
//  - the node drained (it said `closing`, or refused the call `not_run`),
//    or never accepted the stream: the call did not run; it is sent again
//    on another stream, whatever its kind;
//  - the stream broke (node killed, connection lost): an idempotent call
//    (Get, Touch, Delete, Update with an expected version) is sent again,
//    up to ClientOptions::max_attempts in all; any other fails UNAVAILABLE,
//    as a unary call would, since it may have run;
// always within the call's deadline (ClientOptions::deadline from when it
// was made; then DEADLINE_EXCEEDED). Calls on other streams are untouched.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <deque>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sessiongrid/client.h"
#include "sessiongrid/v1/session.grpc.pb.h"

namespace sg::client {

struct PipelineOptions {
  // Streams kept open, each on the client's next channel.
  int streams = 2;
  // Calls accepted and not yet answered, over all streams. One more is
  // refused at once with RESOURCE_EXHAUSTED: a slow or stuck node costs
  // bounded memory, and the caller learns of it.
  int max_pending = 4096;
  // Calls one message carries at most (the server takes up to 1000).
  int max_calls_per_message = 256;
  // A stream with calls unanswered holds new ones until its next reply, so
  // that they leave together (Nagle's rule), but this long at most. Zero:
  // every call leaves at once (more messages, more CPU per call).
  absl::Duration max_hold = absl::Milliseconds(1);

  absl::Status Validate() const;
};

// Thread-safe. Callbacks run on gRPC's threads, the deadline thread, or
// the caller's (a call refused up front): keep them short. The destructor
// answers the calls still pending with CANCELLED and waits for the streams
// to end. `client` must outlive the pipeline.
class SessionPipeline final {
 public:
  template <typename Response>
  using Callback = Client::Callback<Response>;

  static absl::StatusOr<std::unique_ptr<SessionPipeline>> Create(
      const Client* client, PipelineOptions options = {});
  ~SessionPipeline();
  SessionPipeline(const SessionPipeline&) = delete;
  SessionPipeline& operator=(const SessionPipeline&) = delete;

  // Same semantics and codes as the Client's unary calls; `done` runs once.
  void Get(sessiongrid::v1::GetRequest request,
           Callback<sessiongrid::v1::GetResponse> done);
  void Touch(sessiongrid::v1::TouchRequest request,
             Callback<sessiongrid::v1::TouchResponse> done);
  void Create(sessiongrid::v1::CreateRequest request,
              Callback<sessiongrid::v1::CreateResponse> done);
  void Update(sessiongrid::v1::UpdateRequest request,
              Callback<sessiongrid::v1::UpdateResponse> done);
  void Delete(sessiongrid::v1::DeleteRequest request,
              Callback<sessiongrid::v1::DeleteResponse> done);

  struct Stats {
    int64_t streams_opened = 0;
    int64_t messages_sent = 0;
    int64_t calls_sent = 0;  // resends included
    int64_t resent = 0;      // calls sent again after their stream ended
    int pending = 0;         // accepted, not yet answered
  };
  Stats stats() const;

 private:
  struct Call;
  class Stream;
  class Cork;

  SessionPipeline(const Client* client, PipelineOptions options);
  void Submit(sessiongrid::v1::StreamCall call, bool idempotent,
              std::function<void(absl::StatusOr<sessiongrid::v1::StreamReply>)>
                  on_reply);
  // Puts `call` on a usable stream (opening one if need be), on another
  // channel than `avoid` when there is one.
  void Dispatch(std::shared_ptr<Call> call,
                const Client::SessionStub* avoid = nullptr);
  // A call the stream on `from` could not answer: sent again or failed.
  void Orphaned(std::shared_ptr<Call> call, bool never_ran,
                const absl::Status& why, const Client::SessionStub* from);
  // Answers `call` unless it was answered already (deadline, shutdown).
  void Answer(Call& call, absl::StatusOr<sessiongrid::v1::StreamReply> reply);
  void StreamDone();
  // Flushes `stream` after max_hold (from the watcher thread).
  void ArmFlush(std::shared_ptr<Stream> stream);
  void WatchDeadlines();
  bool DeadlineWatchShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Client* const client_;
  const PipelineOptions options_;

  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> current_stream_{0};  // the slot new calls join
  int live_streams_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Every call's deadline, earliest first (all calls get the same budget,
  // so that is submit order); entries of answered calls are skipped.
  std::deque<std::pair<absl::Time, std::weak_ptr<Call>>> deadlines_
      ABSL_GUARDED_BY(mu_);
  // Streams holding calls, and when each hold runs out.
  std::deque<std::pair<absl::Time, std::weak_ptr<Stream>>> flushes_
      ABSL_GUARDED_BY(mu_);
  absl::Time watch_until_ ABSL_GUARDED_BY(mu_);  // the watcher sleeps until
  std::thread deadline_thread_;

  std::atomic<int> pending_{0};
  std::atomic<uint64_t> next_call_id_{1};
  std::atomic<int64_t> streams_opened_{0};
  std::atomic<int64_t> messages_sent_{0};
  std::atomic<int64_t> calls_sent_{0};
  std::atomic<int64_t> resent_{0};
};

}  // namespace sg::client

// SessionService/Stream: Get/Touch/Create/Update/Delete multiplexed on one
// bidirectional stream, each call tagged with the client's id and answered
// as soon as it completes, in any order.
#pragma once

#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "server/service/session_calls.h"
#include "sessiongrid/v1/session.grpc.pb.h"

namespace sg::service {

class SessionStream;

// The open streams of one service, so that a draining node can close them
// all. Thread-safe; `calls` must outlive every stream.
class SessionStreams {
 public:
  // `max_in_flight`: calls a stream holds at once (read and not yet
  // written back). At the bound the stream stops reading, and HTTP/2 flow
  // control holds the client back: a slow backend or a client that does
  // not read its replies costs bounded memory.
  SessionStreams(const SessionCalls* calls, int max_in_flight)
      : calls_(calls), max_in_flight_(max_in_flight) {}

  grpc::ServerBidiReactor<sessiongrid::v1::StreamRequest,
                          sessiongrid::v1::StreamResponse>*
  Open(grpc::CallbackServerContext* ctx);

  // Every open stream stops reading, tells its client (`closing`), answers
  // every call it read, then ends OK; a stream opened later closes at
  // once. For a drain, before the server's Shutdown.
  void CloseAll();

  int open() const;

 private:
  friend class SessionStream;
  void Forget(const SessionStream* stream);

  const SessionCalls* const calls_;
  const int max_in_flight_;
  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<const SessionStream*, std::weak_ptr<SessionStream>>
      streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sg::service

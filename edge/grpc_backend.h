// SessionBackend over the SessionGrid C++ client (gRPC callback API).
#pragma once

#include <memory>

#include "absl/time/time.h"
#include "edge/session_flow.h"
#include "sessiongrid/batcher.h"
#include "sessiongrid/client.h"
#include "sessiongrid/pipeline.h"

namespace sg::edge {

// Thread-safe. `client` must outlive the backend and every call started.
class GrpcSessionBackend final : public SessionBackend {
 public:
  // Calls use the client's async surface, so each gets the client's
  // deadline and its retries of UNAVAILABLE (the circuit breaker handles a
  // dead service). A call that ends CANCELLED was dropped unrun by a server
  // shutting down (see grpc_backend.cc) and is sent again, up to the
  // client's max_attempts in all, while the first attempt's deadline lasts.
  // With a `batcher`, Get and Create go through it: concurrent calls from
  // many requests share BatchGet/BatchCreate RPCs (alone under light load).
  // With a `pipeline` (which wins), Get, Create, Update and Delete share
  // its streams, which resend the calls a draining server did not run.
  explicit GrpcSessionBackend(const client::Client* client,
                              client::SessionBatcher* batcher = nullptr,
                              client::SessionPipeline* pipeline = nullptr)
      : client_(client), batcher_(batcher), pipeline_(pipeline) {}

  void Get(sessiongrid::v1::GetRequest request,
           Callback<sessiongrid::v1::GetResponse> done) override;
  void Create(sessiongrid::v1::CreateRequest request,
              Callback<sessiongrid::v1::CreateResponse> done) override;
  void Update(sessiongrid::v1::UpdateRequest request,
              Callback<sessiongrid::v1::UpdateResponse> done) override;
  void Delete(sessiongrid::v1::DeleteRequest request,
              Callback<sessiongrid::v1::DeleteResponse> done) override;
  void Regenerate(sessiongrid::v1::RegenerateRequest request,
                  Callback<sessiongrid::v1::RegenerateResponse> done) override;

 private:
  // Sends `request` with `send(request, callback)`, again after a drop.
  template <typename Req, typename Resp, typename SendFn>
  void Send(Req request, Callback<Resp> done, SendFn send) const;

  const client::Client* const client_;
  client::SessionBatcher* const batcher_;
  client::SessionPipeline* const pipeline_;
};

}  // namespace sg::edge

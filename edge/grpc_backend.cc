#include "edge/grpc_backend.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace sg::edge {
namespace v1 = ::sessiongrid::v1;

namespace {

// A gRPC server that is shutting down (a node draining) answers CANCELLED
// to the calls that reach it after its Shutdown began and before the
// client has seen its GOAWAY: they are dropped before any handler runs
// (grpc/grpc#41785; UNAVAILABLE would be the right code). The client
// retries only UNAVAILABLE, so without this each such call was one failed
// session write or one read without its session. The edge never cancels a
// session call itself, and a server cancels a call that did run only when
// its --drain-timeout (20 s in the chart) is over, far beyond a session
// deadline: so a CANCELLED is a call that did not run, and sending it again
// is safe for Create and Regenerate too (were one cut after running, the
// resend leaves what a retried UNAVAILABLE leaves: a second session that
// expires, or the old id gone). The GOAWAY reached the client before this
// answer, so its channels no longer pick that node.
template <typename Req, typename Resp, typename Send>
void SendResendingDropped(std::shared_ptr<const Req> request, int attempts_left,
                          absl::Time give_up, Send send,
                          SessionBackend::Callback<Resp> done) {
  send(Req(*request), [request, attempts_left, give_up, send,
                       done = std::move(done)](absl::StatusOr<Resp> r) mutable {
    if (attempts_left > 1 &&
        r.status().code() == absl::StatusCode::kCancelled &&
        absl::Now() < give_up) {
      LogInfo("session call dropped by a server shutting down; sent again",
              {{"request", std::string(Req::descriptor()->name())},
               {"attempts_left", absl::StrCat(attempts_left - 1)}});
      return SendResendingDropped(std::move(request), attempts_left - 1,
                                  give_up, std::move(send), std::move(done));
    }
    done(std::move(r));
  });
}

// The batcher answers a bare Session; the backend's callers want the
// response that wraps it (GetResponse, CreateResponse).
template <typename Resp>
client::SessionBatcher::SessionCallback AsResponse(
    SessionBackend::Callback<Resp> done) {
  return [done = std::move(done)](absl::StatusOr<v1::Session> s) {
    if (!s.ok()) return done(s.status());
    Resp resp;
    *resp.mutable_session() = std::move(*s);
    done(std::move(resp));
  };
}

}  // namespace

template <typename Req, typename Resp, typename SendFn>
void GrpcSessionBackend::Send(Req request, Callback<Resp> done,
                              SendFn send) const {
  const client::ClientOptions& o = client_->options();
  SendResendingDropped<Req, Resp>(
      std::make_shared<const Req>(std::move(request)), o.max_attempts,
      absl::Now() + o.deadline, std::move(send), std::move(done));
}

void GrpcSessionBackend::Get(v1::GetRequest request,
                             Callback<v1::GetResponse> done) {
  if (pipeline_ != nullptr) {
    return pipeline_->Get(std::move(request), std::move(done));
  }
  if (batcher_ != nullptr) {
    Send<v1::GetRequest, v1::GetResponse>(
        std::move(request), std::move(done),
        [batcher = batcher_](v1::GetRequest req, Callback<v1::GetResponse> cb) {
          batcher->Get(std::move(req), AsResponse(std::move(cb)));
        });
    return;
  }
  Send<v1::GetRequest, v1::GetResponse>(
      std::move(request), std::move(done),
      [client = client_](v1::GetRequest req, Callback<v1::GetResponse> cb) {
        client->GetAsync(std::move(req), std::move(cb));
      });
}

void GrpcSessionBackend::Create(v1::CreateRequest request,
                                Callback<v1::CreateResponse> done) {
  if (pipeline_ != nullptr) {
    return pipeline_->Create(std::move(request), std::move(done));
  }
  if (batcher_ != nullptr) {
    Send<v1::CreateRequest, v1::CreateResponse>(
        std::move(request), std::move(done),
        [batcher = batcher_](v1::CreateRequest req,
                             Callback<v1::CreateResponse> cb) {
          batcher->Create(std::move(req), AsResponse(std::move(cb)));
        });
    return;
  }
  Send<v1::CreateRequest, v1::CreateResponse>(
      std::move(request), std::move(done),
      [client = client_](v1::CreateRequest req,
                         Callback<v1::CreateResponse> cb) {
        client->CreateAsync(std::move(req), std::move(cb));
      });
}

void GrpcSessionBackend::Update(v1::UpdateRequest request,
                                Callback<v1::UpdateResponse> done) {
  if (pipeline_ != nullptr) {
    return pipeline_->Update(std::move(request), std::move(done));
  }
  Send<v1::UpdateRequest, v1::UpdateResponse>(
      std::move(request), std::move(done),
      [client = client_](v1::UpdateRequest req,
                         Callback<v1::UpdateResponse> cb) {
        client->UpdateAsync(std::move(req), std::move(cb));
      });
}

void GrpcSessionBackend::Delete(v1::DeleteRequest request,
                                Callback<v1::DeleteResponse> done) {
  if (pipeline_ != nullptr) {
    return pipeline_->Delete(std::move(request), std::move(done));
  }
  Send<v1::DeleteRequest, v1::DeleteResponse>(
      std::move(request), std::move(done),
      [client = client_](v1::DeleteRequest req,
                         Callback<v1::DeleteResponse> cb) {
        client->DeleteAsync(std::move(req), std::move(cb));
      });
}

void GrpcSessionBackend::Regenerate(v1::RegenerateRequest request,
                                    Callback<v1::RegenerateResponse> done) {
  Send<v1::RegenerateRequest, v1::RegenerateResponse>(
      std::move(request), std::move(done),
      [client = client_](v1::RegenerateRequest req,
                         Callback<v1::RegenerateResponse> cb) {
        client->RegenerateAsync(std::move(req), std::move(cb));
      });
}

}  // namespace sg::edge

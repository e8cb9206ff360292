#include "edge/grpc_backend.h"

#include <utility>

#include "grpcpp/client_context.h"

namespace sg::edge {
namespace v1 = ::sessiongrid::v1;
namespace {

// Everything one call touches until its callback has run.
template <typename Req, typename Resp>
struct Call {
  grpc::ClientContext context;
  Req request;
  Resp response;
  SessionBackend::Callback<Resp> done;
};

template <typename Req, typename Resp, typename Start>
void Run(absl::Duration deadline, Req request,
         SessionBackend::Callback<Resp> done, Start start) {
  auto* call = new Call<Req, Resp>;
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  call->request = std::move(request);
  call->done = std::move(done);
  start(&call->context, &call->request, &call->response,
        [call](grpc::Status status) {
          std::unique_ptr<Call<Req, Resp>> owned(call);
          if (status.ok()) {
            owned->done(std::move(owned->response));
          } else {
            owned->done(client::FromGrpcStatus(status));
          }
        });
}

}  // namespace

void GrpcSessionBackend::Get(v1::GetRequest request,
                             Callback<v1::GetResponse> done) {
  if (batcher_ != nullptr) {
    batcher_->Get(std::move(request),
                  [done = std::move(done)](absl::StatusOr<v1::Session> s) {
                    if (!s.ok()) return done(s.status());
                    v1::GetResponse resp;
                    *resp.mutable_session() = std::move(*s);
                    done(std::move(resp));
                  });
    return;
  }
  auto* stub = client_->NextSessionStub();
  Run(deadline_, std::move(request), std::move(done),
      [stub](auto* ctx, auto* req, auto* resp, auto cb) {
        stub->async()->Get(ctx, req, resp, std::move(cb));
      });
}

void GrpcSessionBackend::Create(v1::CreateRequest request,
                                Callback<v1::CreateResponse> done) {
  if (batcher_ != nullptr) {
    batcher_->Create(std::move(request),
                     [done = std::move(done)](absl::StatusOr<v1::Session> s) {
                       if (!s.ok()) return done(s.status());
                       v1::CreateResponse resp;
                       *resp.mutable_session() = std::move(*s);
                       done(std::move(resp));
                     });
    return;
  }
  auto* stub = client_->NextSessionStub();
  Run(deadline_, std::move(request), std::move(done),
      [stub](auto* ctx, auto* req, auto* resp, auto cb) {
        stub->async()->Create(ctx, req, resp, std::move(cb));
      });
}

void GrpcSessionBackend::Update(v1::UpdateRequest request,
                                Callback<v1::UpdateResponse> done) {
  auto* stub = client_->NextSessionStub();
  Run(deadline_, std::move(request), std::move(done),
      [stub](auto* ctx, auto* req, auto* resp, auto cb) {
        stub->async()->Update(ctx, req, resp, std::move(cb));
      });
}

void GrpcSessionBackend::Delete(v1::DeleteRequest request,
                                Callback<v1::DeleteResponse> done) {
  auto* stub = client_->NextSessionStub();
  Run(deadline_, std::move(request), std::move(done),
      [stub](auto* ctx, auto* req, auto* resp, auto cb) {
        stub->async()->Delete(ctx, req, resp, std::move(cb));
      });
}

void GrpcSessionBackend::Regenerate(v1::RegenerateRequest request,
                                    Callback<v1::RegenerateResponse> done) {
  auto* stub = client_->NextSessionStub();
  Run(deadline_, std::move(request), std::move(done),
      [stub](auto* ctx, auto* req, auto* resp, auto cb) {
        stub->async()->Regenerate(ctx, req, resp, std::move(cb));
      });
}

}  // namespace sg::edge

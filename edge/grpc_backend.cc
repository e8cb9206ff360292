#include "edge/grpc_backend.h"

#include <utility>

namespace sg::edge {
namespace v1 = ::sessiongrid::v1;

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
  client_->GetAsync(std::move(request), std::move(done));
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
  client_->CreateAsync(std::move(request), std::move(done));
}

void GrpcSessionBackend::Update(v1::UpdateRequest request,
                                Callback<v1::UpdateResponse> done) {
  client_->UpdateAsync(std::move(request), std::move(done));
}

void GrpcSessionBackend::Delete(v1::DeleteRequest request,
                                Callback<v1::DeleteResponse> done) {
  client_->DeleteAsync(std::move(request), std::move(done));
}

void GrpcSessionBackend::Regenerate(v1::RegenerateRequest request,
                                    Callback<v1::RegenerateResponse> done) {
  client_->RegenerateAsync(std::move(request), std::move(done));
}

}  // namespace sg::edge

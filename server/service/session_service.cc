#include "server/service/session_service.h"

#include <atomic>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/service/convert.h"
#include "server/service/session_calls.h"
#include "server/service/session_stream.h"

namespace sg::service {
namespace v1 = ::sessiongrid::v1;

namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// The reactor finished with the guard's refusal, or null when the call
// may go on (no guard, or the right admin token).
grpc::ServerUnaryReactor* RefuseUnlessAdmin(grpc::CallbackServerContext* ctx,
                                            const security::TokenGuard* guard) {
  if (guard == nullptr) return nullptr;
  grpc::Status denied = guard->Check(*ctx, "admin");
  if (denied.ok()) return nullptr;
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(denied);
  return reactor;
}

absl::Status CheckPrincipalArgument(const std::string& principal) {
  if (principal.empty()) {
    return absl::InvalidArgumentError("principal must not be empty");
  }
  return ValidatePrincipal(principal);
}

absl::Status CheckBatchSize(int entries) {
  if (entries > SessionServiceImpl::kMaxBatchEntries) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a batch holds at most ", SessionServiceImpl::kMaxBatchEntries,
        " entries, got ", entries));
  }
  return absl::OkStatus();
}

// A SessionCalls answer as the unary call's end.
SessionCalls::Done FinishOnDone(grpc::ServerUnaryReactor* reactor) {
  return [reactor](absl::Status status) {
    reactor->Finish(ToGrpcStatus(status));
  };
}

// A backend reply that finishes the reactor with `fill(value)`'s outcome.
template <typename T, typename Fill>
store::Reply<T> FinishWith(grpc::ServerUnaryReactor* reactor, Fill fill) {
  return [reactor, fill = std::move(fill)](absl::StatusOr<T> result) mutable {
    if (!result.ok()) {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    fill(std::move(*result));
    reactor->Finish(grpc::Status::OK);
  };
}

}  // namespace

// The unary forms of the calls the stream also carries.
grpc::ServerUnaryReactor* SessionServiceImpl::Create(
    grpc::CallbackServerContext* ctx, const v1::CreateRequest* request,
    v1::CreateResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_.Create(*request, response, FinishOnDone(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::Get(
    grpc::CallbackServerContext* ctx, const v1::GetRequest* request,
    v1::GetResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_.Get(*request, response, FinishOnDone(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::Touch(
    grpc::CallbackServerContext* ctx, const v1::TouchRequest* request,
    v1::TouchResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_.Touch(*request, response, FinishOnDone(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::Update(
    grpc::CallbackServerContext* ctx, const v1::UpdateRequest* request,
    v1::UpdateResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_.Update(*request, response, FinishOnDone(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::Delete(
    grpc::CallbackServerContext* ctx, const v1::DeleteRequest* request,
    v1::DeleteResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_.Delete(*request, response, FinishOnDone(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::Regenerate(
    grpc::CallbackServerContext* ctx, const v1::RegenerateRequest* request,
    v1::RegenerateResponse* response) {
  if (absl::Status s = store::ValidateSessionId(request->id()); !s.ok()) {
    return Finish(ctx, s);
  }
  std::optional<std::string> principal;
  if (request->has_principal()) {
    if (absl::Status s = ValidatePrincipal(request->principal()); !s.ok()) {
      return Finish(ctx, s);
    }
    principal = request->principal();
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_.backend()->Regenerate(
      request->id(), std::move(principal),
      FinishWith<store::SessionRecord>(
          reactor, [request, response](store::SessionRecord record) {
            ToProto(std::move(record), response->mutable_session());
            response->set_previous_id(request->id());
          }));
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::ListByPrincipal(
    grpc::CallbackServerContext* ctx, const v1::ListByPrincipalRequest* request,
    v1::ListByPrincipalResponse* response) {
  if (auto* refused = RefuseUnlessAdmin(ctx, admin_guard_)) return refused;
  if (absl::Status s = CheckPrincipalArgument(request->principal()); !s.ok()) {
    return Finish(ctx, s);
  }
  if (request->limit() < 0) {
    return Finish(ctx,
                  absl::InvalidArgumentError("limit must not be negative"));
  }
  const int limit = request->limit() == 0
                        ? kMaxListLimit
                        : std::min(request->limit(), kMaxListLimit);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_.backend()->ListByPrincipal(
      request->principal(), static_cast<size_t>(limit),
      FinishWith<std::vector<store::SessionRecord>>(
          reactor, [response](std::vector<store::SessionRecord> records) {
            for (auto& record : records) {
              ToProto(std::move(record), response->add_sessions());
            }
          }));
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::DeleteByPrincipal(
    grpc::CallbackServerContext* ctx,
    const v1::DeleteByPrincipalRequest* request,
    v1::DeleteByPrincipalResponse* response) {
  if (auto* refused = RefuseUnlessAdmin(ctx, admin_guard_)) return refused;
  if (absl::Status s = CheckPrincipalArgument(request->principal()); !s.ok()) {
    return Finish(ctx, s);
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_.backend()->DeleteByPrincipal(
      request->principal(),
      FinishWith<int64_t>(reactor, [response](int64_t deleted) {
        response->set_deleted_count(deleted);
      }));
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::ListSessions(
    grpc::CallbackServerContext* ctx, const v1::ListSessionsRequest* request,
    v1::ListSessionsResponse* response) {
  // Every live id, and ids are the sessions' bearer credentials.
  if (auto* refused = RefuseUnlessAdmin(ctx, admin_guard_)) return refused;
  if (request->page_size() < 0 || request->page_size() > kMaxPageSize) {
    return Finish(
        ctx, absl::InvalidArgumentError(absl::StrCat(
                 "page_size must be 0 (meaning ", kDefaultPageSize, ") to ",
                 kMaxPageSize, ", got ", request->page_size())));
  }
  // A token is the last id a page read; anything else is not ours.
  if (!request->page_token().empty()) {
    if (absl::Status s = store::ValidateSessionId(request->page_token());
        !s.ok()) {
      return Finish(ctx, absl::InvalidArgumentError(absl::StrCat(
                             "page_token is not a token this service issued: ",
                             s.message())));
    }
  }
  const int page_size =
      request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_.backend()->ListSessions(
      request->page_token(), static_cast<size_t>(page_size),
      request->include_data(),
      FinishWith<store::SessionPage>(
          reactor, [response](store::SessionPage page) {
            for (auto& record : page.sessions) {
              ToProto(std::move(record), response->add_sessions());
            }
            response->set_next_page_token(std::move(page.next_page_token));
          }));
  return reactor;
}

// A batch finishes when its last entry is answered; entries answer in any
// order and on any thread, each into its own pre-allocated result.
namespace {
struct BatchCountdown {
  grpc::ServerUnaryReactor* reactor;
  std::atomic<int> remaining;
  void One() {
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      reactor->Finish(grpc::Status::OK);
      delete this;
    }
  }
};
}  // namespace

grpc::ServerUnaryReactor* SessionServiceImpl::BatchGet(
    grpc::CallbackServerContext* ctx, const v1::BatchGetRequest* request,
    v1::BatchGetResponse* response) {
  if (absl::Status s = CheckBatchSize(request->requests_size()); !s.ok()) {
    return Finish(ctx, s);
  }
  const int n = request->requests_size();
  if (n == 0) return Finish(ctx, absl::OkStatus());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  response->mutable_results()->Reserve(n);
  for (int i = 0; i < n; ++i) response->add_results();
  auto* countdown = new BatchCountdown{reactor, n};
  for (int i = 0; i < n; ++i) {
    const v1::GetRequest& get = request->requests(i);
    v1::GetResult* result = response->mutable_results(i);
    if (absl::Status s = store::ValidateSessionId(get.id()); !s.ok()) {
      ToProto(s, result->mutable_status());
      countdown->One();
      continue;
    }
    calls_.backend()->Get(get.id(), get.touch(),
                  [result, countdown](absl::StatusOr<store::SessionRecord> r) {
                    ToProto(r.status(), result->mutable_status());
                    if (r.ok()) {
                      ToProto(std::move(*r), result->mutable_session());
                    }
                    countdown->One();
                  });
  }
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::BatchCreate(
    grpc::CallbackServerContext* ctx, const v1::BatchCreateRequest* request,
    v1::BatchCreateResponse* response) {
  if (absl::Status s = CheckBatchSize(request->requests_size()); !s.ok()) {
    return Finish(ctx, s);
  }
  const int n = request->requests_size();
  if (n == 0) return Finish(ctx, absl::OkStatus());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  response->mutable_results()->Reserve(n);
  for (int i = 0; i < n; ++i) response->add_results();
  // The valid entries go to the backend together (a local store writes
  // them in one WriteBatch); `slots` maps its answers back to results.
  std::vector<store::CreateParams> valid;
  std::vector<int> slots;
  valid.reserve(n);
  slots.reserve(n);
  for (int i = 0; i < n; ++i) {
    auto params = CreateParamsOf(request->requests(i), calls_.allow_client_ids());
    if (!params.ok()) {
      ToProto(params.status(), response->mutable_results(i)->mutable_status());
      continue;
    }
    valid.push_back(*std::move(params));
    slots.push_back(i);
  }
  if (valid.empty()) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  calls_.backend()->CreateMany(
      std::move(valid),
      [reactor, response, slots = std::move(slots)](
          std::vector<absl::StatusOr<store::SessionRecord>> created) {
        for (size_t k = 0; k < created.size(); ++k) {
          v1::CreateResult* result = response->mutable_results(slots[k]);
          ToProto(created[k].status(), result->mutable_status());
          if (created[k].ok()) {
            ToProto(*std::move(created[k]), result->mutable_session());
          }
        }
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

}  // namespace sg::service

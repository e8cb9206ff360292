#include "server/service/session_service.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/service/convert.h"

namespace sg::service {
namespace v1 = ::sessiongrid::v1;

namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

absl::Status ValidatePrincipal(const std::string& principal) {
  if (principal.size() > store::kMaxPrincipalBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal is ", principal.size(),
                     " bytes; the limit is ", store::kMaxPrincipalBytes));
  }
  return absl::OkStatus();
}

absl::Status DoCreate(store::SessionStore& store, const v1::CreateRequest& req,
                      v1::CreateResponse* resp) {
  SG_RETURN_IF_ERROR(ValidatePrincipal(req.principal()));
  SG_ASSIGN_OR_RETURN(auto ttl, OptionalTtl(req.has_ttl(), req.ttl()));
  SG_ASSIGN_OR_RETURN(auto record,
                      store.Create(store::CreateParams{req.data(),
                                                       req.principal(), ttl}));
  ToProto(std::move(record), resp->mutable_session());
  return absl::OkStatus();
}

absl::Status DoGet(store::SessionStore& store, const v1::GetRequest& req,
                   v1::GetResponse* resp) {
  SG_RETURN_IF_ERROR(store::ValidateSessionId(req.id()));
  SG_ASSIGN_OR_RETURN(auto record, store.Get(req.id(), req.touch()));
  ToProto(std::move(record), resp->mutable_session());
  return absl::OkStatus();
}

absl::Status DoTouch(store::SessionStore& store, const v1::TouchRequest& req,
                     v1::TouchResponse* resp) {
  SG_RETURN_IF_ERROR(store::ValidateSessionId(req.id()));
  SG_ASSIGN_OR_RETURN(auto ttl, OptionalTtl(req.has_ttl(), req.ttl()));
  SG_ASSIGN_OR_RETURN(auto record, store.Touch(req.id(), ttl));
  ToProto(record.expire_time, resp->mutable_expire_time());
  ToProto(record.version, resp->mutable_version());
  return absl::OkStatus();
}

absl::Status DoUpdate(store::SessionStore& store, const v1::UpdateRequest& req,
                      v1::UpdateResponse* resp) {
  SG_RETURN_IF_ERROR(store::ValidateSessionId(req.id()));
  store::UpdateParams params;
  if (req.has_data()) params.data = req.data();
  if (req.has_principal()) {
    SG_RETURN_IF_ERROR(ValidatePrincipal(req.principal()));
    params.principal = req.principal();
  }
  if (req.has_expected_version()) {
    params.expected_version = FromProto(req.expected_version());
  }
  SG_ASSIGN_OR_RETURN(params.ttl, OptionalTtl(req.has_ttl(), req.ttl()));
  SG_ASSIGN_OR_RETURN(auto record, store.Update(req.id(), std::move(params)));
  ToProto(std::move(record), resp->mutable_session());
  return absl::OkStatus();
}

absl::Status DoDelete(store::SessionStore& store, const v1::DeleteRequest& req,
                      v1::DeleteResponse* resp) {
  SG_RETURN_IF_ERROR(store::ValidateSessionId(req.id()));
  std::optional<store::Hlc> expected;
  if (req.has_expected_version()) expected = FromProto(req.expected_version());
  SG_ASSIGN_OR_RETURN(bool deleted, store.Delete(req.id(), expected));
  resp->set_deleted(deleted);
  return absl::OkStatus();
}

absl::Status DoRegenerate(store::SessionStore& store,
                          const v1::RegenerateRequest& req,
                          v1::RegenerateResponse* resp) {
  SG_RETURN_IF_ERROR(store::ValidateSessionId(req.id()));
  std::optional<std::string> principal;
  if (req.has_principal()) {
    SG_RETURN_IF_ERROR(ValidatePrincipal(req.principal()));
    principal = req.principal();
  }
  SG_ASSIGN_OR_RETURN(auto record, store.Regenerate(req.id(), principal));
  ToProto(std::move(record), resp->mutable_session());
  resp->set_previous_id(req.id());
  return absl::OkStatus();
}

absl::Status CheckPrincipalArgument(const std::string& principal) {
  if (principal.empty()) {
    return absl::InvalidArgumentError("principal must not be empty");
  }
  return ValidatePrincipal(principal);
}

absl::Status DoListByPrincipal(store::SessionStore& store,
                               const v1::ListByPrincipalRequest& req,
                               v1::ListByPrincipalResponse* resp) {
  SG_RETURN_IF_ERROR(CheckPrincipalArgument(req.principal()));
  if (req.limit() < 0) {
    return absl::InvalidArgumentError("limit must not be negative");
  }
  int limit = req.limit() == 0 ? SessionServiceImpl::kMaxListLimit
                               : std::min(req.limit(),
                                          SessionServiceImpl::kMaxListLimit);
  SG_ASSIGN_OR_RETURN(auto records,
                      store.ListByPrincipal(req.principal(), limit));
  for (auto& record : records) ToProto(std::move(record), resp->add_sessions());
  return absl::OkStatus();
}

absl::Status DoDeleteByPrincipal(store::SessionStore& store,
                                 const v1::DeleteByPrincipalRequest& req,
                                 v1::DeleteByPrincipalResponse* resp) {
  SG_RETURN_IF_ERROR(CheckPrincipalArgument(req.principal()));
  SG_ASSIGN_OR_RETURN(int64_t deleted, store.DeleteByPrincipal(req.principal()));
  resp->set_deleted_count(deleted);
  return absl::OkStatus();
}

void ToProto(const absl::Status& status, v1::EntryStatus* out) {
  out->set_code(static_cast<int32_t>(status.code()));
  out->set_message(std::string(status.message()));
}

absl::Status CheckBatchSize(int entries) {
  if (entries > SessionServiceImpl::kMaxBatchEntries) {
    return absl::InvalidArgumentError(
        absl::StrCat("a batch holds at most ",
                     SessionServiceImpl::kMaxBatchEntries, " entries, got ",
                     entries));
  }
  return absl::OkStatus();
}

absl::Status DoBatchGet(store::SessionStore& store,
                        const v1::BatchGetRequest& req,
                        v1::BatchGetResponse* resp) {
  SG_RETURN_IF_ERROR(CheckBatchSize(req.requests_size()));
  resp->mutable_results()->Reserve(req.requests_size());
  for (const v1::GetRequest& get : req.requests()) {
    v1::GetResult* result = resp->add_results();
    v1::GetResponse one;
    absl::Status status = DoGet(store, get, &one);
    ToProto(status, result->mutable_status());
    if (status.ok()) result->mutable_session()->Swap(one.mutable_session());
  }
  return absl::OkStatus();
}

absl::Status DoBatchCreate(store::SessionStore& store,
                           const v1::BatchCreateRequest& req,
                           v1::BatchCreateResponse* resp) {
  SG_RETURN_IF_ERROR(CheckBatchSize(req.requests_size()));
  resp->mutable_results()->Reserve(req.requests_size());
  for (const v1::CreateRequest& create : req.requests()) {
    v1::CreateResult* result = resp->add_results();
    v1::CreateResponse one;
    absl::Status status = DoCreate(store, create, &one);
    ToProto(status, result->mutable_status());
    if (status.ok()) result->mutable_session()->Swap(one.mutable_session());
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* SessionServiceImpl::BatchGet(
    grpc::CallbackServerContext* ctx, const v1::BatchGetRequest* request,
    v1::BatchGetResponse* response) {
  return Finish(ctx, DoBatchGet(*store_, *request, response));
}

grpc::ServerUnaryReactor* SessionServiceImpl::BatchCreate(
    grpc::CallbackServerContext* ctx, const v1::BatchCreateRequest* request,
    v1::BatchCreateResponse* response) {
  return Finish(ctx, DoBatchCreate(*store_, *request, response));
}

grpc::ServerUnaryReactor* SessionServiceImpl::Create(
    grpc::CallbackServerContext* ctx, const v1::CreateRequest* request,
    v1::CreateResponse* response) {
  return Finish(ctx, DoCreate(*store_, *request, response));
}

grpc::ServerUnaryReactor* SessionServiceImpl::Get(
    grpc::CallbackServerContext* ctx, const v1::GetRequest* request,
    v1::GetResponse* response) {
  return Finish(ctx, DoGet(*store_, *request, response));
}

grpc::ServerUnaryReactor* SessionServiceImpl::Touch(
    grpc::CallbackServerContext* ctx, const v1::TouchRequest* request,
    v1::TouchResponse* response) {
  return Finish(ctx, DoTouch(*store_, *request, response));
}

grpc::ServerUnaryReactor* SessionServiceImpl::Update(
    grpc::CallbackServerContext* ctx, const v1::UpdateRequest* request,
    v1::UpdateResponse* response) {
  return Finish(ctx, DoUpdate(*store_, *request, response));
}

grpc::ServerUnaryReactor* SessionServiceImpl::Delete(
    grpc::CallbackServerContext* ctx, const v1::DeleteRequest* request,
    v1::DeleteResponse* response) {
  return Finish(ctx, DoDelete(*store_, *request, response));
}

grpc::ServerUnaryReactor* SessionServiceImpl::Regenerate(
    grpc::CallbackServerContext* ctx, const v1::RegenerateRequest* request,
    v1::RegenerateResponse* response) {
  return Finish(ctx, DoRegenerate(*store_, *request, response));
}

grpc::ServerUnaryReactor* SessionServiceImpl::ListByPrincipal(
    grpc::CallbackServerContext* ctx,
    const v1::ListByPrincipalRequest* request,
    v1::ListByPrincipalResponse* response) {
  return Finish(ctx, DoListByPrincipal(*store_, *request, response));
}

grpc::ServerUnaryReactor* SessionServiceImpl::DeleteByPrincipal(
    grpc::CallbackServerContext* ctx,
    const v1::DeleteByPrincipalRequest* request,
    v1::DeleteByPrincipalResponse* response) {
  return Finish(ctx, DoDeleteByPrincipal(*store_, *request, response));
}

}  // namespace sg::service

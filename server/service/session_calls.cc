#include "server/service/session_calls.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "server/service/convert.h"

namespace sg::service {
namespace v1 = ::sessiongrid::v1;

absl::Status ValidatePrincipal(const std::string& principal) {
  if (principal.size() > store::kMaxPrincipalBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal is ", principal.size(), " bytes; the limit is ",
                     store::kMaxPrincipalBytes));
  }
  // A CR, LF or NUL in a header value would be header injection.
  for (size_t i = 0; i < principal.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(principal[i]);
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "principal has control character 0x%02x at byte %d", c, i));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<store::CreateParams> CreateParamsOf(const v1::CreateRequest& req,
                                                   bool allow_client_ids) {
  SG_RETURN_IF_ERROR(ValidatePrincipal(req.principal()));
  SG_ASSIGN_OR_RETURN(auto ttl, OptionalTtl(req.has_ttl(), req.ttl()));
  if (!req.id().empty()) {
    if (!allow_client_ids) {
      return absl::PermissionDeniedError(
          "CreateRequest.id is refused: this server mints every id (start it "
          "with --allow-client-ids to let trusted clients choose them)");
    }
    SG_RETURN_IF_ERROR(store::ValidateSessionId(req.id()));
  }
  return store::CreateParams{req.data(), req.principal(), ttl, req.id()};
}

namespace {

absl::StatusOr<store::UpdateParams> UpdateParamsOf(
    const v1::UpdateRequest& req) {
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
  return params;
}

// The backend's reply as `done`'s status, after `fill(value)` on success.
template <typename T, typename Fill>
store::Reply<T> AnswerWith(SessionCalls::Done done, Fill fill) {
  return [done = std::move(done),
          fill = std::move(fill)](absl::StatusOr<T> result) mutable {
    if (result.ok()) fill(std::move(*result));
    std::move(done)(result.status());
  };
}

}  // namespace

void SessionCalls::Get(const v1::GetRequest& request, v1::GetResponse* response,
                       Done done) const {
  if (absl::Status s = store::ValidateSessionId(request.id()); !s.ok()) {
    return std::move(done)(s);
  }
  backend_->Get(request.id(), request.touch(),
                AnswerWith<store::SessionRecord>(
                    std::move(done), [response](store::SessionRecord record) {
                      ToProto(std::move(record), response->mutable_session());
                    }));
}

void SessionCalls::Touch(const v1::TouchRequest& request,
                         v1::TouchResponse* response, Done done) const {
  if (absl::Status s = store::ValidateSessionId(request.id()); !s.ok()) {
    return std::move(done)(s);
  }
  auto ttl = OptionalTtl(request.has_ttl(), request.ttl());
  if (!ttl.ok()) return std::move(done)(ttl.status());
  backend_->Touch(request.id(), *ttl,
                  AnswerWith<store::SessionRecord>(
                      std::move(done), [response](store::SessionRecord record) {
                        ToProto(record.expire_time,
                                response->mutable_expire_time());
                        ToProto(record.version, response->mutable_version());
                      }));
}

void SessionCalls::Create(const v1::CreateRequest& request,
                          v1::CreateResponse* response, Done done) const {
  auto params = CreateParamsOf(request, allow_client_ids_);
  if (!params.ok()) return std::move(done)(params.status());
  backend_->Create(std::move(*params),
                   AnswerWith<store::SessionRecord>(
                       std::move(done), [response](store::SessionRecord record) {
                         ToProto(std::move(record), response->mutable_session());
                       }));
}

void SessionCalls::CreateMany(std::vector<CreateCall> calls) const {
  std::vector<store::CreateParams> valid;
  std::vector<CreateCall> sent;  // the calls of `valid`, in its order
  valid.reserve(calls.size());
  sent.reserve(calls.size());
  for (CreateCall& call : calls) {
    auto params = CreateParamsOf(*call.request, allow_client_ids_);
    if (!params.ok()) {
      std::move(call.done)(params.status());
      continue;
    }
    valid.push_back(*std::move(params));
    sent.push_back(std::move(call));
  }
  if (valid.empty()) return;
  backend_->CreateMany(
      std::move(valid),
      [sent = std::move(sent)](
          std::vector<absl::StatusOr<store::SessionRecord>> created) mutable {
        for (size_t i = 0; i < sent.size(); ++i) {
          if (created[i].ok()) {
            ToProto(*std::move(created[i]), sent[i].response->mutable_session());
          }
          std::move(sent[i].done)(created[i].status());
        }
      });
}

void SessionCalls::Update(const v1::UpdateRequest& request,
                          v1::UpdateResponse* response, Done done) const {
  auto params = UpdateParamsOf(request);
  if (!params.ok()) return std::move(done)(params.status());
  backend_->Update(request.id(), std::move(*params),
                   AnswerWith<store::SessionRecord>(
                       std::move(done), [response](store::SessionRecord record) {
                         ToProto(std::move(record), response->mutable_session());
                       }));
}

void SessionCalls::Delete(const v1::DeleteRequest& request,
                          v1::DeleteResponse* response, Done done) const {
  if (absl::Status s = store::ValidateSessionId(request.id()); !s.ok()) {
    return std::move(done)(s);
  }
  std::optional<store::Hlc> expected;
  if (request.has_expected_version()) {
    expected = FromProto(request.expected_version());
  }
  backend_->Delete(request.id(), expected,
                   AnswerWith<bool>(std::move(done), [response](bool deleted) {
                     response->set_deleted(deleted);
                   }));
}

}  // namespace sg::service

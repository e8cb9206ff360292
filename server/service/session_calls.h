// The session calls that both the unary RPCs and the stream carry (Get,
// Touch, Create, Update, Delete): each validates its request, hands it to
// the backend and fills the response, in one place whichever way the call
// arrived.
#pragma once

#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/store/session_backend.h"
#include "sessiongrid/v1/session.pb.h"

namespace sg::service {

// Principals end up in HTTP headers (the edge's X-Session-Principal): at
// most store::kMaxPrincipalBytes, and no control characters.
absl::Status ValidatePrincipal(const std::string& principal);

// A CreateRequest as the backend's params; `allow_client_ids` honours
// CreateRequest.id (--allow-client-ids).
absl::StatusOr<store::CreateParams> CreateParamsOf(
    const sessiongrid::v1::CreateRequest& req, bool allow_client_ids);

// Each call reads `request` only before it returns, and answers `done`
// exactly once, on any thread, possibly before it returns; `response` is
// filled before an OK `done` and must stay valid until then. A request that fails validation costs no backend work.
// Thread-safe; `backend` must outlive this.
class SessionCalls {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  SessionCalls(store::SessionBackend* backend, bool allow_client_ids)
      : backend_(backend), allow_client_ids_(allow_client_ids) {}

  void Get(const sessiongrid::v1::GetRequest& request,
           sessiongrid::v1::GetResponse* response, Done done) const;
  void Touch(const sessiongrid::v1::TouchRequest& request,
             sessiongrid::v1::TouchResponse* response, Done done) const;
  void Create(const sessiongrid::v1::CreateRequest& request,
              sessiongrid::v1::CreateResponse* response, Done done) const;
  void Update(const sessiongrid::v1::UpdateRequest& request,
              sessiongrid::v1::UpdateResponse* response, Done done) const;
  void Delete(const sessiongrid::v1::DeleteRequest& request,
              sessiongrid::v1::DeleteResponse* response, Done done) const;

  // Several Creates, each answered as Create answers it, with the valid
  // ones handed to the backend together (a local store writes them in one
  // WriteBatch). Reads the requests only before it returns.
  struct CreateCall {
    const sessiongrid::v1::CreateRequest* request;
    sessiongrid::v1::CreateResponse* response;
    Done done;
  };
  void CreateMany(std::vector<CreateCall> calls) const;

  store::SessionBackend* backend() const { return backend_; }
  bool allow_client_ids() const { return allow_client_ids_; }

 private:
  store::SessionBackend* const backend_;
  const bool allow_client_ids_;
};

}  // namespace sg::service

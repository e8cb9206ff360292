// gRPC SessionService: validates requests, calls the store, converts.
#pragma once

#include "common/bearer_token.h"
#include "server/service/session_calls.h"
#include "server/service/session_stream.h"
#include "server/store/session_backend.h"
#include "sessiongrid/v1/session.grpc.pb.h"

namespace sg::service {

// Callback-API service: validates, then hands the call to the backend and
// finishes the reactor from the backend's reply (inline for the local
// store, from a peer's completion in a cluster). Thread-safe; `backend`
// must outlive the service.
class SessionServiceImpl final
    : public sessiongrid::v1::SessionService::CallbackService {
 public:
  // `allow_client_ids`: honour CreateRequest.id (--allow-client-ids).
  // `stream_max_in_flight`: calls one Stream holds at once.
  SessionServiceImpl(store::SessionBackend* backend, bool allow_client_ids,
                     int stream_max_in_flight = kStreamMaxInFlight)
      : calls_(backend, allow_client_ids),
        streams_(&calls_, stream_max_in_flight) {}

  grpc::ServerUnaryReactor* Create(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::CreateRequest* request,
      sessiongrid::v1::CreateResponse* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const sessiongrid::v1::GetRequest* request,
                                sessiongrid::v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* Touch(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::TouchRequest* request,
      sessiongrid::v1::TouchResponse* response) override;
  grpc::ServerUnaryReactor* Update(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::UpdateRequest* request,
      sessiongrid::v1::UpdateResponse* response) override;
  grpc::ServerUnaryReactor* Delete(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::DeleteRequest* request,
      sessiongrid::v1::DeleteResponse* response) override;
  grpc::ServerUnaryReactor* Regenerate(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::RegenerateRequest* request,
      sessiongrid::v1::RegenerateResponse* response) override;
  grpc::ServerUnaryReactor* ListByPrincipal(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::ListByPrincipalRequest* request,
      sessiongrid::v1::ListByPrincipalResponse* response) override;
  grpc::ServerUnaryReactor* DeleteByPrincipal(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::DeleteByPrincipalRequest* request,
      sessiongrid::v1::DeleteByPrincipalResponse* response) override;

  grpc::ServerUnaryReactor* ListSessions(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::ListSessionsRequest* request,
      sessiongrid::v1::ListSessionsResponse* response) override;

  grpc::ServerUnaryReactor* BatchGet(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::BatchGetRequest* request,
      sessiongrid::v1::BatchGetResponse* response) override;
  grpc::ServerUnaryReactor* BatchCreate(
      grpc::CallbackServerContext* ctx,
      const sessiongrid::v1::BatchCreateRequest* request,
      sessiongrid::v1::BatchCreateResponse* response) override;

  grpc::ServerBidiReactor<sessiongrid::v1::StreamRequest,
                          sessiongrid::v1::StreamResponse>*
  Stream(grpc::CallbackServerContext* ctx) override {
    return streams_.Open(ctx);
  }

  // A drain, before the server's Shutdown: every stream stops reading,
  // answers the calls it read and ends, so that its client sends the rest
  // to another node instead of having them cut off.
  void CloseStreams() { streams_.CloseAll(); }
  int open_streams() const { return streams_.open(); }

  // Checks the admin token of the calls that list or log out a principal's
  // sessions (and ListSessions): an --admin-token-file. Null or off: open.
  // Set once, before serving; must outlive the service.
  void set_admin_guard(const security::TokenGuard* guard) {
    admin_guard_ = guard;
  }

  // A batch holds at most this many entries.
  static constexpr int kMaxBatchEntries = 1000;
  // ListByPrincipal answers at most this many sessions.
  static constexpr int kMaxListLimit = 1000;
  // ListSessions pages: the size when page_size is 0, and the largest.
  static constexpr int kDefaultPageSize = 100;
  static constexpr int kMaxPageSize = 1000;
  // A Stream stops reading at this many calls held (about 1 KiB each).
  static constexpr int kStreamMaxInFlight = 1024;

 private:
  const SessionCalls calls_;
  SessionStreams streams_;
  const security::TokenGuard* admin_guard_ = nullptr;
};

}  // namespace sg::service

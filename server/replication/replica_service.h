// ReplicaService: the peer port's handlers — heartbeats, replica writes and
// reads, anti-entropy digests, principal and ListSessions scans, forwarded
// compare-and-set, and hint hand-off.
#pragma once

#include "common/bearer_token.h"
#include "server/replication/coordinator.h"
#include "server/replication/hint_log.h"
#include "server/replication/membership.h"
#include "server/store/session_store.h"
#include "sessiongrid/replica/v1/replica.grpc.pb.h"

namespace sg::replication {

// Thread-safe; everything passed must outlive the service.
class ReplicaServiceImpl final : public rpb::ReplicaService::CallbackService {
 public:
  ReplicaServiceImpl(store::SessionStore* store, Membership* membership,
                     HintLog* hints, Coordinator* coordinator,
                     int replication_factor, std::string peer_token = "")
      : store_(store),
        membership_(membership),
        hints_(hints),
        coordinator_(coordinator),
        replication_factor_(replication_factor),
        peer_guard_(std::move(peer_token)) {}

  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx,
                                 const rpb::PingRequest* request,
                                 rpb::PingResponse* response) override;
  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* ctx,
                                  const rpb::ApplyRequest* request,
                                  rpb::ApplyResponse* response) override;
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* ctx,
                                 const rpb::ReadRequest* request,
                                 rpb::ReadResponse* response) override;
  grpc::ServerUnaryReactor* Digest(grpc::CallbackServerContext* ctx,
                                   const rpb::DigestRequest* request,
                                   rpb::DigestResponse* response) override;
  grpc::ServerUnaryReactor* Bucket(grpc::CallbackServerContext* ctx,
                                   const rpb::BucketRequest* request,
                                   rpb::BucketResponse* response) override;
  grpc::ServerUnaryReactor* ListPrincipal(
      grpc::CallbackServerContext* ctx, const rpb::ListPrincipalRequest* request,
      rpb::ListPrincipalResponse* response) override;
  grpc::ServerUnaryReactor* Scan(grpc::CallbackServerContext* ctx,
                                 const rpb::ScanRequest* request,
                                 rpb::ScanResponse* response) override;
  grpc::ServerUnaryReactor* Coordinate(
      grpc::CallbackServerContext* ctx, const rpb::CoordinateRequest* request,
      rpb::CoordinateResponse* response) override;
  grpc::ServerUnaryReactor* Handoff(grpc::CallbackServerContext* ctx,
                                    const rpb::HandoffRequest* request,
                                    rpb::HandoffResponse* response) override;

 private:
  store::SessionStore* const store_;
  Membership* const membership_;
  HintLog* const hints_;
  Coordinator* const coordinator_;
  const int replication_factor_;
  // --peer-token-file: every call must carry it (off when empty).
  const security::TokenGuard peer_guard_;
};

}  // namespace sg::replication

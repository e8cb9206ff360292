#include "server/replication/replica_service.h"

#include "absl/strings/str_cat.h"
#include "server/replication/anti_entropy.h"
#include "server/replication/replica_codec.h"
#include "server/replication/session_listing.h"

namespace sg::replication {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  return s.ok() ? grpc::Status::OK
                : grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                               std::string(s.message()));
}

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx,
                               const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

// Finishes the call with the guard's refusal (null: the caller is a peer,
// or the peer token is off).
grpc::ServerUnaryReactor* RefuseUnlessPeer(grpc::CallbackServerContext* ctx,
                                           const security::TokenGuard& guard) {
  if (!guard.enabled()) return nullptr;
  grpc::Status denied = guard.Check(*ctx, "peer");
  if (denied.ok()) return nullptr;
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(denied);
  return reactor;
}

constexpr int kMaxIdsPerRead = 10000;
constexpr int kMaxMutationsPerApply = 10000;
constexpr uint32_t kMaxScanLimit = 10000;

}  // namespace

grpc::ServerUnaryReactor* ReplicaServiceImpl::Ping(
    grpc::CallbackServerContext* ctx, const rpb::PingRequest* request,
    rpb::PingResponse* response) {
  if (auto* refused = RefuseUnlessPeer(ctx, peer_guard_)) return refused;
  return Done(ctx, membership_->OnPing(*request, response,
                                       store_->session_count()));
}

grpc::ServerUnaryReactor* ReplicaServiceImpl::Apply(
    grpc::CallbackServerContext* ctx, const rpb::ApplyRequest* request,
    rpb::ApplyResponse* response) {
  if (auto* refused = RefuseUnlessPeer(ctx, peer_guard_)) return refused;
  if (request->mutations_size() > kMaxMutationsPerApply) {
    return Done(ctx, absl::InvalidArgumentError("too many mutations"));
  }
  for (const rpb::Mutation& m : request->mutations()) {
    absl::StatusOr<bool> applied = ApplyMutation(*store_, m);
    // A malformed mutation is the sender's bug; an I/O error is ours, and
    // the sender must keep its hint.
    if (!applied.ok() && !absl::IsInvalidArgument(applied.status())) {
      return Done(ctx, applied.status());
    }
    response->add_applied(applied.ok() && *applied);
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ReplicaServiceImpl::Read(
    grpc::CallbackServerContext* ctx, const rpb::ReadRequest* request,
    rpb::ReadResponse* response) {
  if (auto* refused = RefuseUnlessPeer(ctx, peer_guard_)) return refused;
  if (request->ids_size() > kMaxIdsPerRead) {
    return Done(ctx, absl::InvalidArgumentError("too many ids"));
  }
  for (const std::string& id : request->ids()) {
    absl::StatusOr<store::LocalEntry> entry = store_->ReadLocal(id);
    if (absl::IsInvalidArgument(entry.status())) continue;
    if (!entry.ok()) return Done(ctx, entry.status());
    ToReplica(id, *entry, response->add_entries());
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ReplicaServiceImpl::Digest(
    grpc::CallbackServerContext* ctx, const rpb::DigestRequest* request,
    rpb::DigestResponse* response) {
  if (auto* refused = RefuseUnlessPeer(ctx, peer_guard_)) return refused;
  if (request->buckets() == 0 || request->buckets() > 65536) {
    return Done(ctx, absl::InvalidArgumentError("buckets must be 1..65536"));
  }
  absl::StatusOr<BucketDigests> d =
      ComputeDigests(*store_, *membership_->ring(), replication_factor_,
                     membership_->self_id(), request->from_node(),
                     request->buckets());
  if (!d.ok()) return Done(ctx, d.status());
  for (size_t i = 0; i < d->digest.size(); ++i) {
    response->add_digests(d->digest[i]);
    response->add_counts(d->count[i]);
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ReplicaServiceImpl::Bucket(
    grpc::CallbackServerContext* ctx, const rpb::BucketRequest* request,
    rpb::BucketResponse* response) {
  if (auto* refused = RefuseUnlessPeer(ctx, peer_guard_)) return refused;
  if (request->buckets() == 0 || request->buckets() > 65536) {
    return Done(ctx, absl::InvalidArgumentError("buckets must be 1..65536"));
  }
  std::vector<uint32_t> wanted(request->wanted().begin(),
                               request->wanted().end());
  absl::StatusOr<std::vector<std::vector<VersionedEntry>>> entries =
      BucketEntries(*store_, *membership_->ring(), replication_factor_,
                    membership_->self_id(), request->from_node(),
                    request->buckets(), wanted);
  if (!entries.ok()) return Done(ctx, entries.status());
  for (const auto& bucket : *entries) {
    for (const VersionedEntry& e : bucket) {
      rpb::VersionEntry* out = response->add_entries();
      out->set_id(e.id);
      ToReplica(e.version, out->mutable_version());
      out->set_tombstone(e.tombstone);
    }
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ReplicaServiceImpl::ListPrincipal(
    grpc::CallbackServerContext* ctx, const rpb::ListPrincipalRequest* request,
    rpb::ListPrincipalResponse* response) {
  if (auto* refused = RefuseUnlessPeer(ctx, peer_guard_)) return refused;
  absl::StatusOr<std::vector<store::SessionRecord>> records =
      store_->ListByPrincipal(request->principal(),
                              std::min<uint32_t>(request->limit(), 100000));
  if (!records.ok()) return Done(ctx, records.status());
  for (const store::SessionRecord& r : *records) {
    ToReplica(r, response->add_sessions());
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ReplicaServiceImpl::Scan(
    grpc::CallbackServerContext* ctx, const rpb::ScanRequest* request,
    rpb::ScanResponse* response) {
  if (auto* refused = RefuseUnlessPeer(ctx, peer_guard_)) return refused;
  if (request->limit() == 0 || request->limit() > kMaxScanLimit) {
    return Done(ctx, absl::InvalidArgumentError(
                         absl::StrCat("scan limit must be 1..", kMaxScanLimit)));
  }
  absl::StatusOr<store::ScanPage> page = store_->ScanSessions(
      store::ScanOptions{request->after(), request->limit(),
                         request->include_data(), /*include_tombstones=*/true});
  if (!page.ok()) return Done(ctx, page.status());
  ToReplica(*page, response);
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ReplicaServiceImpl::Coordinate(
    grpc::CallbackServerContext* ctx, const rpb::CoordinateRequest* request,
    rpb::CoordinateResponse* response) {
  if (auto* refused = RefuseUnlessPeer(ctx, peer_guard_)) return refused;
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (request->has_update()) {
    const auto& update = request->update();
    if (absl::Status s = store::ValidateSessionId(update.id()); !s.ok()) {
      reactor->Finish(ToGrpc(s));
      return reactor;
    }
    coordinator_->CoordinateUpdate(
        update.id(), FromForward(update),
        [reactor, response](absl::StatusOr<store::SessionRecord> r) {
          if (r.ok()) ToReplica(*r, response->mutable_session());
          reactor->Finish(ToGrpc(r.status()));
        });
    return reactor;
  }
  if (request->has_delete_()) {
    const auto& del = request->delete_();
    if (absl::Status s = store::ValidateSessionId(del.id()); !s.ok()) {
      reactor->Finish(ToGrpc(s));
      return reactor;
    }
    if (!del.has_expected_version()) {
      reactor->Finish(ToGrpc(absl::InvalidArgumentError(
          "a forwarded delete carries its expected version")));
      return reactor;
    }
    coordinator_->CoordinateDelete(
        del.id(), FromForward(del.expected_version()),
        [reactor, response](absl::StatusOr<bool> r) {
          if (r.ok()) response->set_deleted(*r);
          reactor->Finish(ToGrpc(r.status()));
        });
    return reactor;
  }
  reactor->Finish(ToGrpc(absl::InvalidArgumentError("empty coordinate request")));
  return reactor;
}

grpc::ServerUnaryReactor* ReplicaServiceImpl::Handoff(
    grpc::CallbackServerContext* ctx, const rpb::HandoffRequest* request,
    rpb::HandoffResponse* response) {
  if (auto* refused = RefuseUnlessPeer(ctx, peer_guard_)) return refused;
  int accepted = 0;
  for (const rpb::Hint& hint : request->hints()) {
    if (hint.target_node() == membership_->self_id()) {
      // A hint for this node itself: apply it now.
      if (ApplyMutation(*store_, hint.mutation()).ok()) ++accepted;
      continue;
    }
    if (hints_->Add(hint.target_node(), hint.mutation(),
                    absl::FromUnixMicros(hint.deadline_micros()))) {
      ++accepted;
    }
  }
  response->set_accepted(accepted);
  return Done(ctx, absl::OkStatus());
}

}  // namespace sg::replication

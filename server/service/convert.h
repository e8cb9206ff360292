// Conversions between the store's types and the wire protos, and from
// absl::Status to grpc::Status. The only place that maps error types.
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/support/status.h"
#include "server/store/session_store.h"
#include "sessiongrid/v1/session.pb.h"

namespace sg::service {

// absl and gRPC status codes are numbered alike; the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);

void ToProto(const store::SessionRecord& record, sessiongrid::v1::Session* out);
// Moves the record's strings (id, data, principal) into `out`.
void ToProto(store::SessionRecord&& record, sessiongrid::v1::Session* out);
void ToProto(const store::Hlc& version, sessiongrid::v1::Version* out);
void ToProto(absl::Time t, google::protobuf::Timestamp* out);
void ToProto(absl::Duration d, google::protobuf::Duration* out);
// A batch entry's or a stream call's own outcome.
void ToProto(const absl::Status& status, sessiongrid::v1::EntryStatus* out);

store::Hlc FromProto(const sessiongrid::v1::Version& version);

// Unset -> nullopt. A set but non-positive duration is INVALID_ARGUMENT
// (the store checks the upper bound).
absl::StatusOr<std::optional<absl::Duration>> OptionalTtl(
    bool has_ttl, const google::protobuf::Duration& ttl);

}  // namespace sg::service

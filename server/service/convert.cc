#include "server/service/convert.h"

#include "absl/strings/str_cat.h"

namespace sg::service {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  int64_t nanos = absl::ToUnixNanos(t);
  out->set_seconds(nanos / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
}

void ToProto(absl::Duration d, google::protobuf::Duration* out) {
  int64_t nanos = absl::ToInt64Nanoseconds(d);
  out->set_seconds(nanos / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
}

void ToProto(const absl::Status& status, sessiongrid::v1::EntryStatus* out) {
  out->set_code(static_cast<int32_t>(status.code()));
  out->set_message(std::string(status.message()));
}

void ToProto(const store::Hlc& version, sessiongrid::v1::Version* out) {
  out->set_wall_millis(version.wall_millis);
  out->set_logical(version.logical);
  out->set_node_id(version.node_id);
}

void ToProto(const store::SessionRecord& record,
             sessiongrid::v1::Session* out) {
  ToProto(store::SessionRecord(record), out);
}

void ToProto(store::SessionRecord&& record, sessiongrid::v1::Session* out) {
  out->set_id(std::move(record.id));
  out->set_data(std::move(record.data));
  out->set_principal(std::move(record.principal));
  bool authenticated = !out->principal().empty();
  out->set_session_class(authenticated
                             ? sessiongrid::v1::SESSION_CLASS_AUTHENTICATED
                             : sessiongrid::v1::SESSION_CLASS_ANONYMOUS);
  ToProto(record.create_time, out->mutable_create_time());
  ToProto(record.last_access_time, out->mutable_last_access_time());
  ToProto(record.expire_time, out->mutable_expire_time());
  sessiongrid::v1::Version* version = out->mutable_version();
  version->set_wall_millis(record.version.wall_millis);
  version->set_logical(record.version.logical);
  version->set_node_id(std::move(record.version.node_id));
}

store::Hlc FromProto(const sessiongrid::v1::Version& version) {
  return store::Hlc{version.wall_millis(), version.logical(),
                    version.node_id()};
}

absl::StatusOr<std::optional<absl::Duration>> OptionalTtl(
    bool has_ttl, const google::protobuf::Duration& ttl) {
  if (!has_ttl) return std::optional<absl::Duration>();
  // google.protobuf.Duration's own rules: nanos below one second with the
  // sign of seconds, seconds within +-10,000 years. Anything else is a
  // malformed message, not a TTL to round.
  constexpr int64_t kMaxDurationSeconds = 315'576'000'000;
  if (ttl.seconds() > kMaxDurationSeconds ||
      ttl.seconds() < -kMaxDurationSeconds || ttl.nanos() >= 1'000'000'000 ||
      ttl.nanos() <= -1'000'000'000 ||
      (ttl.seconds() > 0 && ttl.nanos() < 0) ||
      (ttl.seconds() < 0 && ttl.nanos() > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ttl is not a valid google.protobuf.Duration (seconds ", ttl.seconds(),
        ", nanos ", ttl.nanos(), ")"));
  }
  absl::Duration d = absl::Seconds(ttl.seconds()) + absl::Nanoseconds(ttl.nanos());
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl must be positive, got ", absl::FormatDuration(d)));
  }
  return std::optional<absl::Duration>(d);
}

}  // namespace sg::service

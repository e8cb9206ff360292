#include "server/replication/replica_codec.h"

namespace sg::replication {
namespace {

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t m) { return absl::FromUnixMicros(m); }

}  // namespace

void ToReplica(const store::Hlc& version, rpb::Version* out) {
  out->set_wall_millis(version.wall_millis);
  out->set_logical(version.logical);
  out->set_node_id(version.node_id);
}

store::Hlc FromReplica(const rpb::Version& version) {
  return store::Hlc{version.wall_millis(), version.logical(), version.node_id()};
}

void ToReplica(const store::SessionRecord& record, rpb::Record* out) {
  out->set_id(record.id);
  out->set_data(record.data);
  out->set_principal(record.principal);
  out->set_create_micros(Micros(record.create_time));
  out->set_last_access_micros(Micros(record.last_access_time));
  out->set_expire_micros(Micros(record.expire_time));
  out->set_ttl_micros(absl::ToInt64Microseconds(record.ttl));
  ToReplica(record.version, out->mutable_version());
}

absl::StatusOr<store::SessionRecord> FromReplica(const rpb::Record& in) {
  if (in.id().empty() || !in.has_version()) {
    return absl::InvalidArgumentError("replica record without id or version");
  }
  store::SessionRecord r;
  r.id = in.id();
  r.data = in.data();
  r.principal = in.principal();
  r.create_time = FromMicros(in.create_micros());
  r.last_access_time = FromMicros(in.last_access_micros());
  r.expire_time = FromMicros(in.expire_micros());
  r.ttl = absl::Microseconds(in.ttl_micros());
  r.version = FromReplica(in.version());
  return r;
}

rpb::Mutation RecordMutation(const store::SessionRecord& record) {
  rpb::Mutation m;
  ToReplica(record, m.mutable_record());
  return m;
}

rpb::Mutation TombstoneMutation(std::string_view id, const store::Hlc& version,
                                absl::Time deleted_expire_time) {
  rpb::Mutation m;
  rpb::Tombstone* t = m.mutable_tombstone();
  t->set_id(std::string(id));
  ToReplica(version, t->mutable_version());
  t->set_deleted_expire_micros(deleted_expire_time == absl::InfinitePast()
                                   ? 0
                                   : Micros(deleted_expire_time));
  return m;
}

rpb::Mutation TouchMutation(const store::SessionRecord& record) {
  rpb::Mutation m;
  rpb::Touch* t = m.mutable_touch();
  t->set_id(record.id);
  t->set_expire_micros(Micros(record.expire_time));
  t->set_last_access_micros(Micros(record.last_access_time));
  t->set_ttl_micros(absl::ToInt64Microseconds(record.ttl));
  return m;
}

const std::string& MutationId(const rpb::Mutation& m) {
  if (m.has_touch()) return m.touch().id();
  return m.has_record() ? m.record().id() : m.tombstone().id();
}

absl::StatusOr<bool> ApplyMutation(store::SessionStore& store,
                                   const rpb::Mutation& m) {
  std::optional<store::Hlc> expected;
  if (m.has_expected_version()) expected = FromReplica(m.expected_version());
  if (m.has_record()) {
    absl::StatusOr<store::SessionRecord> record = FromReplica(m.record());
    if (!record.ok()) return record.status();
    return store.ApplyReplicated(*record, expected);
  }
  if (m.has_touch()) {
    const rpb::Touch& t = m.touch();
    return store.ApplyReplicatedTouch(t.id(), FromMicros(t.expire_micros()),
                                      FromMicros(t.last_access_micros()),
                                      absl::Microseconds(t.ttl_micros()));
  }
  if (m.has_tombstone()) {
    const rpb::Tombstone& t = m.tombstone();
    if (!t.has_version()) {
      return absl::InvalidArgumentError("replica tombstone without version");
    }
    absl::Time expire = t.deleted_expire_micros() == 0
                            ? absl::InfinitePast()
                            : FromMicros(t.deleted_expire_micros());
    return store.ApplyReplicatedDelete(t.id(), FromReplica(t.version()), expire,
                                       expected);
  }
  return absl::InvalidArgumentError("empty replica mutation");
}

void ToReplica(std::string_view id, const store::LocalEntry& entry,
               rpb::Entry* out) {
  out->set_id(std::string(id));
  if (entry.session) ToReplica(*entry.session, out->mutable_session());
  if (entry.tombstone) {
    rpb::Tombstone* t = out->mutable_tombstone();
    t->set_id(std::string(id));
    ToReplica(entry.tombstone->version, t->mutable_version());
    t->set_deleted_expire_micros(Micros(entry.tombstone->gc_deadline));
  }
}

}  // namespace sg::replication

namespace sg::replication {

void ToForward(const store::Hlc& version, sessiongrid::v1::Version* out) {
  out->set_wall_millis(version.wall_millis);
  out->set_logical(version.logical);
  out->set_node_id(version.node_id);
}

store::Hlc FromForward(const sessiongrid::v1::Version& in) {
  return store::Hlc{in.wall_millis(), in.logical(), in.node_id()};
}

void ToForward(std::string_view id, const store::UpdateParams& params,
               sessiongrid::v1::UpdateRequest* out) {
  out->set_id(std::string(id));
  if (params.data) out->set_data(*params.data);
  if (params.principal) out->set_principal(*params.principal);
  if (params.expected_version) {
    ToForward(*params.expected_version, out->mutable_expected_version());
  }
  if (params.ttl) {
    const int64_t nanos = absl::ToInt64Nanoseconds(*params.ttl);
    out->mutable_ttl()->set_seconds(nanos / 1'000'000'000);
    out->mutable_ttl()->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  }
}

store::UpdateParams FromForward(const sessiongrid::v1::UpdateRequest& in) {
  store::UpdateParams params;
  if (in.has_data()) params.data = in.data();
  if (in.has_principal()) params.principal = in.principal();
  if (in.has_expected_version()) {
    params.expected_version = FromForward(in.expected_version());
  }
  if (in.has_ttl()) {
    params.ttl = absl::Seconds(in.ttl().seconds()) + absl::Nanoseconds(in.ttl().nanos());
  }
  return params;
}

}  // namespace sg::replication

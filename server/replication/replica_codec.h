// Conversions between the store's types and the peer protocol's messages.
#pragma once

#include "absl/status/statusor.h"
#include "server/store/session_store.h"
#include "sessiongrid/replica/v1/replica.pb.h"
#include "sessiongrid/v1/session.pb.h"

namespace sg::replication {

namespace rpb = ::sessiongrid::replica::v1;

void ToReplica(const store::Hlc& version, rpb::Version* out);
store::Hlc FromReplica(const rpb::Version& version);
void ToReplica(const store::SessionRecord& record, rpb::Record* out);
// INVALID_ARGUMENT when the record has no id or no version.
absl::StatusOr<store::SessionRecord> FromReplica(const rpb::Record& record);

rpb::Mutation RecordMutation(const store::SessionRecord& record);
rpb::Mutation TombstoneMutation(std::string_view id, const store::Hlc& version,
                                absl::Time deleted_expire_time);
// A sliding expiry of `record` (its new expiry, last access and TTL only).
rpb::Mutation TouchMutation(const store::SessionRecord& record);
// The id a mutation is about.
const std::string& MutationId(const rpb::Mutation& mutation);

// Applies a mutation to the local store (the replica's part). Returns
// whether it changed anything.
absl::StatusOr<bool> ApplyMutation(store::SessionStore& store,
                                   const rpb::Mutation& mutation);

// This node's entry for an id, as the protocol carries it.
void ToReplica(std::string_view id, const store::LocalEntry& entry,
               rpb::Entry* out);

}  // namespace sg::replication

namespace sg::replication {

// A compare-and-set, forwarded to the id's first live owner.
void ToForward(std::string_view id, const store::UpdateParams& params,
               sessiongrid::v1::UpdateRequest* out);
store::UpdateParams FromForward(const sessiongrid::v1::UpdateRequest& in);
void ToForward(const store::Hlc& version, sessiongrid::v1::Version* out);
store::Hlc FromForward(const sessiongrid::v1::Version& in);

}  // namespace sg::replication

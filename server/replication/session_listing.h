// ListSessions in a cluster: every member scans its own store from the
// page token; the coordinator merges the pages (see MergeListingPages).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/replication/replica_codec.h"
#include "server/replication/scatter.h"
#include "server/store/session_backend.h"

namespace sg::replication {

// Merges the members' scans (each of live sessions and tombstones after
// one token, in id order) into one page of at most `page_size` sessions:
//  - a member that stopped early (`more`) saw nothing past its
//    resume_after, so only ids up to the smallest such one are complete;
//  - per id the newest version wins (a later expiry breaks a tie: touches
//    move the expiry without a new version); a tombstone anywhere wins;
//  - sessions expired at `now` are dropped.
// UNAVAILABLE when more than `max_failed` members did not answer. Pure.
absl::StatusOr<store::SessionPage> MergeListingPages(
    std::vector<MemberAnswer<store::ScanPage>> answers, size_t page_size,
    int max_failed, absl::Time now);

// The peer protocol's form of a scan page, both ways.
void ToReplica(const store::ScanPage& page, rpb::ScanResponse* out);
store::ScanPage FromReplica(const rpb::ScanResponse& response);

}  // namespace sg::replication

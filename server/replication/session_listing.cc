#include "server/replication/session_listing.h"

#include <algorithm>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/replication/coordinator.h"

namespace sg::replication {

using store::Reply;
using store::ScanPage;
using store::SessionPage;
using store::SessionRecord;

absl::StatusOr<SessionPage> MergeListingPages(
    std::vector<MemberAnswer<ScanPage>> answers, size_t page_size,
    int max_failed, absl::Time now) {
  std::vector<std::string> failures;
  for (const MemberAnswer<ScanPage>& a : answers) {
    if (!a.result.ok()) {
      failures.push_back(absl::StrCat(a.node, ": ", a.result.status().message()));
    }
  }
  if (static_cast<int>(failures.size()) > max_failed) {
    return absl::UnavailableError(absl::StrCat(
        "listing needs every member but at most ", max_failed,
        " (W-1) to answer, so that no session is missed and no deleted one "
        "listed; ",
        failures.size(), " of ", answers.size(),
        " did not (", absl::StrJoin(failures, "; "), ")"));
  }
  // Ids up to `cut` are complete: every answering member reported all it
  // holds there.
  std::optional<std::string> cut;
  for (const MemberAnswer<ScanPage>& a : answers) {
    if (a.result.ok() && a.result->more &&
        (!cut || a.result->resume_after < *cut)) {
      cut = a.result->resume_after;
    }
  }
  struct Merged {
    std::optional<SessionRecord> newest;
    bool tombstoned = false;
  };
  std::map<std::string, Merged> merged;
  for (MemberAnswer<ScanPage>& a : answers) {
    if (!a.result.ok()) continue;
    for (store::ScanEntry& e : a.result->entries) {
      if (cut && e.id > *cut) break;  // entries are in id order
      Merged& m = merged[e.id];
      if (e.entry.tombstone) m.tombstoned = true;
      if (!e.entry.session) continue;
      SessionRecord& r = *e.entry.session;
      if (!m.newest || m.newest->version < r.version ||
          (m.newest->version == r.version &&
           m.newest->expire_time < r.expire_time)) {
        m.newest = std::move(r);
      }
    }
  }
  SessionPage page;
  auto live = [now](const Merged& m) {
    return !m.tombstoned && m.newest && m.newest->expire_time > now;
  };
  auto it = merged.begin();
  for (; it != merged.end() && page.sessions.size() < page_size; ++it) {
    if (live(it->second)) page.sessions.push_back(std::move(*it->second.newest));
  }
  const bool more_here =
      std::any_of(it, merged.end(), [&](const auto& kv) { return live(kv.second); });
  if (more_here) {
    page.next_page_token = page.sessions.back().id;
  } else if (cut) {
    page.next_page_token = *cut;
  }
  return page;
}

void ToReplica(const ScanPage& page, rpb::ScanResponse* out) {
  for (const store::ScanEntry& e : page.entries) {
    ToReplica(e.id, e.entry, out->add_entries());
  }
  out->set_more(page.more);
  out->set_resume_after(page.resume_after);
}

ScanPage FromReplica(const rpb::ScanResponse& response) {
  ScanPage page;
  page.more = response.more();
  page.resume_after = response.resume_after();
  for (const rpb::Entry& e : response.entries()) {
    store::ScanEntry entry;
    entry.id = e.id();
    if (e.has_tombstone()) {
      entry.entry.tombstone = store::TombstoneInfo{
          FromReplica(e.tombstone().version()),
          absl::FromUnixMicros(e.tombstone().deleted_expire_micros())};
    }
    if (e.has_session()) {
      absl::StatusOr<SessionRecord> r = FromReplica(e.session());
      if (r.ok()) entry.entry.session = *std::move(r);
    }
    if (entry.entry.session || entry.entry.tombstone) {
      page.entries.push_back(std::move(entry));
    }
  }
  return page;
}

// Every member scans from the token (tombstones included, so a member that
// missed a delete cannot list it) and the pages are merged here.
void Coordinator::ListSessions(std::string page_token, size_t page_size,
                               bool include_data, Reply<SessionPage> done) {
  const std::string self = membership_->self_id();
  auto ask = [this, self, page_token, page_size, include_data](
                 const std::string& node, Reply<ScanPage> reply) {
    if (node == self) {
      return std::move(reply)(store_->ScanSessions(
          store::ScanOptions{page_token, page_size, include_data,
                             /*include_tombstones=*/true}));
    }
    std::shared_ptr<rpb::ReplicaService::Stub> stub = membership_->StubFor(node);
    if (stub == nullptr) {
      return std::move(reply)(
          absl::UnavailableError(absl::StrCat("no connection to ", node)));
    }
    rpb::ScanRequest request;
    request.set_after(page_token);
    request.set_limit(static_cast<uint32_t>(page_size));
    request.set_include_data(include_data);
    CallPeer<rpb::ScanResponse>(
        std::move(stub), std::move(request), options_.replica_timeout, Track(),
        [](auto* async, auto* ctx, auto* req, auto* resp, auto callback) {
          async->Scan(ctx, req, resp, std::move(callback));
        },
        Reply<rpb::ScanResponse>(
            [reply = std::move(reply)](
                absl::StatusOr<rpb::ScanResponse> response) mutable {
              if (!response.ok()) return std::move(reply)(response.status());
              std::move(reply)(FromReplica(*response));
            }));
  };
  // Reaching all but W-1 members meets every write quorum of every range.
  const int max_failed = std::max(0, options_.write_quorum - 1);
  Scatter<ScanPage>(
      *membership_, std::move(ask),
      Gathered<ScanPage>([this, page_size, max_failed, done = std::move(done)](
                             std::vector<MemberAnswer<ScanPage>> answers) mutable {
        std::move(done)(MergeListingPages(std::move(answers), page_size,
                                          max_failed, clock_->Now()));
      }));
}

}  // namespace sg::replication

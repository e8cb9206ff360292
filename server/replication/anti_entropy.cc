#include "server/replication/anti_entropy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "server/replication/replica_codec.h"

namespace sg::replication {
namespace {

uint64_t EntryHash(std::string_view id, const store::Hlc& version,
                   bool tombstone) {
  std::string bytes(id);
  absl::StrAppend(&bytes, "|", version.wall_millis, ".", version.logical, ".",
                  version.node_id, tombstone ? "|T" : "|S");
  return StableHash(bytes);
}

bool Owns(const Ring& ring, int n, std::string_view id, const std::string& a,
          const std::string& b) {
  std::vector<std::string> owners = ring.OwnersOfId(id, n);
  return std::find(owners.begin(), owners.end(), a) != owners.end() &&
         std::find(owners.begin(), owners.end(), b) != owners.end();
}

}  // namespace

uint32_t BucketOf(std::string_view id, uint32_t buckets) {
  return static_cast<uint32_t>(
      (static_cast<unsigned __int128>(TokenOf(id)) * buckets) >> 64);
}

absl::StatusOr<BucketDigests> ComputeDigests(store::SessionStore& store,
                                             const Ring& ring, int n,
                                             const std::string& self,
                                             const std::string& peer,
                                             uint32_t buckets) {
  BucketDigests d;
  d.digest.assign(buckets, 0);
  d.count.assign(buckets, 0);
  absl::Status s = store.ForEachEntry(
      [&](std::string_view id, const store::SessionRecord* session,
          const store::TombstoneInfo* tombstone) {
        if (!Owns(ring, n, id, self, peer)) return true;
        const uint32_t b = BucketOf(id, buckets);
        d.digest[b] ^= session ? EntryHash(id, session->version, false)
                               : EntryHash(id, tombstone->version, true);
        d.count[b]++;
        return true;
      });
  if (!s.ok()) return s;
  return d;
}

absl::StatusOr<std::vector<std::vector<VersionedEntry>>> BucketEntries(
    store::SessionStore& store, const Ring& ring, int n,
    const std::string& self, const std::string& peer, uint32_t buckets,
    const std::vector<uint32_t>& wanted) {
  std::vector<int> slot(buckets, -1);
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (wanted[i] < buckets) slot[wanted[i]] = static_cast<int>(i);
  }
  std::vector<std::vector<VersionedEntry>> out(wanted.size());
  absl::Status s = store.ForEachEntry(
      [&](std::string_view id, const store::SessionRecord* session,
          const store::TombstoneInfo* tombstone) {
        const int i = slot[BucketOf(id, buckets)];
        if (i < 0 || !Owns(ring, n, id, self, peer)) return true;
        out[static_cast<size_t>(i)].push_back(VersionedEntry{
            std::string(id), session ? session->version : tombstone->version,
            session == nullptr});
        return true;
      });
  if (!s.ok()) return s;
  return out;
}

AntiEntropy::AntiEntropy(AntiEntropyOptions options, store::SessionStore* store,
                         Membership* membership, Clock* clock)
    : options_(options), store_(store), membership_(membership), clock_(clock) {}

AntiEntropy::~AntiEntropy() { Stop(); }

void AntiEntropy::Start() {
  last_ring_ = membership_->ring();
  thread_ = std::thread([this] { Loop(); });
}

void AntiEntropy::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

PeerRepairStats AntiEntropy::stats_for(const std::string& node_id) const {
  absl::MutexLock lock(&mu_);
  auto it = stats_.find(node_id);
  return it == stats_.end() ? PeerRepairStats{} : it->second;
}

void AntiEntropy::Loop() {
  absl::Time next_round = clock_->Now() + options_.interval;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      // Wake at least every second to notice membership changes.
      mu_.AwaitWithTimeout(
          absl::Condition(&stop),
          std::min(absl::Seconds(1),
                   std::max(absl::ZeroDuration(), next_round - clock_->Now())));
      if (stopping_) return;
    }
    std::shared_ptr<const Ring> ring = membership_->ring();
    if (ring->nodes() != last_ring_->nodes()) {
      const int64_t sent = Rebalance(*last_ring_, *ring);
      LogInfo("ring changed: ranges streamed to their new owners",
              {{"entries", absl::StrCat(sent)},
               {"members", absl::StrCat(ring->size())}});
      last_ring_ = ring;
    }
    if (clock_->Now() < next_round) continue;
    RunRound();
    next_round = clock_->Now() + options_.interval;
  }
}

int64_t AntiEntropy::Rebalance(const Ring& before, const Ring& after) {
  const std::string self = membership_->self_id();
  const int n = options_.replication_factor;
  constexpr int kChunk = 500;
  absl::flat_hash_map<std::string, rpb::ApplyRequest> pending;
  int64_t sent = 0;
  auto flush = [&](const std::string& node, rpb::ApplyRequest& request) {
    if (request.mutations_size() == 0) return;
    auto stub = membership_->StubFor(node);
    if (stub != nullptr) {
      request.set_from_node(self);
      rpb::ApplyResponse response;
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
      // A failure is left to anti-entropy, which compares the same ranges.
      if (stub->Apply(&ctx, request, &response).ok()) {
        sent += request.mutations_size();
      }
    }
    Throttle(request.mutations_size());
    request.clear_mutations();
  };
  absl::Status s = store_->ForEachEntry(
      [&](std::string_view id, const store::SessionRecord* session,
          const store::TombstoneInfo* tombstone) {
        const std::vector<std::string> old_owners = before.OwnersOfId(id, n);
        for (const std::string& owner : after.OwnersOfId(id, n)) {
          if (owner == self || std::find(old_owners.begin(), old_owners.end(),
                                         owner) != old_owners.end()) {
            continue;
          }
          rpb::ApplyRequest& request = pending[owner];
          *request.add_mutations() =
              session ? RecordMutation(*session)
                      : TombstoneMutation(id, tombstone->version,
                                          tombstone->gc_deadline);
          if (request.mutations_size() >= kChunk) flush(owner, request);
        }
        absl::MutexLock lock(&mu_);
        return !stopping_;
      });
  if (!s.ok()) LogWarn("rebalance scan failed", {{"error", s.ToString()}});
  for (auto& [node, request] : pending) flush(node, request);
  rebalanced_.fetch_add(sent);
  return sent;
}

int64_t AntiEntropy::RunRound() {
  int64_t repaired = 0;
  for (const MemberView& m : membership_->Members()) {
    if (m.self || m.node_id.empty() || m.liveness != Liveness::kAlive) continue;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    absl::StatusOr<int64_t> n = RoundWith(m.node_id);
    if (!n.ok()) {
      LogWarn("anti-entropy round failed",
              {{"peer", m.node_id}, {"error", n.status().ToString()}});
      continue;
    }
    repaired += *n;
    absl::MutexLock lock(&mu_);
    PeerRepairStats& st = stats_[m.node_id];
    st.last_round = clock_->Now();
    st.last_repaired = *n;
    st.total_repaired += *n;
    st.rounds++;
  }
  return repaired;
}

void AntiEntropy::Throttle(int64_t entries) {
  if (options_.max_entries_per_second <= 0 || entries <= 0) return;
  const absl::Duration pause =
      absl::Seconds(1) * static_cast<double>(entries) /
      static_cast<double>(options_.max_entries_per_second);
  absl::MutexLock lock(&mu_);
  auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
  mu_.AwaitWithTimeout(absl::Condition(&stop), pause);
}

absl::StatusOr<int64_t> AntiEntropy::RoundWith(const std::string& peer) {
  auto stub = membership_->StubFor(peer);
  if (stub == nullptr) return absl::UnavailableError("no channel to peer");
  std::shared_ptr<const Ring> ring = membership_->ring();
  const std::string self = membership_->self_id();
  const int n = options_.replication_factor;
  const uint32_t buckets = options_.buckets;
  auto deadline = [&] {
    return absl::ToChronoTime(absl::Now() + options_.rpc_timeout);
  };
  const absl::Time started = absl::Now();
  int64_t wire_bytes = 0;  // request and response payloads, both ways

  absl::StatusOr<BucketDigests> mine =
      ComputeDigests(*store_, *ring, n, self, peer, buckets);
  if (!mine.ok()) return mine.status();
  rpb::DigestRequest digest_request;
  digest_request.set_from_node(self);
  digest_request.set_buckets(buckets);
  rpb::DigestResponse theirs;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    grpc::Status s = stub->Digest(&ctx, digest_request, &theirs);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
    wire_bytes += static_cast<int64_t>(digest_request.ByteSizeLong() +
                                       theirs.ByteSizeLong());
  }
  if (theirs.digests_size() != static_cast<int>(buckets)) {
    return absl::InternalError("peer answered digests of another shape");
  }

  std::vector<uint32_t> differing;
  for (uint32_t b = 0; b < buckets; ++b) {
    if (mine->digest[b] != theirs.digests(static_cast<int>(b))) {
      differing.push_back(b);
    }
  }
  int64_t copied = 0;
  // Differing buckets in groups: one scan on each side per group, and
  // answers that stay well below the message limit.
  constexpr size_t kGroup = 32;
  for (size_t g = 0; g < differing.size(); g += kGroup) {
    std::vector<uint32_t> group(
        differing.begin() + static_cast<ptrdiff_t>(g),
        differing.begin() +
            static_cast<ptrdiff_t>(std::min(differing.size(), g + kGroup)));
    rpb::BucketRequest bucket_request;
    bucket_request.set_from_node(self);
    bucket_request.set_buckets(buckets);
    for (uint32_t b : group) bucket_request.add_wanted(b);
    rpb::BucketResponse their_entries;
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      grpc::Status s = stub->Bucket(&ctx, bucket_request, &their_entries);
      if (!s.ok()) return absl::UnavailableError(s.error_message());
      wire_bytes += static_cast<int64_t>(bucket_request.ByteSizeLong() +
                                         their_entries.ByteSizeLong());
    }
    absl::StatusOr<std::vector<std::vector<VersionedEntry>>> my_entries =
        BucketEntries(*store_, *ring, n, self, peer, buckets, group);
    if (!my_entries.ok()) return my_entries.status();
    absl::flat_hash_map<std::string, VersionedEntry> local;
    for (auto& bucket : *my_entries) {
      for (VersionedEntry& e : bucket) local.emplace(e.id, std::move(e));
    }

    // Pull what the peer has newer (or deleted); push what we have newer.
    rpb::ReadRequest pull;
    rpb::ApplyRequest push;
    push.set_from_node(self);
    auto wins = [](const VersionedEntry& a, const VersionedEntry* b) {
      if (b == nullptr) return true;
      if (a.tombstone != b->tombstone) return a.tombstone;  // deletes win
      return a.version > b->version;
    };
    for (const rpb::VersionEntry& t : their_entries.entries()) {
      VersionedEntry theirs_e{t.id(), FromReplica(t.version()), t.tombstone()};
      auto it = local.find(t.id());
      const VersionedEntry* mine_e = it == local.end() ? nullptr : &it->second;
      if (wins(theirs_e, mine_e)) pull.add_ids(t.id());
      if (it != local.end()) {
        if (wins(it->second, &theirs_e)) {
          absl::StatusOr<store::LocalEntry> le = store_->ReadLocal(t.id());
          if (le.ok()) {
            if (le->tombstone) {
              *push.add_mutations() = TombstoneMutation(
                  t.id(), le->tombstone->version, le->tombstone->gc_deadline);
            } else if (le->session) {
              *push.add_mutations() = RecordMutation(*le->session);
            }
          }
        }
        local.erase(it);
      }
    }
    for (const auto& [id, e] : local) {  // the peer lacks these
      absl::StatusOr<store::LocalEntry> le = store_->ReadLocal(id);
      if (!le.ok()) continue;
      if (le->tombstone) {
        *push.add_mutations() = TombstoneMutation(id, le->tombstone->version,
                                                  le->tombstone->gc_deadline);
      } else if (le->session) {
        *push.add_mutations() = RecordMutation(*le->session);
      }
    }
    // Both directions in chunks, throttled.
    constexpr int kChunk = 500;
    for (int start = 0; start < pull.ids_size(); start += kChunk) {
      rpb::ReadRequest chunk;
      for (int i = start; i < std::min(pull.ids_size(), start + kChunk); ++i) {
        chunk.add_ids(pull.ids(i));
      }
      rpb::ReadResponse got;
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      grpc::Status s = stub->Read(&ctx, chunk, &got);
      if (!s.ok()) return absl::UnavailableError(s.error_message());
      wire_bytes += static_cast<int64_t>(chunk.ByteSizeLong() + got.ByteSizeLong());
      for (const rpb::Entry& e : got.entries()) {
        rpb::Mutation m;
        if (e.has_tombstone()) {
          *m.mutable_tombstone() = e.tombstone();
        } else if (e.has_session()) {
          *m.mutable_record() = e.session();
        } else {
          continue;
        }
        if (ApplyMutation(*store_, m).ok()) ++copied;
      }
      Throttle(chunk.ids_size());
    }
    for (int start = 0; start < push.mutations_size(); start += kChunk) {
      rpb::ApplyRequest chunk;
      chunk.set_from_node(self);
      for (int i = start; i < std::min(push.mutations_size(), start + kChunk);
           ++i) {
        *chunk.add_mutations() = push.mutations(i);
      }
      rpb::ApplyResponse applied;
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      grpc::Status s = stub->Apply(&ctx, chunk, &applied);
      if (!s.ok()) return absl::UnavailableError(s.error_message());
      wire_bytes += static_cast<int64_t>(chunk.ByteSizeLong() + applied.ByteSizeLong());
      copied += chunk.mutations_size();
      Throttle(chunk.mutations_size());
    }
  }
  total_repaired_.fetch_add(copied);
  // One line a round and peer: what it cost and what it copied.
  LogInfo("anti-entropy round",
          {{"peer", peer},
           {"took", absl::FormatDuration(absl::Now() - started)},
           {"differing_buckets", absl::StrCat(differing.size())},
           {"wire_bytes", absl::StrCat(wire_bytes)},
           {"repaired", absl::StrCat(copied)}});
  return copied;
}

}  // namespace sg::replication

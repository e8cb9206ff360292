#include "server/replication/coordinator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "server/replication/replica_codec.h"
#include "server/replication/scatter.h"

namespace sg::replication {
namespace {

using store::Reply;
using store::SessionRecord;

// Runs a reply once, from whichever completion gets there first.
template <typename T>
class Once {
 public:
  explicit Once(Reply<T> reply) : reply_(std::move(reply)) {}
  // True when this call took the reply (and must run it).
  bool Take(Reply<T>* out) {
    absl::MutexLock lock(&mu_);
    if (taken_) return false;
    taken_ = true;
    *out = std::move(reply_);
    return true;
  }

 private:
  absl::Mutex mu_;
  bool taken_ ABSL_GUARDED_BY(mu_) = false;
  Reply<T> reply_ ABSL_GUARDED_BY(mu_);
};

// gRPC's callbacks are std::function, which must be copyable.
template <typename T>
std::shared_ptr<Reply<T>> Shared(Reply<T> reply) {
  return std::make_shared<Reply<T>>(std::move(reply));
}

absl::Status TooManyQueued() {
  return absl::ResourceExhaustedError(
      "too many compare-and-set calls queued for this session");
}

absl::Status TooFewAcks(int acks, int w, int owners) {
  return absl::UnavailableError(absl::StrCat(
      "write reached ", acks, " of the ", w, " replicas it needs (", owners,
      " owners); it may still be applied on those that acked"));
}

}  // namespace

Coordinator::Coordinator(CoordinatorOptions options, store::SessionStore* store,
                         Membership* membership, HintLog* hints, Clock* clock)
    : options_(options),
      store_(store),
      membership_(membership),
      hints_(hints),
      clock_(clock) {}

std::vector<std::string> Coordinator::OwnersOf(std::string_view id) const {
  return membership_->ring()->OwnersOfId(id, options_.replication_factor);
}

CoordinatorStats Coordinator::stats() const {
  return CoordinatorStats{writes_acked_.load(),
                          writes_failed_.load(),
                          read_repairs_.load(),
                          forwarded_cas_.load(),
                          per_principal_evictions_.load(),
                          replicated_evictions_.load(),
                          coordinated_calls_.load(),
                          coordinated_calls_not_owner_.load()};
}

std::shared_ptr<void> Coordinator::Track() {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  return std::shared_ptr<void>(nullptr, [this](void*) {
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  });
}

void Coordinator::WaitForCallbacks(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (in_flight_.load(std::memory_order_acquire) > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
}

void Coordinator::CountCall(const std::string& id) {
  coordinated_calls_.fetch_add(1, std::memory_order_relaxed);
  const std::vector<std::string> owners = OwnersOf(id);
  if (std::find(owners.begin(), owners.end(), membership_->self_id()) ==
      owners.end()) {
    coordinated_calls_not_owner_.fetch_add(1, std::memory_order_relaxed);
  }
}

// ---------------------------------------------------------------------------
// Quorum writes and reads

void Coordinator::Write(const std::string& id, rpb::Mutation mutation,
                        Reply<bool> done) {
  struct State {
    absl::Mutex mu;
    int acks ABSL_GUARDED_BY(mu) = 0;
    int fails ABSL_GUARDED_BY(mu) = 0;
    int owners = 0;
    int w = 0;
    Once<bool> reply;
    rpb::ApplyRequest request;
    explicit State(Reply<bool> r) : reply(std::move(r)) {}
  };
  const std::vector<std::string> owners = OwnersOf(id);
  auto state = std::make_shared<State>(std::move(done));
  state->owners = static_cast<int>(owners.size());
  // W is never lowered to fit: a node that does not (yet) know enough
  // members refuses writes rather than acknowledge them on too few.
  state->w = options_.write_quorum;
  state->request.set_from_node(membership_->self_id());
  *state->request.add_mutations() = mutation;
  if (state->owners < state->w) {
    writes_failed_.fetch_add(1);
    Reply<bool> reply;
    if (state->reply.Take(&reply)) {
      std::move(reply)(absl::UnavailableError(absl::StrCat(
          "this node knows ", state->owners, " replica(s) of the id; a write "
          "needs ", state->w, " (--write-quorum): peers not reachable yet")));
    }
    return;
  }

  auto count = [this, state](bool acked) {
    Reply<bool> reply;
    absl::Status outcome;
    {
      absl::MutexLock lock(&state->mu);
      (acked ? state->acks : state->fails)++;
      if (state->acks >= state->w) {
        outcome = absl::OkStatus();
      } else if (state->fails > state->owners - state->w) {
        outcome = TooFewAcks(state->acks, state->w, state->owners);
      } else {
        return;
      }
    }
    if (!state->reply.Take(&reply)) return;
    (outcome.ok() ? writes_acked_ : writes_failed_).fetch_add(1);
    if (outcome.ok()) {
      std::move(reply)(true);
    } else {
      std::move(reply)(outcome);
    }
  };

  // A compare-and-set's write counts only where it applied.
  const bool conditional = mutation.has_expected_version();
  for (const std::string& owner : owners) {
    if (owner == membership_->self_id()) {
      absl::StatusOr<bool> applied = ApplyMutation(*store_, mutation);
      if (!applied.ok()) {
        LogWarn("local replica write failed", {{"error", applied.status().ToString()}});
      }
      count(applied.ok() && (!conditional || *applied));
      continue;
    }
    std::shared_ptr<rpb::ReplicaService::Stub> stub =
        membership_->StubFor(owner);
    if (stub == nullptr || membership_->LivenessOf(owner) == Liveness::kDead) {
      hints_->Add(owner, mutation);
      count(false);
      continue;
    }
    struct Call {
      grpc::ClientContext ctx;
      rpb::ApplyResponse response;
    };
    auto call = std::make_shared<Call>();
    call->ctx.set_deadline(
        absl::ToChronoTime(absl::Now() + options_.replica_timeout));
    stub->async()->Apply(
        &call->ctx, &state->request, &call->response,
        [this, call, state, owner, count, conditional,
         token = Track()](grpc::Status status) mutable {
          if (!status.ok()) hints_->Add(owner, state->request.mutations(0));
          count(status.ok() &&
                (!conditional || (call->response.applied_size() == 1 &&
                                  call->response.applied(0))));
        });
  }
}

void Coordinator::Read(const std::string& id, int want, bool strict,
                       Reply<ReadResult> done) {
  struct Answer {
    std::string node;
    std::optional<SessionRecord> session;
    bool tombstone = false;
    store::Hlc tombstone_version;
    absl::Time tombstone_deadline;
  };
  struct State {
    absl::Mutex mu;
    std::vector<std::string> candidates;
    size_t next ABSL_GUARDED_BY(mu) = 0;
    int in_flight ABSL_GUARDED_BY(mu) = 0;
    std::vector<Answer> answers ABSL_GUARDED_BY(mu);
    bool finished ABSL_GUARDED_BY(mu) = false;
    int want = 1;
    bool strict = false;
    std::string id;
    Reply<ReadResult> done;
  };
  auto state = std::make_shared<State>();
  state->id = id;
  state->want = want;
  state->strict = strict;
  state->done = std::move(done);
  // This node first (no hop), then live owners, then suspect ones.
  std::vector<std::string> owners = OwnersOf(id);
  for (Liveness level : {Liveness::kAlive, Liveness::kSuspect}) {
    for (const std::string& owner : owners) {
      if (owner == membership_->self_id()) {
        if (level == Liveness::kAlive) {
          state->candidates.insert(state->candidates.begin(), owner);
        }
        continue;
      }
      if (membership_->LivenessOf(owner) == level) {
        state->candidates.push_back(owner);
      }
    }
  }
  // Like W for writes, R is never lowered to fit: a node that knows fewer
  // owners than the read needs (it has not found its peers yet) refuses.
  state->want = std::min(want, options_.replication_factor);
  if (static_cast<int>(owners.size()) < state->want) {
    std::move(state->done)(absl::UnavailableError(absl::StrCat(
        "this node knows ", owners.size(), " replica(s) of the id; the read "
        "needs ", state->want, ": peers not reachable yet")));
    return;
  }

  // Decides under the lock what to do next; returns the owners to ask now.
  auto step = std::make_shared<
      absl::AnyInvocable<void(std::optional<Answer>, bool)>>();
  auto finish = [state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu)
      -> std::pair<absl::StatusOr<ReadResult>, std::vector<Answer>> {
    state->finished = true;
    const int answered = static_cast<int>(state->answers.size());
    if (answered < state->want) {
      return {absl::UnavailableError(absl::StrCat(
                  "read reached ", answered, " of the ", state->want,
                  " replicas it needs")),
              {}};
    }
    ReadResult result;
    for (const Answer& a : state->answers) {
      if (a.tombstone) result.tombstoned = true;
      if (a.session &&
          (!result.newest || a.session->version > result.newest->version)) {
        result.newest = a.session;
      }
    }
    if (result.tombstoned) result.newest.reset();
    return {result, state->answers};
  };

  // `ask` holds the step weakly: in-flight calls keep it alive, and nothing
  // does once the read is answered (no reference cycle).
  std::weak_ptr<absl::AnyInvocable<void(std::optional<Answer>, bool)>>
      weak_step = step;
  auto ask = [this, state, weak_step](const std::string& node) {
    auto step = weak_step.lock();
    if (step == nullptr) return;
    if (node == membership_->self_id()) {
      absl::StatusOr<store::LocalEntry> local = store_->ReadLocal(state->id);
      if (!local.ok()) {
        (*step)(std::nullopt, true);
        return;
      }
      Answer a{node, std::move(local->session), local->tombstone.has_value(), {}, {}};
      if (local->tombstone) {
        a.tombstone_version = local->tombstone->version;
        a.tombstone_deadline = local->tombstone->gc_deadline;
      }
      (*step)(std::move(a), true);
      return;
    }
    std::shared_ptr<rpb::ReplicaService::Stub> stub = membership_->StubFor(node);
    if (stub == nullptr) {
      (*step)(std::nullopt, true);
      return;
    }
    struct Call {
      grpc::ClientContext ctx;
      rpb::ReadRequest request;
      rpb::ReadResponse response;
    };
    auto call = std::make_shared<Call>();
    call->request.add_ids(state->id);
    call->ctx.set_deadline(
        absl::ToChronoTime(absl::Now() + options_.replica_timeout));
    stub->async()->Read(&call->ctx, &call->request, &call->response,
                        [call, node, step, token = Track()](grpc::Status status) {
                          if (!status.ok() || call->response.entries_size() != 1) {
                            (*step)(std::nullopt, true);
                            return;
                          }
                          const rpb::Entry& e = call->response.entries(0);
                          Answer a{node, std::nullopt, e.has_tombstone(), {}, {}};
                          if (e.has_session()) {
                            auto r = FromReplica(e.session());
                            if (r.ok()) a.session = std::move(*r);
                          }
                          if (e.has_tombstone()) {
                            a.tombstone_version = FromReplica(e.tombstone().version());
                            a.tombstone_deadline = absl::FromUnixMicros(
                                e.tombstone().deleted_expire_micros());
                          }
                          (*step)(std::move(a), true);
                        });
  };

  *step = [this, state, ask, finish](std::optional<Answer> answer,
                                     bool completed) mutable {
    std::vector<std::string> to_ask;
    std::optional<std::pair<absl::StatusOr<ReadResult>, std::vector<Answer>>>
        outcome;
    {
      absl::MutexLock lock(&state->mu);
      if (completed) --state->in_flight;
      if (answer) state->answers.push_back(std::move(*answer));
      if (state->finished) return;
      const int answered = static_cast<int>(state->answers.size());
      bool known = false;
      for (const Answer& a : state->answers) {
        if (a.session || a.tombstone) known = true;
      }
      const bool more = state->next < state->candidates.size();
      if (answered >= state->want && (known || state->strict || !more)) {
        outcome = finish();
      } else if (!more && state->in_flight == 0) {
        outcome = finish();
      } else {
        // Keep `want` answers coming; one more when all knew nothing.
        int needed = std::max(0, state->want - answered - state->in_flight);
        // A quorum read of two or more asks one owner extra from the start,
        // so one frozen owner costs no timeout (hedging).
        if (answered == 0 && state->next == 0 && state->want > 1) ++needed;
        if (answered >= state->want) needed = state->in_flight == 0 ? 1 : 0;
        while (needed-- > 0 && state->next < state->candidates.size()) {
          to_ask.push_back(state->candidates[state->next++]);
          ++state->in_flight;
        }
      }
    }
    if (outcome) {
      // Read repair: bring every answering replica up to what won.
      if (outcome->first.ok()) {
        const ReadResult& result = *outcome->first;
        for (const Answer& a : outcome->second) {
          rpb::Mutation fix;
          if (result.tombstoned) {
            if (a.tombstone) continue;
            store::Hlc version;
            absl::Time expire = absl::InfinitePast();
            for (const Answer& b : outcome->second) {
              if (b.tombstone && b.tombstone_version > version) {
                version = b.tombstone_version;
                expire = b.tombstone_deadline;
              }
            }
            fix = TombstoneMutation(state->id, version, expire);
          } else if (result.newest &&
                     (!a.session || a.session->version < result.newest->version)) {
            fix = RecordMutation(*result.newest);
          } else {
            continue;
          }
          read_repairs_.fetch_add(1);
          if (a.node == membership_->self_id()) {
            (void)ApplyMutation(*store_, fix);
            continue;
          }
          auto stub = membership_->StubFor(a.node);
          if (stub == nullptr) continue;
          struct Call {
            grpc::ClientContext ctx;
            rpb::ApplyRequest request;
            rpb::ApplyResponse response;
          };
          auto call = std::make_shared<Call>();
          call->request.set_from_node(membership_->self_id());
          *call->request.add_mutations() = std::move(fix);
          call->ctx.set_deadline(
              absl::ToChronoTime(absl::Now() + options_.replica_timeout));
          stub->async()->Apply(&call->ctx, &call->request, &call->response,
                               [call, token = Track()](grpc::Status) {});
        }
      }
      std::move(state->done)(std::move(outcome->first));
      return;
    }
    for (const std::string& node : to_ask) ask(node);
  };

  // Kick off: as if a completion had arrived with nothing in flight.
  {
    absl::MutexLock lock(&state->mu);
    state->in_flight = 1;
  }
  (*step)(std::nullopt, true);
}

void Coordinator::ReadLive(const std::string& id, int want, bool strict,
                           Reply<SessionRecord> done) {
  Read(id, want, strict,
       [done = std::move(done)](absl::StatusOr<ReadResult> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (!r->newest) {
           return std::move(done)(absl::NotFoundError("session not found"));
         }
         std::move(done)(std::move(*r->newest));
       });
}

// ---------------------------------------------------------------------------
// Operations

void Coordinator::Create(store::CreateParams params, Reply<SessionRecord> done) {
  const bool client_id = !params.id.empty();
  absl::StatusOr<SessionRecord> record = store_->PrepareCreate(std::move(params));
  if (!record.ok()) return std::move(done)(record.status());
  if (!client_id) return WriteNew(std::move(*record), std::move(done));
  // A chosen id must never have been used: ask a quorum of owners first.
  const std::string id = record->id;
  Read(id, options_.write_quorum, /*strict=*/false,
       [this, record = std::move(*record), done = std::move(done)](
           absl::StatusOr<ReadResult> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (r->newest || r->tombstoned) {
           return std::move(done)(
               absl::AlreadyExistsError("session id is or was in use"));
         }
         WriteNew(std::move(record), std::move(done));
       });
}

void Coordinator::WriteNew(SessionRecord record, Reply<SessionRecord> done) {
  const std::string id = record.id;
  rpb::Mutation mutation = RecordMutation(record);
  Write(id, std::move(mutation),
        [this, record = std::move(record),
         done = std::move(done)](absl::StatusOr<bool> w) mutable {
          if (!w.ok()) return std::move(done)(w.status());
          AfterPrincipalWrite(std::move(record), std::move(done));
        });
}

void Coordinator::Get(std::string id, bool touch, Reply<SessionRecord> done) {
  if (touch) return Touch(std::move(id), std::nullopt, std::move(done));
  CountCall(id);
  ReadLive(id, options_.read_quorum, false, std::move(done));
}

void Coordinator::Touch(std::string id, std::optional<absl::Duration> ttl,
                        Reply<SessionRecord> done) {
  CountCall(id);
  ReadLive(id, options_.read_quorum, false,
           [this, ttl, done = std::move(done)](
               absl::StatusOr<SessionRecord> r) mutable {
             if (!r.ok()) return std::move(done)(r.status());
             SessionRecord record = std::move(*r);
             const store::Hlc version = record.version;
             absl::StatusOr<bool> persist = store_->PrepareTouch(&record, ttl);
             if (!persist.ok()) return std::move(done)(persist.status());
             // A touch moves only the expiry: data and version stay, so a
             // stale read here cannot undo an update made meanwhile.
             record.version = version;
             if (!*persist) return std::move(done)(std::move(record));
             const std::string id = record.id;
             rpb::Mutation mutation = TouchMutation(record);
             Write(id, std::move(mutation),
                   [record, done = std::move(done)](
                       absl::StatusOr<bool> w) mutable {
                     if (!w.ok()) return std::move(done)(w.status());
                     std::move(done)(std::move(record));
                   });
           });
}

void Coordinator::Update(std::string id, store::UpdateParams params,
                         Reply<SessionRecord> done) {
  CountCall(id);
  if (params.expected_version) {
    auto stub = CasOwnerStub(id);
    if (stub == nullptr) {
      return RunCasUpdate(std::move(id), std::move(params), std::move(done));
    }
    rpb::CoordinateRequest request;
    ToForward(id, params, request.mutable_update());
    Forward(std::move(stub), std::move(request),
            [done = std::move(done)](
                absl::StatusOr<rpb::CoordinateResponse> r) mutable {
              if (!r.ok()) return std::move(done)(r.status());
              std::move(done)(FromReplica(r->session()));
            });
    return;
  }
  const bool sets_principal = params.principal && !params.principal->empty();
  // A partial update rewrites the whole record: read what every write
  // quorum saw, so unchanged fields are the newest ones.
  ReadLive(id, QuorumRead(), false,
           [this, params = std::move(params), sets_principal,
            done = std::move(done)](absl::StatusOr<SessionRecord> r) mutable {
             if (!r.ok()) return std::move(done)(r.status());
             absl::StatusOr<SessionRecord> updated =
                 store_->PrepareUpdate(*r, std::move(params));
             if (!updated.ok()) return std::move(done)(updated.status());
             const std::string id = updated->id;
             rpb::Mutation mutation = RecordMutation(*updated);
             Write(id, std::move(mutation),
                   [this, record = std::move(*updated), sets_principal,
                    done = std::move(done)](absl::StatusOr<bool> w) mutable {
                     if (!w.ok()) return std::move(done)(w.status());
                     if (!sets_principal) return std::move(done)(std::move(record));
                     AfterPrincipalWrite(std::move(record), std::move(done));
                   });
           });
}

void Coordinator::CoordinateUpdate(std::string id, store::UpdateParams params,
                                   Reply<SessionRecord> done) {
  RunCasUpdate(std::move(id), std::move(params), std::move(done));
}

void Coordinator::CoordinateDelete(std::string id, store::Hlc expected,
                                   Reply<bool> done) {
  RunCasDelete(std::move(id), std::move(expected), std::move(done));
}

std::shared_ptr<rpb::ReplicaService::Stub> Coordinator::CasOwnerStub(
    const std::string& id) const {
  const std::string owner = CasOwner(id);
  if (owner.empty() || owner == membership_->self_id()) return nullptr;
  return membership_->StubFor(owner);
}

void Coordinator::Forward(std::shared_ptr<rpb::ReplicaService::Stub> stub,
                          rpb::CoordinateRequest request,
                          Reply<rpb::CoordinateResponse> done) {
  forwarded_cas_.fetch_add(1);
  struct Call {
    grpc::ClientContext ctx;
    rpb::CoordinateRequest request;
    rpb::CoordinateResponse response;
  };
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  // The owner reads a quorum and writes one: room for both.
  call->ctx.set_deadline(
      absl::ToChronoTime(absl::Now() + 3 * options_.replica_timeout));
  stub->async()->Coordinate(
      &call->ctx, &call->request, &call->response,
      [call, done = Shared(std::move(done)), token = Track()](grpc::Status status) {
        if (!status.ok()) {
          return std::move(*done)(absl::Status(
              static_cast<absl::StatusCode>(status.error_code()),
              status.error_message()));
        }
        std::move(*done)(std::move(call->response));
      });
}

std::string Coordinator::CasOwner(const std::string& id) const {
  // A draining owner is passed over: it is about to stop, and a call
  // forwarded to it after it stopped fails until it is found dead. The
  // write stays conditional at every replica, so coordinators that
  // disagree for a heartbeat still cannot both succeed.
  std::string fallback;
  for (const std::string& owner : OwnersOf(id)) {
    if (membership_->LivenessOf(owner) != Liveness::kAlive) continue;
    if (!membership_->IsDraining(owner)) return owner;
    if (fallback.empty()) fallback = owner;
  }
  return fallback;
}

void Coordinator::Serialise(const std::string& id,
                            absl::AnyInvocable<void()> run,
                            absl::AnyInvocable<void()> reject) {
  bool rejected = false;
  {
    absl::MutexLock lock(&cas_mu_);
    auto [it, inserted] = cas_queues_.try_emplace(id);
    if (!inserted) {
      if (it->second.size() >= kMaxQueuedCas) {
        rejected = true;
      } else {
        it->second.push_back(std::move(run));
        return;
      }
    }
  }
  if (rejected) return reject();
  run();
}

void Coordinator::Release(const std::string& id) {
  absl::AnyInvocable<void()> next;
  {
    absl::MutexLock lock(&cas_mu_);
    auto it = cas_queues_.find(id);
    if (it == cas_queues_.end()) return;
    if (it->second.empty()) {
      cas_queues_.erase(it);
      return;
    }
    next = std::move(it->second.front());
    it->second.pop_front();
  }
  next();
}

// A compare-and-set reads from N - W + 1 owners, so it sees every write a
// quorum acknowledged, and holds this node's per-id queue until its own
// write is acknowledged: two CAS calls with one expected version cannot
// both pass while the first live owner is the same for both.
void Coordinator::RunCasUpdate(std::string id, store::UpdateParams params,
                               Reply<SessionRecord> done) {
  const int want = QuorumRead();
  auto shared = std::make_shared<Reply<SessionRecord>>(std::move(done));
  auto reject = [shared]() { std::move(*shared)(TooManyQueued()); };
  Serialise(id, [this, id, want, params = std::move(params), shared]() mutable {
    Reply<SessionRecord> done = std::move(*shared);
    ReadLive(id, want, /*strict=*/true,
             [this, id, params = std::move(params),
              done = std::move(done)](absl::StatusOr<SessionRecord> r) mutable {
               if (!r.ok()) {
                 Release(id);
                 return std::move(done)(r.status());
               }
               const bool sets_principal =
                   params.principal && !params.principal->empty();
               absl::StatusOr<SessionRecord> updated =
                   store_->PrepareUpdate(*r, std::move(params));
               if (!updated.ok()) {
                 Release(id);
                 return std::move(done)(updated.status());
               }
               rpb::Mutation mutation = RecordMutation(*updated);
               ToReplica(r->version, mutation.mutable_expected_version());
               Write(id, std::move(mutation),
                     [this, id, record = std::move(*updated), sets_principal,
                      done = std::move(done)](absl::StatusOr<bool> w) mutable {
                       Release(id);
                       if (!w.ok()) return std::move(done)(w.status());
                       if (!sets_principal) {
                         return std::move(done)(std::move(record));
                       }
                       AfterPrincipalWrite(std::move(record), std::move(done));
                     });
             });
  }, std::move(reject));
}

void Coordinator::RunCasDelete(std::string id, store::Hlc expected,
                               Reply<bool> done) {
  const int want = QuorumRead();
  auto shared = std::make_shared<Reply<bool>>(std::move(done));
  auto reject = [shared]() { std::move(*shared)(TooManyQueued()); };
  Serialise(id, [this, id, want, expected = std::move(expected), shared]() mutable {
    Reply<bool> done = std::move(*shared);
    ReadLive(id, want, /*strict=*/true,
             [this, id, expected, done = std::move(done)](
                 absl::StatusOr<SessionRecord> r) mutable {
               if (absl::IsNotFound(r.status())) {
                 Release(id);
                 return std::move(done)(false);
               }
               if (!r.ok()) {
                 Release(id);
                 return std::move(done)(r.status());
               }
               if (r->version != expected) {
                 Release(id);
                 return std::move(done)(absl::FailedPreconditionError(
                     "session version does not match expected_version"));
               }
               rpb::Mutation tombstone =
                   TombstoneMutation(id, store_->NextVersion(), r->expire_time);
               ToReplica(r->version, tombstone.mutable_expected_version());
               Write(id, std::move(tombstone),
                     [this, id, done = std::move(done)](
                         absl::StatusOr<bool> w) mutable {
                       Release(id);
                       if (!w.ok()) return std::move(done)(w.status());
                       std::move(done)(true);
                     });
             });
  }, std::move(reject));
}

void Coordinator::Delete(std::string id, std::optional<store::Hlc> expected,
                         Reply<bool> done) {
  CountCall(id);
  if (expected) {
    auto stub = CasOwnerStub(id);
    if (stub == nullptr) {
      return RunCasDelete(std::move(id), std::move(*expected), std::move(done));
    }
    rpb::CoordinateRequest request;
    request.mutable_delete_()->set_id(id);
    ToForward(*expected, request.mutable_delete_()->mutable_expected_version());
    Forward(std::move(stub), std::move(request),
            [done = std::move(done)](
                absl::StatusOr<rpb::CoordinateResponse> r) mutable {
              if (!r.ok()) return std::move(done)(r.status());
              std::move(done)(r->deleted());
            });
    return;
  }
  DeleteKnown(std::move(id), std::move(done));
}

// An unconditional delete: tombstones go to every owner whether or not a
// live session was found (a replica that is down may still hold one).
void Coordinator::DeleteKnown(std::string id, Reply<bool> done) {
  Read(id, options_.read_quorum, false,
       [this, id, done = std::move(done)](absl::StatusOr<ReadResult> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         const bool live = r->newest.has_value();
         const absl::Time expire =
             live ? r->newest->expire_time : absl::InfinitePast();
         Write(id, TombstoneMutation(id, store_->NextVersion(), expire),
               [live, done = std::move(done)](absl::StatusOr<bool> w) mutable {
                 if (!w.ok()) return std::move(done)(w.status());
                 std::move(done)(live);
               });
       });
}

void Coordinator::Regenerate(std::string id,
                             std::optional<std::string> principal,
                             Reply<SessionRecord> done) {
  CountCall(id);
  // A quorum read: a replica that missed a logout must not hand the
  // session over to a new id.
  ReadLive(id, QuorumRead(), false,
           [this, id, principal = std::move(principal),
            done = std::move(done)](absl::StatusOr<SessionRecord> r) mutable {
             if (!r.ok()) return std::move(done)(r.status());
             const SessionRecord old = std::move(*r);
             store::CreateParams params;
             params.data = old.data;
             params.principal = principal ? *principal : old.principal;
             params.ttl = old.ttl;
             absl::StatusOr<SessionRecord> fresh =
                 store_->PrepareCreate(std::move(params));
             if (!fresh.ok()) return std::move(done)(fresh.status());
             fresh->create_time = old.create_time;
             const std::string fresh_id = fresh->id;
             // The new id is acknowledged before the old one is deleted: a
             // failure in between leaves the old session usable.
             rpb::Mutation mutation = RecordMutation(*fresh);
             Write(fresh_id, std::move(mutation),
                   [this, id, old, record = std::move(*fresh),
                    done = std::move(done)](absl::StatusOr<bool> w) mutable {
                     if (!w.ok()) return std::move(done)(w.status());
                     Write(id,
                           TombstoneMutation(id, store_->NextVersion(),
                                             old.expire_time),
                           [this, record = std::move(record),
                            done = std::move(done)](
                               absl::StatusOr<bool> w2) mutable {
                             if (!w2.ok()) {
                               return std::move(done)(absl::UnavailableError(
                                   absl::StrCat("regenerate: the new session "
                                                "was written but the old one "
                                                "is not yet deleted "
                                                "everywhere: ",
                                                w2.status().message())));
                             }
                             AfterPrincipalWrite(std::move(record),
                                                 std::move(done));
                           });
                   });
           });
}

// ---------------------------------------------------------------------------
// Principal operations: scatter-gather over every member that is not dead.

void Coordinator::ListByPrincipal(std::string principal, size_t limit,
                                  Reply<std::vector<SessionRecord>> done) {
  using Records = std::vector<SessionRecord>;
  const std::string self = membership_->self_id();
  auto ask = [this, self, principal](const std::string& node,
                                     Reply<Records> reply) {
    if (node == self) {
      return std::move(reply)(store_->ListByPrincipal(principal, 100000));
    }
    auto stub = membership_->StubFor(node);
    if (stub == nullptr) {
      return std::move(reply)(
          absl::UnavailableError(absl::StrCat("no connection to ", node)));
    }
    rpb::ListPrincipalRequest request;
    request.set_principal(principal);
    request.set_limit(100000);
    CallPeer<rpb::ListPrincipalResponse>(
        std::move(stub), std::move(request), options_.replica_timeout, Track(),
        [](auto* async, auto* ctx, auto* req, auto* resp, auto callback) {
          async->ListPrincipal(ctx, req, resp, std::move(callback));
        },
        Reply<rpb::ListPrincipalResponse>(
            [reply = std::move(reply)](
                absl::StatusOr<rpb::ListPrincipalResponse> response) mutable {
              if (!response.ok()) return std::move(reply)(response.status());
              Records records;
              for (const auto& r : response->sessions()) {
                auto rec = FromReplica(r);
                if (rec.ok()) records.push_back(std::move(*rec));
              }
              std::move(reply)(std::move(records));
            }));
  };
  Scatter<Records>(
      *membership_, std::move(ask),
      Gathered<Records>([this, principal, limit, done = std::move(done)](
                            std::vector<MemberAnswer<Records>> answers) mutable {
        absl::flat_hash_map<std::string, SessionRecord> merged;
        int answered = 0;
        for (MemberAnswer<Records>& a : answers) {
          if (!a.result.ok()) continue;
          ++answered;
          for (SessionRecord& r : *a.result) {
            auto [it, inserted] = merged.try_emplace(r.id, r);
            if (!inserted && it->second.version < r.version) {
              it->second = std::move(r);
            }
          }
        }
        if (answered == 0) {
          return std::move(done)(
              absl::UnavailableError("no member answered the principal scan"));
        }
        Records candidates;
        for (auto& [id, r] : merged) candidates.push_back(std::move(r));
        Confirm(principal, std::move(candidates), limit, std::move(done));
      }));
}

// A member that missed a delete (or a principal change) still lists the
// session: each candidate is confirmed by a read that meets every write
// quorum, and kept only when its newest version is live and still the
// principal's. Principal lists are short; these reads also repair.
void Coordinator::Confirm(std::string principal,
                          std::vector<SessionRecord> candidates, size_t limit,
                          Reply<std::vector<SessionRecord>> done) {
  if (candidates.empty()) return std::move(done)(std::vector<SessionRecord>{});
  struct State {
    absl::Mutex mu;
    std::vector<SessionRecord> kept ABSL_GUARDED_BY(mu);
    int remaining ABSL_GUARDED_BY(mu) = 0;
    size_t limit = 0;
    Reply<std::vector<SessionRecord>> done;
  };
  auto state = std::make_shared<State>();
  state->limit = limit;
  state->done = std::move(done);
  {
    absl::MutexLock lock(&state->mu);
    state->remaining = static_cast<int>(candidates.size());
  }
  const int want = QuorumRead();
  for (SessionRecord& candidate : candidates) {
    SessionRecord fallback = std::move(candidate);
    const std::string id = fallback.id;
    Read(id, want, /*strict=*/false,
         [state, principal, fallback = std::move(fallback)](
             absl::StatusOr<ReadResult> r) mutable {
           Reply<std::vector<SessionRecord>> reply;
           std::vector<SessionRecord> out;
           {
             absl::MutexLock lock(&state->mu);
             if (!r.ok()) {
               // Too few owners to confirm: keep what a member listed.
               state->kept.push_back(std::move(fallback));
             } else if (r->newest && r->newest->principal == principal) {
               state->kept.push_back(std::move(*r->newest));
             }
             if (--state->remaining > 0) return;
             out = std::move(state->kept);
             reply = std::move(state->done);
           }
           std::sort(out.begin(), out.end(),
                     [](const SessionRecord& a, const SessionRecord& b) {
                       return a.id < b.id;
                     });
           if (out.size() > state->limit) out.resize(state->limit);
           std::move(reply)(std::move(out));
         });
  }
}

void Coordinator::DeleteByPrincipal(std::string principal, Reply<int64_t> done) {
  ListByPrincipal(
      principal, 100000,
      [this, done = std::move(done)](
          absl::StatusOr<std::vector<SessionRecord>> list) mutable {
        if (!list.ok()) return std::move(done)(list.status());
        if (list->empty()) return std::move(done)(int64_t{0});
        struct State {
          absl::Mutex mu;
          int remaining ABSL_GUARDED_BY(mu) = 0;
          int64_t deleted ABSL_GUARDED_BY(mu) = 0;
          absl::Status error ABSL_GUARDED_BY(mu);
          Reply<int64_t> done;
        };
        auto state = std::make_shared<State>();
        state->done = std::move(done);
        {
          absl::MutexLock lock(&state->mu);
          state->remaining = static_cast<int>(list->size());
        }
        for (const SessionRecord& r : *list) {
          DeleteKnown(r.id, [state](absl::StatusOr<bool> d) {
            Reply<int64_t> reply;
            absl::StatusOr<int64_t> outcome;
            {
              absl::MutexLock lock(&state->mu);
              if (d.ok() && *d) ++state->deleted;
              if (!d.ok()) state->error = d.status();
              if (--state->remaining > 0) return;
              outcome = state->error.ok() ? absl::StatusOr<int64_t>(state->deleted)
                                          : absl::StatusOr<int64_t>(state->error);
              reply = std::move(state->done);
            }
            std::move(reply)(std::move(outcome));
          });
        }
      });
}

void Coordinator::AfterPrincipalWrite(SessionRecord record,
                                      Reply<SessionRecord> done) {
  const int64_t cap = options_.max_sessions_per_principal;
  if (cap <= 0 || record.principal.empty()) {
    return std::move(done)(std::move(record));
  }
  const std::string principal = record.principal;
  ListByPrincipal(
      principal, 100000,
      [this, cap, record = std::move(record), done = std::move(done)](
          absl::StatusOr<std::vector<SessionRecord>> list) mutable {
        if (list.ok() && static_cast<int64_t>(list->size()) > cap) {
          std::vector<SessionRecord> others;
          for (SessionRecord& r : *list) {
            if (r.id != record.id) others.push_back(std::move(r));
          }
          std::sort(others.begin(), others.end(),
                    [](const SessionRecord& a, const SessionRecord& b) {
                      return a.last_access_time < b.last_access_time;
                    });
          int64_t excess = static_cast<int64_t>(list->size()) - cap;
          for (size_t i = 0; i < others.size() && excess > 0; ++i, --excess) {
            per_principal_evictions_.fetch_add(1);
            DeleteKnown(others[i].id, [](absl::StatusOr<bool>) {});
          }
        }
        std::move(done)(std::move(record));
      });
}

void Coordinator::ReplicateEviction(const store::EvictedSession& evicted) {
  const std::vector<std::string> owners = OwnersOf(evicted.id);
  if (std::find(owners.begin(), owners.end(), membership_->self_id()) ==
      owners.end()) {
    return;  // a leftover copy of a range this node gave away: local only
  }
  replicated_evictions_.fetch_add(1);
  const std::string self = membership_->self_id();
  rpb::Mutation tombstone =
      TombstoneMutation(evicted.id, evicted.version, evicted.expire_time);
  // The local tombstone is already written; the others get it (or a hint).
  Write(evicted.id, std::move(tombstone), [](absl::StatusOr<bool>) {});
}

}  // namespace sg::replication

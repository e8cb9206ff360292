// Scatter-gather over the cluster's members: the shape of every operation
// no single owner can answer (principal lists, ListSessions). Each member
// answers from its own store; the caller merges.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "server/replication/membership.h"
#include "server/store/session_backend.h"
#include "sessiongrid/replica/v1/replica.grpc.pb.h"

namespace sg::replication {

// What one member of the ring answered.
template <typename T>
struct MemberAnswer {
  std::string node;
  absl::StatusOr<T> result;
};

template <typename T>
using Gathered = absl::AnyInvocable<void(std::vector<MemberAnswer<T>>) &&>;

// Calls `ask(node, reply)` once for every member of the ring that is not
// dead (this node included; `ask` answers it inline, the others over the
// peer port) and `done` once, after the last reply, with one answer per
// ring member: dead members are not asked and answer UNAVAILABLE. `reply`
// may run on any thread. Thread-safe.
template <typename T, typename Ask>
void Scatter(const Membership& membership, Ask ask, Gathered<T> done) {
  struct State {
    absl::Mutex mu;
    std::vector<MemberAnswer<T>> answers ABSL_GUARDED_BY(mu);
    size_t remaining ABSL_GUARDED_BY(mu) = 0;
    Gathered<T> done;
  };
  auto state = std::make_shared<State>();
  state->done = std::move(done);
  std::vector<std::string> asked;
  std::vector<MemberAnswer<T>> dead;
  for (const std::string& node : membership.ring()->nodes()) {
    if (membership.LivenessOf(node) == Liveness::kDead) {
      dead.push_back(
          {node, absl::UnavailableError(absl::StrCat("member ", node, " is down"))});
    } else {
      asked.push_back(node);
    }
  }
  {
    absl::MutexLock lock(&state->mu);
    state->answers = std::move(dead);
    state->remaining = asked.size();
  }
  if (asked.empty()) {
    std::vector<MemberAnswer<T>> answers;
    {
      absl::MutexLock lock(&state->mu);
      answers = std::move(state->answers);
    }
    return std::move(state->done)(std::move(answers));
  }
  for (const std::string& node : asked) {
    ask(node, store::Reply<T>([state, node](absl::StatusOr<T> result) {
          std::vector<MemberAnswer<T>> answers;
          {
            absl::MutexLock lock(&state->mu);
            state->answers.push_back({node, std::move(result)});
            if (--state->remaining > 0) return;
            answers = std::move(state->answers);
          }
          std::move(state->done)(std::move(answers));
        }));
  }
}

// One unary call to a peer's ReplicaService with a deadline of `timeout`;
// `done` gets the response, or the call's status (codes mapped 1:1).
// `start(async, ctx, request, response, callback)` names the method, e.g.
//   [](auto* a, auto* c, auto* q, auto* r, auto cb) { a->Scan(c, q, r, cb); }
// `token` is held until the call completed (Coordinator::Track).
template <typename Response, typename Request, typename Start>
void CallPeer(std::shared_ptr<rpb::ReplicaService::Stub> stub, Request request,
              absl::Duration timeout, std::shared_ptr<void> token, Start start,
              store::Reply<Response> done) {
  struct Call {
    grpc::ClientContext ctx;
    Request request;
    Response response;
    std::shared_ptr<rpb::ReplicaService::Stub> stub;
    std::shared_ptr<void> token;
    store::Reply<Response> done;
  };
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  call->stub = std::move(stub);
  call->token = std::move(token);
  call->done = std::move(done);
  call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  start(call->stub->async(), &call->ctx, &call->request, &call->response,
        std::function<void(grpc::Status)>([call](grpc::Status status) {
          store::Reply<Response> reply = std::move(call->done);
          if (!status.ok()) {
            std::move(reply)(
                absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                             status.error_message()));
            return;
          }
          std::move(reply)(std::move(call->response));
        }));
}

}  // namespace sg::replication

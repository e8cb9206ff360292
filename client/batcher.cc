#include "sessiongrid/batcher.h"

#include <chrono>
#include <type_traits>

#include "absl/strings/str_cat.h"

namespace sg::client {
namespace v1 = ::sessiongrid::v1;

absl::Status BatcherOptions::Validate() const {
  if (max_batch < 1 || max_batch > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch must be in [1, 1000], got ", max_batch));
  }
  if (max_in_flight < 1) {
    return absl::InvalidArgumentError("max_in_flight must be at least 1");
  }
  if (deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("deadline must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SessionBatcher>> SessionBatcher::Create(
    const Client* client, BatcherOptions options) {
  if (client == nullptr) return absl::InvalidArgumentError("client is null");
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::unique_ptr<SessionBatcher>(new SessionBatcher(client, options));
}

SessionBatcher::SessionBatcher(const Client* client, BatcherOptions options)
    : client_(client), options_(options) {}

SessionBatcher::~SessionBatcher() {
  absl::MutexLock lock(&stats_mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(stats_mu_) {
    return outstanding_ == 0;
  };
  stats_mu_.Await(absl::Condition(&idle));
}

int64_t SessionBatcher::rpcs_sent() const {
  absl::MutexLock lock(&stats_mu_);
  return rpcs_sent_;
}

void SessionBatcher::Get(v1::GetRequest request, SessionCallback done) {
  Enqueue(gets_, std::move(request), std::move(done));
}

void SessionBatcher::Create(v1::CreateRequest request, SessionCallback done) {
  Enqueue(creates_, std::move(request), std::move(done));
}

template <typename Request>
void SessionBatcher::Enqueue(Lane<Request>& lane, Request request,
                             SessionCallback done) {
  {
    absl::MutexLock lock(&stats_mu_);
    ++outstanding_;
  }
  std::vector<std::pair<Request, SessionCallback>> batch;
  {
    absl::MutexLock lock(&lane.mu);
    lane.queue.emplace_back(std::move(request), std::move(done));
    if (lane.in_flight >= options_.max_in_flight) return;  // leaves later
    ++lane.in_flight;
    batch.swap(lane.queue);
  }
  Send(lane, std::move(batch));
}

template <typename Request>
void SessionBatcher::Send(
    Lane<Request>& lane,
    std::vector<std::pair<Request, SessionCallback>> batch) {
  // Split an oversized queue: the first max_batch leave now, the rest go
  // back to the front of the queue.
  if (static_cast<int>(batch.size()) > options_.max_batch) {
    absl::MutexLock lock(&lane.mu);
    std::vector<std::pair<Request, SessionCallback>> rest(
        std::make_move_iterator(batch.begin() + options_.max_batch),
        std::make_move_iterator(batch.end()));
    batch.resize(options_.max_batch);
    rest.insert(rest.end(), std::make_move_iterator(lane.queue.begin()),
                std::make_move_iterator(lane.queue.end()));
    lane.queue.swap(rest);
  }
  {
    absl::MutexLock lock(&stats_mu_);
    ++rpcs_sent_;
  }
  SendRpc(std::move(batch), [this, &lane] {
    // One batch came back: let the waiting calls go together.
    std::vector<std::pair<Request, SessionCallback>> next;
    {
      absl::MutexLock lock(&lane.mu);
      if (lane.queue.empty()) {
        --lane.in_flight;
        return;
      }
      next.swap(lane.queue);
    }
    Send(lane, std::move(next));
  });
}

namespace {

// Owns one batch RPC's buffers until its completion runs.
template <typename BatchRequest, typename BatchResponse, typename Request>
struct BatchCall {
  // Replaced by a fresh one when the batch is sent again.
  std::unique_ptr<grpc::ClientContext> context =
      std::make_unique<grpc::ClientContext>();
  BatchRequest request;
  BatchResponse response;
  std::vector<SessionBatcher::SessionCallback> callbacks;

  BatchCall(
      std::vector<std::pair<Request, SessionBatcher::SessionCallback>> batch,
      absl::Duration deadline) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(deadline));
    request.mutable_requests()->Reserve(static_cast<int>(batch.size()));
    callbacks.reserve(batch.size());
    for (auto& [req, done] : batch) {
      *request.add_requests() = std::move(req);
      callbacks.push_back(std::move(done));
    }
  }

  // Hands each caller its entry's result, or the RPC's error.
  void Deliver(const grpc::Status& status) {
    for (size_t i = 0; i < callbacks.size(); ++i) {
      if (!status.ok()) {
        callbacks[i](
            absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                         status.error_message()));
      } else if (static_cast<int>(i) >= response.results_size()) {
        callbacks[i](absl::InternalError("batch answer is missing entries"));
      } else {
        auto* result = response.mutable_results(static_cast<int>(i));
        if (result->status().code() != 0) {
          callbacks[i](absl::Status(
              static_cast<absl::StatusCode>(result->status().code()),
              result->status().message()));
        } else {
          callbacks[i](std::move(*result->mutable_session()));
        }
      }
    }
  }
};

}  // namespace

template <typename BatchRequest, typename BatchResponse, typename Request,
          typename StartFn>
void SessionBatcher::SendBatchRpc(
    std::vector<std::pair<Request, SessionCallback>> batch,
    std::function<void()> finished, StartFn start) {
  using Call = BatchCall<BatchRequest, BatchResponse, Request>;
  auto* call = new Call(std::move(batch), options_.deadline);
  int64_t entries = static_cast<int64_t>(call->callbacks.size());
  // Reads may be sent again: a batch of Gets that met a node that is down
  // or draining (UNAVAILABLE) is sent to the next node, with a fresh
  // context and what is left of the deadline, up to max_attempts in all
  // (one retry is not enough: with one balanced channel it can land on the
  // same draining node). Creates never are (a lost answer would mint a
  // second session).
  constexpr bool kIdempotent = std::is_same_v<Request, v1::GetRequest>;
  const auto deadline = std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(options_.deadline);
  auto complete = std::make_shared<std::function<void(grpc::Status)>>();
  *complete = [this, call, entries, deadline, start, complete,
               retries = kIdempotent ? client_->options().max_attempts - 1 : 0,
               finished = std::move(finished)](grpc::Status s) mutable {
    if (retries > 0 && s.error_code() == grpc::StatusCode::UNAVAILABLE &&
        std::chrono::system_clock::now() < deadline) {
      --retries;
      call->context = std::make_unique<grpc::ClientContext>();
      call->context->set_deadline(deadline);
      call->response.Clear();
      start(client_->NextSessionStub()->async(), call->context.get(),
            &call->request, &call->response,
            [complete](grpc::Status again) { (*complete)(again); });
      return;
    }
    call->Deliver(s);
    delete call;
    finished();
    {
      absl::MutexLock lock(&stats_mu_);
      outstanding_ -= entries;
    }
    complete.reset();  // breaks the self-reference; `this` lambda stays alive
  };
  start(client_->NextSessionStub()->async(), call->context.get(),
        &call->request, &call->response,
        [complete](grpc::Status s) { (*complete)(s); });
}

void SessionBatcher::SendRpc(
    std::vector<std::pair<v1::GetRequest, SessionCallback>> batch,
    std::function<void()> finished) {
  SendBatchRpc<v1::BatchGetRequest, v1::BatchGetResponse>(
      std::move(batch), std::move(finished),
      [](auto* async, grpc::ClientContext* ctx, const auto* req, auto* resp,
         auto done) { async->BatchGet(ctx, req, resp, std::move(done)); });
}

void SessionBatcher::SendRpc(
    std::vector<std::pair<v1::CreateRequest, SessionCallback>> batch,
    std::function<void()> finished) {
  SendBatchRpc<v1::BatchCreateRequest, v1::BatchCreateResponse>(
      std::move(batch), std::move(finished),
      [](auto* async, grpc::ClientContext* ctx, const auto* req, auto* resp,
         auto done) { async->BatchCreate(ctx, req, resp, std::move(done)); });
}

}  // namespace sg::client

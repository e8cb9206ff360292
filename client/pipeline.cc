#include "sessiongrid/pipeline.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace sg::client {
namespace v1 = ::sessiongrid::v1;

absl::Status PipelineOptions::Validate() const {
  if (streams < 1 || streams > 64) {
    return absl::InvalidArgumentError("streams must be 1..64");
  }
  if (max_pending < 1) {
    return absl::InvalidArgumentError("max_pending must be at least 1");
  }
  if (max_calls_per_message < 1 || max_calls_per_message > 1000) {
    return absl::InvalidArgumentError("max_calls_per_message must be 1..1000");
  }
  if (max_hold < absl::ZeroDuration() || max_hold > absl::Seconds(1)) {
    return absl::InvalidArgumentError("max_hold must be 0 to 1s");
  }
  return absl::OkStatus();
}

// One call from Submit to its answer, across resends.
struct SessionPipeline::Call {
  v1::StreamCall call;
  bool idempotent = false;
  int attempts = 0;
  absl::Time deadline;
  std::function<void(absl::StatusOr<v1::StreamReply>)> on_reply;
  std::atomic<bool> answered{false};
  std::weak_ptr<Stream> stream;  // the one it was last put on
};

// While a Cork lives on a thread, the calls made on that thread are held
// and written together when the outermost Cork ends: the calls that one
// reply's callbacks make leave in one message per stream, not one each.
// (Nothing waits for a timer: the cork comes off when the callbacks return.)
class SessionPipeline::Cork {
 public:
  Cork() { ++depth_; }
  ~Cork();
  Cork(const Cork&) = delete;
  Cork& operator=(const Cork&) = delete;

  static bool active() { return depth_ > 0; }
  static void Queue(std::shared_ptr<Stream> stream) {
    queued_.push_back(std::move(stream));
  }

 private:
  static thread_local int depth_;
  static thread_local std::vector<std::shared_ptr<Stream>> queued_;
};

thread_local int SessionPipeline::Cork::depth_ = 0;
thread_local std::vector<std::shared_ptr<SessionPipeline::Stream>>
    SessionPipeline::Cork::queued_;

// One SessionService/Stream. Holds its calls (sent or waiting to be) by
// the id on the wire; one write out at a time, and the calls made meanwhile
// leave together in the next. Owned by the pipeline's slot and by itself
// until OnDone.
class SessionPipeline::Stream final
    : public grpc::ClientBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  Stream(SessionPipeline* pipeline, Client::SessionStub* stub)
      : pipeline_(pipeline), stub_(stub) {}

  // Owns itself from the moment it is in a slot, before Begin: another
  // thread may already Send on it (gRPC keeps ops started before the call).
  void Adopt(std::shared_ptr<Stream> self) {
    absl::MutexLock lock(&mu_);
    self_ = std::move(self);
    last_reply_ = absl::Now();
  }

  // The hold keeps the call alive (no OnDone) until the read side has
  // ended and no write is out: every StartWrite this class makes from
  // outside a reaction happens inside it, never on a finished call.
  void Begin() {
    stub_->async()->Stream(&context_, this);
    AddHold();
    StartRead(&in_);
    StartCall();
  }

  // False when the stream takes no more calls (closing or ended): the
  // pipeline puts the call elsewhere.
  bool Send(std::shared_ptr<Call> call) {
    {
      absl::MutexLock lock(&mu_);
      if (closing_ || ended_ || read_closed_) return false;
      const uint64_t id = call->call.call_id();
      held_.emplace(id, call);
      unsent_.push_back(std::move(call));
      if (writing_) return true;  // its completion takes this call along
      // Made from a reply's callback: it leaves with the calls the other
      // callbacks of that reply make, when the cork comes off.
      if (Cork::active()) {
        if (!flush_queued_ && self_ != nullptr) {
          flush_queued_ = true;
          Cork::Queue(self_);
        }
        return true;
      }
    }
    WriteOrHold(/*force=*/false);
    return true;
  }

  // Writes what is waiting, unless a write is out (its completion takes
  // it): when `force` (a hold ran out) or Nagle's rule allows (a cork came
  // off, a reply came); otherwise the calls wait for this stream's next
  // reply or hold.
  void Flush(bool force) {
    {
      absl::MutexLock lock(&mu_);
      flush_queued_ = false;
      if (force) hold_armed_ = false;
    }
    WriteOrHold(force);
  }

  const Client::SessionStub* stub() const { return stub_; }

  bool usable() const {
    absl::MutexLock lock(&mu_);
    return !closing_ && !ended_;
  }

  // Ends the stream; its calls are orphaned in OnDone.
  void Cancel() { context_.TryCancel(); }

  absl::Time last_reply() const {
    absl::MutexLock lock(&mu_);
    return last_reply_;
  }

  void OnWriteDone(bool ok) override {
    bool release;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      release = read_closed_ && TakeHoldLocked();
      if (!release && (!ok || unsent_.empty())) return;  // !ok: ending
    }
    if (release) return RemoveHold();
    WriteOrHold(/*force=*/false);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the stream is ending: OnDone follows once the hold is gone
      bool release;
      {
        absl::MutexLock lock(&mu_);
        read_closed_ = true;
        release = !writing_ && TakeHoldLocked();
      }
      if (release) RemoveHold();
      return;
    }
    std::vector<std::pair<std::shared_ptr<Call>, v1::StreamReply>> answered;
    std::vector<std::shared_ptr<Call>> elsewhere;  // never ran here
    {
      absl::MutexLock lock(&mu_);
      last_reply_ = absl::Now();
      replied_since_write_ = true;
      answered.reserve(in_.replies_size());
      for (v1::StreamReply& reply : *in_.mutable_replies()) {
        auto it = held_.find(reply.call_id());
        if (it == held_.end()) continue;  // not ours: ignore it
        if (reply.not_run()) {
          elsewhere.push_back(std::move(it->second));
        } else {
          answered.emplace_back(std::move(it->second), std::move(reply));
        }
        held_.erase(it);
      }
      // The node drains: what has not left yet goes elsewhere now.
      if (in_.closing() && !closing_) {
        closing_ = true;
        for (auto& call : unsent_) {
          held_.erase(call->call.call_id());
          elsewhere.push_back(std::move(call));
        }
        unsent_.clear();
      }
      in_.Clear();
    }
    {
      Cork cork;  // the calls these callbacks make share messages
      for (auto& [call, reply] : answered) {
        pipeline_->Answer(*call, std::move(reply));
      }
      const absl::Status why =
          absl::UnavailableError("the node drains; the call was not run");
      for (auto& call : elsewhere) {
        pipeline_->Orphaned(std::move(call), /*never_ran=*/true, why, stub_);
      }
    }
    Flush(/*force=*/false);  // what waited for this reply
    StartRead(&in_);
  }

  // The server sends its headers before it runs any call.
  void OnReadInitialMetadataDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    accepted_ = ok;
  }

  void OnDone(const grpc::Status& status) override {
    absl::flat_hash_map<uint64_t, std::shared_ptr<Call>> orphans;
    bool never_ran;
    std::shared_ptr<Stream> self;
    {
      absl::MutexLock lock(&mu_);
      ended_ = true;
      orphans.swap(held_);
      unsent_.clear();
      never_ran = closing_ || !accepted_;
      self = std::move(self_);
    }
    const absl::Status why =
        never_ran ? absl::UnavailableError(absl::StrCat(
                        "no node ran the call: ", FromGrpcStatus(status).ToString()))
                  : absl::UnavailableError(absl::StrCat(
                        "session stream ended before the call was answered: ",
                        FromGrpcStatus(status).ToString()));
    for (auto& [id, call] : orphans) {
      pipeline_->Orphaned(std::move(call), never_ran, why, stub_);
    }
    pipeline_->StreamDone();
  }

 private:
  // Nagle's rule, so that calls share messages without a timer on the
  // common path: write at once when nothing written is unanswered, or a
  // reply came since the last write; otherwise hold the calls until the
  // next reply, or PipelineOptions::max_hold at most (a stream whose calls
  // are all slow must not hold new ones up for long).
  bool MayWriteLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool unanswered = held_.size() > unsent_.size();
    return !unanswered || replied_since_write_ ||
           pipeline_->options_.max_hold == absl::ZeroDuration();
  }

  // Starts a write of what waits, when none is out and `force` or Nagle's
  // rule allows; otherwise makes sure a hold is armed.
  void WriteOrHold(bool force) {
    bool arm = false, write = false;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || ended_ || read_closed_ || unsent_.empty()) return;
      if (force || MayWriteLocked()) {
        writing_ = write = true;
        FillMessageLocked();
      } else if (!hold_armed_) {
        hold_armed_ = arm = true;
      }
    }
    if (write) StartWrite(&out_);
    if (arm) pipeline_->ArmFlush(self());
  }

  // True once: the caller then removes the hold (outside the lock).
  bool TakeHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (hold_released_) return false;
    hold_released_ = true;
    return true;
  }

  std::shared_ptr<Stream> self() const {
    absl::MutexLock lock(&mu_);
    return self_;
  }

  void FillMessageLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    replied_since_write_ = false;
    pipeline_->current_stream_.fetch_add(1, std::memory_order_relaxed);
    out_.Clear();
    while (!unsent_.empty() &&
           out_.calls_size() < pipeline_->options_.max_calls_per_message) {
      std::shared_ptr<Call> call = std::move(unsent_.front());
      unsent_.pop_front();
      if (call->answered.load(std::memory_order_acquire)) {
        held_.erase(call->call.call_id());  // timed out before it left
        continue;
      }
      *out_.add_calls() = call->call;
    }
    pipeline_->messages_sent_.fetch_add(1, std::memory_order_relaxed);
    pipeline_->calls_sent_.fetch_add(out_.calls_size(),
                                     std::memory_order_relaxed);
  }

  SessionPipeline* const pipeline_;
  Client::SessionStub* const stub_;
  grpc::ClientContext context_;
  v1::StreamResponse in_;  // one read out at a time
  v1::StreamRequest out_;  // one write out at a time

  mutable absl::Mutex mu_;
  std::shared_ptr<Stream> self_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::shared_ptr<Call>> held_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<Call>> unsent_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_queued_ ABSL_GUARDED_BY(mu_) = false;  // on this thread's Cork
  bool hold_armed_ ABSL_GUARDED_BY(mu_) = false;    // a flush is due
  bool replied_since_write_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;  // the node drains
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;  // the server's headers came
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;  // no more replies
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_reply_ ABSL_GUARDED_BY(mu_);
};

SessionPipeline::Cork::~Cork() {
  if (--depth_ > 0) return;
  // A flush may run callbacks that cork and queue again: drain it all.
  while (!queued_.empty()) {
    std::vector<std::shared_ptr<Stream>> streams;
    streams.swap(queued_);
    for (auto& stream : streams) stream->Flush(/*force=*/false);
  }
}

absl::StatusOr<std::unique_ptr<SessionPipeline>> SessionPipeline::Create(
    const Client* client, PipelineOptions options) {
  if (client == nullptr) return absl::InvalidArgumentError("client is null");
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::unique_ptr<SessionPipeline>(new SessionPipeline(client, options));
}

SessionPipeline::SessionPipeline(const Client* client, PipelineOptions options)
    : client_(client), options_(options) {
  streams_.resize(options_.streams);
  deadline_thread_ = std::thread([this] { WatchDeadlines(); });
}

SessionPipeline::~SessionPipeline() {
  std::vector<std::shared_ptr<Stream>> open;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& s : streams_) {
      if (s != nullptr) open.push_back(std::move(s));
    }
  }
  // Each ends in OnDone, answering its calls CANCELLED.
  for (auto& s : open) s->Cancel();
  open.clear();
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* live) { return *live == 0; }, &live_streams_));
  }
  deadline_thread_.join();
}

void SessionPipeline::Submit(
    v1::StreamCall call, bool idempotent,
    std::function<void(absl::StatusOr<v1::StreamReply>)> on_reply) {
  if (pending_.fetch_add(1, std::memory_order_acq_rel) >= options_.max_pending) {
    pending_.fetch_sub(1, std::memory_order_acq_rel);
    on_reply(absl::ResourceExhaustedError(absl::StrCat(
        "the session pipeline holds ", options_.max_pending,
        " calls not yet answered (a node slow or unreachable?)")));
    return;
  }
  // Not make_shared: the deadline queue's weak_ptr would keep the whole
  // Call's memory, not just the control block, until its deadline.
  std::shared_ptr<Call> c(new Call);
  c->call = std::move(call);
  c->idempotent = idempotent;
  c->deadline = absl::Now() + client_->options().deadline;
  c->on_reply = std::move(on_reply);
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
    if (!stopping) deadlines_.emplace_back(c->deadline, c);
  }
  if (stopping) {
    Answer(*c, absl::CancelledError("the session pipeline is shutting down"));
    return;
  }
  Dispatch(std::move(c));
}

void SessionPipeline::Dispatch(std::shared_ptr<Call> call,
                               const Client::SessionStub* avoid) {
  // Each call on the wire gets a fresh id: a late reply to an earlier try
  // on an ended stream can then never be taken for this one.
  call->call.set_call_id(next_call_id_.fetch_add(1, std::memory_order_relaxed));
  ++call->attempts;
  for (int tries = 0; tries <= options_.streams; ++tries) {
    std::shared_ptr<Stream> stream;
    bool opened = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      // Calls join the stream whose message is filling; each write moves
      // the next calls on to the next stream (see FillMessageLocked), so
      // streams share the load without splitting each batch.
      std::shared_ptr<Stream>& slot =
          streams_[(current_stream_.load(std::memory_order_relaxed) + tries) %
                   streams_.size()];
      // Not back to the node that just failed the call, while others exist.
      const bool last_try = tries == options_.streams;
      if (!last_try && slot != nullptr && slot->usable() &&
          slot->stub() == avoid) {
        continue;
      }
      // A slot whose stream is closing or ended gets a new one; the old one
      // ends by itself once its calls are answered.
      if (slot == nullptr || !slot->usable()) {
        Client::SessionStub* stub = client_->NextSessionStub();
        for (size_t i = 1; stub == avoid && i < client_->channel_count(); ++i) {
          stub = client_->NextSessionStub();
        }
        slot = std::make_shared<Stream>(this, stub);
        slot->Adopt(slot);
        ++live_streams_;
        opened = true;
      }
      stream = slot;
    }
    if (opened) {
      streams_opened_.fetch_add(1, std::memory_order_relaxed);
      stream->Begin();
    }
    call->stream = stream;
    if (stream->Send(call)) return;
  }
  Answer(*call, absl::CancelledError("the session pipeline is shutting down"));
}

void SessionPipeline::Orphaned(std::shared_ptr<Call> call, bool never_ran,
                               const absl::Status& why,
                               const Client::SessionStub* from) {
  if (call->answered.load(std::memory_order_acquire)) return;
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
  }
  if (stopping) {
    Answer(*call, absl::CancelledError("the session pipeline is shutting down"));
    return;
  }
  const bool may_resend =
      never_ran || (call->idempotent &&
                    call->attempts < client_->options().max_attempts);
  if (may_resend && absl::Now() < call->deadline) {
    resent_.fetch_add(1, std::memory_order_relaxed);
    Dispatch(std::move(call), from);
    return;
  }
  Answer(*call, why);
}

void SessionPipeline::Answer(Call& call,
                             absl::StatusOr<v1::StreamReply> reply) {
  if (call.answered.exchange(true, std::memory_order_acq_rel)) return;
  pending_.fetch_sub(1, std::memory_order_acq_rel);
  call.on_reply(std::move(reply));
}

void SessionPipeline::StreamDone() {
  absl::MutexLock lock(&mu_);
  --live_streams_;
}

void SessionPipeline::WatchDeadlines() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    // Every call gets the same budget and every hold the same length, so
    // both queues are in time order.
    watch_until_ = absl::InfiniteFuture();
    if (!deadlines_.empty()) watch_until_ = deadlines_.front().first;
    if (!flushes_.empty()) {
      watch_until_ = std::min(watch_until_, flushes_.front().first);
    }
    const absl::Time until = watch_until_;
    mu_.AwaitWithDeadline(
        absl::Condition(this, &SessionPipeline::DeadlineWatchShouldWake), until);
    const absl::Time now = absl::Now();
    std::vector<std::shared_ptr<Stream>> flush;
    while (!flushes_.empty() && flushes_.front().first <= now) {
      if (auto s = flushes_.front().second.lock()) flush.push_back(std::move(s));
      flushes_.pop_front();
    }
    std::vector<std::shared_ptr<Call>> expired;
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
      if (auto c = deadlines_.front().second.lock()) {
        expired.push_back(std::move(c));
      }
      deadlines_.pop_front();
    }
    if (expired.empty() && flush.empty()) continue;
    mu_.Unlock();
    for (auto& s : flush) s->Flush(/*force=*/true);
    for (auto& c : expired) {
      if (c->answered.load(std::memory_order_acquire)) continue;
      Answer(*c, absl::DeadlineExceededError(
                     "session call not answered within the client's deadline"));
      // A stream that answered nothing for two whole deadlines is stuck
      // (a node hung, a connection black-holed): end it, so that its calls
      // stop holding memory and new calls go to a fresh one.
      if (auto s = c->stream.lock();
          s != nullptr &&
          now - s->last_reply() > 2 * client_->options().deadline) {
        s->Cancel();
      }
    }
    mu_.Lock();
  }
}

void SessionPipeline::ArmFlush(std::shared_ptr<Stream> stream) {
  if (stream == nullptr) return;
  absl::MutexLock lock(&mu_);
  flushes_.emplace_back(absl::Now() + options_.max_hold, std::move(stream));
}

bool SessionPipeline::DeadlineWatchShouldWake() const {
  // Asleep on a later time than a flush just armed: wake to re-plan.
  return stopping_ || (!deadlines_.empty() && deadlines_.front().first < watch_until_) ||
         (!flushes_.empty() && flushes_.front().first < watch_until_);
}

SessionPipeline::Stats SessionPipeline::stats() const {
  Stats s;
  s.streams_opened = streams_opened_.load(std::memory_order_relaxed);
  s.messages_sent = messages_sent_.load(std::memory_order_relaxed);
  s.calls_sent = calls_sent_.load(std::memory_order_relaxed);
  s.resent = resent_.load(std::memory_order_relaxed);
  s.pending = pending_.load(std::memory_order_relaxed);
  return s;
}

namespace {

// A reply's own status as the call's outcome.
absl::Status StatusOf(const v1::StreamReply& reply) {
  return absl::Status(static_cast<absl::StatusCode>(reply.status().code()),
                      reply.status().message());
}

}  // namespace

#define SG_PIPELINE_CALL(METHOD, FIELD, IDEMPOTENT)                        \
  void SessionPipeline::METHOD(v1::METHOD##Request request,                \
                               Callback<v1::METHOD##Response> done) {      \
    v1::StreamCall call;                                                   \
    const bool idempotent = (IDEMPOTENT);                                  \
    call.mutable_##FIELD()->Swap(&request);                                \
    Submit(std::move(call), idempotent,                                    \
           [done = std::move(done)](absl::StatusOr<v1::StreamReply> r) {   \
             if (!r.ok()) return done(r.status());                         \
             if (r->status().code() != 0) return done(StatusOf(*r));       \
             done(std::move(*r->mutable_##FIELD()));                       \
           });                                                             \
  }

SG_PIPELINE_CALL(Get, get, true)
SG_PIPELINE_CALL(Touch, touch, true)
SG_PIPELINE_CALL(Create, create, false)
SG_PIPELINE_CALL(Update, update, IsIdempotent(request))
SG_PIPELINE_CALL(Delete, delete_, true)
#undef SG_PIPELINE_CALL

}  // namespace sg::client

#include "server/service/session_stream.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/service/convert.h"
#include "server/service/session_service.h"

namespace sg::service {
namespace v1 = ::sessiongrid::v1;

// One stream. Reads one message at a time and starts its calls at once;
// each answer joins `pending_`, and the replies that gather while a write
// is out go in the next one (one write outstanding, as gRPC requires).
// Events come on gRPC's threads and the backend's; every decision is made
// under `mu_` and acted on outside it (a gRPC operation may run a
// reaction inline). Owned by `self_` until OnDone, and briefly by
// SessionStreams::CloseAll.
class SessionStream final
    : public grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  SessionStream(SessionStreams* streams, const SessionCalls* calls,
                int max_in_flight)
      : streams_(streams), calls_(calls), max_in_flight_(max_in_flight) {}

  void Begin(std::shared_ptr<SessionStream> self, bool closing) {
    {
      absl::MutexLock lock(&mu_);
      self_ = std::move(self);
      closing_ = closing;
    }
    // Headers first, before any call runs: a client that never saw them
    // knows that none of its calls ran here.
    StartSendInitialMetadata();
    Step();
  }

  void Close() {
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
    }
    Step();
  }

  void OnReadDone(bool ok) override {
    v1::StreamRequest request;
    bool closing;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      closing = closing_;
      // Read after Finish (a drain raced the client): never run, never
      // answered; the client sends it elsewhere.
      if (finished_) return;
      if (!ok) {
        reads_done_ = true;
      } else {
        request.Swap(&in_);
        in_flight_ += request.calls_size();
        dispatching_ = true;
      }
    }
    if (closing) {
      const absl::Status refused =
          absl::UnavailableError("the node drains; the call was not run");
      for (const v1::StreamCall& call : request.calls()) {
        Refuse(call, refused, /*not_run=*/true);
      }
    } else if (request.calls_size() > SessionServiceImpl::kMaxBatchEntries) {
      const absl::Status refused = absl::InvalidArgumentError(absl::StrCat(
          "a stream message holds at most ", SessionServiceImpl::kMaxBatchEntries,
          " calls, got ", request.calls_size()));
      for (const v1::StreamCall& call : request.calls()) {
        Refuse(call, refused, /*not_run=*/false);
      }
    } else {
      // A message's Creates go to the backend together (one WriteBatch on
      // a local store); the other calls start one by one.
      std::vector<SessionCalls::CreateCall> creates;
      for (const v1::StreamCall& call : request.calls()) Run(call, &creates);
      if (!creates.empty()) calls_->CreateMany(std::move(creates));
    }
    {
      absl::MutexLock lock(&mu_);
      dispatching_ = false;
    }
    Step();  // one write for the replies the calls gave at once
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      in_flight_ -= written_;
      written_ = 0;
      if (!ok) broken_ = true;
    }
    Step();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
    }
    Step();
  }

  void OnDone() override {
    streams_->Forget(this);
    std::shared_ptr<SessionStream> self;
    absl::MutexLock lock(&mu_);
    self = std::move(self_);  // freed when the last owner lets go
  }

 private:
  // Starts one call, or adds a Create to `creates`; its answer comes back
  // through Answer().
  void Run(const v1::StreamCall& call,
           std::vector<SessionCalls::CreateCall>* creates) {
    auto reply = std::make_unique<v1::StreamReply>();
    reply->set_call_id(call.call_id());
    v1::StreamReply* r = reply.get();
    auto done = [this, reply = std::move(reply)](absl::Status status) mutable {
      if (!status.ok()) {  // an absent status is OK: fewer bytes per reply
        ToProto(status, reply->mutable_status());
        reply->clear_result();
      }
      Answer(std::move(reply));
    };
    switch (call.call_case()) {
      case v1::StreamCall::kGet:
        return calls_->Get(call.get(), r->mutable_get(), std::move(done));
      case v1::StreamCall::kTouch:
        return calls_->Touch(call.touch(), r->mutable_touch(), std::move(done));
      case v1::StreamCall::kCreate:
        creates->push_back({&call.create(), r->mutable_create(), std::move(done)});
        return;
      case v1::StreamCall::kUpdate:
        return calls_->Update(call.update(), r->mutable_update(),
                              std::move(done));
      case v1::StreamCall::kDelete:
        return calls_->Delete(call.delete_(), r->mutable_delete_(),
                              std::move(done));
      case v1::StreamCall::CALL_NOT_SET:
        break;
    }
    done(absl::InvalidArgumentError(
        "StreamCall carries no call (get, touch, create, update or delete)"));
  }

  void Refuse(const v1::StreamCall& call, const absl::Status& status,
              bool not_run) {
    auto reply = std::make_unique<v1::StreamReply>();
    reply->set_call_id(call.call_id());
    reply->set_not_run(not_run);
    ToProto(status, reply->mutable_status());
    Answer(std::move(reply));
  }

  // On the backend's thread: `keep` holds the stream through Step(), since
  // once the reply is in `pending_` another thread may write it and finish.
  void Answer(std::unique_ptr<v1::StreamReply> reply) {
    std::shared_ptr<SessionStream> keep;
    {
      absl::MutexLock lock(&mu_);
      keep = self_;
      if (broken_) {
        --in_flight_;  // nobody to tell
      } else {
        pending_.mutable_replies()->AddAllocated(reply.release());
      }
      // The dispatching OnReadDone steps once its calls have all started.
      if (dispatching_) return;
    }
    Step();
  }

  // What the stream does next, given where it stands. One thread at a time
  // acts (`stepping_`), in the order it decided, so that no read starts
  // after a Finish another thread chose; a thread that finds one acting
  // leaves the work to it (the actor decides again after each action, and
  // its last decision, under the lock, sees whatever came meanwhile).
  void Step() {
    {
      absl::MutexLock lock(&mu_);
      if (stepping_) return;
      stepping_ = true;
    }
    while (true) {
      bool read = false, write = false, finish = false;
      grpc::Status end = grpc::Status::OK;
      {
        absl::MutexLock lock(&mu_);
        Decide(read, write, finish, end);
        if (!read && !write && !finish) {
          stepping_ = false;
          return;
        }
        if (finish) stepping_ = false;
      }
      if (read) StartRead(&in_);
      if (write) StartWrite(&out_);
      if (finish) {
        Finish(end);
        return;  // OnDone may follow at once: nothing more to do here
      }
    }
  }

  void Decide(bool& read, bool& write, bool& finish, grpc::Status& end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    // Closing, it still reads, to refuse what comes at once rather than
    // leave it waiting for the stream's end.
    const bool stop_reading = reads_done_ || broken_;
    if (!reading_ && !stop_reading && in_flight_ < max_in_flight_) {
      reading_ = read = true;
    }
    if (broken_) {
      in_flight_ -= pending_.replies_size();
      pending_.Clear();
    } else if (!writing_ &&
               (pending_.replies_size() > 0 || (closing_ && !told_closing_))) {
      out_.Clear();
      out_.Swap(&pending_);
      written_ = out_.replies_size();
      if (closing_ && !told_closing_) out_.set_closing(told_closing_ = true);
      writing_ = write = true;
    }
    const bool ending = reads_done_ || broken_ || told_closing_;
    if (ending && in_flight_ == 0 && !writing_) {
      // A read still out completes (not ok) after Finish; one only just
      // decided is not started.
      if (read) reading_ = read = false;
      finished_ = finish = true;
      if (broken_) end = grpc::Status::CANCELLED;
    }
  }

  SessionStreams* const streams_;
  const SessionCalls* const calls_;
  const int max_in_flight_;

  absl::Mutex mu_;
  std::shared_ptr<SessionStream> self_ ABSL_GUARDED_BY(mu_);
  v1::StreamRequest in_;    // the read buffer: one read out at a time
  v1::StreamResponse out_;  // being written: one write out at a time
  v1::StreamResponse pending_ ABSL_GUARDED_BY(mu_);  // answered, not yet sent
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // read, not yet written back
  int written_ ABSL_GUARDED_BY(mu_) = 0;    // replies in out_
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool dispatching_ ABSL_GUARDED_BY(mu_) = false;  // OnReadDone starts calls
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;  // the client half-closed
  bool closing_ ABSL_GUARDED_BY(mu_) = false;     // the node drains
  bool told_closing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // cancelled, or a write failed
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool stepping_ ABSL_GUARDED_BY(mu_) = false;  // a thread acts (Step)
};

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>*
SessionStreams::Open(grpc::CallbackServerContext* /*ctx*/) {
  auto stream = std::make_shared<SessionStream>(this, calls_, max_in_flight_);
  bool closing;
  {
    absl::MutexLock lock(&mu_);
    closing = closed_;
    streams_.emplace(stream.get(), stream);
  }
  stream->Begin(stream, closing);
  return stream.get();
}

void SessionStreams::CloseAll() {
  std::vector<std::shared_ptr<SessionStream>> open;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    for (const auto& [ptr, weak] : streams_) {
      if (auto stream = weak.lock()) open.push_back(std::move(stream));
    }
  }
  // Outside the lock: closing may finish a stream, whose OnDone forgets it.
  for (const auto& stream : open) stream->Close();
}

int SessionStreams::open() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(streams_.size());
}

void SessionStreams::Forget(const SessionStream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

}  // namespace sg::service

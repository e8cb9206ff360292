#include "server/replication/hint_log.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace sg::replication {
namespace {

constexpr size_t kStampBytes = 8;

void PutStamp(int64_t micros, std::string* out) {
  for (int i = 0; i < 8; ++i) {
    out->push_back(static_cast<char>((static_cast<uint64_t>(micros) >> (8 * i)) & 0xFF));
  }
}
int64_t GetStamp(std::string_view value) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(value[i])) << (8 * i);
  }
  return static_cast<int64_t>(v);
}

std::string HintKey(const std::string& target, uint64_t seq) {
  std::string key = target;
  key.push_back('\0');
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((seq >> (8 * i)) & 0xFF));
  return key;
}

std::string TargetOf(std::string_view key) {
  size_t nul = key.rfind('\0', key.size() >= 9 ? key.size() - 9 : 0);
  return std::string(key.substr(0, nul == std::string_view::npos ? 0 : nul));
}

}  // namespace

HintLog::HintLog(HintOptions options, store::SessionStore* store,
                 Membership* membership, Clock* clock)
    : options_(options),
      store_(store),
      membership_(membership),
      clock_(clock),
      sequence_(static_cast<uint64_t>(absl::ToUnixMicros(clock->Now()))) {
  absl::MutexLock lock(&mu_);
  absl::Status s = store_->ScanHints("", [&](std::string_view key,
                                             std::string_view value) {
    per_target_[TargetOf(key)]++;
    pending_.fetch_add(1);
    bytes_.fetch_add(static_cast<int64_t>(key.size() + value.size()));
    return true;
  });
  if (!s.ok()) LogWarn("cannot count stored hints", {{"error", s.ToString()}});
}

HintLog::~HintLog() { Stop(); }

void HintLog::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void HintLog::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool HintLog::Add(const std::string& target, const rpb::Mutation& mutation,
                  absl::Time deadline) {
  if (deadline == absl::InfinitePast()) {
    deadline = clock_->Now() + options_.hint_window;
  }
  if (deadline <= clock_->Now()) return false;
  std::string value;
  PutStamp(absl::ToUnixMicros(deadline), &value);
  if (!mutation.AppendToString(&value)) return false;
  const std::string key = HintKey(target, sequence_.fetch_add(1));
  const int64_t size = static_cast<int64_t>(key.size() + value.size());
  if (pending_.load() >= options_.max_hints ||
      bytes_.load() + size > options_.max_hint_bytes) {
    if (dropped_.fetch_add(1) % 10000 == 0) {
      LogWarn("hint log full: dropping hints (anti-entropy will repair)",
              {{"target", target}, {"pending", absl::StrCat(pending_.load())}});
    }
    return false;
  }
  if (absl::Status s = store_->PutHint(key, value); !s.ok()) {
    dropped_.fetch_add(1);
    return false;
  }
  pending_.fetch_add(1);
  bytes_.fetch_add(size);
  absl::MutexLock lock(&mu_);
  per_target_[target]++;
  return true;
}

int64_t HintLog::pending_for(const std::string& target) const {
  absl::MutexLock lock(&mu_);
  auto it = per_target_.find(target);
  return it == per_target_.end() ? 0 : it->second;
}

void HintLog::Forget(const std::string& target, int64_t bytes) {
  pending_.fetch_sub(1);
  bytes_.fetch_sub(bytes);
  absl::MutexLock lock(&mu_);
  auto it = per_target_.find(target);
  if (it != per_target_.end() && --it->second <= 0) per_target_.erase(it);
}

void HintLog::Recount() {
  absl::flat_hash_map<std::string, int64_t> per_target;
  int64_t pending = 0, bytes = 0;
  absl::Status s = store_->ScanHints("", [&](std::string_view key,
                                             std::string_view value) {
    per_target[TargetOf(key)]++;
    ++pending;
    bytes += static_cast<int64_t>(key.size() + value.size());
    return true;
  });
  if (!s.ok()) return;
  absl::MutexLock lock(&mu_);
  per_target_ = std::move(per_target);
  pending_.store(pending);
  bytes_.store(bytes);
}

void HintLog::Loop() {
  absl::Time next_recount = clock_->Now() + kRecountInterval;
  for (;;) {
    if (clock_->Now() >= next_recount) {
      // The compaction filter drops hints past their window without
      // telling us: recount now and then so the figures stay true.
      Recount();
      next_recount = clock_->Now() + kRecountInterval;
    }
    std::vector<std::string> targets;
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), options_.replay_interval);
      if (stopping_) return;
      for (const auto& [target, count] : per_target_) targets.push_back(target);
    }
    for (const std::string& target : targets) {
      if (membership_->LivenessOf(target) != Liveness::kAlive) continue;
      int64_t sent = ReplayTo(target);
      if (sent > 0) {
        LogInfo("hints replayed", {{"target", target},
                                   {"count", absl::StrCat(sent)},
                                   {"left", absl::StrCat(pending_for(target))}});
      }
    }
  }
}

int64_t HintLog::ReplayTo(const std::string& target) {
  std::shared_ptr<rpb::ReplicaService::Stub> stub = membership_->StubFor(target);
  if (stub == nullptr) return 0;
  int64_t sent = 0;
  const std::string prefix = target + std::string(1, '\0');
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return sent;
    }
    std::vector<std::pair<std::string, int64_t>> keys;  // key, bytes
    rpb::ApplyRequest request;
    request.set_from_node(membership_->self_id());
    const int64_t now = absl::ToUnixMicros(clock_->Now());
    std::vector<std::pair<std::string, int64_t>> expired;
    absl::Status scan = store_->ScanHints(prefix, [&](std::string_view key,
                                                      std::string_view value) {
      const int64_t size = static_cast<int64_t>(key.size() + value.size());
      rpb::Mutation mutation;
      if (value.size() < kStampBytes || GetStamp(value) <= now ||
          !mutation.ParseFromArray(value.data() + kStampBytes,
                                   static_cast<int>(value.size() - kStampBytes))) {
        expired.emplace_back(std::string(key), size);  // late or unreadable
        return true;
      }
      *request.add_mutations() = std::move(mutation);
      keys.emplace_back(std::string(key), size);
      return static_cast<int>(keys.size()) < options_.replay_batch;
    });
    for (const auto& [key, size] : expired) {
      if (store_->DeleteHint(key).ok()) Forget(target, size);
    }
    if (!scan.ok() || keys.empty()) return sent;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.replay_timeout));
    rpb::ApplyResponse response;
    grpc::Status status = stub->Apply(&ctx, request, &response);
    if (!status.ok()) return sent;
    for (const auto& [key, size] : keys) {
      if (store_->DeleteHint(key).ok()) Forget(target, size);
    }
    sent += static_cast<int64_t>(keys.size());
    replayed_.fetch_add(static_cast<int64_t>(keys.size()));
  }
}

int64_t HintLog::HandOff(
    const std::function<bool(const std::vector<rpb::Hint>&)>& send) {
  int64_t moved = 0;
  for (;;) {
    std::vector<rpb::Hint> batch;
    std::vector<std::pair<std::string, int64_t>> keys;
    absl::Status scan = store_->ScanHints("", [&](std::string_view key,
                                                  std::string_view value) {
      if (value.size() < kStampBytes) return true;
      rpb::Hint hint;
      hint.set_target_node(TargetOf(key));
      hint.set_deadline_micros(GetStamp(value));
      if (!hint.mutable_mutation()->ParseFromArray(
              value.data() + kStampBytes,
              static_cast<int>(value.size() - kStampBytes))) {
        return true;
      }
      batch.push_back(std::move(hint));
      keys.emplace_back(std::string(key),
                        static_cast<int64_t>(key.size() + value.size()));
      return batch.size() < 512;
    });
    if (!scan.ok() || batch.empty() || !send(batch)) return moved;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (store_->DeleteHint(keys[i].first).ok()) {
        Forget(batch[i].target_node(), keys[i].second);
      }
    }
    moved += static_cast<int64_t>(batch.size());
  }
}

}  // namespace sg::replication

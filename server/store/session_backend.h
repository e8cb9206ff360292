// SessionBackend: the seam between the gRPC service and whatever stores
// sessions — the local store alone (one node) or the cluster coordinator.
// One operation per RPC, each answered through a callback so that a
// coordinator waiting on peers never blocks the calling thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "server/store/session_store.h"

namespace sg::store {

// One page of ListSessions: live sessions in id order, and where the next
// page starts (empty when the listing is complete).
struct SessionPage {
  std::vector<SessionRecord> sessions;
  std::string next_page_token;
};

// A page of the local store's scan as a ListSessions page: the token is the
// last id the scan read (it resumes after it). `page.entries` must hold no
// tombstones.
inline SessionPage ToSessionPage(ScanPage page) {
  SessionPage out;
  out.sessions.reserve(page.entries.size());
  for (ScanEntry& e : page.entries) {
    if (e.entry.session) out.sessions.push_back(std::move(*e.entry.session));
  }
  if (page.more) out.next_page_token = std::move(page.resume_after);
  return out;
}

// Called exactly once, on any thread, possibly before the call returns.
template <typename T>
using Reply = absl::AnyInvocable<void(absl::StatusOr<T>) &&>;
// One result per entry of a CreateMany, in order; called as a Reply is.
using ManyReply =
    absl::AnyInvocable<void(std::vector<absl::StatusOr<SessionRecord>>) &&>;

// Requests are validated by the service (ids, sizes) before they get here;
// implementations check again whatever they rely on. Error codes as
// SessionStore's, plus UNAVAILABLE when too few replicas answered.
// Implementations are thread-safe.
class SessionBackend {
 public:
  virtual ~SessionBackend() = default;

  virtual void Create(CreateParams params, Reply<SessionRecord> done) = 0;
  // Each entry as Create, answered together. By default one Create per
  // entry; a backend that can write them at once overrides it.
  virtual void CreateMany(std::vector<CreateParams> params, ManyReply done);
  virtual void Get(std::string id, bool touch, Reply<SessionRecord> done) = 0;
  virtual void Touch(std::string id, std::optional<absl::Duration> ttl,
                     Reply<SessionRecord> done) = 0;
  virtual void Update(std::string id, UpdateParams params,
                      Reply<SessionRecord> done) = 0;
  // true when a live session was deleted.
  virtual void Delete(std::string id, std::optional<Hlc> expected_version,
                      Reply<bool> done) = 0;
  virtual void Regenerate(std::string id, std::optional<std::string> principal,
                          Reply<SessionRecord> done) = 0;
  virtual void ListByPrincipal(std::string principal, size_t limit,
                               Reply<std::vector<SessionRecord>> done) = 0;
  virtual void DeleteByPrincipal(std::string principal,
                                 Reply<int64_t> done) = 0;
  // Live sessions with ids after `page_token` (empty: from the first), at
  // most `page_size` (1..1000, checked by the service), data only when
  // `include_data`. Never an expired or deleted session.
  virtual void ListSessions(std::string page_token, size_t page_size,
                            bool include_data, Reply<SessionPage> done) = 0;
};

// The single-node backend: every call runs on the local store, inline.
class LocalBackend final : public SessionBackend {
 public:
  // `store` must outlive the backend.
  explicit LocalBackend(SessionStore* store) : store_(store) {}

  void Create(CreateParams params, Reply<SessionRecord> done) override {
    std::move(done)(store_->Create(std::move(params)));
  }
  // One WriteBatch for the lot (SessionStore::CreateMany).
  void CreateMany(std::vector<CreateParams> params, ManyReply done) override {
    std::move(done)(store_->CreateMany(std::move(params)));
  }
  void Get(std::string id, bool touch, Reply<SessionRecord> done) override {
    std::move(done)(store_->Get(id, touch));
  }
  void Touch(std::string id, std::optional<absl::Duration> ttl,
             Reply<SessionRecord> done) override {
    std::move(done)(store_->Touch(id, ttl));
  }
  void Update(std::string id, UpdateParams params,
              Reply<SessionRecord> done) override {
    std::move(done)(store_->Update(id, std::move(params)));
  }
  void Delete(std::string id, std::optional<Hlc> expected_version,
              Reply<bool> done) override {
    std::move(done)(store_->Delete(id, expected_version));
  }
  void Regenerate(std::string id, std::optional<std::string> principal,
                  Reply<SessionRecord> done) override {
    std::move(done)(store_->Regenerate(id, std::move(principal)));
  }
  void ListByPrincipal(std::string principal, size_t limit,
                       Reply<std::vector<SessionRecord>> done) override {
    std::move(done)(store_->ListByPrincipal(principal, limit));
  }
  void DeleteByPrincipal(std::string principal, Reply<int64_t> done) override {
    std::move(done)(store_->DeleteByPrincipal(principal));
  }
  void ListSessions(std::string page_token, size_t page_size,
                    bool include_data, Reply<SessionPage> done) override {
    absl::StatusOr<ScanPage> page = store_->ScanSessions(
        ScanOptions{std::move(page_token), page_size, include_data, false});
    if (!page.ok()) return std::move(done)(page.status());
    std::move(done)(ToSessionPage(*std::move(page)));
  }

 private:
  SessionStore* const store_;
};

}  // namespace sg::store

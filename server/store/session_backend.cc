#include "server/store/session_backend.h"

#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace sg::store {

void SessionBackend::CreateMany(std::vector<CreateParams> params,
                                ManyReply done) {
  if (params.empty()) return std::move(done)({});
  // Entries answer in any order and on any thread, each into its own slot;
  // the last one answers the lot.
  struct Gather {
    absl::Mutex mu;
    std::vector<absl::StatusOr<SessionRecord>> results;
    size_t remaining;
    ManyReply done;
  };
  auto gather = std::make_shared<Gather>();
  gather->results.resize(params.size(), absl::UnknownError("not answered"));
  gather->remaining = params.size();
  gather->done = std::move(done);
  for (size_t i = 0; i < params.size(); ++i) {
    Create(std::move(params[i]),
           [gather, i](absl::StatusOr<SessionRecord> r) {
             bool last;
             {
               absl::MutexLock lock(&gather->mu);
               gather->results[i] = std::move(r);
               last = --gather->remaining == 0;
             }
             if (last) std::move(gather->done)(std::move(gather->results));
           });
  }
}

}  // namespace sg::store

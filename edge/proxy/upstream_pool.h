// Connections to the upstream and the per-thread keep-alive pool.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <memory>
#include <vector>

#include "edge/proxy/asio_types.h"
#include "edge/proxy/shared_state.h"

namespace sg::edge::proxy {

struct UpstreamConn {
  explicit UpstreamConn(Executor ex) : stream(std::move(ex)) {}
  Stream stream;
  beast::flat_buffer buffer;
  SteadyClock::time_point idle_since;
};

// Idle keep-alive connections to the upstream, most recently used first.
// Only its worker thread touches it.
class UpstreamPool final {
 public:
  explicit UpstreamPool(Shared* shared) : shared_(shared) {}
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // An idle connection that still looks open, or null. A connection used
  // within the last kTrustRecent is taken without the peek (a syscall) when
  // the request may be retried should the upstream have just closed it.
  std::unique_ptr<UpstreamConn> Take(bool retryable);

  // Keeps `c` for reuse (dropping the least recently used one when full).
  void Put(std::unique_ptr<UpstreamConn> c);

 private:
  // A pooled connection the upstream closed (EOF) or wrote to unasked is
  // unusable: peek without blocking.
  static bool LooksOpen(UpstreamConn& c);

  Shared* const shared_;
  std::vector<std::unique_ptr<UpstreamConn>> idle_;
};

}  // namespace sg::edge::proxy

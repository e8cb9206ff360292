// One I/O thread: its io_context, the registry of its client connections
// (for drain), its upstream pool and its relay buffers.
#pragma once

#include <cstddef>
#include <memory>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "edge/proxy/asio_types.h"
#include "edge/proxy/shared_state.h"
#include "edge/proxy/upstream_pool.h"

namespace sg::edge::proxy {

// The size of one piece of a relayed body (and of a tunnel's buffers).
inline constexpr size_t kRelayBufferBytes = 16 * 1024;

// Relay buffers (kRelayBufferBytes) lent to connections while they move a
// body, so an idle keep-alive connection holds none. Worker thread only.
class BufferPool final {
 public:
  std::unique_ptr<char[]> Get() {
    if (free_.empty()) {
      return std::unique_ptr<char[]>(new char[kRelayBufferBytes]);
    }
    std::unique_ptr<char[]> b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void Put(std::unique_ptr<char[]> b) {
    if (b && free_.size() < kMaxFree) free_.push_back(std::move(b));
  }

 private:
  static constexpr size_t kMaxFree = 64;
  std::vector<std::unique_ptr<char[]>> free_;
};

class ProxyConnection;

// Member order matters: the registry outlives the io_context (pending
// handlers own connections that deregister when destroyed), and the pool
// (sockets of the io_context) dies first. `connections` is written by the
// worker thread and read by the drain.
struct Worker {
  explicit Worker(Shared* shared) : pool(shared) {}
  absl::Mutex mu;
  std::unordered_set<ProxyConnection*> connections ABSL_GUARDED_BY(mu);
  BufferPool buffers;
  net::io_context ioc{1};
  UpstreamPool pool;
  std::thread thread;
};

}  // namespace sg::edge::proxy

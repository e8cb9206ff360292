#include "edge/proxy/upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>

namespace sg::edge::proxy {

UpstreamPool::~UpstreamPool() {
  shared_->pool_idle.fetch_sub(static_cast<int64_t>(idle_.size()));
}

std::unique_ptr<UpstreamConn> UpstreamPool::Take(bool retryable) {
  static constexpr auto kTrustRecent = std::chrono::seconds(1);
  const auto now = SteadyClock::now();
  const auto max_idle = Chrono(shared_->options.upstream_idle_timeout);
  while (!idle_.empty()) {
    std::unique_ptr<UpstreamConn> c = std::move(idle_.back());
    idle_.pop_back();
    shared_->pool_idle.fetch_sub(1, std::memory_order_relaxed);
    const auto idle = now - c->idle_since;
    if (idle > max_idle) continue;
    if ((!retryable || idle > kTrustRecent) && !LooksOpen(*c)) continue;
    return c;
  }
  return nullptr;
}

void UpstreamPool::Put(std::unique_ptr<UpstreamConn> c) {
  const size_t max = static_cast<size_t>(shared_->options.upstream_max_idle);
  if (max == 0) return;
  if (idle_.size() >= max) {
    idle_.erase(idle_.begin());  // the least recently used
    shared_->pool_idle.fetch_sub(1, std::memory_order_relaxed);
  }
  c->idle_since = SteadyClock::now();
  c->stream.expires_never();
  idle_.push_back(std::move(c));
  shared_->pool_idle.fetch_add(1, std::memory_order_relaxed);
}

bool UpstreamPool::LooksOpen(UpstreamConn& c) {
  char byte;
  const int fd = c.stream.socket().native_handle();
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return false;
  if (n > 0) return false;
  return errno == EAGAIN || errno == EWOULDBLOCK;
}

}  // namespace sg::edge::proxy

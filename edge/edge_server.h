// The edge node: HTTP/1.1 reverse proxy with the bypass classifier, the
// session flow, an admin listener and drain. The Beast/Asio code lives in
// edge/proxy/ behind this small interface.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "edge/edge_options.h"

namespace sg::classifier {
class Classifier;
}

namespace sg::edge {

class EdgeServer {
 public:
  // Builds the server: resolves the upstream, compiles nothing (the
  // classifier is given), opens the session client. Listens only on
  // Start(). `classifier` must outlive the server.
  static absl::StatusOr<std::unique_ptr<EdgeServer>> Create(
      EdgeOptions options, const classifier::Classifier* classifier);

  virtual ~EdgeServer() = default;

  // Binds both listeners and starts the I/O threads. Errors name the
  // listener that failed.
  virtual absl::Status Start() = 0;
  // The bound addresses (HOST:PORT), valid after Start().
  virtual std::string address() const = 0;
  virtual std::string admin_address() const = 0;

  // The drain sequence of SIGTERM (blocks the caller): /readyz fails at
  // once; traffic is served for drain_delay; the listener closes; idle
  // keep-alive connections close, busy ones after their current response;
  // in-flight requests get up to drain_timeout; then everything stops.
  // Returns the number of connections still open when the timeout hit.
  virtual int Drain() = 0;
};

}  // namespace sg::edge

// The demo app's HTTP/1.1 server (Boost.Beast, kept behind this interface so
// that only demo_server.cc includes Beast).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "examples/demo-app/demo_app.h"

namespace sg::demo {

struct DemoServerOptions {
  // HOST:PORT ("[::1]:PORT" for IPv6); port 0 picks a free port.
  std::string listen = "127.0.0.1:3000";
  // Threads running the event loop.
  int threads = 1;
  // Largest request body; larger requests get 413.
  uint64_t max_body_bytes = 64 * 1024;
  // A keep-alive connection idle this long is closed.
  absl::Duration idle_timeout = absl::Seconds(60);

  absl::Status Validate() const;
};

// Serves a DemoApp with keep-alive. Thread-safe; Stop() and the destructor
// block until the event loop threads have exited.
class DemoServer final {
 public:
  // Binds and starts serving. `app` must outlive the server.
  static absl::StatusOr<std::unique_ptr<DemoServer>> Start(
      const DemoServerOptions& options, const DemoApp* app);
  ~DemoServer();
  DemoServer(const DemoServer&) = delete;
  DemoServer& operator=(const DemoServer&) = delete;

  // The bound address, "127.0.0.1:PORT" (the real port when 0 was asked).
  std::string address() const;
  // Stops accepting, closes connections and joins the threads. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit DemoServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sg::demo

// A standalone admin HTTP server: one listening socket and one I/O thread
// serving a HandlerTable (the server's /metrics). The edge serves the same
// table type on its own I/O threads through connection.h instead.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/http_admin/handler_table.h"

namespace sg::http_admin {

class Server final {
 public:
  // Binds `listen` (HOST:PORT, [V6]:PORT or :PORT; port 0 picks a free
  // port) and starts serving `table` on a thread of its own. Errors:
  // INVALID_ARGUMENT for a malformed address, UNAVAILABLE when it cannot
  // be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const std::string& listen, HandlerTable table);
  // Stops (see Stop).
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port, and "HOST:PORT" of the bound address.
  int port() const;
  std::string address() const;

  // Closes the listener and every connection, and joins the thread.
  // Idempotent; not concurrently with itself.
  void Stop();

 private:
  class Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sg::http_admin

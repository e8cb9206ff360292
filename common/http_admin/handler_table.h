// The admin listener's routes: an exact path maps to a callback that
// returns the whole response. Shared by the edge's admin port and the
// server's metrics port; knows nothing of sockets or Beast.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"

namespace sg::http_admin {

inline constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
// The Prometheus text exposition format.
inline constexpr std::string_view kPrometheusText =
    "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view kJson = "application/json; charset=utf-8";

// What a handler answers: the connection adds Content-Length,
// Cache-Control: no-store and keep-alive.
struct Response {
  int status = 200;
  std::string content_type = std::string(kTextPlain);
  std::string body;
};

// Runs on the admin server's I/O thread: keep it short and non-blocking
// (render from counters, never wait on the network).
using Handler = std::function<Response()>;

// Built once before serving, then only read (safe from any thread).
class HandlerTable final {
 public:
  HandlerTable() = default;
  HandlerTable(HandlerTable&&) = default;
  HandlerTable& operator=(HandlerTable&&) = default;
  HandlerTable(const HandlerTable&) = delete;
  HandlerTable& operator=(const HandlerTable&) = delete;

  // Routes `path` (exact, e.g. "/metrics") to `handler`, replacing an
  // earlier route for it. An empty path is ignored.
  void Add(std::string path, Handler handler);

  // The response for a request target ("/path?query": the query is
  // ignored); 404 "not found" for an unknown path.
  Response Handle(std::string_view target) const;

  size_t size() const { return routes_.size(); }

 private:
  absl::flat_hash_map<std::string, Handler> routes_;
};

}  // namespace sg::http_admin

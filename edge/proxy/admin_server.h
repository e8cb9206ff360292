// The admin listener's connections: /healthz, /readyz, /metrics and the
// seed's JSON endpoints. Never proxied, never a session.
#pragma once

#include "edge/proxy/asio_types.h"
#include "edge/proxy/shared_state.h"

namespace sg::edge::proxy {

// Serves HTTP/1.1 keep-alive requests on `socket` until the client closes
// or stays idle for 60 s. Runs on the socket's executor; `shared` outlives
// the connection.
void ServeAdminConnection(Shared* shared, tcp::socket socket);

}  // namespace sg::edge::proxy

// The admin listener's routes: /healthz, /readyz, /metrics and the seed's
// JSON endpoints. Never proxied, never a session. The HTTP side is the
// shared sg_admin_http (common/http_admin/).
#pragma once

#include "common/http_admin/handler_table.h"
#include "edge/proxy/asio_types.h"
#include "edge/proxy/shared_state.h"

namespace sg::edge::proxy {

// The edge's admin routes over `shared`, which must outlive the table.
http_admin::HandlerTable MakeAdminHandlers(Shared* shared);

// Serves HTTP/1.1 keep-alive requests on `socket` from
// shared->admin_handlers until the client closes or stays idle for 60 s.
// Runs on the socket's executor; `shared` outlives the connection.
void ServeAdminConnection(Shared* shared, tcp::socket socket);

}  // namespace sg::edge::proxy

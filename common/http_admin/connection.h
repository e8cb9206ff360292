// Serving one admin HTTP/1.1 connection from a HandlerTable. The only
// header of sg_admin_http that names Asio; Beast stays in connection.cc.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <functional>

#include "common/http_admin/handler_table.h"

namespace sg::http_admin {

// Called on the connection's executor when it opens and when it closes.
struct ConnectionHooks {
  std::function<void()> opened;
  std::function<void()> closed;
};

// Serves HTTP/1.1 keep-alive requests (routes by path only, whatever the
// method) on `socket` until the client closes, sends bad HTTP, or stays
// idle for 60 s. Heads are capped at 16 KiB and bodies at 64 KiB.
// Runs on the socket's executor; `table` must outlive the connection.
void ServeConnection(const HandlerTable* table,
                     boost::asio::ip::tcp::socket socket,
                     ConnectionHooks hooks = {});

}  // namespace sg::http_admin

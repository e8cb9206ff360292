// The Asio/Beast vocabulary of the proxy's files: namespace aliases,
// concrete executor types and small error-code tests. Included only by
// edge/proxy/ (the Beast code stays behind edge/edge_server.h).
//
// Threading: one io_context per I/O thread. A client connection, its
// upstream connection and every handler of both run on the thread whose
// io_context accepted the socket, so per-connection state needs no locks.
// Session service callbacks arrive on gRPC threads and are posted back.
// Nothing on the request path throws: every Beast/Asio call uses its
// error_code overload.
#pragma once

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/string_type.hpp>
#include <boost/beast/http/error.hpp>
#include <chrono>
#include <string_view>

#include "absl/time/time.h"

namespace sg::edge::proxy {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;
// Concrete executor types: the type-erased any_io_executor costs a
// copy/destroy per operation on the hot path.
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor>;
using Timer =
    net::basic_waitable_timer<SteadyClock, net::wait_traits<SteadyClock>,
                              Executor>;

inline std::string_view SV(beast::string_view s) {
  return {s.data(), s.size()};
}
inline beast::string_view BV(std::string_view s) {
  return {s.data(), s.size()};
}

inline SteadyClock::duration Chrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

inline bool IsWouldBlock(const error_code& ec) {
  return ec == net::error::would_block || ec == net::error::try_again;
}

// A parse error of Beast's HTTP parser (the peer sent bad HTTP).
inline bool IsHttpError(const error_code& ec) {
  return ec.category() ==
         http::make_error_code(http::error::bad_method).category();
}

}  // namespace sg::edge::proxy

#include "common/http_admin/server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/http_admin/connection.h"

namespace sg::http_admin {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

// An io_context whose services can be shut down before it is destroyed:
// that destroys the pending operations, and with them the connections'
// sockets, so Stop() closes every connection (ioc.stop() alone leaves them
// open until the Server is destroyed).
class ShutdownableContext final : public net::io_context {
 public:
  using net::io_context::shutdown;
};

class Server::Impl {
 public:
  explicit Impl(HandlerTable t) : table(std::move(t)), acceptor(ioc) {}

  void Accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) ServeConnection(&table, std::move(socket));
      Accept();
    });
  }

  HandlerTable table;
  ShutdownableContext ioc;
  tcp::acceptor acceptor;
  tcp::endpoint bound;
  std::thread thread;
  bool stopped = false;
};

namespace {

// HOST:PORT with an optional host and a port from 0 to 65535.
absl::StatusOr<std::pair<std::string, uint16_t>> SplitListen(
    std::string_view text) {
  const size_t colon = text.rfind(':');
  int port = -1;
  if (colon == std::string_view::npos ||
      !absl::SimpleAtoi(std::string(text.substr(colon + 1)), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("admin listen address must be HOST:PORT, got '",
                     std::string(text), "'"));
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(std::string(host.empty() ? "0.0.0.0" : host),
                        static_cast<uint16_t>(port));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const std::string& listen,
                                                      HandlerTable table) {
  absl::StatusOr<std::pair<std::string, uint16_t>> hp = SplitListen(listen);
  if (!hp.ok()) return hp.status();
  auto impl = std::make_unique<Impl>(std::move(table));
  auto fail = [&](std::string_view what, const error_code& ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen,
                                               ": ", std::string(what), ": ",
                                               ec.message()));
  };
  error_code ec;
  tcp::resolver resolver(impl->ioc);
  auto results = resolver.resolve(hp->first, std::to_string(hp->second),
                                  tcp::resolver::passive, ec);
  if (ec || results.empty()) return fail("resolve", ec);
  const tcp::endpoint ep = results.begin()->endpoint();
  tcp::acceptor& acceptor = impl->acceptor;
  acceptor.open(ep.protocol(), ec);
  if (ec) return fail("open", ec);
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("SO_REUSEADDR", ec);
  acceptor.bind(ep, ec);
  if (ec) return fail("bind", ec);
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen", ec);
  impl->bound = acceptor.local_endpoint(ec);
  if (ec) return fail("local_endpoint", ec);
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

int Server::port() const { return impl_->bound.port(); }

std::string Server::address() const {
  const net::ip::address a = impl_->bound.address();
  error_code ec;
  std::string host = a.to_string(ec);
  if (a.is_v6()) host = absl::StrCat("[", host, "]");
  return absl::StrCat(host, ":", impl_->bound.port());
}

void Server::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  // Pending reads are the connections' only work: stopping the context
  // drops them (their sockets close as the context's handlers go).
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  error_code ec;
  impl_->acceptor.close(ec);
  impl_->ioc.shutdown();
}

}  // namespace sg::http_admin

// The only file of the demo app that includes Beast (see TOOLCHAIN.md: a
// Beast translation unit is slow to compile).
#include "examples/demo-app/demo_server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"

namespace sg::demo {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr uint32_t kMaxHeaderBytes = 16 * 1024;

// Splits "HOST:PORT" / "[V6]:PORT".
absl::StatusOr<tcp::endpoint> ParseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen must be HOST:PORT, got \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  uint32_t port = 0;
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen has a bad port: \"", listen, "\""));
  }
  boost::system::error_code ec;
  const net::ip::address address = net::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen has a bad host (an IP address is needed): \"", listen, "\""));
  }
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

// One client connection: read a request, answer it, repeat while the
// client keeps the connection alive. Runs on its own strand.
class Connection final : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const DemoApp* app,
             const DemoServerOptions* options)
      : stream_(std::move(socket)), app_(app), options_(options) {}

  void Start() { Read(); }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(options_->max_body_bytes);
    stream_.expires_after(ToChrono(options_->idle_timeout));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return Reply(413, "request body too large\n", /*keep_alive=*/false);
    }
    if (ec == http::error::header_limit) {
      return Reply(431, "request header too large\n", /*keep_alive=*/false);
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset) {
      return Close();
    }
    if (ec) {
      // A malformed request: answer 400 once, then close.
      return Reply(400, "bad request\n", /*keep_alive=*/false);
    }
    const http::request<http::string_body>& req = parser_->get();
    DemoRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    for (const auto& field : req) {
      request.headers.emplace_back(std::string(field.name_string()),
                                   std::string(field.value()));
    }
    request.body = req.body();
    const bool head = req.method() == http::verb::head;
    DemoResponse response = app_->Handle(request);

    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(response.status));
    res_.set(http::field::server, "sessiongrid-demo-app");
    for (auto& [name, value] : response.headers) res_.insert(name, value);
    res_.keep_alive(req.keep_alive());
    res_.content_length(response.body.size());
    if (!head) res_.body() = std::move(response.body);
    Write();
  }

  void Reply(unsigned status, std::string_view body, bool keep_alive) {
    res_ = {};
    res_.version(11);
    res_.result(status);
    res_.set(http::field::server, "sessiongrid-demo-app");
    res_.set(http::field::content_type, "text/plain; charset=utf-8");
    res_.keep_alive(keep_alive);
    res_.body() = std::string(body);
    res_.prepare_payload();
    Write();
  }

  void Write() {
    stream_.expires_after(ToChrono(options_->idle_timeout));
    http::async_write(stream_, res_,
                      [self = shared_from_this()](
                          beast::error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    if (ec || !res_.keep_alive()) return Close();
    Read();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  const DemoApp* const app_;
  const DemoServerOptions* const options_;
};

}  // namespace

class DemoServer::Impl final {
 public:
  Impl(const DemoServerOptions& options, const DemoApp* app)
      : options_(options), app_(app), ioc_(options.threads), acceptor_(ioc_) {}

  ~Impl() { Stop(); }

  absl::Status Bind() {
    absl::StatusOr<tcp::endpoint> endpoint = ParseListen(options_.listen);
    if (!endpoint.ok()) return endpoint.status();
    beast::error_code ec;
    acceptor_.open(endpoint->protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(*endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", options_.listen, ": ", ec.message()));
    }
    const tcp::endpoint bound = acceptor_.local_endpoint(ec);
    const std::string host = bound.address().to_string();
    address_ = bound.address().is_v6()
                   ? absl::StrCat("[", host, "]:", bound.port())
                   : absl::StrCat(host, ":", bound.port());
    return absl::OkStatus();
  }

  void Run() {
    Accept();
    for (int i = 0; i < options_.threads; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
  }

  void Stop() {
    absl::MutexLock lock(&stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    ioc_.stop();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    // No thread runs the loop any more: the acceptor can be touched here.
    beast::error_code ignored;
    acceptor_.close(ignored);
  }

  const std::string& address() const { return address_; }

 private:
  void Accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec,
                                                          tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
        return;
      }
      if (!ec) {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Connection>(std::move(socket), app_, &options_)
            ->Start();
      }
      Accept();
    });
  }

  const DemoServerOptions options_;
  const DemoApp* const app_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::string address_;
  std::vector<std::thread> threads_;
  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
};

absl::Status DemoServerOptions::Validate() const {
  if (threads < 1 || threads > 64) {
    return absl::InvalidArgumentError("threads must be in [1, 64]");
  }
  if (max_body_bytes == 0) {
    return absl::InvalidArgumentError("max_body_bytes must be positive");
  }
  if (idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle_timeout must be positive");
  }
  return ParseListen(listen).status();
}

absl::StatusOr<std::unique_ptr<DemoServer>> DemoServer::Start(
    const DemoServerOptions& options, const DemoApp* app) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(options, app);
  if (absl::Status s = impl->Bind(); !s.ok()) return s;
  impl->Run();
  return std::unique_ptr<DemoServer>(new DemoServer(std::move(impl)));
}

DemoServer::DemoServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DemoServer::~DemoServer() = default;

std::string DemoServer::address() const { return impl_->address(); }
void DemoServer::Stop() { impl_->Stop(); }

}  // namespace sg::demo

#include "edge/proxy/admin_server.h"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
#include <string>

#include "edge/status_json.h"

namespace sg::edge::proxy {
namespace {

class AdminConnection final
    : public std::enable_shared_from_this<AdminConnection> {
 public:
  AdminConnection(Shared* shared, tcp::socket socket)
      : sh_(shared), stream_(std::move(socket)) {
    sh_->metrics->ConnectionOpened(/*admin=*/true);
  }
  ~AdminConnection() { sh_->metrics->ConnectionClosed(/*admin=*/true); }

  void Read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(64 * 1024);
    stream_.expires_after(std::chrono::seconds(60));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

 private:
  void OnRead(error_code ec) {
    if (ec) {
      stream_.socket().close(ec);
      return;
    }
    const auto& req = parser_->get();
    std::string_view target = SV(req.target());
    const std::string_view path = target.substr(0, target.find('?'));
    int status = 200;
    std::string body;
    std::string_view type = "text/plain; charset=utf-8";
    if (path == "/healthz") {
      body = "ok\n";
    } else if (path == "/readyz") {
      auto [ready, why] = sh_->Ready();
      status = ready ? 200 : 503;
      body = std::string(why) + "\n";
    } else if (path == "/metrics") {
      body = sh_->metrics->Render(sh_->Gauges());
      type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (path == sh_->options.session_health_path ||
               path == "/api/session-health") {
      const StatusSnapshot snap = sh_->Snapshot();
      status = IsHealthy(snap) ? 200 : 503;
      body = RenderSessionHealth(snap);
      type = "application/json; charset=utf-8";
    } else if (path == sh_->options.dashboard_path ||
               path == "/api/production-monitor/dashboard") {
      body = RenderDashboard(sh_->Snapshot());
      type = "application/json; charset=utf-8";
    } else {
      status = 404;
      body = "not found\n";
    }
    res_.emplace(static_cast<http::status>(status), 11);
    res_->set(http::field::content_type, BV(type));
    res_->set(http::field::cache_control, "no-store");
    res_->body() = std::move(body);
    res_->prepare_payload();
    keep_alive_ = parser_->keep_alive();
    res_->keep_alive(keep_alive_);
    http::async_write(
        stream_, *res_, [self = shared_from_this()](error_code ec, size_t) {
          if (ec || !self->keep_alive_) {
            self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
            return;
          }
          self->Read();
        });
  }

  Shared* const sh_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  bool keep_alive_ = false;
};

}  // namespace

void ServeAdminConnection(Shared* shared, tcp::socket socket) {
  std::make_shared<AdminConnection>(shared, std::move(socket))->Read();
}

}  // namespace sg::edge::proxy

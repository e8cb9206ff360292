// The one translation unit of sg_admin_http that includes Beast's HTTP
// parser (costly to compile: keep it alone).
#include "common/http_admin/connection.h"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace sg::http_admin {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

class Connection final : public std::enable_shared_from_this<Connection> {
 public:
  Connection(const HandlerTable* table, tcp::socket socket,
             ConnectionHooks hooks)
      : table_(table), hooks_(std::move(hooks)), stream_(std::move(socket)) {
    if (hooks_.opened) hooks_.opened();
  }
  ~Connection() {
    if (hooks_.closed) hooks_.closed();
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

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
    const beast::string_view target = req.target();
    Response out = table_->Handle({target.data(), target.size()});
    res_.emplace(static_cast<http::status>(out.status), 11);
    res_->set(
        http::field::content_type,
        beast::string_view(out.content_type.data(), out.content_type.size()));
    res_->set(http::field::cache_control, "no-store");
    res_->body() = std::move(out.body);
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

  const HandlerTable* const table_;
  const ConnectionHooks hooks_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  bool keep_alive_ = false;
};

}  // namespace

void ServeConnection(const HandlerTable* table, tcp::socket socket,
                     ConnectionHooks hooks) {
  std::make_shared<Connection>(table, std::move(socket), std::move(hooks))
      ->Read();
}

}  // namespace sg::http_admin

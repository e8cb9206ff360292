// The edge server: resolves the upstream, builds the shared state and
// the session client, binds both listeners, runs one io_context per I/O
// thread, accepts (within --max-connections) and drains.
#include "edge/edge_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/host_port.h"
#include "common/log.h"
#include "common/process_memory.h"
#include "edge/http/text_util.h"
#include "edge/proxy/admin_server.h"
#include "edge/proxy/proxy_connection.h"
#include "edge/proxy/shared_state.h"
#include "edge/proxy/worker.h"

namespace sg::edge {
namespace proxy {
namespace {

std::string FormatEndpoint(const tcp::endpoint& ep) {
  error_code ec;
  const net::ip::address a = ep.address();
  std::string host = a.to_string(ec);
  if (a.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

int64_t MemTotalBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

absl::StatusOr<tcp::endpoint> ResolveEndpoint(const HostPort& hp,
                                              bool passive) {
  error_code ec;
  const net::ip::address addr = net::ip::make_address(hp.host, ec);
  if (!ec) return tcp::endpoint(addr, hp.port);
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(
      hp.host, std::to_string(hp.port),
      passive ? tcp::resolver::passive : tcp::resolver::flags(), ec);
  if (ec || results.empty()) {
    return absl::UnavailableError(
        Cat("cannot resolve \"", hp.host, "\": ", ec.message()));
  }
  // Prefer IPv4 (what "localhost" usually means to the operator).
  for (const auto& r : results) {
    if (r.endpoint().address().is_v4()) return r.endpoint();
  }
  return results.begin()->endpoint();
}

class EdgeServerImpl final : public EdgeServer {
 public:
  EdgeServerImpl() = default;

  ~EdgeServerImpl() override {
    Stop();
    // Session callbacks post into the io_contexts: let them finish first.
    const absl::Time until =
        absl::Now() + 4 * shared_.options.session_timeout + absl::Seconds(1);
    while (shared_.flow && shared_.flow->inflight_calls() > 0 &&
           absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    acceptor_.reset();
    admin_acceptor_.reset();
    workers_.clear();
  }

  absl::Status Init(EdgeOptions options,
                    const classifier::Classifier* classifier) {
    Shared& sh = shared_;
    sh.options = std::move(options);
    sh.classifier = classifier;
    sh.start_time = absl::Now();
    sh.hostname = sg::Hostname();
    if (sh.hostname.empty()) sh.hostname = "unknown";
    sh.kubernetes = std::getenv("KUBERNETES_SERVICE_HOST") != nullptr;
    if (sh.options.memory_limit_bytes > 0) {
      sh.memory_limit = static_cast<int64_t>(sh.options.memory_limit_bytes);
    } else if (auto cg = CgroupMemoryLimitBytes()) {
      sh.memory_limit = *cg;
    } else {
      sh.memory_limit = MemTotalBytes();
    }
    std::vector<classifier::Cidr> trusted;
    for (const std::string& t : sh.options.trusted_proxies) {
      auto cidr = classifier::Cidr::Parse(t);
      if (!cidr.ok()) return cidr.status();
      trusted.push_back(*cidr);
    }
    sh.trusted_proxies = classifier::CidrSet(trusted);
    if (!sh.options.auth_request_path.empty()) {
      // The auth_request endpoints: the trusted proxies and
      // --auth-request-allow; loopback when neither is set.
      std::vector<classifier::Cidr> allow = trusted;
      std::vector<std::string> extra = sh.options.auth_request_allow;
      if (extra.empty() && trusted.empty()) extra = {"127.0.0.0/8", "::1/128"};
      for (const std::string& t : extra) {
        auto cidr = classifier::Cidr::Parse(t);
        if (!cidr.ok()) {
          return absl::InvalidArgumentError(
              Cat("auth_request_allow: ", cidr.status().message()));
        }
        allow.push_back(*cidr);
      }
      sh.auth_request_allow = classifier::CidrSet(allow);
    }

    std::vector<std::string> reasons;
    for (size_t i = 0; i < classifier->num_reasons(); ++i) {
      reasons.emplace_back(classifier->ReasonName(static_cast<uint16_t>(i)));
    }
    sh.metrics = std::make_unique<EdgeMetrics>(std::move(reasons));

    if (!sh.options.upstream.empty()) {
      auto up = ParseUpstreamUrl(sh.options.upstream);
      if (!up.ok()) return up.status();
      auto up_ep = ResolveEndpoint(*up, /*passive=*/false);
      if (!up_ep.ok()) return up_ep.status();
      sh.upstream = *up_ep;
      sh.upstream_authority = up->host + ":" + std::to_string(up->port);
      sh.has_upstream = true;
    }

    client::ClientOptions copts;
    copts.target = sh.options.session_service;
    copts.deadline = sh.options.session_timeout;
    // The edge makes only async calls: an idempotent one (a Get) that met
    // a node going away is sent on to the next node at once, within
    // --session-timeout; nothing here sleeps between attempts.
    copts.max_attempts = 3;
    copts.tls_ca_file = sh.options.session_service_tls_ca;
    copts.tls_cert_file = sh.options.session_service_tls_cert;
    copts.tls_key_file = sh.options.session_service_tls_key;
    copts.tls_server_name = sh.options.session_service_tls_server_name;
    copts.token_file = sh.options.session_service_token_file;
    auto c = client::Client::Create(copts);
    if (!c.ok()) return c.status();
    sh.client = *std::move(c);
    if (sh.options.session_streaming) {
      auto pipeline = client::SessionPipeline::Create(sh.client.get());
      if (!pipeline.ok()) return pipeline.status();
      sh.pipeline = *std::move(pipeline);
    } else if (sh.options.session_batching) {
      client::BatcherOptions bo;
      bo.deadline = sh.options.session_timeout;
      bo.max_in_flight = sh.options.session_batch_in_flight;
      auto batcher = client::SessionBatcher::Create(sh.client.get(), bo);
      if (!batcher.ok()) return batcher.status();
      sh.batcher = *std::move(batcher);
    }
    sh.backend =
        std::make_unique<GrpcSessionBackend>(sh.client.get(), sh.batcher.get(),
                                             sh.pipeline.get());
    auto signer = CookieSigner::Create(sh.options.cookie_secrets);
    if (!signer.ok()) return signer.status();
    sh.signer = *std::move(signer);
    SessionFlowOptions fo;
    fo.cookie_name = sh.options.cookie_name;
    fo.cookie = sh.options.cookie;
    fo.session_ttl = sh.options.session_ttl;
    fo.breaker = sh.options.breaker;
    fo.anon_limit = sh.options.anon_limit;
    if (absl::Status s = fo.Validate(); !s.ok()) return s;
    sh.flow = std::make_unique<SessionFlow>(
        fo, sh.backend.get(), sh.signer.get(), sh.metrics.get(), Clock::Real());
    sh.monitor = std::make_unique<ServiceMonitor>(sh.client.get(),
                                                  sh.options.stats_interval);
    sh.admin_handlers = MakeAdminHandlers(&sh);

    int threads = sh.options.threads;
    if (threads <= 0) {
      threads = static_cast<int>(std::thread::hardware_concurrency());
    }
    if (threads <= 0) threads = 1;
    for (int i = 0; i < threads; ++i) {
      workers_.push_back(std::make_unique<Worker>(&shared_));
    }
    return absl::OkStatus();
  }

  absl::Status Start() override {
    auto main_ep = Listen("listen", shared_.options.listen, &acceptor_);
    if (!main_ep.ok()) return main_ep.status();
    auto admin_ep =
        Listen("admin_listen", shared_.options.admin_listen, &admin_acceptor_);
    if (!admin_ep.ok()) return admin_ep.status();
    address_ = FormatEndpoint(*main_ep);
    admin_address_ = FormatEndpoint(*admin_ep);
    shared_.monitor->Start();
    DoAccept();
    DoAdminAccept();
    for (auto& w : workers_) {
      Worker* worker = w.get();
      worker->thread = std::thread([worker] {
        auto guard = net::make_work_guard(worker->ioc);
        worker->ioc.run();
      });
    }
    started_ = true;
    return absl::OkStatus();
  }

  std::string address() const override { return address_; }
  std::string admin_address() const override { return admin_address_; }

  int Drain() override {
    Shared& sh = shared_;
    sh.draining.store(true, std::memory_order_release);
    LogInfo("draining",
            {{"phase", "readyz failing"},
             {"drain_delay", absl::FormatDuration(sh.options.drain_delay)}});
    absl::SleepFor(sh.options.drain_delay);

    // Stop accepting (taking what the kernel already queued), then let
    // every idle keep-alive connection go.
    absl::Notification closed;
    net::post(workers_[0]->ioc, [this, &closed] {
      shared_.closing.store(true, std::memory_order_release);
      CloseListener();
      closed.Notify();
    });
    closed.WaitForNotificationWithTimeout(absl::Seconds(5));
    for (auto& w : workers_) {
      Worker* worker = w.get();
      net::post(worker->ioc, [worker] {
        absl::MutexLock lock(&worker->mu);
        for (ProxyConnection* c : worker->connections) c->OnClosing();
      });
    }
    LogInfo("draining", {{"phase", "listener closed"},
                         {"open_connections",
                          std::to_string(sh.metrics->open_connections())}});
    const absl::Time until = absl::Now() + sh.options.drain_timeout;
    while (sh.metrics->open_connections() > 0 && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    const int64_t left = sh.metrics->open_connections();
    Stop();
    return static_cast<int>(left);
  }

 private:
  absl::StatusOr<tcp::endpoint> Listen(std::string_view flag,
                                       const std::string& text,
                                       std::unique_ptr<tcp::acceptor>* out) {
    auto fail = [&](std::string_view what, const error_code& ec) {
      return absl::UnavailableError(
          Cat(flag, " ", text, ": ", what, ": ", ec.message()));
    };
    auto hp = ParseHostPort(text);
    if (!hp.ok()) return hp.status();
    auto ep = ResolveEndpoint(*hp, /*passive=*/true);
    if (!ep.ok()) return ep.status();
    auto acceptor = std::make_unique<tcp::acceptor>(workers_[0]->ioc);
    error_code ec;
    acceptor->open(ep->protocol(), ec);
    if (ec) return fail("open", ec);
    acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (ec) return fail("SO_REUSEADDR", ec);
    acceptor->bind(*ep, ec);
    if (ec) return fail("bind", ec);
    acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen", ec);
    const tcp::endpoint bound = acceptor->local_endpoint(ec);
    if (ec) return fail("local_endpoint", ec);
    *out = std::move(acceptor);
    return bound;
  }

  void DoAccept() {
    Worker* target = workers_[next_worker_++ % workers_.size()].get();
    acceptor_->async_accept(
        target->ioc.get_executor(),
        [this, target](error_code ec, Socket socket) {
          if (!ec) Admit(target, std::move(socket));
          if (listener_closed_) return;
          if (ec == net::error::operation_aborted) return;
          if (ec) {
            // Out of descriptors or similar: do not spin.
            LogWarn("accept failed", {{"error", ec.message()}});
            accept_backoff_ = std::make_unique<net::steady_timer>(
                workers_[0]->ioc, std::chrono::milliseconds(50));
            accept_backoff_->async_wait([this](error_code e) {
              if (!e && !listener_closed_) DoAccept();
            });
            return;
          }
          DoAccept();
        });
  }

  // Hands an accepted socket to `target`, or over --max-connections
  // answers 503 and closes it at once: no ProxyConnection, no buffer, no
  // timer. The count is taken here (the constructor counts the connection
  // on this thread), so the limit holds however fast clients connect.
  // Runs on worker 0 (the acceptor's thread).
  void Admit(Worker* target, Socket socket) {
    if (shared_.metrics->open_connections() >=
        shared_.options.max_connections) {
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 21\r\nConnection: close\r\nRetry-After: 1\r\n"
          "\r\ntoo many connections\n";
      shared_.metrics->CountConnectionRefused();
      shared_.metrics->CountResponse(503);
      shared_.metrics->CountLocalReply(503);
      const int fd = socket.native_handle();
      // Read what already arrived so the close is a FIN, not a reset that
      // could discard the answer (a few reads at most: never blocks).
      char sink[4096];
      for (int i = 0; i < 4 && ::recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0;
           ++i) {
      }
      (void)::send(fd, kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      ::shutdown(fd, SHUT_WR);
      error_code ec;
      socket.close(ec);
      return;
    }
    auto c =
        std::make_shared<ProxyConnection>(&shared_, target, std::move(socket));
    net::post(target->ioc, [c] { c->Start(); });
  }

  // Runs on worker 0 (the acceptor's thread).
  void CloseListener() {
    listener_closed_ = true;
    error_code ec;
    acceptor_->cancel(ec);
    acceptor_->non_blocking(true, ec);
    for (;;) {
      Worker* target = workers_[next_worker_++ % workers_.size()].get();
      Socket socket(target->ioc.get_executor());
      acceptor_->accept(socket, ec);
      if (ec) break;
      Admit(target, std::move(socket));
    }
    acceptor_->close(ec);
  }

  void DoAdminAccept() {
    admin_acceptor_->async_accept(
        net::any_io_executor(workers_[0]->ioc.get_executor()),
        [this](error_code ec, tcp::socket socket) {
          if (!ec) {
            ServeAdminConnection(&shared_, std::move(socket));
          }
          if (ec == net::error::operation_aborted || admin_closed_) return;
          DoAdminAccept();
        });
  }

  void Stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    absl::Notification closed;
    net::post(workers_[0]->ioc, [this, &closed] {
      admin_closed_ = true;
      error_code ec;
      admin_acceptor_->close(ec);
      if (!listener_closed_) {
        listener_closed_ = true;
        acceptor_->close(ec);
      }
      closed.Notify();
    });
    closed.WaitForNotificationWithTimeout(absl::Seconds(5));
    shared_.monitor->Stop();
    for (auto& w : workers_) w->ioc.stop();
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

  Shared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<tcp::acceptor> admin_acceptor_;
  std::unique_ptr<net::steady_timer> accept_backoff_;
  size_t next_worker_ = 0;
  bool listener_closed_ = false;  // worker 0 only
  bool admin_closed_ = false;     // worker 0 only
  bool started_ = false;
  bool stopped_ = false;
  std::string address_;
  std::string admin_address_;
};

}  // namespace
}  // namespace proxy

absl::StatusOr<std::unique_ptr<EdgeServer>> EdgeServer::Create(
    EdgeOptions options, const classifier::Classifier* classifier) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  auto server = std::make_unique<proxy::EdgeServerImpl>();
  if (absl::Status s = server->Init(std::move(options), classifier); !s.ok()) {
    return s;
  }
  return std::unique_ptr<EdgeServer>(std::move(server));
}

}  // namespace sg::edge

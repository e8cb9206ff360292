// RPC latency by method and status code, recorded by a gRPC server
// interceptor into lock-free histograms and rendered for /metrics.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/prometheus_text.h"

namespace sg::service {

// Thread-safe: the method table is fixed at construction, so Record and
// Render only touch atomics.
class RpcMetrics final {
 public:
  // `methods`: full gRPC method names ("/pkg.Service/Method"); any other
  // method is recorded as "other".
  explicit RpcMetrics(std::vector<std::string> methods);
  RpcMetrics(const RpcMetrics&) = delete;
  RpcMetrics& operator=(const RpcMetrics&) = delete;

  // The methods of SessionService, AdminService and grpc.health.v1.Health.
  static std::vector<std::string> NodeMethods();

  // One finished call; `code` is a grpc::StatusCode value (0-16).
  void Record(std::string_view method, int code, absl::Duration latency);

  // Appends sg_server_rpc_duration_seconds (HELP, TYPE and every
  // method/code pair that has seen a call) to `out`.
  void Render(std::string* out) const;

  // An interceptor factory for grpc::ServerBuilder that records into this;
  // it must outlive the server.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  MakeInterceptorFactory();

 private:
  static constexpr int kCodes = 17;
  int MethodIndex(std::string_view method) const;

  // Index names_.size() - 1 is "other".
  std::vector<std::string> names_;
  absl::flat_hash_map<std::string, int> index_;
  // names_.size() * kCodes histograms, method-major.
  std::vector<std::unique_ptr<prometheus::Histogram>> histograms_;
};

}  // namespace sg::service

#include "server/service/rpc_metrics.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/interceptor.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sessiongrid/v1/admin.grpc.pb.h"
#include "sessiongrid/v1/session.grpc.pb.h"

namespace sg::service {
namespace {

using grpc::experimental::InterceptionHookPoints;

// One per call: created when the call arrives, records when its status is
// sent. A steady clock measures, so the injected Clock (fake in tests)
// does not skew latencies.
class LatencyInterceptor final : public grpc::experimental::Interceptor {
 public:
  LatencyInterceptor(RpcMetrics* metrics, const char* method)
      : metrics_(metrics),
        method_(method == nullptr ? "" : method),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      metrics_->Record(
          method_, static_cast<int>(status.error_code()),
          absl::FromChrono(std::chrono::steady_clock::now() - start_));
    }
    methods->Proceed();
  }

 private:
  RpcMetrics* const metrics_;
  const std::string_view method_;  // gRPC's, alive for the call
  const std::chrono::steady_clock::time_point start_;
};

class LatencyInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit LatencyInterceptorFactory(RpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new LatencyInterceptor(metrics_, info->method());
  }

 private:
  RpcMetrics* const metrics_;
};

void AddServiceMethods(std::string_view service,
                       std::vector<std::string>* out) {
  const google::protobuf::ServiceDescriptor* d =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(service));
  if (d == nullptr) return;
  for (int i = 0; i < d->method_count(); ++i) {
    out->push_back(
        absl::StrCat("/", std::string(service), "/", d->method(i)->name()));
  }
}

}  // namespace

RpcMetrics::RpcMetrics(std::vector<std::string> methods)
    : names_(std::move(methods)) {
  names_.push_back("other");
  for (size_t i = 0; i + 1 < names_.size(); ++i) {
    index_.emplace(names_[i], static_cast<int>(i));
  }
  histograms_.reserve(names_.size() * kCodes);
  for (size_t i = 0; i < names_.size() * kCodes; ++i) {
    histograms_.push_back(std::make_unique<prometheus::Histogram>(
        prometheus::Histogram::DefaultBounds()));
  }
}

std::vector<std::string> RpcMetrics::NodeMethods() {
  std::vector<std::string> methods;
  AddServiceMethods(sessiongrid::v1::SessionService::service_full_name(),
                    &methods);
  AddServiceMethods(sessiongrid::v1::AdminService::service_full_name(),
                    &methods);
  methods.push_back("/grpc.health.v1.Health/Check");
  methods.push_back("/grpc.health.v1.Health/Watch");
  return methods;
}

int RpcMetrics::MethodIndex(std::string_view method) const {
  // Debian's Abseil has its own string_view.
  auto it = index_.find(absl::string_view(method.data(), method.size()));
  return it == index_.end() ? static_cast<int>(names_.size()) - 1 : it->second;
}

void RpcMetrics::Record(std::string_view method, int code,
                        absl::Duration latency) {
  if (code < 0 || code >= kCodes)
    code = static_cast<int>(grpc::StatusCode::UNKNOWN);
  histograms_[MethodIndex(method) * kCodes + code]->Observe(latency);
}

void RpcMetrics::Render(std::string* out) const {
  constexpr std::string_view kName = "sg_server_rpc_duration_seconds";
  prometheus::AppendHeader(
      out, kName, "histogram",
      "Latency of gRPC calls served, by method and status code.");
  for (size_t m = 0; m < names_.size(); ++m) {
    // "/pkg.Service/Method" is shown as "pkg.Service/Method".
    std::string_view name = names_[m];
    if (!name.empty() && name.front() == '/') name.remove_prefix(1);
    for (int c = 0; c < kCodes; ++c) {
      const prometheus::Histogram& h = *histograms_[m * kCodes + c];
      if (h.count() == 0) continue;
      const std::string labels = absl::StrCat(
          prometheus::Label("method", name), ",",
          prometheus::Label("code", absl::StatusCodeToString(
                                        static_cast<absl::StatusCode>(c))));
      h.Render(out, kName, labels);
    }
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
RpcMetrics::MakeInterceptorFactory() {
  return std::make_unique<LatencyInterceptorFactory>(this);
}

}  // namespace sg::service

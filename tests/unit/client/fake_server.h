// An in-process SessionService + AdminService + health server on
// 127.0.0.1:0 whose failures the test controls.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "sessiongrid/v1/admin.grpc.pb.h"
#include "sessiongrid/v1/session.grpc.pb.h"

namespace sg::client::testing {

namespace v1 = ::sessiongrid::v1;

// Shared by both services: call counts, scripted failures, recorded
// requests. Thread-safe.
class FakeState final {
 public:
  explicit FakeState(std::string name) : name_(std::move(name)) {}

  // The next `n` calls (any method) fail with `code` and `message`.
  void FailNext(int n, grpc::StatusCode code, std::string message = "") {
    absl::MutexLock lock(&mu_);
    fail_remaining_ = n;
    fail_code_ = code;
    fail_message_ = std::move(message);
  }

  // While blocked, handlers wait (up to 10 s) until Release().
  void Block() {
    absl::MutexLock lock(&mu_);
    blocked_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    blocked_ = false;
  }

  int calls(const std::string& method) const {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(method);
    return it == calls_.end() ? 0 : it->second;
  }
  int total_calls() const {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const auto& [method, count] : calls_) n += count;
    return n;
  }

  v1::CreateRequest last_create() const {
    absl::MutexLock lock(&mu_);
    return last_create_;
  }
  v1::UpdateRequest last_update() const {
    absl::MutexLock lock(&mu_);
    return last_update_;
  }

  const std::string& name() const { return name_; }

  // Counts the call, waits while blocked, then returns the scripted failure
  // or OK.
  grpc::Status Enter(const std::string& method) {
    absl::MutexLock lock(&mu_);
    ++calls_[method];
    const bool released = mu_.AwaitWithTimeout(
        absl::Condition(
            +[](bool* blocked) { return !*blocked; }, &blocked_),
        absl::Seconds(10));
    if (!released) return grpc::Status(grpc::StatusCode::INTERNAL, "stuck");
    if (fail_remaining_ > 0) {
      --fail_remaining_;
      return grpc::Status(fail_code_, fail_message_);
    }
    return grpc::Status::OK;
  }

  void Record(const v1::CreateRequest& r) {
    absl::MutexLock lock(&mu_);
    last_create_ = r;
  }
  void Record(const v1::UpdateRequest& r) {
    absl::MutexLock lock(&mu_);
    last_update_ = r;
  }

 private:
  const std::string name_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  int fail_remaining_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::StatusCode fail_code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;
  std::string fail_message_ ABSL_GUARDED_BY(mu_);
  bool blocked_ ABSL_GUARDED_BY(mu_) = false;
  v1::CreateRequest last_create_ ABSL_GUARDED_BY(mu_);
  v1::UpdateRequest last_update_ ABSL_GUARDED_BY(mu_);
};

class FakeSessionService final : public v1::SessionService::Service {
 public:
  explicit FakeSessionService(FakeState* state) : state_(state) {}

  grpc::Status Create(grpc::ServerContext*, const v1::CreateRequest* req,
                      v1::CreateResponse* resp) override {
    grpc::Status s = state_->Enter("Create");
    if (!s.ok()) return s;
    state_->Record(*req);
    v1::Session* session = resp->mutable_session();
    session->set_id("new-session");
    session->set_data(req->data());
    session->set_principal(req->principal());
    return s;
  }
  grpc::Status Get(grpc::ServerContext*, const v1::GetRequest* req,
                   v1::GetResponse* resp) override {
    grpc::Status s = state_->Enter("Get");
    if (!s.ok()) return s;
    resp->mutable_session()->set_id(req->id());
    resp->mutable_session()->set_data("served-by-" + state_->name());
    return s;
  }
  grpc::Status BatchGet(grpc::ServerContext*, const v1::BatchGetRequest* req,
                        v1::BatchGetResponse* resp) override {
    grpc::Status s = state_->Enter("BatchGet");
    if (!s.ok()) return s;
    for (const v1::GetRequest& get : req->requests()) {
      v1::Session* session = resp->add_results()->mutable_session();
      session->set_id(get.id());
      session->set_data("served-by-" + state_->name());
    }
    return s;
  }
  grpc::Status Touch(grpc::ServerContext*, const v1::TouchRequest*,
                     v1::TouchResponse* resp) override {
    grpc::Status s = state_->Enter("Touch");
    if (s.ok()) resp->mutable_expire_time()->set_seconds(1'700'000'000);
    return s;
  }
  grpc::Status Update(grpc::ServerContext*, const v1::UpdateRequest* req,
                      v1::UpdateResponse* resp) override {
    grpc::Status s = state_->Enter("Update");
    if (!s.ok()) return s;
    state_->Record(*req);
    resp->mutable_session()->set_id(req->id());
    return s;
  }
  grpc::Status Delete(grpc::ServerContext*, const v1::DeleteRequest*,
                      v1::DeleteResponse* resp) override {
    grpc::Status s = state_->Enter("Delete");
    if (s.ok()) resp->set_deleted(true);
    return s;
  }
  grpc::Status Regenerate(grpc::ServerContext*,
                          const v1::RegenerateRequest* req,
                          v1::RegenerateResponse* resp) override {
    grpc::Status s = state_->Enter("Regenerate");
    if (!s.ok()) return s;
    resp->set_previous_id(req->id());
    resp->mutable_session()->set_id("rotated");
    return s;
  }
  grpc::Status ListByPrincipal(grpc::ServerContext*,
                               const v1::ListByPrincipalRequest* req,
                               v1::ListByPrincipalResponse* resp) override {
    grpc::Status s = state_->Enter("ListByPrincipal");
    if (!s.ok()) return s;
    for (int i = 0; i < std::max(1, req->limit()); ++i) {
      resp->add_sessions()->set_principal(req->principal());
    }
    return s;
  }
  grpc::Status DeleteByPrincipal(grpc::ServerContext*,
                                 const v1::DeleteByPrincipalRequest*,
                                 v1::DeleteByPrincipalResponse* resp) override {
    grpc::Status s = state_->Enter("DeleteByPrincipal");
    if (s.ok()) resp->set_deleted_count(2);
    return s;
  }

 private:
  FakeState* const state_;
};

class FakeAdminService final : public v1::AdminService::Service {
 public:
  explicit FakeAdminService(FakeState* state) : state_(state) {}

  grpc::Status NodeStats(grpc::ServerContext*, const v1::NodeStatsRequest*,
                         v1::NodeStatsResponse* resp) override {
    grpc::Status s = state_->Enter("NodeStats");
    if (s.ok()) resp->mutable_stats()->set_node_id(state_->name());
    return s;
  }
  grpc::Status ClusterStatus(grpc::ServerContext*,
                             const v1::ClusterStatusRequest*,
                             v1::ClusterStatusResponse* resp) override {
    grpc::Status s = state_->Enter("ClusterStatus");
    if (s.ok()) {
      resp->set_status("HEALTHY");
      resp->set_node_count(1);
    }
    return s;
  }

 private:
  FakeState* const state_;
};

// Owns the server; shuts it down (releasing blocked handlers) on
// destruction.
class FakeServer final {
 public:
  explicit FakeServer(std::string name = "fake")
      : state_(std::move(name)), session_(&state_), admin_(&state_) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&session_);
    builder.RegisterService(&admin_);
    server_ = builder.BuildAndStart();
  }
  ~FakeServer() {
    state_.Release();
    if (server_) server_->Shutdown(absl::ToChronoTime(absl::Now()));
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  bool ok() const { return server_ != nullptr && port_ > 0; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  FakeState& state() { return state_; }
  grpc::HealthCheckServiceInterface* health() {
    return server_->GetHealthCheckService();
  }

 private:
  FakeState state_;
  FakeSessionService session_;
  FakeAdminService admin_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace sg::client::testing

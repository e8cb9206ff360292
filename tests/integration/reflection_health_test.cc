// What grpcurl does against a running sessiongrid-server, done by a client
// built only from the public reflection and health protos: list services,
// resolve SessionService's descriptor (and its imports), call
// AdminService/ClusterStatus with a JSON body through descriptors alone, and
// run grpc.health.v1.Health/Check.
//
// This binary must not link grpc++_reflection (see TOOLCHAIN.md): it has its
// own generated reflection.pb.cc.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <future>
#include <set>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testutil/cluster.h"
#include "tests/testutil/subprocess.h"

namespace sg {
namespace {
namespace refl = ::grpc::reflection::v1alpha;
namespace health = ::grpc::health::v1;
using google::protobuf::FileDescriptorProto;

class ReflectionHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testutil::MakeTempDir("sg-reflection");
    auto server = testutil::Subprocess::Start(
        {SG_SERVER_BIN, "--listen=127.0.0.1:0", "--data-dir=" + dir_,
         "--node-id=reflect-node"});
    ASSERT_TRUE(server.ok());
    server_ = *std::move(server);
    auto line = server_->WaitForLine("msg=listening", absl::Seconds(30));
    ASSERT_TRUE(line.has_value()) << server_->Output();
    address_ = testutil::FieldFromLogLine(*line, "address");
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    channel_.reset();
    server_->Signal(SIGTERM);
    EXPECT_EQ(server_->Wait(absl::Seconds(30)), 0) << server_->Output();
    testutil::RemoveTree(dir_);
  }

  // One request/response exchange on a reflection stream, as grpcurl does.
  refl::ServerReflectionResponse Ask(const refl::ServerReflectionRequest& req) {
    auto stub = refl::ServerReflection::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->ServerReflectionInfo(&ctx);
    EXPECT_TRUE(stream->Write(req));
    stream->WritesDone();
    refl::ServerReflectionResponse resp;
    EXPECT_TRUE(stream->Read(&resp));
    EXPECT_TRUE(stream->Finish().ok());
    return resp;
  }

  // Loads the file defining `symbol` and, recursively, its imports into pool_.
  void LoadSymbol(const std::string& symbol) {
    refl::ServerReflectionRequest req;
    req.set_file_containing_symbol(symbol);
    AddFiles(Ask(req));
  }
  void AddFiles(const refl::ServerReflectionResponse& resp) {
    ASSERT_TRUE(resp.has_file_descriptor_response())
        << resp.error_response().error_message();
    std::vector<FileDescriptorProto> files;
    for (const std::string& bytes :
         resp.file_descriptor_response().file_descriptor_proto()) {
      FileDescriptorProto file;
      ASSERT_TRUE(file.ParseFromString(bytes));
      files.push_back(file);
    }
    // Imports first; ask for any the server did not send along.
    for (const auto& file : files) {
      for (const std::string& dep : file.dependency()) {
        if (pool_.FindFileByName(dep) != nullptr) continue;
        bool sent = false;
        for (const auto& f : files) sent |= f.name() == dep;
        if (!sent) {
          refl::ServerReflectionRequest req;
          req.set_file_by_filename(dep);
          AddFiles(Ask(req));
        }
      }
    }
    // Build each file once all its imports are in the pool.
    bool progress = true;
    while (progress) {
      progress = false;
      for (const auto& file : files) {
        if (pool_.FindFileByName(file.name()) != nullptr) continue;
        bool ready = true;
        for (const std::string& dep : file.dependency()) {
          ready &= pool_.FindFileByName(dep) != nullptr;
        }
        if (ready) {
          ASSERT_NE(pool_.BuildFile(file), nullptr) << file.name();
          progress = true;
        }
      }
    }
  }

  // A unary call through descriptors alone (after LoadSymbol), as grpcurl
  // makes it: JSON in, JSON out.
  std::string Call(const std::string& service, const std::string& method_name,
                   const std::string& json_in) {
    const auto* method = pool_.FindMethodByName(service + "." + method_name);
    EXPECT_NE(method, nullptr);
    if (method == nullptr) return "";
    google::protobuf::DynamicMessageFactory factory(&pool_);
    std::unique_ptr<google::protobuf::Message> request(
        factory.GetPrototype(method->input_type())->New());
    EXPECT_TRUE(
        google::protobuf::util::JsonStringToMessage(json_in, request.get()).ok());
    grpc::GenericStub stub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    std::string wire = request->SerializeAsString();
    grpc::Slice slice(wire);
    grpc::ByteBuffer request_buffer(&slice, 1);
    grpc::ByteBuffer response_buffer;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, "/" + service + "/" + method_name, {}, &request_buffer,
                   &response_buffer, [&](grpc::Status s) { done.set_value(s); });
    grpc::Status status = done.get_future().get();
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(response_buffer.Dump(&slices).ok());
    std::string bytes;
    for (const auto& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    std::unique_ptr<google::protobuf::Message> response(
        factory.GetPrototype(method->output_type())->New());
    EXPECT_TRUE(response->ParseFromString(bytes));
    std::string json;
    EXPECT_TRUE(google::protobuf::util::MessageToJsonString(*response, &json).ok());
    return json;
  }

  std::string dir_;
  std::unique_ptr<testutil::Subprocess> server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  google::protobuf::DescriptorPool pool_;
};

TEST_F(ReflectionHealthTest, ListShowsEveryService) {
  refl::ServerReflectionRequest req;
  req.set_list_services("");
  refl::ServerReflectionResponse resp = Ask(req);
  std::set<std::string> names;
  for (const auto& s : resp.list_services_response().service()) {
    names.insert(s.name());
  }
  EXPECT_TRUE(names.count("sessiongrid.v1.SessionService"));
  EXPECT_TRUE(names.count("sessiongrid.v1.AdminService"));
  EXPECT_TRUE(names.count("grpc.health.v1.Health"));
  EXPECT_TRUE(names.count("grpc.reflection.v1alpha.ServerReflection"));
}

TEST_F(ReflectionHealthTest, DescribeResolvesSessionServiceAndItsTypes) {
  LoadSymbol("sessiongrid.v1.SessionService");
  const auto* service =
      pool_.FindServiceByName("sessiongrid.v1.SessionService");
  ASSERT_NE(service, nullptr);
  for (const char* method : {"Create", "Get", "Touch", "Update", "Delete",
                             "Regenerate", "ListByPrincipal",
                             "DeleteByPrincipal", "ListSessions"}) {
    EXPECT_NE(service->FindMethodByName(method), nullptr) << method;
  }
  const auto* session = pool_.FindMessageTypeByName("sessiongrid.v1.Session");
  ASSERT_NE(session, nullptr);
  ASSERT_NE(session->FindFieldByName("expire_time"), nullptr);
  EXPECT_EQ(session->FindFieldByName("expire_time")->message_type()->full_name(),
            "google.protobuf.Timestamp");
}

TEST_F(ReflectionHealthTest, ClusterStatusCallsThroughDescriptorsAlone) {
  // grpcurl -plaintext -d '{}' ADDR sessiongrid.v1.AdminService/ClusterStatus
  LoadSymbol("sessiongrid.v1.AdminService");
  std::string json = Call("sessiongrid.v1.AdminService", "ClusterStatus", "{}");
  EXPECT_NE(json.find("\"status\":\"HEALTHY\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"nodeId\":\"reflect-node\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"address\":\"" + address_ + "\""), std::string::npos) << json;
}

TEST_F(ReflectionHealthTest, ClusterStatusOfThreeNodesListsThreeAliveMembers) {
  // What scripts/up runs: three nodes, N=3 W=2 R=1; grpcurl against one.
  testutil::TestCluster cluster(SG_SERVER_BIN, dir_ + "/cluster", 3);
  cluster.Start();
  auto logs = [&] {
    std::string out;
    for (int i = 0; i < cluster.size(); ++i) {
      out += "--- n" + std::to_string(i) + "\n" + cluster.process(i)->Output();
    }
    return out;
  };
  ASSERT_TRUE(cluster.WaitForView(0, absl::Seconds(20))) << logs();
  channel_ = grpc::CreateChannel(cluster.node(0).client_address(),
                                 grpc::InsecureChannelCredentials());
  LoadSymbol("sessiongrid.v1.AdminService");
  auto alive_in = [](const std::string& json) {
    size_t alive = 0;
    for (size_t at = json.find("\"liveness\":\"ALIVE\"");
         at != std::string::npos;
         at = json.find("\"liveness\":\"ALIVE\"", at + 1)) {
      ++alive;
    }
    return alive;
  };
  // As an operator would: ask again until the view settles. A node's view
  // can lag the test's WaitForView by a heartbeat (a peer's liveness or
  // the ring just changing) on a loaded machine.
  std::string json;
  testutil::PollUntil(
      [&] {
        json = Call("sessiongrid.v1.AdminService", "ClusterStatus", "{}");
        return alive_in(json) == 3 &&
               json.find("\"status\":\"HEALTHY\"") != std::string::npos;
      },
      absl::Seconds(20));
  EXPECT_EQ(alive_in(json), 3u) << json << "\n" << logs();
  EXPECT_NE(json.find("\"status\":\"HEALTHY\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"writeQuorum\":2"), std::string::npos) << json;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(json.find("\"nodeId\":\"n" + std::to_string(i) + "\""),
              std::string::npos);
  }
  // A node's own record through reflection too (ReadLocal).
  json = Call("sessiongrid.v1.AdminService", "ReadLocal",
              "{\"id\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}");
  EXPECT_NE(json.find("\"nodeId\":\"n0\""), std::string::npos) << json;
  EXPECT_EQ(json.find("session"), std::string::npos) << json;
}

TEST_F(ReflectionHealthTest, HealthCheckServesOverallAndPerService) {
  auto stub = health::Health::NewStub(channel_);
  for (const char* service : {"", "sessiongrid.v1.SessionService",
                              "sessiongrid.v1.AdminService"}) {
    grpc::ClientContext ctx;
    health::HealthCheckRequest req;
    req.set_service(service);
    health::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << service << ": " << s.error_message();
    EXPECT_EQ(resp.status(), health::HealthCheckResponse::SERVING) << service;
  }
  grpc::ClientContext ctx;
  health::HealthCheckRequest req;
  req.set_service("no.such.Service");
  health::HealthCheckResponse resp;
  EXPECT_EQ(stub->Check(&ctx, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace sg

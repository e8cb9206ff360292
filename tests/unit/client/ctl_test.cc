#include "ctl.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "fake_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sg::client {
namespace {

using ::sg::client::testing::FakeServer;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()); }

  // Runs sessiongridctl with --server pointing at the fake.
  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_.address()});
    return RunRaw(args, "");
  }
  int RunRaw(const std::vector<std::string>& args,
             const std::string& env_server) {
    out_.str("");
    err_.str("");
    return RunCtl(args, env_server, out_, err_);
  }

  static bool OneLine(const std::string& s) {
    return !s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1;
  }

  FakeServer server_{"ctl"};
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CtlTest, GetPrintsSessionAsJson) {
  EXPECT_EQ(Run({"get", "abc"}), kCtlOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr(R"("id": "abc")"));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CtlTest, RpcErrorIsOneLineAndExitsOne) {
  server_.state().FailNext(1, grpc::StatusCode::NOT_FOUND, "no such session");
  EXPECT_EQ(Run({"get", "abc"}), kCtlRpcError);
  EXPECT_EQ(err_.str(), "error: NOT_FOUND: no such session\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CtlTest, UsageErrorsExitTwoWithoutCallingTheServer) {
  const std::vector<std::vector<std::string>> cases = {
      {"frobnicate"},
      {"get"},
      {"get", "a", "b"},
      {"get", "a", "--ttl", "1s"},
      {"touch", "a", "--ttl", "soon"},
      {"touch", "a", "--ttl"},
      {"create", "--data", "x", "--data-file", "/dev/null"},
      {"create", "--data-file", "/nonexistent/file"},
      {"update", "a", "--expected-version", "12:x:n"},
      {"list-by-principal", "p", "--limit", "-3"},
      {"--timeout", "0s", "status"},
      {},
  };
  for (const auto& args : cases) {
    EXPECT_EQ(Run(args), kCtlUsageError) << ::testing::PrintToString(args);
    EXPECT_THAT(err_.str(), StartsWith("error: INVALID_ARGUMENT: "));
    EXPECT_THAT(err_.str(), HasSubstr("--help"));
    EXPECT_TRUE(OneLine(err_.str())) << err_.str();
  }
  EXPECT_EQ(server_.state().total_calls(), 0);
}

TEST_F(CtlTest, HelpDocumentsEveryCommand) {
  EXPECT_EQ(RunRaw({"--help"}, ""), kCtlOk);
  for (const char* word :
       {"health", "status", "stats", "create", "get", "touch", "update",
        "delete", "list-by-principal", "delete-by-principal",
        "SESSIONGRID_SERVER", "--timeout", "--expected-version"}) {
    EXPECT_THAT(out_.str(), HasSubstr(word));
  }
}

TEST_F(CtlTest, HealthExitsZeroOnlyWhenServing) {
  EXPECT_EQ(Run({"health"}), kCtlOk);
  EXPECT_EQ(out_.str(), "SERVING\n");
  server_.health()->SetServingStatus("sessiongrid.v1.SessionService", false);
  EXPECT_EQ(Run({"health", "sessiongrid.v1.SessionService"}), kCtlRpcError);
  EXPECT_EQ(out_.str(), "NOT_SERVING\n");
}

TEST_F(CtlTest, ServerComesFromEnvironmentUnlessFlagGiven) {
  EXPECT_EQ(RunRaw({"stats"}, server_.address()), kCtlOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr(R"("nodeId": "ctl")"));
  // The flag wins over an unusable environment value.
  EXPECT_EQ(RunRaw({"--server", server_.address(), "stats"}, "not a target"),
            kCtlOk)
      << err_.str();
  // No server at all is a usage error.
  EXPECT_EQ(RunRaw({"stats"}, ""), kCtlUsageError);
}

TEST_F(CtlTest, CreatePassesDataPrincipalAndTtl) {
  EXPECT_EQ(
      Run({"create", "--data", "hello", "--principal=alice", "--ttl", "30m"}),
      kCtlOk)
      << err_.str();
  const auto req = server_.state().last_create();
  EXPECT_EQ(req.data(), "hello");
  EXPECT_EQ(req.principal(), "alice");
  EXPECT_EQ(req.ttl().seconds(), 1800);
  EXPECT_THAT(out_.str(), HasSubstr(R"("id": "new-session")"));
}

TEST_F(CtlTest, UpdateParsesBothVersionForms) {
  EXPECT_EQ(Run({"update", "s1", "--principal", "", "--expected-version",
                 "1700000000123:4:node:a"}),
            kCtlOk)
      << err_.str();
  auto req = server_.state().last_update();
  EXPECT_TRUE(req.has_principal());
  EXPECT_EQ(req.principal(), "");
  EXPECT_FALSE(req.has_data());
  EXPECT_EQ(req.expected_version().wall_millis(), 1700000000123);
  EXPECT_EQ(req.expected_version().logical(), 4u);
  EXPECT_EQ(req.expected_version().node_id(), "node:a");

  EXPECT_EQ(Run({"update", "s1", "--data", "d", "--expected-version",
                 R"({"wallMillis":"5","logical":1,"nodeId":"n2"})"}),
            kCtlOk)
      << err_.str();
  req = server_.state().last_update();
  EXPECT_EQ(req.data(), "d");
  EXPECT_FALSE(req.has_principal());
  EXPECT_EQ(req.expected_version().wall_millis(), 5);
  EXPECT_EQ(req.expected_version().node_id(), "n2");
}

TEST_F(CtlTest, DeleteAndPrincipalCommandsPrintResponses) {
  EXPECT_EQ(Run({"delete", "s1"}), kCtlOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"("deleted": true)"));
  EXPECT_EQ(Run({"list-by-principal", "bob", "--limit", "2"}), kCtlOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"("principal": "bob")"));
  EXPECT_EQ(Run({"delete-by-principal", "bob"}), kCtlOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"("deletedCount": "2")"));
  EXPECT_EQ(Run({"status", "--json"}), kCtlOk);
  EXPECT_THAT(out_.str(), HasSubstr(R"("status": "HEALTHY")"));
  out_.str("");
  EXPECT_EQ(Run({"status"}), kCtlOk);
  EXPECT_THAT(out_.str(), HasSubstr("cluster HEALTHY"));
  EXPECT_THAT(out_.str(), HasSubstr("LIVENESS"));
  EXPECT_EQ(server_.state().calls("ListByPrincipal"), 1);
}

}  // namespace
}  // namespace sg::client

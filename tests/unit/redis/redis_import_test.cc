// The importer's pure parts and the command's usage errors; the import
// itself runs against real redis-server and sessiongrid-server in
// tests/integration/redis/redis_import_test.cc.
#include "client/redis_import.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include "client/import_redis_command.h"
#include "client/redis/redis_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sg::client {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(RedisImportTest, IdsAreTheServersClientIdFormat) {
  EXPECT_TRUE(IsImportableId("ZmAn0aF-_x4Zq3gJ9wN2kL7pQ1rS8tUv"));  // 32
  EXPECT_TRUE(IsImportableId(std::string(22, 'a')));
  EXPECT_TRUE(IsImportableId(std::string(128, 'Z')));
  EXPECT_FALSE(IsImportableId(std::string(21, 'a')));
  EXPECT_FALSE(IsImportableId(std::string(129, 'a')));
  EXPECT_FALSE(IsImportableId("short"));
  EXPECT_FALSE(IsImportableId("abcdefghijklmnopqrstuvwxyz.0"));
  EXPECT_FALSE(IsImportableId("abcdefghijklmnopqrstuv+/="));
  EXPECT_FALSE(IsImportableId(""));
}

TEST(RedisImportTest, SummaryIsTheNpmImportersJson) {
  RedisImportStats s;
  s.scanned = 5;
  s.imported = 3;
  s.skipped["not_json_object"] = 1;
  s.skipped["bad_id"] = 1;
  s.cursor = "0";
  s.done = true;
  s.elapsed = absl::Milliseconds(12);
  EXPECT_EQ(
      s.ToJson(false),
      R"({"scanned":5,"imported":3,"skipped":{"bad_id":1,"not_json_object":1},"cursor":"0","done":true,"elapsedMs":12,"dryRun":false})");
  EXPECT_EQ(s.skipped_total(), 2);
  EXPECT_EQ(
      RedisImportStats().ToJson(true),
      R"({"scanned":0,"imported":0,"skipped":{},"cursor":"0","done":false,"elapsedMs":0,"dryRun":true})");
}

TEST(RedisImportTest, OptionsAreChecked) {
  RedisImportOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.batch = 1001;
  EXPECT_THAT(o.Validate().message(), HasSubstr("--batch"));
  o = {};
  o.cursor = "12a";
  EXPECT_THAT(o.Validate().message(), HasSubstr("--cursor"));
}

TEST(RedisImportTest, PrefixIsMatchedLiterally) {
  EXPECT_EQ(redis::GlobEscape("sess:"), "sess:");
  EXPECT_EQ(redis::GlobEscape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
}

TEST(ImportRedisCommandTest, IsFoundAfterTheGlobalFlags) {
  EXPECT_TRUE(IsImportRedisCommand({"import-redis", "--redis", "h:1"}));
  EXPECT_TRUE(IsImportRedisCommand(
      {"--server", "import-redis2", "--timeout", "3s", "import-redis"}));
  EXPECT_TRUE(IsImportRedisCommand({"--server=a:1", "import-redis"}));
  EXPECT_FALSE(IsImportRedisCommand({"--server", "import-redis", "get", "x"}));
  EXPECT_FALSE(IsImportRedisCommand({"get", "import-redis"}));
  EXPECT_FALSE(IsImportRedisCommand({}));
}

class ImportRedisUsageTest : public ::testing::Test {
 protected:
  int Run(std::vector<std::string> args, std::string server = "127.0.0.1:1") {
    out_.str("");
    err_.str("");
    return RunImportRedis(args, server, ImportRedisEnv{}, out_, err_);
  }
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(ImportRedisUsageTest, BadFlagsExitTwoNamingTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"import-redis"}, "--redis"},
      {{"import-redis", "--redis", "nohostport"}, "--redis"},
      {{"import-redis", "--redis", "h:1", "--batch", "0"}, "--batch"},
      {{"import-redis", "--redis", "h:1", "--batch", "1001"}, "--batch"},
      {{"import-redis", "--redis", "h:1", "--cursor", "x"}, "--cursor"},
      {{"import-redis", "--redis", "h:1", "--default-ttl", "soon"},
       "--default-ttl"},
      {{"import-redis", "--redis", "h:1", "--dry-run=yes"}, "--dry-run"},
      {{"import-redis", "--redis", "h:1", "--frobnicate"}, "--frobnicate"},
      {{"import-redis", "--redis", "h:1", "extra"}, "no arguments"},
      {{"import-redis", "--redis", "h:1", "--prefix", ""}, "--prefix"},
      {{"import-redis", "--redis", "h:1", "--redis-password-file",
        "/nonexistent/pw"},
       "--redis-password-file"},
      {{"import-redis", "--redis", "h:1", "--timeout", "0s"}, "--timeout"},
  };
  for (const auto& [args, names] : cases) {
    EXPECT_EQ(Run(args), 2) << ::testing::PrintToString(args);
    EXPECT_THAT(err_.str(), StartsWith("error: INVALID_ARGUMENT: "));
    EXPECT_THAT(err_.str(), HasSubstr(names));
    EXPECT_THAT(err_.str(), HasSubstr("import-redis --help"));
    EXPECT_EQ(out_.str(), "");
  }
  EXPECT_EQ(Run({"import-redis", "--redis", "h:1"}, ""), 2);
  EXPECT_THAT(err_.str(), HasSubstr("SESSIONGRID_SERVER"));
}

TEST_F(ImportRedisUsageTest, HelpListsEveryFlagAndExitCode) {
  EXPECT_EQ(Run({"import-redis", "--help"}), 0);
  for (const char* flag :
       {"--redis", "--prefix", "--dry-run", "--default-ttl", "--batch",
        "--cursor", "--redis-password-file", "REDISCLI_AUTH", "--redis-user",
        "--redis-db", "--timeout", "--allow-client-ids", "Exit codes"}) {
    EXPECT_THAT(out_.str(), HasSubstr(flag));
  }
}

TEST_F(ImportRedisUsageTest, ARefusedRedisPortExitsOneSayingSo) {
  // A port that was just free: bind, note it, close.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  const std::string target =
      "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  EXPECT_EQ(Run({"import-redis", "--redis", target}), 1);
  EXPECT_THAT(err_.str(), StartsWith("error: UNAVAILABLE: redis " + target +
                                     ": connection refused"));
  EXPECT_EQ(out_.str(), "");
}

}  // namespace
}  // namespace sg::client

// sessiongridctl import-redis against the real redis-server (Debian's) and
// the real sessiongrid-server, both on free loopback ports: sessions are
// written into Redis exactly as connect-redis writes them (SET
// <prefix><id> <express-session JSON> EX <seconds>, through our RESP
// client), then the binary copies them. The same flow with connect-redis
// and express-session themselves, and the cookie checked through
// SessionGridStore and the edge, is integrations/express/test/
// migration-ctl.test.js.
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/redis/redis_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sessiongrid/client.h"
#include "tests/testutil/cluster.h"
#include "tests/testutil/pki.h"
#include "tests/testutil/subprocess.h"

namespace sg {
namespace {

namespace v1 = ::sessiongrid::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using testutil::Subprocess;

// An express-session id: 24 random bytes in base64url, 32 characters.
std::string ExpressId(int n) {
  std::string id = absl::StrCat("sid", n, "_");
  while (id.size() < 32)
    id += static_cast<char>('a' + (id.size() * 7 + n) % 26);
  return id;
}

// What express-session hands connect-redis for a logged-in user.
std::string SessionJson(const std::string& user, int counter) {
  return absl::StrCat(
      R"({"cookie":{"originalMaxAge":86400000,"expires":"2026-12-03T18:00:00.000Z","httpOnly":true,"path":"/"},"user":")",
      user, R"(","counter":)", counter, "}");
}

struct RunResult {
  int exit_code = -1;
  std::string output;   // stdout and stderr, as the child wrote them
  std::string summary;  // the JSON summary line, if any
};

class RedisImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testutil::MakeTempDir("sg-redis-import");
    StartRedis({});
  }
  void TearDown() override {
    redis_client_.reset();
    server_.reset();
    redis_.reset();
    testutil::RemoveTree(dir_);
  }

  static std::string RedisBinary() {
    const char* env = std::getenv("SG_REDIS_BIN");
    return env != nullptr && *env != '\0' ? env : SG_REDIS_SERVER_BIN;
  }

  // redis-server as a child: free port, no persistence, loopback only. A
  // port taken between FreePort and the bind is retried.
  void StartRedis(std::vector<std::string> extra) {
    redis_client_.reset();
    redis_.reset();
    for (int attempt = 0; attempt < 5 && redis_ == nullptr; ++attempt) {
      const int port = testutil::FreePort();
      ASSERT_GT(port, 0);
      std::vector<std::string> argv = {
          RedisBinary(), "--port", std::to_string(port), "--bind", "127.0.0.1",
          "--save",      "",       "--appendonly",       "no",     "--dir",
          dir_};
      argv.insert(argv.end(), extra.begin(), extra.end());
      auto p = Subprocess::Start(argv);
      ASSERT_TRUE(p.ok()) << p.status();
      if ((*p)->WaitForLine("Ready to accept connections", absl::Seconds(15))) {
        redis_ = *std::move(p);
        redis_address_ = absl::StrCat("127.0.0.1:", port);
      }
    }
    ASSERT_NE(redis_, nullptr)
        << "redis-server (" << RedisBinary() << ") did not start";
    redis::RedisOptions options;
    options.address = redis_address_;
    for (size_t i = 0; i + 1 < extra.size(); ++i) {
      if (extra[i] == "--requirepass") options.password = extra[i + 1];
    }
    auto c = redis::RedisClient::Connect(options);
    ASSERT_TRUE(c.ok()) << c.status();
    redis_client_ = *std::move(c);
  }

  // `extra` server flags; `ca`: the server speaks TLS signed by it.
  void StartServer(bool allow_client_ids = true,
                   std::vector<std::string> extra = {}, std::string ca = "") {
    std::vector<std::string> argv = {SG_SERVER_BIN, "--listen=127.0.0.1:0",
                                     "--data-dir=" + dir_ + "/sg-data",
                                     "--metrics-listen="};
    if (allow_client_ids) argv.push_back("--allow-client-ids");
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = Subprocess::Start(argv);
    ASSERT_TRUE(p.ok()) << p.status();
    auto line = (*p)->WaitForLine("msg=listening", absl::Seconds(30));
    ASSERT_TRUE(line.has_value()) << (*p)->Output();
    server_address_ = testutil::FieldFromLogLine(*line, "address");
    server_ = *std::move(p);
    client::ClientOptions options;
    options.target = server_address_;
    options.deadline = absl::Seconds(5);
    options.tls_ca_file = ca;
    auto c = client::Client::Create(options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  // A Redis command that must succeed.
  redis::RespValue Redis(const std::vector<std::string>& args) {
    absl::StatusOr<redis::RespValue> r = redis_client_->Command(args);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : redis::RespValue{};
  }

  // Writes a session the way connect-redis does.
  void PutSession(const std::string& key, const std::string& json,
                  int ttl_seconds) {
    if (ttl_seconds > 0) {
      Redis({"SET", key, json, "EX", std::to_string(ttl_seconds)});
    } else {
      Redis({"SET", key, json});
    }
  }

  // Starts `sessiongridctl --server S import-redis --redis R args...`.
  std::unique_ptr<Subprocess> StartImport(std::vector<std::string> args,
                                          std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {SG_CTL_BIN,      "--server",
                                     server_address_, "import-redis",
                                     "--redis",       redis_address_};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = Subprocess::Start(argv, env);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  RunResult Finish(Subprocess& p) {
    RunResult r;
    r.exit_code = p.Wait(absl::Seconds(120)).value_or(-1);
    r.output = p.Output();
    for (absl::string_view line : absl::StrSplit(r.output, '\n')) {
      if (absl::StartsWith(line, "{\"scanned\":"))
        r.summary = std::string(line);
    }
    return r;
  }

  RunResult Import(std::vector<std::string> args,
                   std::vector<std::string> env = {}) {
    std::unique_ptr<Subprocess> p =
        StartImport(std::move(args), std::move(env));
    if (p == nullptr) return {};
    return Finish(*p);
  }

  int64_t ServerSessions() {
    auto stats = client_->NodeStats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? stats->stats().sessions() : -1;
  }

  // A number field of the summary JSON ("imported", "scanned").
  static int64_t Field(const std::string& summary, const std::string& name) {
    const std::string key = absl::StrCat("\"", name, "\":");
    const size_t at = summary.find(key);
    if (at == std::string::npos) return -1;
    int64_t v = -1;
    const size_t start = at + key.size();
    const size_t end = summary.find_first_of(",}", start);
    if (!absl::SimpleAtoi(summary.substr(start, end - start), &v)) return -1;
    return v;
  }
  static std::string Cursor(const std::string& summary) {
    const size_t at = summary.find("\"cursor\":\"");
    if (at == std::string::npos) return "";
    const size_t start = at + 10;
    return summary.substr(start, summary.find('"', start) - start);
  }

  std::string dir_;
  std::unique_ptr<Subprocess> redis_;
  std::string redis_address_;
  std::unique_ptr<redis::RedisClient> redis_client_;
  std::unique_ptr<Subprocess> server_;
  std::string server_address_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(RedisImportTest, CopiesSessionsWithTheirJsonAndRemainingTtl) {
  StartServer();
  const std::string alice = ExpressId(1), bob = ExpressId(2),
                    carol = ExpressId(3);
  PutSession("sess:" + alice, SessionJson("alice", 2), 3600);
  PutSession("sess:" + bob, SessionJson("bob", 0), 30 * 86400);
  PutSession("sess:" + carol, SessionJson("carol", 3), 0);  // disableTTL
  // What the import must skip, and say why.
  PutSession("sess:short", R"({"cookie":{}})", 3600);
  PutSession("sess:" + ExpressId(4), "not json", 3600);
  PutSession("sess:" + ExpressId(5), "[1,2]", 3600);
  Redis({"RPUSH", "sess:" + ExpressId(6), "a list, not a string"});
  Redis({"SET", "other:" + ExpressId(7), SessionJson("mallory", 1)});

  // A dry run reads and checks everything and writes nothing.
  RunResult dry = Import({"--dry-run", "--default-ttl", "2h"});
  EXPECT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_EQ(
      dry.summary,
      R"({"scanned":7,"imported":3,"skipped":{"bad_id":1,"not_json_object":2,"wrong_type":1},"cursor":"0","done":true,"elapsedMs":)" +
          std::to_string(Field(dry.summary, "elapsedMs")) +
          R"(,"dryRun":true})");
  EXPECT_THAT(dry.output, HasSubstr("[dry run] scanned 7/~8, imported 3, "
                                    "skipped 4, "));
  EXPECT_EQ(ServerSessions(), 0);

  RunResult run = Import({"--default-ttl", "2h"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(
      run.summary,
      HasSubstr(
          R"("scanned":7,"imported":3,"skipped":{"bad_id":1,"not_json_object":2,"wrong_type":1},"cursor":"0","done":true)"));
  EXPECT_THAT(run.output, ::testing::ContainsRegex(
                              "scanned 7/~8, imported 3, skipped 4, [0-9]+ "
                              "sessions/s, ETA 0s"));
  EXPECT_EQ(ServerSessions(), 3);

  const absl::Time now = absl::Now();
  struct Want {
    std::string id, user;
    int counter;
    absl::Duration ttl;
  };
  for (const Want& w : {Want{alice, "alice", 2, absl::Hours(1)},
                        Want{bob, "bob", 0, absl::Hours(30 * 24)},
                        Want{carol, "carol", 3, absl::Hours(2)}}) {
    v1::GetRequest get;
    get.set_id(w.id);
    auto got = client_->Get(get);
    ASSERT_TRUE(got.ok()) << w.user << ": " << got.status();
    // The JSON byte for byte: express-session parses what it wrote.
    EXPECT_EQ(got->session().data(), SessionJson(w.user, w.counter));
    const absl::Duration ttl =
        absl::FromUnixSeconds(got->session().expire_time().seconds()) - now;
    EXPECT_LT(absl::AbsDuration(ttl - w.ttl), absl::Seconds(10))
        << w.user << " ttl " << ttl;
  }
  v1::GetRequest other;
  other.set_id(ExpressId(7));
  EXPECT_EQ(client_->Get(other).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RedisImportTest,
       ReRunningSkipsEverythingAsExistingAndNeverUndoesALogout) {
  StartServer();
  for (int i = 0; i < 20; ++i) {
    PutSession(absl::StrCat("sess:", ExpressId(i)),
               SessionJson(absl::StrCat("u", i), i), 600);
  }
  RunResult first = Import({});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(Field(first.summary, "imported"), 20);

  // User 0 logs out on SessionGrid; Redis still has the old session.
  v1::DeleteRequest del;
  del.set_id(ExpressId(0));
  ASSERT_TRUE(client_->Delete(del).ok());
  // User 1's session changed on SessionGrid after the import.
  v1::UpdateRequest update;
  update.set_id(ExpressId(1));
  update.set_data(SessionJson("u1", 100));
  ASSERT_TRUE(client_->Update(update).ok());

  RunResult again = Import({});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(
      again.summary,
      HasSubstr(R"("scanned":20,"imported":0,"skipped":{"exists":20})"));
  v1::GetRequest get;
  get.set_id(ExpressId(0));
  EXPECT_EQ(client_->Get(get).status().code(), absl::StatusCode::kNotFound);
  get.set_id(ExpressId(1));
  auto one = client_->Get(get);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->session().data(), SessionJson("u1", 100));
  EXPECT_EQ(ServerSessions(), 19);
}

TEST_F(RedisImportTest, CursorResumesWhereAnEarlierRunStopped) {
  StartServer();
  constexpr int kKeys = 200;
  for (int i = 0; i < kKeys; ++i) {
    PutSession("sess:" + ExpressId(i), SessionJson("u", i), 600);
  }
  // The cursor after one SCAN page, as an interrupted run prints it.
  auto page = redis_client_->Scan("0", "sess:*", 20);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_NE(page->cursor, "0");
  RunResult rest = Import({"--cursor", page->cursor, "--batch", "20"});
  ASSERT_EQ(rest.exit_code, 0) << rest.output;
  const int64_t resumed = Field(rest.summary, "imported");
  // Every key the first page returned is left for a run from 0.
  EXPECT_LE(resumed, kKeys - static_cast<int64_t>(page->keys.size()));
  EXPECT_GT(resumed, 0);
  EXPECT_EQ(ServerSessions(), resumed);
  for (const std::string& key : page->keys) {
    v1::GetRequest get;
    get.set_id(key.substr(5));
    EXPECT_EQ(client_->Get(get).status().code(), absl::StatusCode::kNotFound)
        << key << " was on the page before the cursor";
  }
  RunResult all = Import({"--batch", "20"});
  ASSERT_EQ(all.exit_code, 0) << all.output;
  EXPECT_EQ(Field(all.summary, "imported") + resumed, kKeys);
  EXPECT_EQ(ServerSessions(), kKeys);
}

TEST_F(RedisImportTest, SigintStopsBetweenPagesAndPrintsTheCursorToResumeFrom) {
  StartServer();
  constexpr int kKeys = 4000;
  std::vector<std::vector<std::string>> sets;
  for (int i = 0; i < kKeys; ++i) {
    sets.push_back(
        {"SET", "sess:" + ExpressId(i), SessionJson("u", i), "EX", "600"});
  }
  ASSERT_TRUE(redis_client_->Pipeline(sets).ok());
  // One key per page: thousands of round trips, time to interrupt.
  std::unique_ptr<Subprocess> p = StartImport({"--batch", "1"});
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(testutil::PollUntil([&] { return ServerSessions() > 0; },
                                  absl::Seconds(30)))
      << p->Output();
  p->Signal(SIGINT);
  RunResult stopped = Finish(*p);
  ASSERT_EQ(stopped.exit_code, 3) << stopped.output;
  EXPECT_THAT(stopped.summary, HasSubstr(R"("done":false)"));
  const std::string cursor = Cursor(stopped.summary);
  EXPECT_THAT(stopped.output,
              HasSubstr("interrupted: resume with --cursor " + cursor + "\n"));
  const int64_t first = Field(stopped.summary, "imported");
  EXPECT_GT(first, 0);
  EXPECT_LT(first, kKeys);

  RunResult rest = Import({"--cursor", cursor, "--batch", "500"});
  ASSERT_EQ(rest.exit_code, 0) << rest.output;
  EXPECT_THAT(rest.summary, HasSubstr(R"("done":true)"));
  // SCAN returns every key present throughout at least once; a key seen by
  // both runs is "exists" the second time.
  EXPECT_EQ(first + Field(rest.summary, "imported"), kKeys);
  EXPECT_EQ(ServerSessions(), kKeys);
}

TEST_F(RedisImportTest, AServerWithoutAllowClientIdsFailsNamingTheFlag) {
  StartServer(/*allow_client_ids=*/false);
  PutSession("sess:" + ExpressId(1), SessionJson("alice", 1), 600);
  RunResult r = Import({});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("error: PERMISSION_DENIED: "));
  EXPECT_THAT(r.output, HasSubstr("--allow-client-ids"));
  EXPECT_THAT(r.output, HasSubstr("resume with: --cursor 0"));
  EXPECT_EQ(ServerSessions(), 0);
}

TEST_F(RedisImportTest, AWrongRedisPortFailsWithAClearMessage) {
  StartServer();
  const std::string live = redis_address_;
  redis_client_.reset();
  redis_.reset();  // killed: nothing listens there now
  RunResult r = Import({});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("error: UNAVAILABLE: redis " + live +
                                  ": connection refused"));
  EXPECT_EQ(r.summary, "");
}

TEST_F(RedisImportTest, AuthenticatesWithAPasswordFileOrRedisCliAuth) {
  StartRedis({"--requirepass", "s3cret-pw"});
  StartServer();
  PutSession("sess:" + ExpressId(1), SessionJson("alice", 1), 600);

  RunResult none = Import({"--dry-run"});
  EXPECT_EQ(none.exit_code, 1) << none.output;
  EXPECT_THAT(none.output, HasSubstr("error: UNAUTHENTICATED: "));
  EXPECT_THAT(none.output, HasSubstr("--redis-password-file"));

  RunResult wrong = Import({"--dry-run"}, {"REDISCLI_AUTH=nope"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.output;
  EXPECT_THAT(wrong.output, HasSubstr("WRONGPASS"));

  RunResult env = Import({"--dry-run"}, {"REDISCLI_AUTH=s3cret-pw"});
  EXPECT_EQ(env.exit_code, 0) << env.output;
  EXPECT_EQ(Field(env.summary, "imported"), 1);

  const std::string file = dir_ + "/redis-password";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("s3cret-pw\n", f);
    std::fclose(f);
  }
  RunResult with_file = Import({"--redis-password-file", file},
                               {"REDISCLI_AUTH=nope"});  // the file wins
  EXPECT_EQ(with_file.exit_code, 0) << with_file.output;
  EXPECT_EQ(Field(with_file.summary, "imported"), 1);
  EXPECT_THAT(with_file.output, Not(HasSubstr("s3cret")));
}

TEST_F(RedisImportTest, APrefixIsMatchedLiterallyNotAsAGlob) {
  StartServer();
  PutSession("app[1]:" + ExpressId(1), SessionJson("a", 1), 600);
  PutSession("app1:" + ExpressId(2), SessionJson("b", 1), 600);
  PutSession("app[1]x" + ExpressId(3), SessionJson("c", 1), 600);
  RunResult r = Import({"--prefix", "app[1]:"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.summary, HasSubstr(R"("scanned":1,"imported":1,)"));
  v1::GetRequest get;
  get.set_id(ExpressId(1));
  EXPECT_TRUE(client_->Get(get).ok());
}

TEST_F(RedisImportTest, ReachesATlsServerWithTheGlobalTlsFlags) {
  const std::string pki_dir = dir_ + "/pki";
  ASSERT_EQ(mkdir(pki_dir.c_str(), 0700), 0);
  absl::StatusOr<testutil::TestPki> pki = testutil::TestPki::Make(pki_dir);
  ASSERT_TRUE(pki.ok()) << pki.status();
  StartServer(
      true, {"--tls-cert=" + pki->server_cert, "--tls-key=" + pki->server_key},
      pki->ca_cert);
  PutSession("sess:" + ExpressId(1), SessionJson("alice", 1), 600);
  RunResult plain = Import({});
  EXPECT_EQ(plain.exit_code, 1) << plain.output;
  EXPECT_EQ(ServerSessions(), 0);
  RunResult tls = Import({"--tls-ca", pki->ca_cert});
  ASSERT_EQ(tls.exit_code, 0) << tls.output;
  EXPECT_EQ(Field(tls.summary, "imported"), 1);
  EXPECT_EQ(ServerSessions(), 1);
}

}  // namespace
}  // namespace sg

#include "examples/demo-app/demo_app.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "examples/demo-app/mini_json.h"
#include "gtest/gtest.h"

namespace sg::demo {
namespace {

class DemoAppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto app = DemoApp::Create({}, &clock_);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = std::move(*app);
  }

  DemoResponse Call(std::string method, std::string target,
                    HeaderList headers = {}, std::string body = "") {
    DemoRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.headers = std::move(headers);
    r.body = std::move(body);
    return app_->Handle(r);
  }

  static JsonObject BodyJson(const DemoResponse& r) {
    absl::StatusOr<JsonObject> o = ParseFlatJsonObject(r.body);
    EXPECT_TRUE(o.ok()) << r.body;
    return o.ok() ? *o : JsonObject{};
  }

  static HeaderList Loaded(const DemoSession& s, std::string principal = "") {
    HeaderList h = {{"X-Session-Id", "id1"},
                    {"X-Session-Status", "loaded"},
                    {"X-Session-Data", EncodeSessionData(s)}};
    if (!principal.empty()) h.emplace_back("X-Session-Principal", principal);
    return h;
  }

  FakeClock clock_{absl::FromUnixMillis(1'700'000'000'123)};
  std::unique_ptr<DemoApp> app_;
};

TEST_F(DemoAppTest, HealthAnswersOkWithIsoTimestampAndLeaksACookie) {
  DemoResponse r = Call("GET", "/api/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            R"({"status":"ok","timestamp":"2023-11-14T22:13:20.123Z"})");
  EXPECT_TRUE(absl::StartsWith(std::string(r.Header("content-type")),
                               "application/json"));
  // Deliberate, for the edge to strip.
  EXPECT_EQ(r.Header("Set-Cookie"), "connect.sid=leaked-by-app; Path=/");
}

TEST_F(DemoAppTest, PageIsHtmlAndShowsAnonymousState) {
  DemoResponse r = Call("GET", "/?x=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(
      absl::StartsWith(std::string(r.Header("Content-Type")), "text/html"));
  EXPECT_TRUE(absl::StrContains(r.body, "not logged in, counter 0"));
  EXPECT_TRUE(absl::StrContains(r.body, "data-logged-in=\"false\""));
  EXPECT_EQ(r.Header("Set-Cookie"), "");
  EXPECT_EQ(r.Header("X-Session-Set"), "");
}

TEST_F(DemoAppTest, PageShowsLoggedInUserEscaped) {
  DemoResponse r = Call("GET", "/", Loaded({"<b>", 7}, "<b>"));
  EXPECT_TRUE(absl::StrContains(r.body, "logged in as &lt;b&gt;, counter 7"))
      << r.body;
}

TEST_F(DemoAppTest, BuiltInAssetsAndGeneratedScripts) {
  DemoResponse js = Call("GET", "/assets/main.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.Header("Content-Type"), "application/javascript");
  DemoResponse css = Call("GET", "/assets/style.css");
  EXPECT_EQ(css.Header("Content-Type"), "text/css");
  DemoResponse png = Call("GET", "/assets/logo.png");
  EXPECT_EQ(png.status, 200);
  EXPECT_EQ(png.Header("Content-Type"), "image/png");
  EXPECT_EQ(png.body.substr(0, 8), "\x89PNG\r\n\x1a\n");
  DemoResponse gen = Call("GET", "/assets/file42.js");
  EXPECT_EQ(gen.status, 200);
  EXPECT_TRUE(absl::StrContains(gen.body, "file42.js"));
  EXPECT_EQ(Call("GET", "/assets/other.bin").status, 404);
  EXPECT_EQ(Call("GET", "/assets/../x.js").status, 404);
  EXPECT_EQ(Call("POST", "/assets/main.js").status, 405);
  for (const DemoResponse& r : {js, css, png, gen}) {
    EXPECT_EQ(r.Header("Set-Cookie"), "");
  }
}

TEST_F(DemoAppTest, AssetsDirFilesWinOverBuiltIns) {
  std::string dir = ::testing::TempDir() + "/demo_assets_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  std::ofstream(dir + "/main.js") << "custom();";
  auto app = DemoApp::Create({.assets_dir = dir}, &clock_);
  ASSERT_TRUE(app.ok()) << app.status();
  DemoRequest req;
  req.method = "GET";
  req.target = "/assets/main.js";
  EXPECT_EQ((*app)->Handle(req).body, "custom();");
  EXPECT_FALSE(DemoApp::Create({.assets_dir = dir + "/missing"}, &clock_).ok());
  std::filesystem::remove_all(dir);
}

TEST_F(DemoAppTest, LoginSetsPrincipalAndSessionDataKeepingTheCounter) {
  DemoResponse r = Call("POST", "/api/auth/login", Loaded({"", 3}),
                        R"({"username":"alice","password":"secret"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"ok":true,"user":"alice"})");
  EXPECT_EQ(r.Header("X-Session-Principal"), "alice");
  std::string data;
  ASSERT_TRUE(
      absl::Base64Unescape(std::string(r.Header("X-Session-Set")), &data));
  EXPECT_EQ(data, R"({"user":"alice","counter":3})");
  EXPECT_EQ(r.Header("X-Session-TTL"), "");
}

TEST_F(DemoAppTest, LoginWithRememberAsksForALongTtl) {
  DemoResponse r = Call("POST", "/api/auth/login", {},
                        R"({"username":"a","password":"b","remember":true})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("X-Session-TTL"), "2592000");
}

TEST_F(DemoAppTest, LoginRejectsBadInputWithoutServerErrors) {
  struct Case {
    std::string body;
    int status;
  };
  for (const Case& c : std::vector<Case>{
           {"", 400},
           {"not json", 400},
           {R"({"username":"a"})", 401},
           {R"({"username":"","password":"x"})", 401},
           {R"({"username":"a","password":""})", 401},
           {R"({"username":1,"password":"x"})", 401},
           {R"({"username":"a\r\nX-Evil: 1","password":"x"})", 400},
           {R"({"username":"\u00e9","password":"x"})", 400},
           {"{\"username\":\"" + std::string(65, 'u') +
                "\",\"password\":\"x\"}",
            400},
       }) {
    DemoResponse r = Call("POST", "/api/auth/login", {}, c.body);
    EXPECT_EQ(r.status, c.status) << c.body;
    EXPECT_EQ(r.Header("X-Session-Principal"), "") << c.body;
    EXPECT_EQ(r.Header("X-Session-Set"), "") << c.body;
    EXPECT_EQ(BodyJson(r).at("ok").boolean, false);
  }
  EXPECT_EQ(Call("GET", "/api/auth/login").status, 405);
}

TEST_F(DemoAppTest, LoginAndCounterRefuseWhenSessionsAreUnavailable) {
  HeaderList h = {{"X-Session-Status", "unavailable"}};
  EXPECT_EQ(
      Call("POST", "/api/auth/login", h, R"({"username":"a","password":"b"})")
          .status,
      503);
  DemoResponse c = Call("POST", "/api/counter", h);
  EXPECT_EQ(c.status, 503);
  EXPECT_EQ(c.Header("X-Session-Set"), "");
}

TEST_F(DemoAppTest, LogoutDestroysTheSession) {
  DemoResponse r = Call("POST", "/api/auth/logout", Loaded({"bob", 1}, "bob"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("X-Session-Destroy"), "1");
}

TEST_F(DemoAppTest, CounterIncrementsSessionDataOnBothPaths) {
  for (const char* path : {"/api/counter", "/api/user/counter"}) {
    DemoResponse first = Call("POST", path);
    EXPECT_EQ(first.body, R"({"counter":1,"user":null})");
    DemoSession stored = DecodeSessionData(first.Header("X-Session-Set"));
    EXPECT_EQ(stored.counter, 1);
    DemoResponse next = Call("GET", path, Loaded(stored));
    EXPECT_EQ(next.body, R"({"counter":2,"user":null})");
    EXPECT_EQ(DecodeSessionData(next.Header("X-Session-Set")).counter, 2);
  }
}

TEST_F(DemoAppTest, DataOfASessionThatWasNotLoadedIsIgnored) {
  HeaderList h = {{"X-Session-Status", "expired"},
                  {"X-Session-Data", EncodeSessionData({"mallory", 99})}};
  EXPECT_EQ(Call("GET", "/api/whoami", h).body,
            R"({"loggedIn":false,"user":null,"counter":0,)"
            R"("sessionStatus":"expired"})");
}

TEST_F(DemoAppTest, WhoAmIReportsPrincipalCounterAndStatus) {
  EXPECT_EQ(Call("GET", "/api/user/whoami", Loaded({"carol", 4}, "carol")).body,
            R"({"loggedIn":true,"user":"carol","counter":4,)"
            R"("sessionStatus":"loaded"})");
  EXPECT_EQ(Call("GET", "/api/whoami").body,
            R"({"loggedIn":false,"user":null,"counter":0,)"
            R"("sessionStatus":"bypassed"})");
}

TEST_F(DemoAppTest, UnreadableSessionDataIsAnEmptySession) {
  for (const char* data : {"!!!", "bm90IGpzb24=", ""}) {
    DemoSession s = DecodeSessionData(data);
    EXPECT_EQ(s.user, "");
    EXPECT_EQ(s.counter, 0);
  }
}

TEST_F(DemoAppTest, UnknownPathsAre404) {
  EXPECT_EQ(Call("GET", "/nope").status, 404);
  DemoResponse api = Call("GET", "/api/nope");
  EXPECT_EQ(api.status, 404);
  EXPECT_TRUE(absl::StartsWith(std::string(api.Header("Content-Type")),
                               "application/json"));
}

// --session-on-every-request: the seed's broken app.
TEST(DemoAppBrokenModeTest, AsksForASessionAndSetsItsCookieEverywhere) {
  FakeClock clock{absl::FromUnixMillis(1'700'000'000'123)};
  DemoAppOptions options;
  options.session_on_every_request = true;
  auto app = DemoApp::Create(options, &clock);
  ASSERT_TRUE(app.ok()) << app.status();
  for (const char* target :
       {"/", "/assets/main.js", "/assets/file7.js", "/api/health",
        "/api/user/whoami"}) {
    SCOPED_TRACE(target);
    DemoRequest request;
    request.method = "GET";
    request.target = target;
    const DemoResponse r = (*app)->Handle(request);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.Header("X-Session-Set"),
              EncodeSessionData(DemoSession{}));
    EXPECT_TRUE(absl::StrContains(std::string(r.Header("Set-Cookie")),
                                  "connect.sid="));
  }
  // A route's own write wins; a logout stays a logout.
  DemoRequest counter;
  counter.method = "POST";
  counter.target = "/api/counter";
  DemoResponse r = (*app)->Handle(counter);
  EXPECT_EQ(DecodeSessionData(r.Header("X-Session-Set")).counter, 1);
  DemoRequest logout;
  logout.method = "POST";
  logout.target = "/api/auth/logout";
  r = (*app)->Handle(logout);
  EXPECT_EQ(r.Header("X-Session-Destroy"), "1");
  EXPECT_EQ(r.Header("X-Session-Set"), "");
}

TEST_F(DemoAppTest, DefaultModeAsksForNoSessionOnPagesAndAssets) {
  for (const char* target : {"/", "/assets/main.js", "/api/health"}) {
    SCOPED_TRACE(target);
    const DemoResponse r = Call("GET", target);
    EXPECT_EQ(r.Header("X-Session-Set"), "");
  }
}

}  // namespace
}  // namespace sg::demo

// The real sessiongrid-edge talking to a TLS (mutual TLS) sessiongrid-server
// with --session-service-tls-ca/-cert/-key and a token file; certificates
// from the openssl CLI at run time (tests/testutil/pki.h).
#include <fstream>

#include "tests/integration/edge_harness.h"
#include "tests/testutil/pki.h"

namespace sg::edge_harness {
namespace {

class EdgeTlsTest : public EdgeTest {
 protected:
  void SetUp() override {
    EdgeTest::SetUp();
    auto pki = testutil::TestPki::Make(dir_);
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    token_file_ = dir_ + "/edge.token";
    std::ofstream(token_file_) << "edge-token\n";
  }

  // A server that requires a client certificate from the test CA.
  void StartTlsServer() {
    auto server = Subprocess::Start(
        {SG_SERVER_BIN, "--listen=127.0.0.1:0", "--data-dir=" + dir_ + "/data",
         "--metrics-listen=", "--tls-cert=" + pki_.server_cert,
         "--tls-key=" + pki_.server_key, "--tls-client-ca=" + pki_.ca_cert,
         "--admin-token-file=" + token_file_});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto line = server_->WaitForLine("msg=listening", absl::Seconds(30));
    ASSERT_TRUE(line.has_value()) << server_->Output();
    server_address_ = testutil::FieldFromLogLine(*line, "address");
    client::ClientOptions options;
    options.target = server_address_;
    options.tls_ca_file = pki_.ca_cert;
    options.tls_cert_file = pki_.client_cert;
    options.tls_key_file = pki_.client_key;
    auto c = client::Client::Create(options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  std::vector<std::string> EdgeTlsFlags() const {
    return {"--session-service-tls-ca=" + pki_.ca_cert,
            "--session-service-tls-cert=" + pki_.client_cert,
            "--session-service-tls-key=" + pki_.client_key,
            "--session-service-token-file=" + token_file_};
  }

  testutil::TestPki pki_;
  std::string token_file_;
};

TEST_F(EdgeTlsTest, EdgeServesSessionsOverMutualTls) {
  StartTlsServer();
  ASSERT_FALSE(HasFatalFailure());
  StartEdge(EdgeTlsFlags());
  ASSERT_FALSE(HasFatalFailure());
  const auto before = Stats();

  HttpMessage r = Do(Get("/api/user/cart?set=" + B64("tls-data"), kBrowser));
  ASSERT_TRUE(r.SessionSetCookie().has_value()) << r.body;
  EXPECT_EQ(Stats().creates(), before.creates() + 1);
  const std::string with = std::string(kBrowser) + "Cookie: connect.sid=" +
                           CookieValue(*r.SessionSetCookie()) + "\r\n";
  r = Do(Get("/api/user/cart", with));
  EXPECT_TRUE(Echoed(r, "X-Session-Status: loaded")) << r.body;
  EXPECT_TRUE(Echoed(r, "X-Session-Data: " + B64("tls-data"))) << r.body;
}

TEST_F(EdgeTlsTest, EdgeWithoutAClientCertificateGetsNoSession) {
  StartTlsServer();
  ASSERT_FALSE(HasFatalFailure());
  StartEdge({"--session-service-tls-ca=" + pki_.ca_cert});
  ASSERT_FALSE(HasFatalFailure());
  const auto before = Stats();
  // Fail-open: the page is served, but the handshake is refused, so no
  // session is created and no cookie is issued.
  HttpMessage r = Do(Get("/api/user/cart?set=" + B64("x"), kBrowser));
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.SessionSetCookie().has_value()) << r.body;
  EXPECT_EQ(Stats().creates(), before.creates());
}

TEST_F(EdgeTlsTest, BadSessionServiceTlsFilesStopTheEdgeNamingTheFlag) {
  if (!upstream_) upstream_ = std::make_unique<Upstream>();
  auto run = [&](std::vector<std::string> extra, const std::string& needle) {
    std::vector<std::string> argv = {
        SG_EDGE_BIN, "--listen=127.0.0.1:0", "--admin-listen=127.0.0.1:0",
        "--upstream=" + upstream_->url(), "--session-service=127.0.0.1:1",
        "--cookie-secret-file=" + dir_ + "/secrets"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto edge = Subprocess::Start(argv);
    ASSERT_TRUE(edge.ok());
    EXPECT_EQ((*edge)->Wait(absl::Seconds(30)), 2) << (*edge)->Output();
    EXPECT_NE((*edge)->Output().find(needle), std::string::npos)
        << "want '" << needle << "' in: " << (*edge)->Output();
  };
  run({"--session-service-tls-ca=" + dir_ + "/none.pem"},
      "--session-service-tls-ca: cannot read");
  run({"--session-service-tls-cert=" + pki_.client_cert,
       "--session-service-tls-key=" + pki_.client_key},
      "--session-service-tls-cert: needs --session-service-tls-ca");
  run({"--session-service-tls-ca=" + pki_.ca_cert,
       "--session-service-tls-cert=" + pki_.client_cert,
       "--session-service-tls-key=" + pki_.server_key},
      "--session-service-tls-key: " + pki_.server_key + " is not the private key");
  run({"--session-service-token-file=" + dir_ + "/none.token"},
      "--session-service-token-file: cannot read");
}

}  // namespace
}  // namespace sg::edge_harness

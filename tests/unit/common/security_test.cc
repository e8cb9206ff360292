// sg_security without a server: token files, constant-time equality, the
// guard's codes, and the TLS options' checks (certificates from openssl).
#include <grpcpp/grpcpp.h>

#include <fstream>

#include "common/bearer_token.h"
#include "common/tls_credentials.h"
#include "gtest/gtest.h"
#include "tests/testutil/pki.h"
#include "tests/testutil/subprocess.h"

namespace sg::security {
namespace {

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testutil::MakeTempDir("sg-security"); }
  void TearDown() override { testutil::RemoveTree(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(SecurityTest, TokenFileIsTrimmedAndMustHoldOnePrintableToken) {
  auto token = ReadTokenFile(Write("t", "  abc.DEF-123_~\n"), "--x");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "abc.DEF-123_~");
  EXPECT_EQ(ReadTokenFile(Write("e", " \n\t"), "--x").status().message(),
            "--x: " + dir_ + "/e holds no token");
  EXPECT_EQ(ReadTokenFile(Write("s", "two words"), "--x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTokenFile(Write("c", std::string("a\0b", 3)), "--x").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto missing = ReadTokenFile(dir_ + "/none", "--admin-token-file");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message().rfind("--admin-token-file: cannot read", 0),
            0u)
      << missing.status();
}

TEST_F(SecurityTest, ConstantTimeEqualsComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("secret", ""));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST_F(SecurityTest, TlsOptionsNameTheFlagOfTheBadFile) {
  auto pki = testutil::TestPki::Make(dir_);
  ASSERT_TRUE(pki.ok()) << pki.status();
  ServerTlsOptions server;
  EXPECT_TRUE(server.Validate().ok());  // off
  server.cert_file = pki->server_cert;
  server.key_file = pki->server_key;
  server.client_ca_file = pki->ca_cert;
  EXPECT_TRUE(server.Validate().ok()) << server.Validate();
  server.cert_flag = "--peer-tls-cert";
  server.cert_file = Write("bad.pem", "-----BEGIN CERTIFICATE-----\nxx\n");
  EXPECT_EQ(server.Validate().message(),
            "--peer-tls-cert: " + server.cert_file + " holds no PEM certificate");

  ChannelTlsOptions channel;
  EXPECT_TRUE(channel.Validate().ok());  // off
  channel.cert_file = pki->client_cert;
  EXPECT_EQ(channel.Validate().message(),
            "--tls-cert: needs --tls-ca (the CA of the server)");
  channel.ca_file = pki->ca_cert;
  EXPECT_EQ(channel.Validate().message(), "--tls-key: is required with --tls-cert");
  channel.key_file = pki->client_key;
  EXPECT_TRUE(channel.Validate().ok()) << channel.Validate();
  EXPECT_TRUE(MakeChannelCredentials(channel).ok());
  EXPECT_TRUE(MakeServerCredentials(ServerTlsOptions{}).ok());
}

}  // namespace
}  // namespace sg::security

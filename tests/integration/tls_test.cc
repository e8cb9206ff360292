// TLS and authentication of the real sessiongrid-server over loopback, with
// certificates made at run time by the openssl CLI (tests/testutil/pki.h):
// the client port serves TLS (health and reflection too), refuses
// plaintext, wrong CAs and (with --tls-client-ca) clients without a
// certificate from that CA; a rotated certificate is served without a
// restart; bad files stop start-up naming the flag; admin calls need the
// admin token.
//
// This binary must not link grpc++_reflection (see TOOLCHAIN.md): it has its
// own generated reflection.pb.cc.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "ctl.h"
#include "gtest/gtest.h"
#include "sessiongrid/client.h"
#include "sessiongrid/replica/v1/replica.grpc.pb.h"
#include "sessiongrid/v1/admin.grpc.pb.h"
#include "sessiongrid/v1/session.grpc.pb.h"
#include "tests/testutil/cluster.h"
#include "tests/testutil/pki.h"
#include "tests/testutil/subprocess.h"

namespace sg {
namespace {
namespace refl = ::grpc::reflection::v1alpha;
namespace health = ::grpc::health::v1;
namespace v1 = ::sessiongrid::v1;
using testutil::Subprocess;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::chrono::system_clock::time_point In(absl::Duration d) {
  return std::chrono::system_clock::now() +
         std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

// A standard TLS client, the way grpcurl -cacert [-cert -key] dials: trusts
// `ca`, presents `cert`/`key` when given.
std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca,
                                              const std::string& cert = "",
                                              const std::string& key = "") {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadAll(ca);
  if (!cert.empty()) {
    o.pem_cert_chain = ReadAll(cert);
    o.pem_private_key = ReadAll(key);
  }
  return grpc::SslCredentials(o);
}

// A channel with its own connection (no subchannel shared with earlier
// channels), so each one makes a fresh handshake.
std::shared_ptr<grpc::Channel> Fresh(
    const std::string& address,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, credentials, args);
}

// Health/Check on a fresh channel: the status, and the serial of the
// certificate the server presented ("" when none).
struct Probe {
  grpc::Status status;
  std::string serial;
};
Probe Check(const std::string& address,
            std::shared_ptr<grpc::ChannelCredentials> credentials) {
  auto stub = health::Health::NewStub(Fresh(address, credentials));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(5)));
  health::HealthCheckRequest req;
  health::HealthCheckResponse resp;
  Probe p;
  p.status = stub->Check(&ctx, req, &resp);
  if (p.status.ok() && resp.status() != health::HealthCheckResponse::SERVING) {
    p.status = grpc::Status(grpc::StatusCode::UNKNOWN, "not SERVING");
  }
  if (auto auth = ctx.auth_context(); auth != nullptr) {
    for (const grpc::string_ref& pem : auth->FindPropertyValues("x509_pem_cert")) {
      p.serial = testutil::SerialOfPem(std::string(pem.data(), pem.size()));
    }
  }
  return p;
}

class TlsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testutil::MakeTempDir("sg-tls");
    auto pki = testutil::TestPki::Make(dir_);
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
  }
  void TearDown() override {
    if (server_ != nullptr) {
      server_->Signal(SIGTERM);
      EXPECT_EQ(server_->Wait(absl::Seconds(30)), 0) << server_->Output();
    }
    testutil::RemoveTree(dir_);
  }

  std::vector<std::string> BaseArgs() const {
    return {SG_SERVER_BIN, "--listen=127.0.0.1:0",
            "--data-dir=" + dir_ + "/data", "--node-id=tls-node",
            "--metrics-listen="};
  }

  // Starts the server with `flags` and waits until it listens.
  void StartServer(std::vector<std::string> flags) {
    std::vector<std::string> argv = BaseArgs();
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto server = Subprocess::Start(argv);
    ASSERT_TRUE(server.ok());
    server_ = *std::move(server);
    auto line = server_->WaitForLine("msg=listening", absl::Seconds(30));
    ASSERT_TRUE(line.has_value()) << server_->Output();
    address_ = testutil::FieldFromLogLine(*line, "address");
  }

  // Runs the server with `flags` expecting it to refuse to start: exit 2
  // and an error line that contains `needle`.
  void ExpectStartError(std::vector<std::string> flags,
                        const std::string& needle) {
    std::vector<std::string> argv = BaseArgs();
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto server = Subprocess::Start(argv);
    ASSERT_TRUE(server.ok());
    EXPECT_EQ((*server)->Wait(absl::Seconds(30)), 2) << (*server)->Output();
    EXPECT_TRUE(absl::StrContains((*server)->Output(), needle))
        << "want '" << needle << "' in: " << (*server)->Output();
  }

  std::vector<std::string> TlsFlags() const {
    return {"--tls-cert=" + pki_.server_cert, "--tls-key=" + pki_.server_key};
  }

  std::string dir_;
  testutil::TestPki pki_;
  std::unique_ptr<Subprocess> server_;
  std::string address_;
};

TEST_F(TlsServerTest, ServesTlsWithHealthAndReflectionAndRefusesPlaintext) {
  StartServer(TlsFlags());
  EXPECT_NE(server_->Output().find("tls=on"), std::string::npos);

  Probe ok = Check(address_, Tls(pki_.ca_cert));
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.serial, "1001");

  // Reflection, as grpcurl -cacert ca.crt ADDRESS list does it.
  auto channel = Fresh(address_, Tls(pki_.ca_cert));
  auto reflection = refl::ServerReflection::NewStub(channel);
  grpc::ClientContext rctx;
  rctx.set_deadline(In(absl::Seconds(10)));
  auto stream = reflection->ServerReflectionInfo(&rctx);
  refl::ServerReflectionRequest req;
  req.set_list_services("*");
  ASSERT_TRUE(stream->Write(req));
  stream->WritesDone();
  refl::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_TRUE(stream->Finish().ok());
  std::set<std::string> services;
  for (const auto& s : resp.list_services_response().service()) {
    services.insert(s.name());
  }
  EXPECT_TRUE(services.count("sessiongrid.v1.SessionService")) << resp.DebugString();

  // A session over TLS.
  auto sessions = v1::SessionService::NewStub(channel);
  grpc::ClientContext cctx;
  cctx.set_deadline(In(absl::Seconds(5)));
  v1::CreateRequest create;
  create.set_data("over tls");
  v1::CreateResponse created;
  ASSERT_TRUE(sessions->Create(&cctx, create, &created).ok());
  EXPECT_EQ(created.session().id().size(), 43u);

  // Plaintext, and TLS trusting another CA, never get an answer.
  Probe plain = Check(address_, grpc::InsecureChannelCredentials());
  EXPECT_EQ(plain.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << plain.status.error_message();
  Probe wrong_ca = Check(address_, Tls(pki_.other_ca_cert));
  EXPECT_EQ(wrong_ca.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << wrong_ca.status.error_message();
}

TEST_F(TlsServerTest, MutualTlsRefusesClientsWithoutACertificateFromTheCa) {
  std::vector<std::string> flags = TlsFlags();
  flags.push_back("--tls-client-ca=" + pki_.ca_cert);
  StartServer(flags);
  EXPECT_NE(server_->Output().find("tls=mutual"), std::string::npos);

  Probe with_cert =
      Check(address_, Tls(pki_.ca_cert, pki_.client_cert, pki_.client_key));
  EXPECT_TRUE(with_cert.status.ok()) << with_cert.status.error_message();

  Probe no_cert = Check(address_, Tls(pki_.ca_cert));
  EXPECT_EQ(no_cert.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << no_cert.status.error_message();
  Probe foreign = Check(
      address_, Tls(pki_.ca_cert, pki_.other_client_cert, pki_.other_client_key));
  EXPECT_EQ(foreign.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << foreign.status.error_message();
}

TEST_F(TlsServerTest, RotatedCertificateIsServedToNewConnectionsWithoutRestart) {
  std::vector<std::string> flags = TlsFlags();
  flags.push_back("--tls-reload-interval=1s");
  StartServer(flags);
  Probe before = Check(address_, Tls(pki_.ca_cert));
  ASSERT_TRUE(before.status.ok()) << before.status.error_message();
  ASSERT_EQ(before.serial, "1001");

  // cert-manager's renewal: a new certificate (serial 1002) for the same
  // key lands in place of the old file.
  ASSERT_TRUE(pki_.Reissue(pki_.server_key, pki_.server_cert, 1002).ok());
  Probe after;
  const bool rotated = testutil::PollUntil(
      [&] {
        after = Check(address_, Tls(pki_.ca_cert));
        return after.status.ok() && after.serial == "1002";
      },
      absl::Seconds(30));
  EXPECT_TRUE(rotated) << "still serving serial " << after.serial << ": "
                       << after.status.error_message();
  EXPECT_FALSE(server_->Wait(absl::ZeroDuration()).has_value())
      << "the server exited";
}

TEST_F(TlsServerTest, BadTlsFilesStopStartUpNamingTheFlag) {
  const std::string missing = dir_ + "/missing.pem";
  const std::string garbage = dir_ + "/garbage.pem";
  WriteAll(garbage, "not a certificate\n");
  ExpectStartError({"--tls-cert=" + missing, "--tls-key=" + pki_.server_key},
                   "--tls-cert: cannot read " + missing);
  ExpectStartError({"--tls-key=" + pki_.server_key}, "--tls-cert: is required");
  ExpectStartError({"--tls-cert=" + pki_.server_cert}, "--tls-key: is required");
  ExpectStartError({"--tls-cert=" + garbage, "--tls-key=" + pki_.server_key},
                   "--tls-cert: " + garbage + " holds no PEM certificate");
  ExpectStartError({"--tls-cert=" + pki_.server_cert, "--tls-key=" + garbage},
                   "--tls-key: " + garbage + " holds no PEM private key");
  ExpectStartError(
      {"--tls-cert=" + pki_.server_cert, "--tls-key=" + pki_.client_key},
      "--tls-key: " + pki_.client_key + " is not the private key of");
  ExpectStartError({"--tls-client-ca=" + pki_.ca_cert}, "--tls-client-ca: needs");
  std::vector<std::string> bad_ca = TlsFlags();
  bad_ca.push_back("--tls-client-ca=" + missing);
  ExpectStartError(bad_ca, "--tls-client-ca: cannot read");
}

// Calls with `token` ("" = no authorization metadata; `raw` = the whole
// header value instead of "Bearer <token>").
grpc::Status CallReadLocal(v1::AdminService::Stub& admin, const std::string& id,
                           const std::string& token, bool raw = false) {
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(5)));
  if (!token.empty()) {
    ctx.AddMetadata("authorization", raw ? token : "Bearer " + token);
  }
  v1::ReadLocalRequest req;
  req.set_id(id);
  v1::ReadLocalResponse resp;
  return admin.ReadLocal(&ctx, req, &resp);
}

TEST_F(TlsServerTest, AdminTokenGuardsReadLocalAndLeavesStatusAndSessionsOpen) {
  const std::string token_file = dir_ + "/admin.token";
  WriteAll(token_file, "s3cret-admin-token\n");  // the newline is not part
  StartServer({"--admin-token-file=" + token_file});
  EXPECT_NE(server_->Output().find("admin_auth=token"), std::string::npos);
  EXPECT_NE(server_->Output().find("admin token travels in clear"),
            std::string::npos);
  auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  auto sessions = v1::SessionService::NewStub(channel);
  auto admin = v1::AdminService::NewStub(channel);

  // Session calls and status calls need no token.
  grpc::ClientContext cctx;
  cctx.set_deadline(In(absl::Seconds(5)));
  v1::CreateRequest create;
  create.set_data("x");
  v1::CreateResponse created;
  ASSERT_TRUE(sessions->Create(&cctx, create, &created).ok());
  const std::string id = created.session().id();
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(5)));
    v1::NodeStatsResponse stats;
    EXPECT_TRUE(admin->NodeStats(&ctx, v1::NodeStatsRequest(), &stats).ok());
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(5)));
    v1::ClusterStatusResponse status;
    EXPECT_TRUE(
        admin->ClusterStatus(&ctx, v1::ClusterStatusRequest(), &status).ok());
  }
  EXPECT_TRUE(Check(address_, grpc::InsecureChannelCredentials()).status.ok());

  EXPECT_EQ(CallReadLocal(*admin, id, "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallReadLocal(*admin, id, "Basic czNjcmV0", /*raw=*/true).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallReadLocal(*admin, id, "s3cret-admin-tokeN").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CallReadLocal(*admin, id, "s3cret").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status right = CallReadLocal(*admin, id, "s3cret-admin-token");
  EXPECT_TRUE(right.ok()) << right.error_message();

  // Listing every session, and listing or logging out a principal's, are
  // admin calls too.
  auto principal_call = [&](int which, const std::string& token) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(5)));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    if (which == 2) {
      v1::ListSessionsRequest req;
      v1::ListSessionsResponse resp;
      return sessions->ListSessions(&ctx, req, &resp);
    }
    if (which == 1) {
      v1::DeleteByPrincipalRequest req;
      req.set_principal("alice");
      v1::DeleteByPrincipalResponse resp;
      return sessions->DeleteByPrincipal(&ctx, req, &resp);
    }
    v1::ListByPrincipalRequest req;
    req.set_principal("alice");
    v1::ListByPrincipalResponse resp;
    return sessions->ListByPrincipal(&ctx, req, &resp);
  };
  for (int remove : {0, 1, 2}) {
    SCOPED_TRACE(remove == 2   ? "ListSessions"
                 : remove == 1 ? "DeleteByPrincipal"
                               : "ListByPrincipal");
    EXPECT_EQ(principal_call(remove, "").error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(principal_call(remove, "guess").error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    grpc::Status ok = principal_call(remove, "s3cret-admin-token");
    EXPECT_TRUE(ok.ok()) << ok.error_message();
  }
}

TEST_F(TlsServerTest, ClientRereadsItsCaFileWithoutANewClient) {
  StartServer(TlsFlags());
  // The client starts with the wrong CA in its file, then the right one
  // lands there (a rotated CA bundle).
  const std::string ca = dir_ + "/client-ca.pem";
  WriteAll(ca, ReadAll(pki_.other_ca_cert));
  client::ClientOptions o;
  o.target = address_;
  o.deadline = absl::Seconds(2);
  o.max_attempts = 1;
  o.tls_ca_file = ca;
  o.tls_reload_interval = absl::Seconds(1);
  auto client = client::Client::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  v1::CreateRequest create;
  create.set_data("x");
  EXPECT_EQ((*client)->Create(create).status().code(),
            absl::StatusCode::kUnavailable);
  WriteAll(ca + ".tmp", ReadAll(pki_.ca_cert));
  ASSERT_EQ(std::rename((ca + ".tmp").c_str(), ca.c_str()), 0);
  absl::Status last;
  const bool trusted = testutil::PollUntil(
      [&] {
        last = (*client)->Create(create).status();
        return last.ok();
      },
      // The file is re-read within a second, but a channel whose
      // handshakes failed retries on gRPC's reconnect backoff (1 s x 1.6^n:
      // the fifth attempt, ~16 s in, is the first that succeeds here).
      absl::Seconds(60));
  EXPECT_TRUE(trusted) << last;
}

TEST_F(TlsServerTest, BadAdminTokenFileStopsStartUp) {
  const std::string empty = dir_ + "/empty.token";
  WriteAll(empty, "\n");
  ExpectStartError({"--admin-token-file=" + empty},
                   "--admin-token-file: " + empty + " holds no token");
  ExpectStartError({"--admin-token-file=" + dir_ + "/none"},
                   "--admin-token-file: cannot read");
}

TEST_F(TlsServerTest, ClientLibraryAndCtlUseTlsClientCertificatesAndTokens) {
  const std::string token_file = dir_ + "/admin.token";
  const std::string wrong_file = dir_ + "/wrong.token";
  WriteAll(token_file, "ctl-token");
  WriteAll(wrong_file, "not-the-token");
  std::vector<std::string> flags = TlsFlags();
  flags.push_back("--tls-client-ca=" + pki_.ca_cert);
  flags.push_back("--admin-token-file=" + token_file);
  StartServer(flags);

  client::ClientOptions o;
  o.target = address_;
  o.deadline = absl::Seconds(5);
  o.tls_ca_file = pki_.ca_cert;
  o.tls_cert_file = pki_.client_cert;
  o.tls_key_file = pki_.client_key;
  o.token_file = token_file;
  auto client = client::Client::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  v1::CreateRequest create;
  create.set_data("from the library");
  auto created = (*client)->Create(create);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string id = created->session().id();
  v1::ReadLocalRequest read;
  read.set_id(id);
  auto local = (*client)->ReadLocal(read);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->session().data(), "from the library");

  // Without the client certificate the handshake fails.
  client::ClientOptions no_cert = o;
  no_cert.tls_cert_file.clear();
  no_cert.tls_key_file.clear();
  no_cert.max_attempts = 1;
  auto anonymous = client::Client::Create(no_cert);
  ASSERT_TRUE(anonymous.ok()) << anonymous.status();
  EXPECT_EQ((*anonymous)->Create(create).status().code(),
            absl::StatusCode::kUnavailable);
  // A certificate and key that do not belong together are refused at once.
  client::ClientOptions mismatched = o;
  mismatched.tls_key_file = pki_.server_key;
  EXPECT_EQ(client::Client::Create(mismatched).status().code(),
            absl::StatusCode::kInvalidArgument);

  // sessiongridctl with the same flags.
  auto ctl = [&](std::vector<std::string> extra, std::string* out_text,
                 std::string* err_text) {
    std::vector<std::string> args = {"--server", address_,
                                     "--tls-ca=" + pki_.ca_cert,
                                     "--tls-cert", pki_.client_cert,
                                     "--tls-key", pki_.client_key};
    args.insert(args.end(), extra.begin(), extra.end());
    std::ostringstream out, err;
    const int code = client::RunCtl(args, "", out, err);
    *out_text = out.str();
    *err_text = err.str();
    return code;
  };
  std::string out, err;
  EXPECT_EQ(ctl({"--token-file", token_file, "read-local", id}, &out, &err), 0)
      << err;
  EXPECT_NE(out.find(id), std::string::npos) << out;
  EXPECT_EQ(ctl({"read-local", id}, &out, &err), 1);
  EXPECT_NE(err.find("UNAUTHENTICATED"), std::string::npos) << err;
  EXPECT_EQ(ctl({"--token-file=" + wrong_file, "read-local", id}, &out, &err), 1);
  EXPECT_NE(err.find("PERMISSION_DENIED"), std::string::npos) << err;
  EXPECT_EQ(ctl({"delete-by-principal", "bob"}, &out, &err), 1);
  EXPECT_NE(err.find("UNAUTHENTICATED"), std::string::npos) << err;
  EXPECT_EQ(ctl({"delete-by-principal", "bob", "--token-file", token_file},
                &out, &err),
            0)
      << err;
  EXPECT_EQ(ctl({"health"}, &out, &err), 0) << err;
  EXPECT_EQ(ctl({"--tls-ca=" + dir_ + "/none.pem", "health"}, &out, &err), 2);
  EXPECT_NE(err.find("--tls-ca: cannot read"), std::string::npos) << err;
}

// A call to a peer port, as a rogue client would make it.
grpc::Status PeerRead(const std::string& peer_address,
                      std::shared_ptr<grpc::ChannelCredentials> credentials,
                      const std::string& token = "") {
  auto stub = sessiongrid::replica::v1::ReplicaService::NewStub(
      Fresh(peer_address, credentials));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(5)));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  sessiongrid::replica::v1::ReadRequest req;
  sessiongrid::replica::v1::ReadResponse resp;
  return stub->Read(&ctx, req, &resp);
}

// Creates a session through node 0 and waits until every node holds it.
void ExpectReplicated(testutil::TestCluster& cluster) {
  ASSERT_TRUE(cluster.WaitForView(0, absl::Seconds(30)));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(5)));
  v1::CreateRequest create;
  create.set_data("replicated");
  v1::CreateResponse created;
  grpc::Status s = cluster.sessions(0).Create(&ctx, create, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::string id = created.session().id();
  const bool everywhere = testutil::PollUntil(
      [&] {
        for (int i = 0; i < cluster.size(); ++i) {
          auto local = cluster.ReadLocal(i, id);
          if (!local.ok() || local->session().data() != "replicated") return false;
        }
        return true;
      },
      absl::Seconds(30));
  EXPECT_TRUE(everywhere) << "the session did not reach every node";
}

TEST_F(TlsServerTest, PeerMutualTlsClusterReplicatesAndRefusesCallersThatAreNotPeers) {
  // Peers get their own CA (here the "other" CA and its certificate), so
  // no client certificate from the client CA opens the peer port.
  const std::string peer_token = dir_ + "/peer.token";
  WriteAll(peer_token, "peer-secret");
  testutil::TestCluster cluster(
      SG_SERVER_BIN, dir_ + "/cluster", 3,
      {"--tls-cert=" + pki_.server_cert, "--tls-key=" + pki_.server_key,
       "--peer-tls-cert=" + pki_.other_client_cert,
       "--peer-tls-key=" + pki_.other_client_key,
       "--peer-tls-ca=" + pki_.other_ca_cert,
       "--peer-token-file=" + peer_token, "--metrics-listen="});
  cluster.SetClientCredentials(Tls(pki_.ca_cert));
  cluster.Start();
  ExpectReplicated(cluster);
  EXPECT_NE(cluster.process(0)->Output().find("peer_tls=mutual peer_auth=token"),
            std::string::npos);

  // The client library over TLS to a list of nodes (each address checked
  // against its own certificate; owner routing on).
  client::ClientOptions o;
  o.target = absl::StrCat(cluster.node(0).client_address(), ",",
                          cluster.node(1).client_address(), ",",
                          cluster.node(2).client_address());
  o.deadline = absl::Seconds(5);
  o.tls_ca_file = pki_.ca_cert;
  auto client = client::Client::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  v1::CreateRequest create;
  create.set_data("via the list");
  auto created = (*client)->Create(create);
  ASSERT_TRUE(created.ok()) << created.status();
  v1::GetRequest get;
  get.set_id(created->session().id());
  auto got = (*client)->Get(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->session().data(), "via the list");

  const std::string peer = cluster.node(0).peer_address();
  grpc::Status plain = PeerRead(peer, grpc::InsecureChannelCredentials());
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << plain.error_message();
  grpc::Status no_cert = PeerRead(peer, Tls(pki_.other_ca_cert));
  EXPECT_EQ(no_cert.error_code(), grpc::StatusCode::UNAVAILABLE)
      << no_cert.error_message();
  // An edge's or operator's certificate (the client CA) is not a peer's.
  grpc::Status client_cert = PeerRead(
      peer, Tls(pki_.other_ca_cert, pki_.client_cert, pki_.client_key));
  EXPECT_EQ(client_cert.error_code(), grpc::StatusCode::UNAVAILABLE)
      << client_cert.error_message();
  // A peer certificate still needs the peer token.
  auto peer_tls =
      Tls(pki_.other_ca_cert, pki_.other_client_cert, pki_.other_client_key);
  EXPECT_EQ(PeerRead(peer, peer_tls).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(PeerRead(peer, peer_tls, "guess").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status ok = PeerRead(peer, peer_tls, "peer-secret");
  EXPECT_TRUE(ok.ok()) << ok.error_message();
}

TEST_F(TlsServerTest, PeerTokenAloneGuardsAPlaintextPeerPort) {
  const std::string peer_token = dir_ + "/peer.token";
  WriteAll(peer_token, "only-peers-know\n");
  testutil::TestCluster cluster(
      SG_SERVER_BIN, dir_ + "/cluster", 3,
      {"--peer-token-file=" + peer_token, "--metrics-listen="});
  cluster.Start();
  ExpectReplicated(cluster);
  EXPECT_NE(cluster.process(1)->Output().find("peer_auth=token"),
            std::string::npos);
  const std::string peer = cluster.node(1).peer_address();
  EXPECT_EQ(PeerRead(peer, grpc::InsecureChannelCredentials()).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(PeerRead(peer, grpc::InsecureChannelCredentials(), "only-peers")
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(TlsServerTest, IncompletePeerTlsFlagsStopStartUp) {
  const std::string peer_listen =
      absl::StrCat("--peer-listen=127.0.0.1:", testutil::FreePort());
  ExpectStartError({"--peers=127.0.0.1:1", peer_listen,
                    "--peer-tls-cert=" + pki_.server_cert,
                    "--peer-tls-key=" + pki_.server_key},
                   "--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together");
  ExpectStartError({"--peers=127.0.0.1:1", peer_listen,
                    "--peer-tls-cert=" + pki_.server_cert,
                    "--peer-tls-key=" + pki_.client_key,
                    "--peer-tls-ca=" + pki_.ca_cert},
                   "--peer-tls-key: " + pki_.client_key + " is not the private key");
}

}  // namespace
}  // namespace sg

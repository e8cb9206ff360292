#include "tests/testutil/pki.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/testutil/subprocess.h"

namespace sg::testutil {
namespace {

// execv does not search PATH; Debian's openssl package installs here.
constexpr const char* kOpenssl = "/usr/bin/openssl";

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// A self-signed CA.
absl::Status MakeCa(const std::string& cert, const std::string& key,
                    const std::string& name) {
  return RunCommand({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                     "-out", cert, "-days", "2", "-subj", "/CN=" + name,
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                     "keyUsage=critical,keyCertSign,cRLSign"});
}

absl::Status NewKey(const std::string& key, const std::string& csr,
                    const std::string& name) {
  return RunCommand({kOpenssl, "req", "-new", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                     "-out", csr, "-subj", "/CN=" + name});
}

// Signs `csr` with the CA into `cert`.
absl::Status Sign(const std::string& dir, const std::string& csr,
                  const std::string& ca_cert, const std::string& ca_key,
                  const std::string& cert, int serial) {
  const std::string ext = absl::StrCat(dir, "/ext-", serial, ".cnf");
  absl::Status w = WriteFile(
      ext,
      "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
      "basicConstraints=CA:FALSE\n"
      "keyUsage=critical,digitalSignature\n"
      "extendedKeyUsage=serverAuth,clientAuth\n");
  if (!w.ok()) return w;
  return RunCommand({kOpenssl, "x509", "-req", "-in", csr, "-CA", ca_cert,
                     "-CAkey", ca_key, "-set_serial", absl::StrCat(serial),
                     "-days", "2", "-out", cert, "-extfile", ext});
}

}  // namespace

absl::Status RunCommand(const std::vector<std::string>& argv) {
  auto proc = Subprocess::Start(argv);
  if (!proc.ok()) return proc.status();
  std::optional<int> code = (*proc)->Wait(absl::Seconds(60));
  if (code != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " failed (exit ",
                                            code.value_or(-1), "): ",
                                            (*proc)->Output()));
  }
  return absl::OkStatus();
}

absl::StatusOr<TestPki> TestPki::Make(const std::string& dir) {
  TestPki p;
  p.dir = dir;
  auto at = [&dir](const char* name) { return absl::StrCat(dir, "/", name); };
  p.ca_cert = at("ca.crt");
  p.ca_key = at("ca.key");
  p.server_cert = at("server.crt");
  p.server_key = at("server.key");
  p.client_cert = at("client.crt");
  p.client_key = at("client.key");
  p.other_ca_cert = at("other-ca.crt");
  p.other_ca_key = at("other-ca.key");
  p.other_client_cert = at("other-client.crt");
  p.other_client_key = at("other-client.key");
  for (absl::Status s : {
           MakeCa(p.ca_cert, p.ca_key, "sessiongrid-test-ca"),
           MakeCa(p.other_ca_cert, p.other_ca_key, "unrelated-ca"),
           NewKey(p.server_key, at("server.csr"), "localhost"),
           Sign(dir, at("server.csr"), p.ca_cert, p.ca_key, p.server_cert, 1001),
           NewKey(p.client_key, at("client.csr"), "client"),
           Sign(dir, at("client.csr"), p.ca_cert, p.ca_key, p.client_cert, 2001),
           NewKey(p.other_client_key, at("other.csr"), "intruder"),
           Sign(dir, at("other.csr"), p.other_ca_cert, p.other_ca_key,
                p.other_client_cert, 3001),
       }) {
    if (!s.ok()) return s;
  }
  return p;
}

absl::Status TestPki::Reissue(const std::string& key,
                              const std::string& cert_out, int serial) const {
  const std::string csr = absl::StrCat(dir, "/reissue-", serial, ".csr");
  const std::string tmp = absl::StrCat(cert_out, ".tmp");
  absl::Status s = RunCommand({kOpenssl, "req", "-new", "-key", key, "-out",
                               csr, "-subj", "/CN=localhost"});
  if (!s.ok()) return s;
  s = Sign(dir, csr, ca_cert, ca_key, tmp, serial);
  if (!s.ok()) return s;
  if (std::rename(tmp.c_str(), cert_out.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp));
  }
  return absl::OkStatus();
}

std::string SerialOfPem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return "";
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
  char* dec = BN_bn2dec(bn);
  std::string out = dec != nullptr ? dec : "";
  OPENSSL_free(dec);
  BN_free(bn);
  X509_free(cert);
  return out;
}

}  // namespace sg::testutil

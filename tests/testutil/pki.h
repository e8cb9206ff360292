// Certificates for TLS tests, made at run time with the openssl CLI in a
// directory the test owns: a CA, a server certificate for 127.0.0.1 and
// localhost, a client certificate, and an unrelated second CA with its own
// client certificate (the "wrong certificate" cases).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace sg::testutil {

struct TestPki {
  std::string dir;
  std::string ca_cert, ca_key;          // the CA everyone trusts
  std::string server_cert, server_key;  // SAN IP:127.0.0.1, DNS:localhost
  std::string client_cert, client_key;  // signed by the CA
  std::string other_ca_cert, other_ca_key;      // unrelated CA
  std::string other_client_cert, other_client_key;  // signed by other_ca

  // Writes every file under `dir` (which must exist).
  static absl::StatusOr<TestPki> Make(const std::string& dir);

  // Issues `cert_out` for the existing key `key` (a new serial each time),
  // signed by ca_cert/ca_key, valid for 127.0.0.1 and localhost. Written to
  // a temporary name and renamed, as a Secret update lands.
  absl::Status Reissue(const std::string& key, const std::string& cert_out,
                       int serial) const;
};

// Runs `argv` to completion; its output in the error when it fails.
absl::Status RunCommand(const std::vector<std::string>& argv);

// The serial number (decimal) of the first certificate in PEM text.
std::string SerialOfPem(const std::string& pem);

}  // namespace sg::testutil

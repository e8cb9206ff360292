// TLS credentials for every gRPC port and channel SessionGrid opens: the
// server's client port, the peer port and peer channels, the client
// library (and through it the edge and sessiongridctl). Certificates and
// keys are PEM files watched by gRPC's FileWatcherCertificateProvider, so a
// rotated file (cert-manager) is used by new connections without a restart.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sg::security {

// A listener's TLS files. Each `*_flag` is the flag name errors cite.
struct ServerTlsOptions {
  std::string cert_file;       // PEM certificate chain; empty: plaintext
  std::string key_file;        // PEM private key of cert_file's leaf
  std::string client_ca_file;  // PEM CAs; set: clients must present a
                               // certificate signed by one (mTLS)
  // How often the files are re-read (gRPC's minimum is 1 s).
  absl::Duration reload_interval = absl::Seconds(60);
  std::string cert_flag = "--tls-cert";
  std::string key_flag = "--tls-key";
  std::string client_ca_flag = "--tls-client-ca";

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
  // INVALID_ARGUMENT naming the flag when: only one of cert and key is
  // given; a client CA without them; a file is missing, unreadable or not
  // PEM of the right kind; the key does not belong to the certificate.
  // Reads the files (so start-up fails clearly instead of every handshake).
  absl::Status Validate() const;
};

// Insecure credentials when !options.enabled(), else TLS credentials that
// reload the files every reload_interval and, with a client CA, request
// and verify a client certificate. Validates first.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options);

// A channel's TLS files.
struct ChannelTlsOptions {
  std::string ca_file;    // PEM CAs that sign the server; empty: plaintext
  std::string cert_file;  // PEM client certificate (optional, with key)
  std::string key_file;
  // Check that the server's certificate names the host dialled (SAN DNS or
  // IP). Peers turn it off: they dial addresses resolved from DNS and trust
  // any certificate from the dedicated peer CA.
  bool verify_hostname = true;
  absl::Duration reload_interval = absl::Seconds(60);
  std::string ca_flag = "--tls-ca";
  std::string cert_flag = "--tls-cert";
  std::string key_flag = "--tls-key";

  bool enabled() const { return !ca_file.empty(); }
  // INVALID_ARGUMENT naming the flag: a certificate or key without a CA,
  // one of cert/key without the other, unreadable or malformed files, a key
  // that does not match its certificate.
  absl::Status Validate() const;
};

// Insecure credentials when !options.enabled(), else TLS credentials
// (reloading the files). Validates first.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const ChannelTlsOptions& options);

}  // namespace sg::security

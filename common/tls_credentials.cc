#include "common/tls_credentials.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace sg::security {
namespace {

namespace gx = ::grpc::experimental;

absl::Status Bad(std::string_view flag, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(
      absl::string_view(flag.data(), flag.size()), ": ",
      absl::string_view(message.data(), message.size())));
}

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Bad(flag, absl::StrCat("cannot read ", path, ": ",
                                  std::strerror(errno)));
  }
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (in.bad()) return Bad(flag, absl::StrCat("cannot read ", path));
  if (text.empty()) return Bad(flag, absl::StrCat(path, " is empty"));
  return text;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Bio MemBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The first certificate of a PEM file (a chain's leaf).
absl::StatusOr<Cert> LoadCert(const std::string& path, std::string_view flag) {
  SG_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, flag));
  Bio bio = MemBio(pem);
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (cert == nullptr) {
    return Bad(flag, absl::StrCat(path, " holds no PEM certificate"));
  }
  return cert;
}

absl::StatusOr<Key> LoadKey(const std::string& path, std::string_view flag) {
  SG_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, flag));
  Bio bio = MemBio(pem);
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return Bad(flag, absl::StrCat(path,
                                  " holds no PEM private key (an encrypted "
                                  "key is not supported)"));
  }
  return key;
}

// Checks a certificate/key pair: both readable and the key the leaf's.
absl::Status CheckPair(const std::string& cert_file, std::string_view cert_flag,
                       const std::string& key_file, std::string_view key_flag) {
  SG_ASSIGN_OR_RETURN(Cert cert, LoadCert(cert_file, cert_flag));
  SG_ASSIGN_OR_RETURN(Key key, LoadKey(key_file, key_flag));
  const int match = X509_check_private_key(cert.get(), key.get());
  ERR_clear_error();
  if (match != 1) {
    return Bad(key_flag, absl::StrCat(key_file, " is not the private key of ",
                                      cert_file, " (",
                                      absl::string_view(cert_flag.data(),
                                                        cert_flag.size()),
                                      ")"));
  }
  return absl::OkStatus();
}

unsigned int Seconds(absl::Duration d) {
  const int64_t s = absl::ToInt64Seconds(d);
  return s < 1 ? 1u : static_cast<unsigned int>(s);
}

}  // namespace

absl::Status ServerTlsOptions::Validate() const {
  if (!enabled()) {
    if (!client_ca_file.empty()) {
      return Bad(client_ca_flag, absl::StrCat("needs ", cert_flag, " and ",
                                              key_flag));
    }
    return absl::OkStatus();
  }
  if (cert_file.empty()) return Bad(cert_flag, absl::StrCat("is required with ", key_flag));
  if (key_file.empty()) return Bad(key_flag, absl::StrCat("is required with ", cert_flag));
  SG_RETURN_IF_ERROR(CheckPair(cert_file, cert_flag, key_file, key_flag));
  if (!client_ca_file.empty()) {
    SG_RETURN_IF_ERROR(LoadCert(client_ca_file, client_ca_flag).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsOptions& options) {
  SG_RETURN_IF_ERROR(options.Validate());
  if (!options.enabled()) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<gx::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, options.client_ca_file,
      Seconds(options.reload_interval));
  gx::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (options.client_ca_file.empty()) {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    tls.watch_root_certs();
    tls.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return gx::TlsServerCredentials(tls);
}

absl::Status ChannelTlsOptions::Validate() const {
  if (!enabled()) {
    if (!cert_file.empty() || !key_file.empty()) {
      return Bad(cert_file.empty() ? key_flag : cert_flag,
                 absl::StrCat("needs ", ca_flag, " (the CA of the server)"));
    }
    return absl::OkStatus();
  }
  SG_RETURN_IF_ERROR(LoadCert(ca_file, ca_flag).status());
  if (cert_file.empty() != key_file.empty()) {
    return cert_file.empty()
               ? Bad(cert_flag, absl::StrCat("is required with ", key_flag))
               : Bad(key_flag, absl::StrCat("is required with ", cert_flag));
  }
  if (!cert_file.empty()) {
    SG_RETURN_IF_ERROR(CheckPair(cert_file, cert_flag, key_file, key_flag));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const ChannelTlsOptions& options) {
  SG_RETURN_IF_ERROR(options.Validate());
  if (!options.enabled()) return grpc::InsecureChannelCredentials();
  std::shared_ptr<gx::FileWatcherCertificateProvider> provider;
  if (options.cert_file.empty()) {
    provider = std::make_shared<gx::FileWatcherCertificateProvider>(
        options.ca_file, Seconds(options.reload_interval));
  } else {
    provider = std::make_shared<gx::FileWatcherCertificateProvider>(
        options.key_file, options.cert_file, options.ca_file,
        Seconds(options.reload_interval));
  }
  gx::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(provider);
  tls.watch_root_certs();
  if (!options.cert_file.empty()) tls.watch_identity_key_cert_pairs();
  if (options.verify_hostname) {
    tls.set_certificate_verifier(
        std::make_shared<gx::HostNameCertificateVerifier>());
  } else {
    // The chain is still verified against ca_file.
    tls.set_certificate_verifier(std::make_shared<gx::NoOpCertificateVerifier>());
    tls.set_check_call_host(false);
  }
  return gx::TlsCredentials(tls);
}

}  // namespace sg::security

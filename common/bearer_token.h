// Bearer tokens on gRPC calls (`authorization: Bearer <token>` metadata):
// read from a file, attached to every call of a channel, checked on the
// server in constant time.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"

namespace sg::security {

// The token in `path`: its content without surrounding whitespace (a
// trailing newline from `echo` is not part of it). INVALID_ARGUMENT naming
// `flag` when the file cannot be read, is empty, or holds characters that
// cannot travel in a header (control bytes, inner whitespace).
absl::StatusOr<std::string> ReadTokenFile(const std::string& path,
                                          std::string_view flag);

// Equality in time that depends on neither content nor length: both sides
// are hashed (SHA-256) and the digests compared with CRYPTO_memcmp.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Checks the bearer token of incoming calls. Immutable; thread-safe.
class TokenGuard final {
 public:
  // An empty token: every call passes (the feature is off).
  explicit TokenGuard(std::string token) : token_(std::move(token)) {}

  bool enabled() const { return !token_.empty(); }
  // OK when off or the call carries `authorization: Bearer <token>`;
  // UNAUTHENTICATED when it carries none (or not a Bearer one),
  // PERMISSION_DENIED when the token is wrong. `what` names the protected
  // thing in the message ("admin", "peer").
  grpc::Status Check(const grpc::ServerContextBase& ctx,
                     std::string_view what) const;

 private:
  const std::string token_;
};

// A client interceptor factory that adds `authorization: Bearer <token>`
// to every call of the channel it is installed on. Works on plaintext and
// TLS channels alike (call credentials would refuse plaintext).
std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
MakeBearerTokenInterceptorFactory(std::string token);

}  // namespace sg::security

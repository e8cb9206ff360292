// SessionGrid C++ client: a typed, thread-safe API over SessionService,
// AdminService and grpc.health.v1.Health.
//
//   sg::client::ClientOptions options;
//   options.target = "10.0.0.1:7400,10.0.0.2:7400";
//   SG_ASSIGN_OR_RETURN(auto client, sg::client::Client::Create(options));
//   sessiongrid::v1::GetRequest req;
//   req.set_id(id);
//   absl::StatusOr<sessiongrid::v1::GetResponse> resp = client->Get(req);
//
// Errors come back as absl::Status with the gRPC code mapped one-to-one and
// the server's message kept.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/status.h"
#include "sessiongrid/v1/admin.grpc.pb.h"
#include "sessiongrid/v1/session.grpc.pb.h"

namespace sg::client {

// How a Client reaches the cluster and how hard it tries. Plain data; copy
// freely. Call Validate() (Client::Create does) before use.
struct ClientOptions {
  // Where to connect. One of:
  //  - a comma-separated list of HOST:PORT ("10.0.0.1:7400,10.0.0.2:7400",
  //    "[::1]:7400", "localhost:7400"). Literal IPs of one family become a
  //    single gRPC channel with the `ipv4:`/`ipv6:` multi-address form and
  //    the round_robin policy; otherwise the client keeps one channel per
  //    address and rotates over them itself.
  //  - a gRPC target with a scheme: `dns:///name:port` (round_robin over all
  //    resolved addresses), `ipv4:a:p,b:p`, `ipv6:[a]:p`, `unix:/path`.
  std::string target;

  // Budget for one call, retries and backoff included.
  absl::Duration deadline = absl::Seconds(1);

  // Attempts for an idempotent call that fails with UNAVAILABLE (1 = no
  // retry). Non-idempotent calls are always tried once.
  int max_attempts = 3;
  // Backoff before retry n is min(max_backoff, initial_backoff *
  // backoff_multiplier^(n-1)), scaled by a uniform factor in
  // [1 - jitter, 1 + jitter].
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(1);
  double backoff_multiplier = 2.0;
  double jitter = 0.2;
  // Seed of the jitter generator; 0 picks one from std::random_device.
  uint64_t seed = 0;

  // Largest message sent or received, in bytes.
  int max_message_bytes = 16 * 1024 * 1024;

  // HTTP/2 keepalive: ping after this much idle time while calls are active,
  // drop the connection when the ack takes longer than keepalive_timeout.
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration keepalive_timeout = absl::Seconds(20);

  // Independent HTTP/2 connections per channel target (each gets its own
  // subchannel pool). More than one helps a single process push many
  // concurrent calls.
  int connections = 1;

  // Owner routing: the client learns the cluster's ring (ClusterStatus,
  // refreshed every `ring_refresh` while calls are made) and sends a call
  // about one id to that id's first live owner, saving the coordinator a
  // hop; a retry, and any call made before the ring is known, goes to the
  // next node of `target`. An owner whose connection is failing is passed
  // over, and a call that is never retried (Regenerate, Update without
  // expected_version) goes to its owner only over a connection that is up.
  // Off: every call rotates over `target`.
  bool route_to_owners = true;
  absl::Duration ring_refresh = absl::Seconds(5);

  // TLS (sessiongridctl --tls-ca, --tls-cert, --tls-key): the PEM CA
  // bundle that signs the servers (empty: plaintext), and optionally a
  // client certificate and key to present (servers with --tls-client-ca
  // require one). The files are re-read every tls_reload_interval, so
  // rotated certificates need no new Client.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  absl::Duration tls_reload_interval = absl::Seconds(60);
  // The name the server certificates are checked against instead of the
  // host dialled (e.g. a Service name when dialling IPs). Empty: the host
  // of each address; a literal address list is then dialled one channel
  // per address, so each is checked against its own host.
  std::string tls_server_name;
  // A bearer token sent with every call as `authorization: Bearer <token>`
  // (the servers' --admin-token-file), or a file holding it (--token-file,
  // read at Create). Empty: none.
  std::string token;
  std::string token_file;
  // Channel credentials to use as they are (tests, custom setups); null:
  // built from the tls_* fields.
  std::shared_ptr<grpc::ChannelCredentials> credentials;

  // OK when every field is usable; INVALID_ARGUMENT naming the field
  // otherwise. Does no I/O.
  absl::Status Validate() const;
};

// The gRPC channel targets `target` expands to (see ClientOptions::target),
// e.g. "127.0.0.1:1,127.0.0.1:2" -> {"ipv4:127.0.0.1:1,127.0.0.1:2"} and
// "a:1,b:2" -> {"dns:///a:1", "dns:///b:2"}. INVALID_ARGUMENT when the
// target is malformed. Pure function.
absl::StatusOr<std::vector<std::string>> ResolveTargets(
    absl::string_view target);

// Converts a gRPC status to the absl::Status with the same code and message.
absl::Status FromGrpcStatus(const grpc::Status& status);

// What grpc.health.v1.Health/Check answered.
enum class ServingStatus {
  kUnknown = 0,
  kServing = 1,
  kNotServing = 2,
  kServiceUnknown = 3,
};

// "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN" or "UNKNOWN".
absl::string_view ServingStatusName(ServingStatus status);

// Whether a call may be retried when it fails with UNAVAILABLE. Exposed so
// callers and tests can see the policy; Client applies it internally.
bool IsIdempotent(const sessiongrid::v1::UpdateRequest& request);

// A connection to a SessionGrid node or cluster.
//
// Thread-safe: every method may be called concurrently from any thread.
// Synchronous methods block the caller for at most options.deadline.
// Not copyable or movable; share it through the owning pointer.
class Client final {
 public:
  using SessionStub = sessiongrid::v1::SessionService::Stub;
  using AdminStub = sessiongrid::v1::AdminService::Stub;

  // Validates `options` and opens the channels (connections are made lazily
  // on the first call). INVALID_ARGUMENT for bad options.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // The options this client was created with.
  const ClientOptions& options() const { return options_; }

  // --- SessionService. Retried on UNAVAILABLE only where noted. ---

  // Creates a session. Never retried: a lost reply would mint a second one.
  absl::StatusOr<sessiongrid::v1::CreateResponse> Create(
      const sessiongrid::v1::CreateRequest& request) const;
  // Reads a session (and slides its expiry when request.touch()). Retried.
  absl::StatusOr<sessiongrid::v1::GetResponse> Get(
      const sessiongrid::v1::GetRequest& request) const;
  // Slides a session's expiry. Retried.
  absl::StatusOr<sessiongrid::v1::TouchResponse> Touch(
      const sessiongrid::v1::TouchRequest& request) const;
  // Updates a session. Retried only when request.has_expected_version(): a
  // replay of an applied update then fails with FAILED_PRECONDITION instead
  // of applying twice.
  absl::StatusOr<sessiongrid::v1::UpdateResponse> Update(
      const sessiongrid::v1::UpdateRequest& request) const;
  // Deletes a session. Retried; after a retry `deleted` may be false even
  // though this call removed the session.
  absl::StatusOr<sessiongrid::v1::DeleteResponse> Delete(
      const sessiongrid::v1::DeleteRequest& request) const;
  // Rotates a session id. Never retried.
  absl::StatusOr<sessiongrid::v1::RegenerateResponse> Regenerate(
      const sessiongrid::v1::RegenerateRequest& request) const;
  // Lists a principal's sessions. Retried.
  absl::StatusOr<sessiongrid::v1::ListByPrincipalResponse> ListByPrincipal(
      const sessiongrid::v1::ListByPrincipalRequest& request) const;
  // Deletes all of a principal's sessions. Retried (the end state is the
  // same); after a retry deleted_count may under-count.
  absl::StatusOr<sessiongrid::v1::DeleteByPrincipalResponse> DeleteByPrincipal(
      const sessiongrid::v1::DeleteByPrincipalRequest& request) const;
  // One page of every live session, in id order; pass the response's
  // next_page_token as the next request's page_token until it is empty.
  // Retried (a read). With --admin-token-file the server wants the admin
  // token (ClientOptions::token).
  absl::StatusOr<sessiongrid::v1::ListSessionsResponse> ListSessions(
      const sessiongrid::v1::ListSessionsRequest& request) const;

  // --- AdminService. Retried. ---

  // Counters and memory of the node that answers.
  absl::StatusOr<sessiongrid::v1::NodeStatsResponse> NodeStats(
      const sessiongrid::v1::NodeStatsRequest& request = {}) const;
  // Membership and state of every node, as the answering node sees it.
  absl::StatusOr<sessiongrid::v1::ClusterStatusResponse> ClusterStatus(
      const sessiongrid::v1::ClusterStatusRequest& request = {}) const;
  // The answering node's own record of an id (no coordination): the way to
  // check that replicas converged.
  absl::StatusOr<sessiongrid::v1::ReadLocalResponse> ReadLocal(
      const sessiongrid::v1::ReadLocalRequest& request) const;

  // --- grpc.health.v1.Health/Check. Retried. ---

  // Serving status of `service` ("" = the whole server). A server that does
  // not know the service answers NOT_FOUND, returned as an error.
  absl::StatusOr<ServingStatus> Health(absl::string_view service = "") const;

  // --- Asynchronous surface (one retry for idempotent calls). ---

  // Completion callback of an async call. Runs on a gRPC callback thread:
  // keep it short and do not block in it.
  template <typename Response>
  using Callback = std::function<void(absl::StatusOr<Response>)>;

  // Starts a call and returns at once; `done` runs exactly once with the
  // result. The client must outlive the call. A call about one id goes to
  // its first live owner (see route_to_owners); an idempotent one (Get,
  // Touch, Delete, Update with an expected version) that fails with
  // UNAVAILABLE is tried once more on the next node, within the deadline.
  void GetAsync(sessiongrid::v1::GetRequest request,
                Callback<sessiongrid::v1::GetResponse> done) const;
  void CreateAsync(sessiongrid::v1::CreateRequest request,
                   Callback<sessiongrid::v1::CreateResponse> done) const;
  void UpdateAsync(sessiongrid::v1::UpdateRequest request,
                   Callback<sessiongrid::v1::UpdateResponse> done) const;
  void TouchAsync(sessiongrid::v1::TouchRequest request,
                  Callback<sessiongrid::v1::TouchResponse> done) const;
  void DeleteAsync(sessiongrid::v1::DeleteRequest request,
                   Callback<sessiongrid::v1::DeleteResponse> done) const;
  void RegenerateAsync(sessiongrid::v1::RegenerateRequest request,
                       Callback<sessiongrid::v1::RegenerateResponse> done) const;

  // Raw stubs for callers that manage their own ClientContext and buffers
  // (load tools using stub->async()). Each call rotates over the client's
  // channels. The pointer stays valid for the client's lifetime.
  SessionStub* NextSessionStub() const;
  AdminStub* NextAdminStub() const;

  // Number of channels the client rotates over.
  size_t channel_count() const { return endpoints_.size(); }

  // Waits until every channel is connected or `timeout` passes; starts
  // connecting if idle. DEADLINE_EXCEEDED naming the first channel that did
  // not connect.
  absl::Status WaitForConnected(absl::Duration timeout) const;

 private:
  struct Endpoint {
    std::string target;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<SessionStub> session;
    std::unique_ptr<AdminStub> admin;
  };

  explicit Client(ClientOptions options);
  // A channel to `target` with options.credentials and options.token.
  static Endpoint MakeEndpoint(const std::string& target,
                               const ClientOptions& options);

  const Endpoint& NextEndpoint() const;
  // The first live owner's endpoint for `id` when the ring is known (and
  // routing is on), else NextEndpoint(). Starts a ring refresh when stale.
  const Endpoint& EndpointFor(absl::string_view id) const;

  class Placement;
  friend class Placement;

  // Runs `attempt` with a fresh context per try, within options_.deadline,
  // retrying UNAVAILABLE with backoff when `idempotent`.
  // The first attempt goes to EndpointFor(route_id) when it is not empty.
  absl::Status Invoke(
      bool idempotent,
      absl::FunctionRef<grpc::Status(const Endpoint&, grpc::ClientContext&)>
          attempt,
      absl::string_view route_id = {}) const;

  absl::Duration NextBackoff(absl::Duration base) const;

  const ClientOptions options_;
  std::vector<Endpoint> endpoints_;  // fixed after Create
  std::shared_ptr<Placement> placement_;  // null when routing is off
  mutable std::atomic<uint64_t> next_endpoint_{0};
  mutable absl::Mutex rng_mu_;
  mutable std::mt19937_64 rng_ ABSL_GUARDED_BY(rng_mu_);
};

}  // namespace sg::client

#include "sessiongrid/client.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "common/bearer_token.h"
#include "common/host_port.h"
#include "common/tls_credentials.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/support/slice.h"
#include "server/replication/ring.h"

namespace sg::client {
namespace {

namespace v1 = ::sessiongrid::v1;
using ::sg::HostKind;
using ::sg::HostPort;

// gRPC and absl share their code numbering; FromGrpcStatus relies on it.
#define SG_SAME_CODE(name, absl_name)                       \
  static_assert(static_cast<int>(grpc::StatusCode::name) == \
                static_cast<int>(absl::StatusCode::absl_name))
SG_SAME_CODE(OK, kOk);
SG_SAME_CODE(CANCELLED, kCancelled);
SG_SAME_CODE(UNKNOWN, kUnknown);
SG_SAME_CODE(INVALID_ARGUMENT, kInvalidArgument);
SG_SAME_CODE(DEADLINE_EXCEEDED, kDeadlineExceeded);
SG_SAME_CODE(NOT_FOUND, kNotFound);
SG_SAME_CODE(ALREADY_EXISTS, kAlreadyExists);
SG_SAME_CODE(PERMISSION_DENIED, kPermissionDenied);
SG_SAME_CODE(RESOURCE_EXHAUSTED, kResourceExhausted);
SG_SAME_CODE(FAILED_PRECONDITION, kFailedPrecondition);
SG_SAME_CODE(ABORTED, kAborted);
SG_SAME_CODE(OUT_OF_RANGE, kOutOfRange);
SG_SAME_CODE(UNIMPLEMENTED, kUnimplemented);
SG_SAME_CODE(INTERNAL, kInternal);
SG_SAME_CODE(UNAVAILABLE, kUnavailable);
SG_SAME_CODE(DATA_LOSS, kDataLoss);
SG_SAME_CODE(UNAUTHENTICATED, kUnauthenticated);
#undef SG_SAME_CODE

constexpr char kHealthCheckMethod[] = "/grpc.health.v1.Health/Check";
constexpr char kRoundRobinConfig[] =
    R"({"loadBalancingConfig":[{"round_robin":{}}]})";

absl::Status BadTarget(absl::string_view what, absl::string_view target) {
  return absl::InvalidArgumentError(
      absl::StrCat("target: ", what, " in \"", target, "\""));
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text) {
  return sg::ParseHostPort(std::string_view(text.data(), text.size()),
                           "target");
}

absl::StatusOr<std::vector<HostPort>> ParseList(absl::string_view list) {
  std::vector<HostPort> out;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) return BadTarget("empty address", list);
    absl::StatusOr<HostPort> hp = ParseHostPort(item);
    if (!hp.ok()) return hp.status();
    out.push_back(*std::move(hp));
  }
  return out;
}

// Checks a target that already names a gRPC resolver scheme.
absl::Status CheckSchemeTarget(absl::string_view target) {
  absl::string_view rest = target;
  if (absl::ConsumePrefix(&rest, "dns:")) {
    // dns:[//authority/]host:port
    if (absl::StartsWith(rest, "//")) {
      rest.remove_prefix(2);
      const size_t slash = rest.find('/');
      if (slash == absl::string_view::npos) {
        return BadTarget("dns target needs dns:///HOST:PORT", target);
      }
      rest.remove_prefix(slash + 1);
    }
    absl::StatusOr<HostPort> hp = ParseHostPort(rest);
    return hp.ok() ? absl::OkStatus() : hp.status();
  }
  const bool v4 = absl::ConsumePrefix(&rest, "ipv4:");
  if (v4 || absl::ConsumePrefix(&rest, "ipv6:")) {
    absl::StatusOr<std::vector<HostPort>> list = ParseList(rest);
    if (!list.ok()) return list.status();
    const HostKind want = v4 ? HostKind::kIPv4 : HostKind::kIPv6;
    for (const HostPort& hp : *list) {
      if (hp.kind != want) {
        return BadTarget(v4 ? "ipv4: needs IPv4 literals"
                            : "ipv6: needs [IPv6]:PORT literals",
                         target);
      }
    }
    return absl::OkStatus();
  }
  if (absl::ConsumePrefix(&rest, "unix:") ||
      absl::ConsumePrefix(&rest, "unix-abstract:")) {
    return rest.empty() ? BadTarget("empty socket path", target)
                        : absl::OkStatus();
  }
  return BadTarget("unknown scheme", target);
}

bool HasScheme(absl::string_view target) {
  for (absl::string_view scheme : {"dns:", "ipv4:", "ipv6:", "unix:"}) {
    if (absl::StartsWith(target, scheme)) return true;
  }
  return absl::StartsWith(target, "unix-abstract:");
}

// Replaces `out` by a decoded grpc.health.v1.HealthCheckResponse. The health
// messages are encoded by hand so that this library registers no
// grpc.health.v1 descriptors, which would clash with any other generated
// copy of health.proto linked into the same binary.
bool DecodeHealthResponse(const grpc::ByteBuffer& buffer, ServingStatus* out) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(bytes.data()),
      static_cast<int>(bytes.size()));
  uint32_t status = 0;
  while (uint32_t tag = in.ReadTag()) {
    if (tag == 8) {  // field 1 (status), varint
      if (!in.ReadVarint32(&status)) return false;
    } else if (!google::protobuf::internal::WireFormatLite::SkipField(&in,
                                                                      tag)) {
      return false;
    }
  }
  if (!in.ConsumedEntireMessage()) return false;
  *out = status <= 3 ? static_cast<ServingStatus>(status)
                     : ServingStatus::kUnknown;
  return true;
}

grpc::ByteBuffer EncodeHealthRequest(absl::string_view service) {
  std::string bytes;
  if (!service.empty()) {
    bytes.push_back(0x0a);  // field 1 (service), length-delimited
    uint64_t n = service.size();
    while (n >= 0x80) {
      bytes.push_back(static_cast<char>((n & 0x7f) | 0x80));
      n >>= 7;
    }
    bytes.push_back(static_cast<char>(n));
    bytes.append(service.data(), service.size());
  }
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// Owns everything an async call touches until its callback has run.
template <typename Request, typename Response>
struct AsyncCall {
  grpc::ClientContext context;
  Request request;
  Response response;
  Client::Callback<Response> done;
};

// How many more times an idempotent call that met a node going away
// (UNAVAILABLE) is sent, each to the next node, within its deadline: more
// than once, because with one balanced channel the next pick can land on
// the same draining node before the channel has seen it go.
int RetriesFor(const ClientOptions& o, bool idempotent) {
  return idempotent ? std::max(0, o.max_attempts - 1) : 0;
}

// Starts `start(stub, ctx, req, resp, cb)` on `stub`. A call that fails
// with UNAVAILABLE (its node is down or draining) is tried up to `retries`
// more times, each on `next()`'s stub, within what is left of the deadline.
template <typename Request, typename Response, typename Start>
void StartAsync(Client::SessionStub* stub, int retries, absl::Time deadline,
                Request request, Client::Callback<Response> done, Start start,
                std::function<Client::SessionStub*()> next) {
  auto* call = new AsyncCall<Request, Response>;
  call->context.set_deadline(absl::ToChronoTime(deadline));
  call->request = std::move(request);
  call->done = std::move(done);
  start(stub, &call->context, &call->request, &call->response,
        [call, retries, deadline, start, next](grpc::Status status) {
          std::unique_ptr<AsyncCall<Request, Response>> owned(call);
          if (status.ok()) {
            owned->done(std::move(owned->response));
            return;
          }
          if (retries > 0 && next != nullptr &&
              status.error_code() == grpc::StatusCode::UNAVAILABLE &&
              absl::Now() < deadline) {
            StartAsync(next(), retries - 1, deadline, std::move(owned->request),
                       std::move(owned->done), start, next);
            return;
          }
          owned->done(FromGrpcStatus(status));
        });
}

// A call that must not run twice goes to its id's owner only over a
// connection that is up: on one that is idle because the node went away
// (or failing), it would fail before reaching any node and not be retried.
bool Connected(const std::shared_ptr<grpc::Channel>& channel) {
  return channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
}

grpc::ChannelArguments ChannelArgs(const ClientOptions& o) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(o.max_message_bytes);
  args.SetMaxSendMessageSize(o.max_message_bytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.keepalive_time)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.keepalive_timeout)));
  // Pinging idle connections gets them closed by servers with the default
  // ping policy ("too_many_pings").
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetServiceConfigJSON(kRoundRobinConfig);
  // No retryPolicy is configured, so gRPC itself only retries
  // transparently (calls that never reached a server); retries of calls
  // that may have run are ours and idempotency-aware.
  if (o.connections > 1) {
    // Otherwise channels with equal arguments share one connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  return args;
}

// "ipv4:a:1,b:2" -> "ipv4:a:1", "ipv4:b:2": under TLS each address gets its
// own channel, whose authority (the name its certificate is checked
// against) is that address, not the whole list.
std::vector<std::string> SplitAddressLists(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const std::string& t : in) {
    const bool v4 = absl::StartsWith(t, "ipv4:");
    if (!(v4 || absl::StartsWith(t, "ipv6:")) ||
        t.find(',') == std::string::npos) {
      out.push_back(t);
      continue;
    }
    for (absl::string_view a :
         absl::StrSplit(absl::string_view(t).substr(5), ',')) {
      out.push_back(absl::StrCat(v4 ? "ipv4:" : "ipv6:", a));
    }
  }
  return out;
}

}  // namespace

Client::Endpoint Client::MakeEndpoint(const std::string& target,
                                      const ClientOptions& o) {
  grpc::ChannelArguments args = ChannelArgs(o);
  if (!o.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(o.tls_server_name);
  }
  std::vector<
      std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  if (!o.token.empty()) {
    interceptors.push_back(
        security::MakeBearerTokenInterceptorFactory(o.token));
  }
  Endpoint ep;
  ep.target = target;
  ep.channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      target,
      o.credentials != nullptr ? o.credentials
                               : grpc::InsecureChannelCredentials(),
      args, std::move(interceptors));
  ep.session = v1::SessionService::NewStub(ep.channel);
  ep.admin = v1::AdminService::NewStub(ep.channel);
  return ep;
}

absl::StatusOr<std::vector<std::string>> ResolveTargets(
    absl::string_view target) {
  target = absl::StripAsciiWhitespace(target);
  if (target.empty()) return absl::InvalidArgumentError("target: empty");
  if (HasScheme(target)) {
    absl::Status s = CheckSchemeTarget(target);
    if (!s.ok()) return s;
    return std::vector<std::string>{std::string(target)};
  }
  absl::StatusOr<std::vector<HostPort>> list = ParseList(target);
  if (!list.ok()) return list.status();
  const HostKind first = list->front().kind;
  const bool one_family =
      first != HostKind::kName &&
      std::all_of(list->begin(), list->end(),
                  [first](const HostPort& hp) { return hp.kind == first; });
  std::vector<std::string> out;
  if (one_family) {
    std::vector<std::string> parts;
    for (const HostPort& hp : *list) parts.push_back(hp.ToString());
    out.push_back(absl::StrCat(first == HostKind::kIPv4 ? "ipv4:" : "ipv6:",
                               absl::StrJoin(parts, ",")));
    return out;
  }
  for (const HostPort& hp : *list) {
    switch (hp.kind) {
      case HostKind::kIPv4:
        out.push_back(absl::StrCat("ipv4:", hp.ToString()));
        break;
      case HostKind::kIPv6:
        out.push_back(absl::StrCat("ipv6:", hp.ToString()));
        break;
      case HostKind::kName:
        out.push_back(absl::StrCat("dns:///", hp.ToString()));
        break;
    }
  }
  return out;
}

absl::Status ClientOptions::Validate() const {
  absl::StatusOr<std::vector<std::string>> targets = ResolveTargets(target);
  if (!targets.ok()) return targets.status();
  if (deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("deadline must be positive");
  }
  if (max_attempts < 1 || max_attempts > 10) {
    return absl::InvalidArgumentError("max_attempts must be 1..10");
  }
  if (initial_backoff <= absl::ZeroDuration() ||
      max_backoff < initial_backoff) {
    return absl::InvalidArgumentError(
        "need 0 < initial_backoff <= max_backoff");
  }
  if (!(backoff_multiplier >= 1.0 && backoff_multiplier <= 10.0)) {
    return absl::InvalidArgumentError("backoff_multiplier must be 1..10");
  }
  if (!(jitter >= 0.0 && jitter <= 1.0)) {
    return absl::InvalidArgumentError("jitter must be 0..1");
  }
  if (max_message_bytes < 1024) {
    return absl::InvalidArgumentError("max_message_bytes must be >= 1024");
  }
  if (keepalive_time < absl::Seconds(10) ||
      keepalive_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "keepalive_time must be >= 10s and keepalive_timeout positive");
  }
  if (connections < 1 || connections > 64) {
    return absl::InvalidArgumentError("connections must be 1..64");
  }
  return absl::OkStatus();
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  const int code = static_cast<int>(status.error_code());
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(status.error_message());
  }
  return absl::Status(static_cast<absl::StatusCode>(code),
                      status.error_message());
}

absl::string_view ServingStatusName(ServingStatus status) {
  switch (status) {
    case ServingStatus::kServing:
      return "SERVING";
    case ServingStatus::kNotServing:
      return "NOT_SERVING";
    case ServingStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    case ServingStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

bool IsIdempotent(const v1::UpdateRequest& request) {
  return request.has_expected_version();
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  uint64_t seed = options_.seed;
  if (seed == 0) {
    std::random_device device;
    seed = (uint64_t{device()} << 32) | device();
  }
  absl::MutexLock lock(&rng_mu_);
  rng_.seed(seed);
}

Client::~Client() = default;

namespace {

// gRPC 1.51 (Debian) runs callback-API completions on one process-wide
// queue and its "nexting" threads when the platform has no background
// poller, refcounted by the channels that made callback calls; when the
// last such channel goes and a new one comes at once, the old queue's
// teardown races the new one's start (ASan: a double free in
// grpc_cq_internal_unref on a nexting thread; seen in ClusterTest.
// RingAwareClient..., whose ring refreshes make and drop channels). One
// channel that made a callback call and is never destroyed keeps that
// queue alive for the process. It dials a Unix socket that does not exist:
// no traffic anywhere.
void KeepCallbackQueueAlive() {
  struct Keeper {
    std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(
        "unix:/nonexistent/sessiongrid-keepalive.sock",
        grpc::InsecureChannelCredentials());
    std::unique_ptr<v1::AdminService::Stub> stub =
        v1::AdminService::NewStub(channel);
    grpc::ClientContext ctx;
    v1::NodeStatsRequest request;
    v1::NodeStatsResponse response;
  };
  // Reachable from a global for the whole run, so LeakSanitizer does not
  // report it. The global is volatile: a pointer stored and never read is
  // otherwise optimised away, leaving the keeper reachable from nothing.
  [[maybe_unused]] static Keeper* volatile keeper_root = nullptr;
  static const bool started = [] {
    auto* k = new Keeper;
    k->stub->async()->NodeStats(&k->ctx, &k->request, &k->response,
                                [](grpc::Status) {});
    keeper_root = k;
    return true;
  }();
  (void)started;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  absl::Status valid = options.Validate();
  if (!valid.ok()) return valid;
  KeepCallbackQueueAlive();
  absl::StatusOr<std::vector<std::string>> targets =
      ResolveTargets(options.target);
  if (!targets.ok()) return targets.status();
  if (options.credentials == nullptr) {
    security::ChannelTlsOptions tls;
    tls.ca_file = options.tls_ca_file;
    tls.cert_file = options.tls_cert_file;
    tls.key_file = options.tls_key_file;
    tls.reload_interval = options.tls_reload_interval;
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        security::MakeChannelCredentials(tls);
    if (!credentials.ok()) return credentials.status();
    options.credentials = *std::move(credentials);
    if (tls.enabled() && options.tls_server_name.empty()) {
      *targets = SplitAddressLists(*targets);
    }
  }
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> token =
        security::ReadTokenFile(options.token_file, "--token-file");
    if (!token.ok()) return token.status();
    options.token = *std::move(token);
  }

  std::unique_ptr<Client> client(new Client(std::move(options)));
  const ClientOptions& o = client->options_;
  for (int c = 0; c < o.connections; ++c) {
    for (const std::string& target : *targets) {
      client->endpoints_.push_back(MakeEndpoint(target, o));
    }
  }
  if (o.route_to_owners) {
    // Routing needs more than one node to choose from: a list of two or
    // more addresses (calls then go only to those), or a dns:/// name
    // (calls go to the members' advertised addresses).
    std::optional<std::vector<std::string>> allowed;
    bool route = false;
    if (absl::StartsWith(o.target, "dns:")) {
      route = true;
    } else if (!HasScheme(o.target)) {
      absl::StatusOr<std::vector<HostPort>> list = ParseList(o.target);
      if (list.ok() && list->size() >= 2) {
        route = true;
        allowed.emplace();
        for (const HostPort& hp : *list) allowed->push_back(hp.ToString());
      }
    }
    if (route) {
      client->placement_ = std::make_shared<Placement>(o, std::move(allowed));
    }
  }
  return client;
}

// ---------------------------------------------------------------------------
// Owner routing

// The ring as the cluster last reported it, and one endpoint per member's
// client address. Shared with in-flight refreshes, so a refresh that
// completes after the client is gone touches nothing freed.
class Client::Placement {
 public:
  // `allowed`: the only client addresses calls may go to (none: any).
  Placement(const ClientOptions& options,
            std::optional<std::vector<std::string>> allowed)
      : options_(options), allowed_(std::move(allowed)) {}

  // Null when the ring is unknown or no owner of `id` is alive. An owner
  // whose channel is failing (the node stopped or restarted since the last
  // refresh: its reconnects back off) is passed over: a call there would
  // fail at once, and Create and Regenerate are not retried.
  const Endpoint* OwnerOf(absl::string_view id) {
    absl::MutexLock lock(&mu_);
    if (ring_ == nullptr) return nullptr;
    for (const std::string& owner :
         ring_->OwnersOfId(std::string_view(id.data(), id.size()), n_)) {
      auto it = members_.find(owner);
      if (it == members_.end() || !it->second.alive) continue;
      if (it->second.endpoint->channel->GetState(/*try_to_connect=*/false) ==
          GRPC_CHANNEL_TRANSIENT_FAILURE) {
        continue;
      }
      return it->second.endpoint;
    }
    return nullptr;
  }

  // Whether a refresh is due; marks one in flight.
  bool ShouldRefresh() {
    absl::MutexLock lock(&mu_);
    if (refreshing_ || absl::Now() - last_refresh_ < options_.ring_refresh) {
      return false;
    }
    refreshing_ = true;
    return true;
  }

  void Update(const absl::StatusOr<v1::ClusterStatusResponse>& status) {
    absl::MutexLock lock(&mu_);
    refreshing_ = false;
    last_refresh_ = absl::Now();
    if (!status.ok() || status->replication_factor() <= 0) return;
    std::vector<std::string> nodes;
    for (auto& [id, m] : members_) m.alive = false;
    for (const v1::NodeStatus& node : status->nodes()) {
      if (node.node_id().empty() || node.address().empty()) continue;
      nodes.push_back(node.node_id());
      if (allowed_ && std::find(allowed_->begin(), allowed_->end(),
                                node.address()) == allowed_->end()) {
        continue;  // an owner we may not call: its ids go anywhere
      }
      Member& m = members_[node.node_id()];
      if (m.endpoint == nullptr || m.endpoint->target != node.address()) {
        auto& slot = endpoints_[node.address()];
        if (slot == nullptr) {
          slot = std::make_unique<Endpoint>(
              MakeEndpoint(node.address(), options_));
        }
        m.endpoint = slot.get();
      }
      m.alive = node.liveness() == "ALIVE" && node.state() == "SERVING";
    }
    n_ = status->replication_factor();
    ring_ = std::make_shared<const sg::replication::Ring>(nodes);
  }

 private:
  struct Member {
    const Endpoint* endpoint = nullptr;
    bool alive = false;
  };
  const ClientOptions options_;
  const std::optional<std::vector<std::string>> allowed_;
  absl::Mutex mu_;
  std::shared_ptr<const sg::replication::Ring> ring_ ABSL_GUARDED_BY(mu_);
  int n_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, Member> members_ ABSL_GUARDED_BY(mu_);
  // By client address; never removed (bounded by the cluster's members).
  absl::flat_hash_map<std::string, std::unique_ptr<Endpoint>> endpoints_
      ABSL_GUARDED_BY(mu_);
  absl::Time last_refresh_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool refreshing_ ABSL_GUARDED_BY(mu_) = false;
};

const Client::Endpoint& Client::EndpointFor(absl::string_view id) const {
  if (placement_ == nullptr || id.empty()) return NextEndpoint();
  if (placement_->ShouldRefresh()) {
    struct Call {
      grpc::ClientContext ctx;
      v1::ClusterStatusRequest request;
      v1::ClusterStatusResponse response;
    };
    auto call = std::make_shared<Call>();
    call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
    std::shared_ptr<Placement> placement = placement_;
    NextEndpoint().admin->async()->ClusterStatus(
        &call->ctx, &call->request, &call->response,
        [call, placement](grpc::Status status) {
          if (status.ok()) {
            placement->Update(call->response);
          } else {
            placement->Update(FromGrpcStatus(status));
          }
        });
  }
  const Endpoint* owner = placement_->OwnerOf(id);
  return owner != nullptr ? *owner : NextEndpoint();
}

const Client::Endpoint& Client::NextEndpoint() const {
  const uint64_t n = next_endpoint_.fetch_add(1, std::memory_order_relaxed);
  return endpoints_[n % endpoints_.size()];
}

Client::SessionStub* Client::NextSessionStub() const {
  return NextEndpoint().session.get();
}

Client::AdminStub* Client::NextAdminStub() const {
  return NextEndpoint().admin.get();
}

absl::Duration Client::NextBackoff(absl::Duration base) const {
  double factor = 1.0;
  if (options_.jitter > 0) {
    std::uniform_real_distribution<double> dist(1.0 - options_.jitter,
                                                1.0 + options_.jitter);
    absl::MutexLock lock(&rng_mu_);
    factor = dist(rng_);
  }
  return base * factor;
}

absl::Status Client::Invoke(
    bool idempotent,
    absl::FunctionRef<grpc::Status(const Endpoint&, grpc::ClientContext&)>
        attempt,
    absl::string_view route_id) const {
  const absl::Time deadline = absl::Now() + options_.deadline;
  absl::Duration backoff = options_.initial_backoff;
  for (int n = 1;; ++n) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    // The owner first; a retry goes to another node (the owner may be down).
    const Endpoint* ep =
        n == 1 && !route_id.empty() ? &EndpointFor(route_id) : &NextEndpoint();
    if (n == 1 && !route_id.empty() && !idempotent && !Connected(ep->channel)) {
      ep = &NextEndpoint();
    }
    const grpc::Status status = attempt(*ep, context);
    if (status.ok()) return absl::OkStatus();
    if (!idempotent || status.error_code() != grpc::StatusCode::UNAVAILABLE ||
        n >= options_.max_attempts) {
      return FromGrpcStatus(status);
    }
    const absl::Duration wait = NextBackoff(backoff);
    if (absl::Now() + wait >= deadline) return FromGrpcStatus(status);
    absl::SleepFor(wait);
    backoff =
        std::min(backoff * options_.backoff_multiplier, options_.max_backoff);
  }
}

// Body of a blocking RPC: STUB is `session` or `admin`, METHOD the RPC name.
#define SG_SYNC_CALL(STUB, METHOD, IDEMPOTENT) \
  SG_ROUTED_CALL(STUB, METHOD, IDEMPOTENT, absl::string_view())

// The same, sent first to the first live owner of ROUTE_ID.
#define SG_ROUTED_CALL(STUB, METHOD, IDEMPOTENT, ROUTE_ID)       \
  v1::METHOD##Response response;                                 \
  absl::Status status =                                          \
      Invoke((IDEMPOTENT),                                       \
             [&](const Endpoint& ep, grpc::ClientContext& ctx) { \
               response.Clear();                                 \
               return ep.STUB->METHOD(&ctx, request, &response); \
             },                                                  \
             (ROUTE_ID));                                        \
  if (!status.ok()) return status;                               \
  return response

absl::StatusOr<v1::CreateResponse> Client::Create(
    const v1::CreateRequest& request) const {
  SG_SYNC_CALL(session, Create, false);
}

absl::StatusOr<v1::GetResponse> Client::Get(
    const v1::GetRequest& request) const {
  SG_ROUTED_CALL(session, Get, true, request.id());
}

absl::StatusOr<v1::TouchResponse> Client::Touch(
    const v1::TouchRequest& request) const {
  SG_ROUTED_CALL(session, Touch, true, request.id());
}

absl::StatusOr<v1::UpdateResponse> Client::Update(
    const v1::UpdateRequest& request) const {
  SG_ROUTED_CALL(session, Update, IsIdempotent(request), request.id());
}

absl::StatusOr<v1::DeleteResponse> Client::Delete(
    const v1::DeleteRequest& request) const {
  SG_ROUTED_CALL(session, Delete, true, request.id());
}

absl::StatusOr<v1::RegenerateResponse> Client::Regenerate(
    const v1::RegenerateRequest& request) const {
  SG_ROUTED_CALL(session, Regenerate, false, request.id());
}

absl::StatusOr<v1::ListByPrincipalResponse> Client::ListByPrincipal(
    const v1::ListByPrincipalRequest& request) const {
  SG_SYNC_CALL(session, ListByPrincipal, true);
}

absl::StatusOr<v1::DeleteByPrincipalResponse> Client::DeleteByPrincipal(
    const v1::DeleteByPrincipalRequest& request) const {
  SG_SYNC_CALL(session, DeleteByPrincipal, true);
}

absl::StatusOr<v1::ListSessionsResponse> Client::ListSessions(
    const v1::ListSessionsRequest& request) const {
  SG_SYNC_CALL(session, ListSessions, true);
}

absl::StatusOr<v1::NodeStatsResponse> Client::NodeStats(
    const v1::NodeStatsRequest& request) const {
  SG_SYNC_CALL(admin, NodeStats, true);
}

absl::StatusOr<v1::ClusterStatusResponse> Client::ClusterStatus(
    const v1::ClusterStatusRequest& request) const {
  SG_SYNC_CALL(admin, ClusterStatus, true);
}

absl::StatusOr<v1::ReadLocalResponse> Client::ReadLocal(
    const v1::ReadLocalRequest& request) const {
  SG_SYNC_CALL(admin, ReadLocal, true);
}

#undef SG_SYNC_CALL

absl::StatusOr<ServingStatus> Client::Health(absl::string_view service) const {
  const grpc::ByteBuffer request = EncodeHealthRequest(service);
  ServingStatus result = ServingStatus::kUnknown;
  absl::Status status =
      Invoke(true, [&](const Endpoint& ep, grpc::ClientContext& ctx) {
        grpc::GenericStub stub(ep.channel);
        grpc::ByteBuffer response;
        grpc::Status rpc_status;
        absl::Notification done;
        stub.UnaryCall(&ctx, kHealthCheckMethod, grpc::StubOptions(), &request,
                       &response, [&](grpc::Status s) {
                         rpc_status = std::move(s);
                         done.Notify();
                       });
        done.WaitForNotification();
        if (rpc_status.ok() && !DecodeHealthResponse(response, &result)) {
          return grpc::Status(grpc::StatusCode::INTERNAL,
                              "malformed HealthCheckResponse");
        }
        return rpc_status;
      });
  if (!status.ok()) return status;
  return result;
}

void Client::GetAsync(v1::GetRequest request,
                      Callback<v1::GetResponse> done) const {
  SessionStub* stub = EndpointFor(request.id()).session.get();
  const bool idempotent = true;
  StartAsync(
      stub, RetriesFor(options_, idempotent), absl::Now() + options_.deadline,
      std::move(request), std::move(done),
      [](SessionStub* s, auto* ctx, auto* req, auto* resp, auto cb) {
        s->async()->Get(ctx, req, resp, std::move(cb));
      },
      [this] { return NextSessionStub(); });
}

void Client::CreateAsync(v1::CreateRequest request,
                         Callback<v1::CreateResponse> done) const {
  SessionStub* stub = NextSessionStub();
  const bool idempotent = false;
  StartAsync(
      stub, RetriesFor(options_, idempotent), absl::Now() + options_.deadline,
      std::move(request), std::move(done),
      [](SessionStub* s, auto* ctx, auto* req, auto* resp, auto cb) {
        s->async()->Create(ctx, req, resp, std::move(cb));
      },
      [this] { return NextSessionStub(); });
}

void Client::UpdateAsync(v1::UpdateRequest request,
                         Callback<v1::UpdateResponse> done) const {
  const bool idempotent = IsIdempotent(request);
  const Endpoint* owner = &EndpointFor(request.id());
  if (!idempotent && !Connected(owner->channel)) owner = &NextEndpoint();
  SessionStub* stub = owner->session.get();
  StartAsync(
      stub, RetriesFor(options_, idempotent), absl::Now() + options_.deadline,
      std::move(request), std::move(done),
      [](SessionStub* s, auto* ctx, auto* req, auto* resp, auto cb) {
        s->async()->Update(ctx, req, resp, std::move(cb));
      },
      [this] { return NextSessionStub(); });
}

void Client::TouchAsync(v1::TouchRequest request,
                        Callback<v1::TouchResponse> done) const {
  SessionStub* stub = EndpointFor(request.id()).session.get();
  const bool idempotent = true;
  StartAsync(
      stub, RetriesFor(options_, idempotent), absl::Now() + options_.deadline,
      std::move(request), std::move(done),
      [](SessionStub* s, auto* ctx, auto* req, auto* resp, auto cb) {
        s->async()->Touch(ctx, req, resp, std::move(cb));
      },
      [this] { return NextSessionStub(); });
}

void Client::DeleteAsync(v1::DeleteRequest request,
                         Callback<v1::DeleteResponse> done) const {
  SessionStub* stub = EndpointFor(request.id()).session.get();
  const bool idempotent = true;
  StartAsync(
      stub, RetriesFor(options_, idempotent), absl::Now() + options_.deadline,
      std::move(request), std::move(done),
      [](SessionStub* s, auto* ctx, auto* req, auto* resp, auto cb) {
        s->async()->Delete(ctx, req, resp, std::move(cb));
      },
      [this] { return NextSessionStub(); });
}

void Client::RegenerateAsync(v1::RegenerateRequest request,
                             Callback<v1::RegenerateResponse> done) const {
  const Endpoint* owner = &EndpointFor(request.id());
  if (!Connected(owner->channel)) owner = &NextEndpoint();
  SessionStub* stub = owner->session.get();
  const bool idempotent = false;
  StartAsync(
      stub, RetriesFor(options_, idempotent), absl::Now() + options_.deadline,
      std::move(request), std::move(done),
      [](SessionStub* s, auto* ctx, auto* req, auto* resp, auto cb) {
        s->async()->Regenerate(ctx, req, resp, std::move(cb));
      },
      [this] { return NextSessionStub(); });
}

absl::Status Client::WaitForConnected(absl::Duration timeout) const {
  const auto deadline = absl::ToChronoTime(absl::Now() + timeout);
  for (const Endpoint& ep : endpoints_) {
    if (!ep.channel->WaitForConnected(deadline)) {
      return absl::DeadlineExceededError(
          absl::StrCat("not connected to ", ep.target));
    }
  }
  return absl::OkStatus();
}

}  // namespace sg::client

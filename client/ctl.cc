#include "ctl.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/import_redis_command.h"
#include "client/list_command.h"
#include "google/protobuf/util/json_util.h"
#include "sessiongrid/client.h"

namespace sg::client {
namespace {

namespace v1 = ::sessiongrid::v1;

constexpr absl::Duration kDefaultTimeout = absl::Seconds(2);

// Command line after the global flags are taken out.
struct Invocation {
  std::string server;
  absl::Duration timeout = kDefaultTimeout;
  // --tls-ca, --tls-cert, --tls-key, --tls-server-name, --token-file.
  std::map<std::string, std::string> security;
  bool help = false;
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // "--x" -> value ("" for bool)
  // Flag values, checked before any RPC is made.
  std::optional<std::string> data;
  std::optional<google::protobuf::Duration> ttl;
  std::optional<v1::Version> expected_version;
  int limit = 0;
};

// Flags each command accepts; true when the flag takes a value.
const std::map<std::string, std::map<std::string, bool>>& CommandFlags() {
  static const auto* kFlags =
      new std::map<std::string, std::map<std::string, bool>>{
          {"health", {}},
          {"status", {{"--json", false}}},
          {"read-local", {}},
          {"stats", {}},
          {"create",
           {{"--data", true},
            {"--data-file", true},
            {"--principal", true},
            {"--ttl", true}}},
          {"get", {{"--touch", false}}},
          {"touch", {{"--ttl", true}}},
          {"update",
           {{"--data", true},
            {"--data-file", true},
            {"--principal", true},
            {"--ttl", true},
            {"--expected-version", true}}},
          {"delete", {{"--expected-version", true}}},
          {"regenerate", {{"--principal", true}}},
          {"list-by-principal", {{"--limit", true}}},
          {"delete-by-principal", {}},
          {"list", {{"--limit", true}, {"--json", false}}},
      };
  return *kFlags;
}

// Positional arguments per command: {min, max}.
std::pair<size_t, size_t> PositionalCount(const std::string& command) {
  if (command == "health") return {0, 1};
  if (command == "status" || command == "stats" || command == "create" ||
      command == "list") {
    return {0, 0};
  }
  return {1, 1};
}

absl::Status Usage(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::StatusOr<absl::Duration> ParsePositiveDuration(absl::string_view flag,
                                                     const std::string& text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration()) {
    return Usage(absl::StrCat(flag,
                              ": want a positive duration like 30s or "
                              "30m, got \"",
                              text, "\""));
  }
  return d;
}

const std::string* Flag(const Invocation& inv, const std::string& name) {
  auto it = inv.flags.find(name);
  return it == inv.flags.end() ? nullptr : &it->second;
}

// The session bytes from --data or --data-file ("-" = stdin), if given.
absl::StatusOr<std::optional<std::string>> ReadData(const Invocation& inv) {
  if (const std::string* data = Flag(inv, "--data")) return *data;
  const std::string* path = Flag(inv, "--data-file");
  if (path == nullptr) return std::nullopt;
  if (*path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin),
                       std::istreambuf_iterator<char>());
  }
  std::ifstream in(*path, std::ios::binary);
  if (!in) {
    return Usage(absl::StrCat("--data-file: cannot open ", *path));
  }
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (in.bad()) return Usage(absl::StrCat("--data-file: cannot read ", *path));
  return bytes;
}

absl::StatusOr<google::protobuf::Duration> ParseTtl(const std::string& text) {
  absl::StatusOr<absl::Duration> d = ParsePositiveDuration("--ttl", text);
  if (!d.ok()) return d.status();
  absl::Duration rest;
  google::protobuf::Duration out;
  out.set_seconds(absl::IDivDuration(*d, absl::Seconds(1), &rest));
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(rest)));
  return out;
}

// Accepts the JSON form ({"wallMillis":"1","logical":0,"nodeId":"n1"}) or
// WALL_MILLIS:LOGICAL:NODE_ID.
absl::StatusOr<v1::Version> ParseVersion(const std::string& text) {
  v1::Version version;
  if (absl::StartsWith(text, "{")) {
    if (!google::protobuf::util::JsonStringToMessage(text, &version).ok()) {
      return Usage(absl::StrCat("--expected-version: bad JSON: ", text));
    }
    return version;
  }
  std::vector<std::string> parts =
      absl::StrSplit(text, absl::MaxSplits(':', 2));
  int64_t wall = 0;
  uint32_t logical = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &wall) ||
      !absl::SimpleAtoi(parts[1], &logical)) {
    return Usage(absl::StrCat(
        "--expected-version: want JSON or WALL_MILLIS:LOGICAL:NODE_ID, got \"",
        text, "\""));
  }
  version.set_wall_millis(wall);
  version.set_logical(logical);
  version.set_node_id(parts[2]);
  return version;
}

absl::StatusOr<Invocation> Parse(const std::vector<std::string>& args,
                                 absl::string_view default_server) {
  Invocation inv;
  inv.server = std::string(default_server);
  // Split "--x=v", then take global flags wherever they appear.
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::optional<std::string> inline_value;
    if (absl::StartsWith(arg, "--")) {
      const size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        inline_value = arg.substr(eq + 1);
        arg.resize(eq);
      }
    }
    auto take_value = [&]() -> absl::StatusOr<std::string> {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size())
        return Usage(absl::StrCat(arg, " needs a value"));
      return args[++i];
    };
    if (arg == "--help" || arg == "-h") {
      inv.help = true;
      continue;
    }
    if (arg == "--server") {
      absl::StatusOr<std::string> v = take_value();
      if (!v.ok()) return v.status();
      inv.server = *v;
      continue;
    }
    if (arg == "--tls-ca" || arg == "--tls-cert" || arg == "--tls-key" ||
        arg == "--tls-server-name" || arg == "--token-file") {
      absl::StatusOr<std::string> v = take_value();
      if (!v.ok()) return v.status();
      inv.security[arg] = *v;
      continue;
    }
    if (arg == "--timeout") {
      absl::StatusOr<std::string> v = take_value();
      if (!v.ok()) return v.status();
      absl::StatusOr<absl::Duration> d = ParsePositiveDuration(arg, *v);
      if (!d.ok()) return d.status();
      inv.timeout = *d;
      continue;
    }
    if (inv.command.empty()) {
      if (absl::StartsWith(arg, "-")) {
        return Usage(absl::StrCat("unknown flag ", arg, " before the command"));
      }
      if (CommandFlags().count(arg) == 0) {
        return Usage(absl::StrCat("unknown command \"", arg, "\""));
      }
      inv.command = arg;
      continue;
    }
    if (absl::StartsWith(arg, "--")) {
      const auto& allowed = CommandFlags().at(inv.command);
      auto it = allowed.find(arg);
      if (it == allowed.end()) {
        return Usage(absl::StrCat("unknown flag ", arg, " for ", inv.command));
      }
      if (it->second) {
        absl::StatusOr<std::string> v = take_value();
        if (!v.ok()) return v.status();
        inv.flags[arg] = *v;
      } else {
        if (inline_value) {
          return Usage(absl::StrCat(arg, " takes no value"));
        }
        inv.flags[arg] = "";
      }
      continue;
    }
    inv.positional.push_back(args[i]);
  }
  if (inv.help) return inv;
  if (inv.command.empty()) return Usage("missing command");
  const auto [min, max] = PositionalCount(inv.command);
  if (inv.positional.size() < min || inv.positional.size() > max) {
    return Usage(absl::StrCat(
        inv.command, " takes ",
        min == max ? absl::StrCat(min) : absl::StrCat(min, " to ", max),
        " argument(s), got ", inv.positional.size()));
  }
  if (inv.server.empty()) {
    return Usage(
        "no server: pass --server HOST:PORT or set SESSIONGRID_SERVER");
  }
  if (inv.flags.count("--data") && inv.flags.count("--data-file")) {
    return Usage("--data and --data-file are exclusive");
  }
  absl::StatusOr<std::optional<std::string>> data = ReadData(inv);
  if (!data.ok()) return data.status();
  inv.data = *std::move(data);
  if (const std::string* t = Flag(inv, "--ttl")) {
    absl::StatusOr<google::protobuf::Duration> ttl = ParseTtl(*t);
    if (!ttl.ok()) return ttl.status();
    inv.ttl = *ttl;
  }
  if (const std::string* v = Flag(inv, "--expected-version")) {
    absl::StatusOr<v1::Version> version = ParseVersion(*v);
    if (!version.ok()) return version.status();
    inv.expected_version = *version;
  }
  if (const std::string* l = Flag(inv, "--limit")) {
    if (!absl::SimpleAtoi(*l, &inv.limit) || inv.limit < 0) {
      return Usage(
          absl::StrCat("--limit: want a number >= 0, got \"", *l, "\""));
    }
  }
  return inv;
}

absl::Status PrintJson(const google::protobuf::Message& message,
                       std::ostream& out) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return absl::InternalError("cannot render the response as JSON");
  }
  out << json;
  if (json.empty() || json.back() != '\n') out << '\n';
  return absl::OkStatus();
}

// ClusterStatus as an operator reads it: one line per member.
void PrintClusterTable(const v1::ClusterStatusResponse& st, std::ostream& out) {
  out << "cluster " << st.status() << "  members " << st.node_count()
      << "  serving " << st.serving_count() << "  N=" << st.replication_factor()
      << " W=" << st.write_quorum() << " R=" << st.read_quorum()
      << "  hints " << st.hints_pending() << "  ranges below W "
      << st.ranges_below_write_quorum() << "\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%-2s %-16s %-22s %-22s %-8s %-11s %6s %9s %7s %9s\n",
                "", "NODE", "CLIENT", "PEER", "LIVENESS", "STATE", "RING", "SESSIONS",
                "HINTS", "REPAIRED");
  out << line;
  for (const v1::NodeStatus& n : st.nodes()) {
    std::snprintf(line, sizeof(line),
                  "%-2s %-16s %-22s %-22s %-8s %-11s %5.1f%% %9lld %7lld %9lld\n",
                  n.self() ? "*" : "", n.node_id().c_str(), n.address().c_str(),
                  n.peer_address().c_str(), n.liveness().c_str(),
                  n.state().c_str(), 100.0 * n.ring_share(),
                  static_cast<long long>(n.stats().sessions()),
                  static_cast<long long>(n.hints_pending()),
                  static_cast<long long>(n.anti_entropy_repaired()));
    out << line;
  }
}

template <typename T>
absl::Status PrintResult(const absl::StatusOr<T>& result, std::ostream& out) {
  if (!result.ok()) return result.status();
  return PrintJson(*result, out);
}

// Runs the parsed command; every error it returns came from the RPC.
// `*exit_code` is set when the command itself decides it (health).
absl::Status Execute(const Invocation& inv, const Client& client,
                     std::ostream& out, int* exit_code) {
  const std::string& cmd = inv.command;
  const std::string arg = inv.positional.empty() ? "" : inv.positional[0];
  const std::string* principal = Flag(inv, "--principal");

  if (cmd == "health") {
    absl::StatusOr<ServingStatus> s = client.Health(arg);
    if (!s.ok()) return s.status();
    out << ServingStatusName(*s) << '\n';
    *exit_code = *s == ServingStatus::kServing ? kCtlOk : kCtlRpcError;
    return absl::OkStatus();
  }
  if (cmd == "status") {
    absl::StatusOr<v1::ClusterStatusResponse> st = client.ClusterStatus();
    if (!st.ok() || Flag(inv, "--json") != nullptr) return PrintResult(st, out);
    PrintClusterTable(*st, out);
    return absl::OkStatus();
  }
  if (cmd == "read-local") {
    v1::ReadLocalRequest req;
    req.set_id(arg);
    return PrintResult(client.ReadLocal(req), out);
  }
  if (cmd == "stats") return PrintResult(client.NodeStats(), out);
  if (cmd == "create") {
    v1::CreateRequest req;
    if (inv.data) req.set_data(*inv.data);
    if (principal) req.set_principal(*principal);
    if (inv.ttl) *req.mutable_ttl() = *inv.ttl;
    absl::StatusOr<v1::CreateResponse> resp = client.Create(req);
    if (!resp.ok()) return resp.status();
    return PrintJson(resp->session(), out);
  }
  if (cmd == "get") {
    v1::GetRequest req;
    req.set_id(arg);
    req.set_touch(Flag(inv, "--touch") != nullptr);
    absl::StatusOr<v1::GetResponse> resp = client.Get(req);
    if (!resp.ok()) return resp.status();
    return PrintJson(resp->session(), out);
  }
  if (cmd == "touch") {
    v1::TouchRequest req;
    req.set_id(arg);
    if (inv.ttl) *req.mutable_ttl() = *inv.ttl;
    return PrintResult(client.Touch(req), out);
  }
  if (cmd == "update") {
    v1::UpdateRequest req;
    req.set_id(arg);
    if (inv.data) req.set_data(*inv.data);
    if (principal) req.set_principal(*principal);
    if (inv.ttl) *req.mutable_ttl() = *inv.ttl;
    if (inv.expected_version) {
      *req.mutable_expected_version() = *inv.expected_version;
    }
    absl::StatusOr<v1::UpdateResponse> resp = client.Update(req);
    if (!resp.ok()) return resp.status();
    return PrintJson(resp->session(), out);
  }
  if (cmd == "delete") {
    v1::DeleteRequest req;
    req.set_id(arg);
    if (inv.expected_version) {
      *req.mutable_expected_version() = *inv.expected_version;
    }
    return PrintResult(client.Delete(req), out);
  }
  if (cmd == "regenerate") {
    v1::RegenerateRequest req;
    req.set_id(arg);
    if (principal) req.set_principal(*principal);
    return PrintResult(client.Regenerate(req), out);
  }
  if (cmd == "list") {
    return ListAllSessions(client, inv.limit, Flag(inv, "--json") != nullptr, out);
  }
  if (cmd == "list-by-principal") {
    v1::ListByPrincipalRequest req;
    req.set_principal(arg);
    req.set_limit(inv.limit);
    return PrintResult(client.ListByPrincipal(req), out);
  }
  // Parse admits only known commands.
  v1::DeleteByPrincipalRequest req;
  req.set_principal(arg);
  return PrintResult(client.DeleteByPrincipal(req), out);
}

void PrintError(const absl::Status& status, std::ostream& err, bool hint) {
  std::string message(status.message());
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  err << "error: " << absl::StatusCodeToString(status.code()) << ": "
      << message;
  if (hint) err << " (see sessiongridctl --help)";
  err << '\n';
}

}  // namespace

std::string CtlUsage() {
  return R"(sessiongridctl: command line for SessionGrid nodes.

Usage: sessiongridctl [--server HOST:PORT] [--timeout 2s] <command> [args]

Global flags (also accepted after the command):
  --server TARGET   node(s) to talk to: HOST:PORT, a comma-separated list
                    (calls rotate over it) or dns:///NAME:PORT. Default:
                    $SESSIONGRID_SERVER. The flag wins over the variable.
  --timeout D       deadline per command, retries included (default 2s).
  --tls-ca FILE     connect with TLS, trusting the PEM CA(s) in FILE.
  --tls-cert FILE   present this PEM client certificate (with --tls-key;
  --tls-key FILE    for servers started with --tls-client-ca).
  --tls-server-name NAME  check the server certificate against NAME
                    instead of the host dialled.
  --token-file FILE send the bearer token in FILE with every call (the
                    server's --admin-token-file: read-local, list,
                    list-by-principal, delete-by-principal need it).
  --help, -h        this text.

Commands:
  health [SERVICE]              grpc.health.v1 check; prints SERVING,
                                NOT_SERVING, SERVICE_UNKNOWN or UNKNOWN.
                                Exit 0 only when SERVING.
  status [--json]               the cluster as a table: members, liveness, ring
                                share, sessions, hints (--json: ClusterStatus)
  read-local ID                 the answering node's own record or tombstone
  stats                         node counters (AdminService.NodeStats)
  create [--data STR | --data-file FILE] [--principal P] [--ttl 30m]
                                create a session; prints it
  get ID [--touch]              read a session (--touch slides its expiry)
  touch ID [--ttl D]            slide a session's expiry
  update ID [--data STR | --data-file FILE] [--principal P] [--ttl D]
            [--expected-version V]
                                change a session; --principal "" makes it
                                anonymous. V is the JSON of a Version
                                ({"wallMillis":"1","logical":0,"nodeId":"n"})
                                or WALL_MILLIS:LOGICAL:NODE_ID.
  delete ID [--expected-version V]
                                delete a session; prints {"deleted": ...}
  regenerate ID [--principal P] rotate a session id
  list-by-principal P [--limit N]
                                a principal's sessions (0 = server maximum)
  delete-by-principal P         delete all of a principal's sessions
  list [--limit N] [--json]     every live session in id order, paging
                                through ListSessions (--timeout per page):
                                a table and a count, or --json one Session
                                per line with its data; --limit N stops
                                after N (0 = all)
  import-redis --redis HOST:PORT [--prefix sess:] [--dry-run] [--cursor N]
                                copy connect-redis sessions under their ids
                                (needs the server's --allow-client-ids;
                                import-redis --help lists its flags)

--data-file - reads standard input. Durations: 500ms, 30s, 30m, 1h30m.
Output: sessions and responses as protobuf JSON (bytes in base64).

Exit codes: 0 success; 1 RPC error (or health not SERVING); 2 usage error;
3 import-redis interrupted.
Errors are one line on stderr: "error: <CODE>: <message>".
)";
}

int RunCtl(const std::vector<std::string>& args,
           absl::string_view default_server, std::ostream& out,
           std::ostream& err) {
  // import-redis has its own flags and output (client/import_redis_command.h).
  if (IsImportRedisCommand(args)) {
    return RunImportRedisInProcess(args, default_server, out, err);
  }
  absl::StatusOr<Invocation> inv = Parse(args, default_server);
  if (!inv.ok()) {
    PrintError(inv.status(), err, /*hint=*/true);
    return kCtlUsageError;
  }
  if (inv->help) {
    out << CtlUsage();
    return kCtlOk;
  }
  ClientOptions options;
  options.target = inv->server;
  options.deadline = inv->timeout;
  auto security = [&inv](const char* flag) {
    auto it = inv->security.find(flag);
    return it == inv->security.end() ? std::string() : it->second;
  };
  options.tls_ca_file = security("--tls-ca");
  options.tls_cert_file = security("--tls-cert");
  options.tls_key_file = security("--tls-key");
  options.tls_server_name = security("--tls-server-name");
  options.token_file = security("--token-file");
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Create(std::move(options));
  if (!client.ok()) {
    PrintError(client.status(), err, /*hint=*/true);
    return kCtlUsageError;
  }
  int exit_code = kCtlOk;
  absl::Status status = Execute(*inv, **client, out, &exit_code);
  if (!status.ok()) {
    PrintError(status, err, /*hint=*/false);
    return kCtlRpcError;
  }
  return exit_code;
}

}  // namespace sg::client

#include "client/import_redis_command.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/redis/redis_client.h"
#include "client/redis_import.h"
#include "sessiongrid/client.h"

namespace sg::client {
namespace {

constexpr char kCommand[] = "import-redis";
// A BatchCreate of up to 1000 sessions through a coordinator takes longer
// than the single calls sessiongridctl's 2 s default is sized for.
constexpr absl::Duration kDefaultTimeout = absl::Seconds(10);
// A terminal's line is redrawn at most this often.
constexpr absl::Duration kTtyRedraw = absl::Milliseconds(200);

struct Parsed {
  bool help = false;
  std::string server;
  absl::Duration timeout = kDefaultTimeout;
  redis::RedisOptions redis;
  std::optional<std::string> password_file;
  RedisImportOptions import;
  // sessiongridctl's global --tls-ca, --tls-cert, --tls-key,
  // --tls-server-name and --token-file, as the other commands take them.
  std::map<std::string, std::string> security;
};

bool IsSecurityFlag(absl::string_view flag) {
  return flag == "--tls-ca" || flag == "--tls-cert" || flag == "--tls-key" ||
         flag == "--tls-server-name" || flag == "--token-file";
}

absl::Status Usage(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

// --default-ttl: seconds (as the npm importer takes it) or a duration.
absl::StatusOr<absl::Duration> ParseTtl(const std::string& text) {
  absl::Duration d;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    d = absl::ZeroDuration();
  }
  if (d <= absl::ZeroDuration()) {
    return Usage(absl::StrCat(
        "--default-ttl: want seconds or a duration like 24h, got \"", text,
        "\""));
  }
  return d;
}

absl::StatusOr<int> ParseInt(absl::string_view flag, const std::string& text,
                             int min, int max) {
  int v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < min || v > max) {
    return Usage(
        absl::StrCat(flag, ": want ", min, "..", max, ", got \"", text, "\""));
  }
  return v;
}

absl::StatusOr<Parsed> Parse(const std::vector<std::string>& args,
                             absl::string_view default_server) {
  Parsed p;
  p.server = std::string(default_server);
  bool seen_command = false;
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
    auto value = [&]() -> absl::StatusOr<std::string> {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) {
        return Usage(absl::StrCat(arg, " needs a value"));
      }
      return args[++i];
    };
    auto no_value = [&]() -> absl::Status {
      if (inline_value) return Usage(absl::StrCat(arg, " takes no value"));
      return absl::OkStatus();
    };
#define SG_TAKE(var)                         \
  absl::StatusOr<std::string> var = value(); \
  if (!var.ok()) return var.status()

    if (arg == "--help" || arg == "-h") {
      p.help = true;
    } else if (arg == "--server") {
      SG_TAKE(v);
      p.server = *v;
    } else if (arg == "--timeout") {
      SG_TAKE(v);
      absl::Duration d;
      if (!absl::ParseDuration(*v, &d) || d <= absl::ZeroDuration()) {
        return Usage(absl::StrCat(
            "--timeout: want a positive duration like 10s, got \"", *v, "\""));
      }
      p.timeout = d;
    } else if (IsSecurityFlag(arg)) {
      SG_TAKE(v);
      p.security[arg] = *v;
    } else if (!seen_command && arg == kCommand) {
      seen_command = true;
    } else if (arg == "--redis") {
      SG_TAKE(v);
      p.redis.address = *v;
    } else if (arg == "--prefix") {
      SG_TAKE(v);
      p.import.prefix = *v;
    } else if (arg == "--dry-run") {
      if (absl::Status s = no_value(); !s.ok()) return s;
      p.import.dry_run = true;
    } else if (arg == "--default-ttl") {
      SG_TAKE(v);
      absl::StatusOr<absl::Duration> d = ParseTtl(*v);
      if (!d.ok()) return d.status();
      p.import.default_ttl = *d;
    } else if (arg == "--batch") {
      SG_TAKE(v);
      absl::StatusOr<int> n = ParseInt(arg, *v, 1, 1000);
      if (!n.ok()) return n.status();
      p.import.batch = *n;
    } else if (arg == "--cursor") {
      SG_TAKE(v);
      p.import.cursor = *v;
    } else if (arg == "--redis-password-file") {
      SG_TAKE(v);
      p.password_file = *v;
    } else if (arg == "--redis-user") {
      SG_TAKE(v);
      p.redis.username = *v;
    } else if (arg == "--redis-db") {
      SG_TAKE(v);
      absl::StatusOr<int> n = ParseInt(arg, *v, 0, 1 << 20);
      if (!n.ok()) return n.status();
      p.redis.database = *n;
    } else if (absl::StartsWith(arg, "-")) {
      return Usage(absl::StrCat("unknown flag ", arg, " for ", kCommand));
    } else {
      return Usage(
          absl::StrCat(kCommand, " takes no arguments, got \"", args[i], "\""));
    }
#undef SG_TAKE
  }
  if (p.help) return p;
  if (p.server.empty()) {
    return Usage(
        "no server: pass --server HOST:PORT or set SESSIONGRID_SERVER");
  }
  if (p.redis.address.empty()) return Usage("--redis HOST:PORT is required");
  if (p.import.prefix.empty()) {
    return Usage("--prefix: must not be empty (connect-redis' is sess:)");
  }
  p.import.rpc_timeout = p.timeout;
  p.redis.io_timeout = p.timeout;
  if (absl::Status s = p.redis.Validate(); !s.ok()) return s;
  if (absl::Status s = p.import.Validate(); !s.ok()) return s;
  return p;
}

// The password: --redis-password-file's first line, else $REDISCLI_AUTH.
absl::StatusOr<std::string> Password(const Parsed& p,
                                     const ImportRedisEnv& env) {
  if (!p.password_file) return env.redis_auth;
  std::ifstream in(*p.password_file, std::ios::binary);
  if (!in) {
    return Usage(
        absl::StrCat("--redis-password-file: cannot open ", *p.password_file));
  }
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (in.bad()) {
    return Usage(
        absl::StrCat("--redis-password-file: cannot read ", *p.password_file));
  }
  const size_t eol = text.find_first_of("\r\n");
  if (eol != std::string::npos) text.resize(eol);
  if (text.empty()) {
    return Usage(
        absl::StrCat("--redis-password-file: ", *p.password_file, " is empty"));
  }
  return text;
}

void PrintError(const absl::Status& status, std::ostream& err,
                absl::string_view hint) {
  std::string message(status.message());
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  err << "error: " << absl::StatusCodeToString(status.code()) << ": " << message
      << hint << '\n';
}

// 42s, 3m05s, or ? when unknown; as the npm importer prints it.
std::string FormatEta(double seconds) {
  if (!std::isfinite(seconds)) return "?";
  if (seconds < 60) return absl::StrCat(std::llround(seconds), "s");
  const int64_t s = std::llround(seconds);
  return absl::StrFormat("%dm%02ds", s / 60, s % 60);
}

// One progress line, the npm importer's format:
// "scanned 1200/~5000, imported 1100, skipped 100, 950 sessions/s, ETA 4s".
std::string ProgressLine(const RedisImportStats& s, int64_t total,
                         bool dry_run) {
  const double secs = std::max(0.001, absl::ToDoubleSeconds(s.elapsed));
  const double rate = static_cast<double>(s.scanned) / secs;
  const double left =
      static_cast<double>(std::max<int64_t>(0, total - s.scanned));
  const std::string eta =
      s.done ? "0s" : FormatEta(rate > 0 ? left / rate : INFINITY);
  return absl::StrCat(dry_run ? "[dry run] " : "", "scanned ", s.scanned, "/~",
                      total, ", imported ", s.imported, ", skipped ",
                      s.skipped_total(), ", ", std::llround(rate),
                      " sessions/s, ETA ", eta);
}

std::atomic<bool> g_stop{false};

extern "C" void OnStopSignal(int) { g_stop.store(true); }

}  // namespace

bool IsImportRedisCommand(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    // Global flags that take a value.
    if (a == "--server" || a == "--timeout" || IsSecurityFlag(a)) {
      if (a.find('=') == std::string::npos) ++i;  // its value
      continue;
    }
    if (absl::StartsWith(a, "-")) continue;
    return a == kCommand;
  }
  return false;
}

std::string ImportRedisUsage() {
  return R"(sessiongridctl import-redis: copy connect-redis sessions into SessionGrid.

Usage: sessiongridctl --server HOST:PORT import-redis --redis HOST:PORT
         [--prefix sess:] [--dry-run] [--default-ttl SECONDS|DURATION]
         [--batch 500] [--cursor N] [--redis-password-file FILE]
         [--redis-user NAME] [--redis-db N] [--timeout 10s]

Every Redis key <prefix><id> (found with SCAN) becomes the SessionGrid
session <id>: its value, express-session's JSON, is the session data byte
for byte; its remaining TTL (PTTL) the session's TTL. With the same cookie
secret, users logged in on connect-redis stay logged in. The server must
run with --allow-client-ids (needed for the import only).

  --redis HOST:PORT       the Redis server (required)
  --prefix P              connect-redis' key prefix (default sess:)
  --dry-run               read and check every key, write nothing; counts
                          what would be imported as imported
  --default-ttl T         TTL of keys without one (connect-redis disableTTL):
                          seconds or a duration like 24h; default: the
                          server's --default-ttl
  --batch N               keys per SCAN page and sessions per BatchCreate
                          (1..1000, default 500)
  --cursor N              SCAN cursor to start from: the one an interrupted
                          or failed run printed (default 0, the beginning)
  --redis-password-file F AUTH with the first line of F; without it the
                          password is $REDISCLI_AUTH (as redis-cli reads it),
                          if set
  --redis-user NAME       ACL user for AUTH (Redis 6+; needs a password)
  --redis-db N            SELECT this database first (default 0)
  --timeout D             deadline of each BatchCreate and Redis round trip
                          (default 10s for this command)
  --tls-ca, --tls-cert, --tls-key, --tls-server-name, --token-file
                          reach a TLS server as every sessiongridctl
                          command does (sessiongridctl --help)

Never overwrites: an id already in SessionGrid, live or deleted (logged
out), is skipped as "exists", so re-running is safe. Redis Cluster: SCAN
walks one node, so run it once against each primary. Skipped keys are
counted by reason: exists, expired, bad_id (not 22-128 base64url
characters), not_json_object, wrong_type (not a string), refused_invalid,
refused_memory.

Progress goes to stderr: on a terminal one line redrawn in place
(sessions/s, scanned/~total from DBSIZE, ETA), otherwise a line every 5 s.
The summary is one JSON line on stdout:
  {"scanned":N,"imported":N,"skipped":{...},"cursor":"C","done":true,...}

Exit codes: 0 every key scanned; 1 an error (Redis unreachable or refusing,
server refusing, an RPC failing), with the --cursor to resume from; 2 usage
error; 3 interrupted (SIGINT/SIGTERM: stops after the current page and
prints the --cursor to resume from).
)";
}

int RunImportRedis(const std::vector<std::string>& args,
                   absl::string_view default_server, const ImportRedisEnv& env,
                   std::ostream& out, std::ostream& err) {
  constexpr absl::string_view kUsageHint =
      " (see sessiongridctl import-redis --help)";
  absl::StatusOr<Parsed> parsed = Parse(args, default_server);
  if (!parsed.ok()) {
    PrintError(parsed.status(), err, kUsageHint);
    return 2;
  }
  if (parsed->help) {
    out << ImportRedisUsage();
    return 0;
  }
  absl::StatusOr<std::string> password = Password(*parsed, env);
  if (!password.ok()) {
    PrintError(password.status(), err, kUsageHint);
    return 2;
  }
  parsed->redis.password = *password;

  ClientOptions client_options;
  client_options.target = parsed->server;
  client_options.deadline = parsed->timeout;
  auto security = [&](const char* flag) {
    auto it = parsed->security.find(flag);
    return it == parsed->security.end() ? std::string() : it->second;
  };
  client_options.tls_ca_file = security("--tls-ca");
  client_options.tls_cert_file = security("--tls-cert");
  client_options.tls_key_file = security("--tls-key");
  client_options.tls_server_name = security("--tls-server-name");
  client_options.token_file = security("--token-file");
  absl::StatusOr<std::unique_ptr<Client>> sessions =
      Client::Create(std::move(client_options));
  if (!sessions.ok()) {
    PrintError(sessions.status(), err, kUsageHint);
    return 2;
  }

  auto redis_error = [&](const absl::Status& s) {
    PrintError(s, err,
               s.code() == absl::StatusCode::kUnauthenticated
                   ? " (pass --redis-password-file FILE or set REDISCLI_AUTH)"
                   : "");
    return 1;
  };
  absl::StatusOr<std::unique_ptr<redis::RedisClient>> redis =
      redis::RedisClient::Connect(parsed->redis);
  if (!redis.ok()) return redis_error(redis.status());
  // For the ETA: every key of the database, an upper bound of sessions.
  // Also the first command: a Redis wanting a password says so here.
  absl::StatusOr<int64_t> total = (*redis)->DbSize();
  if (!total.ok()) return redis_error(total.status());

  const bool dry_run = parsed->import.dry_run;
  std::optional<absl::Time> last_line;
  bool drawn = false;
  auto draw = [&](const RedisImportStats& s, bool final_line) {
    const absl::Time now = env.clock->Now();
    const absl::Duration every =
        env.progress_tty ? kTtyRedraw : env.progress_every;
    if (!final_line && last_line && now - *last_line < every) return;
    last_line = now;
    const std::string line = ProgressLine(s, *total, dry_run);
    if (env.progress_tty) {
      err << '\r' << line << "\x1b[K" << std::flush;
      drawn = true;
    } else {
      err << line << '\n' << std::flush;
    }
  };

  RedisImportStats stats;
  const absl::Status status = ImportRedis(
      **redis, sessions->get(), parsed->import, *env.clock, env.stop,
      [&](const RedisImportStats& s) { draw(s, s.done); }, &stats);
  if (!stats.done) draw(stats, /*final_line=*/true);
  if (drawn) err << '\n';
  out << stats.ToJson(dry_run) << '\n' << std::flush;
  if (!status.ok()) {
    PrintError(status, err, "");
    err << "resume with: --cursor " << stats.cursor << '\n';
    return 1;
  }
  if (!stats.done) {
    err << "interrupted: resume with --cursor " << stats.cursor << '\n';
    return kImportInterrupted;
  }
  return 0;
}

int RunImportRedisInProcess(const std::vector<std::string>& args,
                            absl::string_view default_server, std::ostream& out,
                            std::ostream& err) {
  ImportRedisEnv env;
  if (const char* auth = std::getenv("REDISCLI_AUTH")) env.redis_auth = auth;
  env.progress_tty = isatty(STDERR_FILENO) == 1;
  g_stop.store(false);
  env.stop = &g_stop;
  // One signal stops between pages; SA_RESETHAND lets a second one kill.
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;
  struct sigaction old_int = {};
  struct sigaction old_term = {};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  const int code = RunImportRedis(args, default_server, env, out, err);
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return code;
}

}  // namespace sg::client

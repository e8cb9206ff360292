#include "client/redis/redis_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/host_port.h"
#include "common/status_macros.h"

namespace sg::redis {
namespace {

// Milliseconds left until `deadline`, for poll(); at least 0.
int MillisLeft(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
}

std::string Errno(int err) { return std::strerror(err); }

absl::Status ConnectError(const std::string& address, int err) {
  if (err == ECONNREFUSED) {
    return absl::UnavailableError(absl::StrCat(
        "redis ", address,
        ": connection refused (is redis-server listening there?)"));
  }
  return absl::UnavailableError(
      absl::StrCat("redis ", address, ": connect: ", Errno(err)));
}

// Connects one resolved address within the deadline. Returns the socket
// (non-blocking) or the failure.
absl::StatusOr<int> ConnectOne(const addrinfo& ai, absl::Time deadline,
                               const std::string& address) {
  const int fd =
      socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
             ai.ai_protocol);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("redis ", address, ": socket: ", Errno(errno)));
  }
  auto fail = [&](absl::Status s) {
    close(fd);
    return s;
  };
  if (connect(fd, ai.ai_addr, ai.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return fail(ConnectError(address, errno));
    for (;;) {
      pollfd p{fd, POLLOUT, 0};
      const int n = poll(&p, 1, MillisLeft(deadline));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) {
        return fail(absl::DeadlineExceededError(
            absl::StrCat("redis ", address,
                         ": no connection within the "
                         "connect timeout")));
      }
      break;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return fail(ConnectError(address, err));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

absl::Status RedisOptions::Validate() const {
  absl::StatusOr<HostPort> hp = ParseHostPort(address, "--redis");
  if (!hp.ok()) return hp.status();
  if (!username.empty() && password.empty()) {
    return absl::InvalidArgumentError(
        "redis: a username needs a password (AUTH user password)");
  }
  if (database < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis: database must be >= 0, got ", database));
  }
  if (connect_timeout <= absl::ZeroDuration() ||
      io_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("redis: timeouts must be positive");
  }
  return absl::OkStatus();
}

absl::Status ReplyError(std::string_view address, const RespValue& reply) {
  const std::string& m = reply.str;
  const std::string text =
      absl::StrCat("redis ", std::string(address), ": \"", m, "\"");
  if (absl::StartsWith(m, "NOAUTH") || absl::StartsWith(m, "WRONGPASS")) {
    return absl::UnauthenticatedError(text);
  }
  if (absl::StartsWith(m, "WRONGTYPE")) {
    return absl::FailedPreconditionError(text);
  }
  return absl::UnknownError(text);
}

std::string GlobEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Connect(
    RedisOptions options) {
  SG_RETURN_IF_ERROR(options.Validate());
  SG_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(options.address, "--redis"));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(hp.port);
  const int rc = getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("redis ", options.address,
                                               ": cannot resolve ", hp.host,
                                               ": ", gai_strerror(rc)));
  }
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  absl::Status last = absl::UnavailableError(
      absl::StrCat("redis ", options.address, ": no address to connect to"));
  int fd = -1;
  for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
    absl::StatusOr<int> one = ConnectOne(*ai, deadline, options.address);
    if (one.ok()) {
      fd = *one;
    } else {
      last = one.status();
    }
  }
  freeaddrinfo(list);
  if (fd < 0) return last;

  std::unique_ptr<RedisClient> client(new RedisClient(options, fd));
  if (!options.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!options.username.empty()) auth.push_back(options.username);
    auth.push_back(options.password);
    absl::StatusOr<RespValue> r = client->Command(auth);
    if (!r.ok()) return r.status();
  }
  if (options.database != 0) {
    absl::StatusOr<RespValue> r =
        client->Command({"SELECT", std::to_string(options.database)});
    if (!r.ok()) return r.status();
  }
  return client;
}

RedisClient::RedisClient(RedisOptions options, int fd)
    : options_(std::move(options)), fd_(fd) {}

RedisClient::~RedisClient() {
  if (fd_ >= 0) close(fd_);
}

absl::Status RedisClient::Broken(absl::Status status) {
  broken_ = status;
  return status;
}

absl::StatusOr<std::vector<RespValue>> RedisClient::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  SG_RETURN_IF_ERROR(broken_);
  std::string out;
  for (const auto& c : commands) out += EncodeCommand(c);
  std::vector<RespValue> replies;
  replies.reserve(commands.size());
  const absl::Time deadline = absl::Now() + options_.io_timeout;
  size_t sent = 0;
  char buf[64 * 1024];
  while (replies.size() < commands.size()) {
    // Take every reply already buffered before waiting for more.
    for (;;) {
      absl::StatusOr<std::optional<RespValue>> next = parser_.Next();
      if (!next.ok()) {
        return Broken(absl::DataLossError(absl::StrCat(
            "redis ", options_.address, ": ", next.status().message())));
      }
      if (!next->has_value()) break;
      if (replies.size() == commands.size()) {
        return Broken(absl::DataLossError(absl::StrCat(
            "redis ", options_.address, ": a reply nobody asked for")));
      }
      replies.push_back(std::move(**next));
    }
    if (replies.size() == commands.size()) break;
    pollfd p{fd_,
             static_cast<short>(POLLIN | (sent < out.size() ? POLLOUT : 0)), 0};
    const int n = poll(&p, 1, MillisLeft(deadline));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Broken(absl::InternalError(
          absl::StrCat("redis ", options_.address, ": poll: ", Errno(errno))));
    }
    if (n == 0) {
      return Broken(absl::DeadlineExceededError(
          absl::StrCat("redis ", options_.address, ": no reply within ",
                       absl::FormatDuration(options_.io_timeout))));
    }
    if ((p.revents & POLLOUT) && sent < out.size()) {
      const ssize_t w =
          send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (w > 0) {
        sent += static_cast<size_t>(w);
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        return Broken(absl::UnavailableError(absl::StrCat(
            "redis ", options_.address, ": send: ", Errno(errno))));
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t r = recv(fd_, buf, sizeof(buf), 0);
      if (r > 0) {
        parser_.Feed(std::string_view(buf, static_cast<size_t>(r)));
      } else if (r == 0) {
        return Broken(absl::UnavailableError(absl::StrCat(
            "redis ", options_.address, ": the server closed the connection")));
      } else if (errno != EAGAIN && errno != EINTR) {
        return Broken(absl::UnavailableError(absl::StrCat(
            "redis ", options_.address, ": recv: ", Errno(errno))));
      }
    }
  }
  return replies;
}

absl::StatusOr<RespValue> RedisClient::Command(
    const std::vector<std::string>& args) {
  SG_ASSIGN_OR_RETURN(std::vector<RespValue> replies, Pipeline({args}));
  if (replies[0].is_error()) return ReplyError(options_.address, replies[0]);
  return std::move(replies[0]);
}

absl::StatusOr<ScanPage> RedisClient::Scan(std::string_view cursor,
                                           std::string_view pattern,
                                           int64_t count) {
  SG_ASSIGN_OR_RETURN(RespValue r, Command({"SCAN", std::string(cursor),
                                            "MATCH", std::string(pattern),
                                            "COUNT", std::to_string(count)}));
  auto bad = [&]() {
    return absl::DataLossError(
        absl::StrCat("redis ", options_.address,
                     ": SCAN answered something other than [cursor, [keys]]"));
  };
  if (r.type != RespValue::Type::kArray || r.elements.size() != 2 ||
      r.elements[0].type != RespValue::Type::kBulkString ||
      r.elements[1].type != RespValue::Type::kArray) {
    return bad();
  }
  ScanPage page;
  page.cursor = std::move(r.elements[0].str);
  page.keys.reserve(r.elements[1].elements.size());
  for (RespValue& k : r.elements[1].elements) {
    if (k.type != RespValue::Type::kBulkString) return bad();
    page.keys.push_back(std::move(k.str));
  }
  return page;
}

absl::StatusOr<int64_t> RedisClient::DbSize() {
  SG_ASSIGN_OR_RETURN(RespValue r, Command({"DBSIZE"}));
  if (r.type != RespValue::Type::kInteger) {
    return absl::DataLossError(
        absl::StrCat("redis ", options_.address, ": DBSIZE answered a ",
                     std::string(TypeName(r.type)), ", not an integer"));
  }
  return r.integer;
}

}  // namespace sg::redis

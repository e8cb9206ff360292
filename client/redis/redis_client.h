// A small blocking Redis client: one TCP connection, RESP2, pipelining,
// and the few typed commands the connect-redis importer needs. Not a
// general Redis library: no cluster redirects, no pub/sub, no TLS.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/redis/resp.h"

namespace sg::redis {

// Where and how to connect. Plain data; Connect() validates it.
struct RedisOptions {
  // HOST:PORT or [IPV6]:PORT; a host name is resolved (every address tried).
  std::string address;
  // AUTH after connecting when not empty (with `username` when that is
  // not empty too: Redis 6 ACL users).
  std::string username;
  std::string password;
  // SELECT this database after AUTH (0 is Redis' default).
  int database = 0;
  absl::Duration connect_timeout = absl::Seconds(5);
  // Budget of one command or pipeline, from its first byte sent to its
  // last reply read.
  absl::Duration io_timeout = absl::Seconds(10);

  // INVALID_ARGUMENT naming the field when unusable. No I/O.
  absl::Status Validate() const;
};

// One page of SCAN.
struct ScanPage {
  std::string cursor;  // "0" when the iteration is complete
  std::vector<std::string> keys;
};

// A connection to one Redis server. Not thread-safe (one caller at a time);
// not copyable. Once an I/O or protocol error occurred, every later call
// fails with that error: open a new client to go on.
class RedisClient final {
 public:
  // Connects (trying each resolved address), then AUTH and SELECT when the
  // options ask. UNAVAILABLE when nothing accepts the connection (the
  // message says "connection refused" and names the address),
  // DEADLINE_EXCEEDED after connect_timeout, UNAUTHENTICATED when Redis
  // wants a password (NOAUTH) or refuses it (WRONGPASS).
  static absl::StatusOr<std::unique_ptr<RedisClient>> Connect(
      RedisOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends every command, then returns one reply per command, in order.
  // Redis error replies (-ERR, -WRONGTYPE, ...) are returned as values of
  // type kError; the status fails only on I/O (UNAVAILABLE when the peer
  // closed, DEADLINE_EXCEEDED after io_timeout) or a protocol violation
  // (DATA_LOSS). Sending and reading overlap, so a large pipeline cannot
  // deadlock on full socket buffers.
  absl::StatusOr<std::vector<RespValue>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);

  // One command; an error reply becomes a status (see ReplyError).
  absl::StatusOr<RespValue> Command(const std::vector<std::string>& args);

  // SCAN cursor MATCH pattern COUNT count. `pattern` is a glob: use
  // GlobEscape for a literal prefix.
  absl::StatusOr<ScanPage> Scan(std::string_view cursor,
                                std::string_view pattern, int64_t count);

  // DBSIZE: keys in the selected database.
  absl::StatusOr<int64_t> DbSize();

  // The address connected to, as given.
  const std::string& address() const { return options_.address; }

 private:
  RedisClient(RedisOptions options, int fd);
  absl::Status Broken(absl::Status status);

  const RedisOptions options_;
  int fd_;
  RespParser parser_;
  absl::Status broken_;  // OK until the first I/O or protocol error
};

// The status for an error reply: UNAUTHENTICATED for NOAUTH and WRONGPASS,
// FAILED_PRECONDITION for WRONGTYPE, UNKNOWN otherwise; the message names
// `address` and quotes Redis.
absl::Status ReplyError(std::string_view address, const RespValue& reply);

// `text` with the glob specials (* ? [ ] \) backslash-escaped, so that
// GlobEscape(prefix) + "*" matches exactly the keys starting with prefix.
std::string GlobEscape(std::string_view text);

}  // namespace sg::redis

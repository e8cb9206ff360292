// RESP2, the Redis wire protocol: command encoding and an incremental reply
// parser. Pure code, no I/O, so every framing case is unit-testable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sg::redis {

// One RESP2 reply. Plain data.
struct RespValue {
  enum class Type {
    kSimpleString,  // +OK
    kError,         // -ERR message (a reply, not a protocol failure)
    kInteger,       // :42
    kBulkString,    // $3\r\nabc
    kNil,           // $-1 (missing key) or *-1 (nil array)
    kArray,         // *N followed by N values
  };
  Type type = Type::kNil;
  std::string str;                  // simple string, error or bulk bytes
  int64_t integer = 0;              // kInteger
  std::vector<RespValue> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
};

// "simple string", "error", "integer", "bulk string", "nil" or "array".
std::string_view TypeName(RespValue::Type type);

// A command as RESP: an array of bulk strings (binary-safe).
std::string EncodeCommand(const std::vector<std::string>& args);

// Limits that keep a hostile or broken peer from exhausting memory.
struct RespLimits {
  int64_t max_bulk_bytes = 512LL * 1024 * 1024;  // Redis' own cap
  int64_t max_array_elements = 16 * 1024 * 1024;
  size_t max_depth = 32;              // nested arrays
  size_t max_line_bytes = 64 * 1024;  // a +, -, : or header line
};

// Turns a byte stream into replies, however the bytes are split across
// reads. Usage: Feed() what a read returned, then call Next() until it
// yields nullopt (more bytes needed). After an error the stream is out of
// sync and every later Next() fails the same way. Not thread-safe.
class RespParser final {
 public:
  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}
  RespParser(const RespParser&) = delete;
  RespParser& operator=(const RespParser&) = delete;

  // Appends received bytes.
  void Feed(std::string_view bytes);

  // The next complete reply; nullopt when the buffered bytes end inside
  // one (the consumed part is kept, so a large array is not re-parsed);
  // DATA_LOSS on a protocol violation or a broken limit.
  absl::StatusOr<std::optional<RespValue>> Next();

  // Bytes received and not yet part of a returned reply.
  size_t buffered() const { return buffer_.size() - pos_; }

 private:
  // An array being filled: how many elements it still expects.
  struct Frame {
    RespValue value;
    int64_t remaining = 0;
  };
  // Result of looking at one item (a scalar, or an array's header).
  enum class Step { kNeedMore, kValue, kArrayOpened };

  absl::StatusOr<Step> ParseItem(RespValue* out);
  absl::Status Fail(std::string message);

  const RespLimits limits_;
  std::string buffer_;
  size_t pos_ = 0;  // start of the unparsed bytes in buffer_
  std::vector<Frame> stack_;
  std::optional<absl::Status> error_;
};

}  // namespace sg::redis

#include "client/redis/resp.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sg::redis {

std::string_view TypeName(RespValue::Type type) {
  switch (type) {
    case RespValue::Type::kSimpleString:
      return "simple string";
    case RespValue::Type::kError:
      return "error";
    case RespValue::Type::kInteger:
      return "integer";
    case RespValue::Type::kBulkString:
      return "bulk string";
    case RespValue::Type::kNil:
      return "nil";
    case RespValue::Type::kArray:
      return "array";
  }
  return "unknown";
}

std::string EncodeCommand(const std::vector<std::string>& args) {
  size_t size = 16;
  for (const std::string& a : args) size += a.size() + 16;
  std::string out;
  out.reserve(size);
  absl::StrAppend(&out, "*", args.size(), "\r\n");
  for (const std::string& a : args) {
    absl::StrAppend(&out, "$", a.size(), "\r\n", a, "\r\n");
  }
  return out;
}

void RespParser::Feed(std::string_view bytes) {
  // Drop what is parsed before growing, so the buffer holds about one
  // read's worth plus the reply in progress.
  if (pos_ > 0 && (pos_ == buffer_.size() || pos_ >= 64 * 1024)) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

absl::Status RespParser::Fail(std::string message) {
  error_ = absl::DataLossError(absl::StrCat("redis protocol error: ", message));
  stack_.clear();
  return *error_;
}

absl::StatusOr<RespParser::Step> RespParser::ParseItem(RespValue* out) {
  const std::string_view rest = std::string_view(buffer_).substr(pos_);
  if (rest.empty()) return Step::kNeedMore;
  // The same limit whether or not the line's end has arrived yet, so the
  // outcome does not depend on how the bytes were split.
  const size_t eol = rest.find("\r\n");
  size_t line_bytes = eol;
  if (eol == std::string_view::npos) {
    line_bytes = rest.size() - (rest.back() == '\r' ? 1 : 0);
  }
  if (line_bytes > limits_.max_line_bytes) {
    return Fail(
        absl::StrCat("a line longer than ", limits_.max_line_bytes, " bytes"));
  }
  if (eol == std::string_view::npos) return Step::kNeedMore;
  const char kind = rest[0];
  const std::string_view line = rest.substr(1, eol - 1);
  const size_t header = eol + 2;
  auto parse_int = [&](int64_t* v) -> absl::Status {
    if (!absl::SimpleAtoi(absl::string_view(line.data(), line.size()), v)) {
      return Fail(absl::StrCat(
          "bad number \"",
          absl::string_view(line.data(), std::min<size_t>(line.size(), 40)),
          "\" after '", std::string(1, kind), "'"));
    }
    return absl::OkStatus();
  };
  switch (kind) {
    case '+':
    case '-':
      out->type = kind == '+' ? RespValue::Type::kSimpleString
                              : RespValue::Type::kError;
      out->str.assign(line.data(), line.size());
      pos_ += header;
      return Step::kValue;
    case ':': {
      int64_t v = 0;
      if (absl::Status s = parse_int(&v); !s.ok()) return s;
      out->type = RespValue::Type::kInteger;
      out->integer = v;
      pos_ += header;
      return Step::kValue;
    }
    case '$': {
      int64_t len = 0;
      if (absl::Status s = parse_int(&len); !s.ok()) return s;
      if (len == -1) {
        out->type = RespValue::Type::kNil;
        pos_ += header;
        return Step::kValue;
      }
      if (len < 0) return Fail(absl::StrCat("bulk length ", len));
      if (len > limits_.max_bulk_bytes) {
        return Fail(absl::StrCat("bulk string of ", len, " bytes (limit ",
                                 limits_.max_bulk_bytes, ")"));
      }
      const size_t need = header + static_cast<size_t>(len) + 2;
      if (rest.size() < need) return Step::kNeedMore;
      if (rest.substr(need - 2, 2) != "\r\n") {
        return Fail(absl::StrCat("bulk string of ", len,
                                 " bytes not followed by CRLF"));
      }
      out->type = RespValue::Type::kBulkString;
      out->str.assign(rest.data() + header, static_cast<size_t>(len));
      pos_ += need;
      return Step::kValue;
    }
    case '*': {
      int64_t count = 0;
      if (absl::Status s = parse_int(&count); !s.ok()) return s;
      pos_ += header;
      if (count == -1) {
        out->type = RespValue::Type::kNil;
        return Step::kValue;
      }
      if (count < 0) return Fail(absl::StrCat("array length ", count));
      if (count > limits_.max_array_elements) {
        return Fail(absl::StrCat("array of ", count, " elements (limit ",
                                 limits_.max_array_elements, ")"));
      }
      out->type = RespValue::Type::kArray;
      if (count == 0) return Step::kValue;
      out->integer = count;  // handed to the frame, then reset
      return Step::kArrayOpened;
    }
    default:
      return Fail(
          absl::StrFormat("unexpected byte 0x%02x at the start of a "
                          "reply (not a Redis server?)",
                          static_cast<unsigned char>(kind)));
  }
}

absl::StatusOr<std::optional<RespValue>> RespParser::Next() {
  if (error_) return *error_;
  for (;;) {
    RespValue item;
    absl::StatusOr<Step> step = ParseItem(&item);
    if (!step.ok()) return step.status();
    if (*step == Step::kNeedMore) return std::nullopt;
    if (*step == Step::kArrayOpened) {
      if (stack_.size() >= limits_.max_depth) {
        return Fail(
            absl::StrCat("arrays nested deeper than ", limits_.max_depth));
      }
      Frame frame;
      frame.remaining = item.integer;
      item.integer = 0;
      item.elements.reserve(
          static_cast<size_t>(std::min<int64_t>(frame.remaining, 1024)));
      frame.value = std::move(item);
      stack_.push_back(std::move(frame));
      continue;
    }
    // A complete value: attach it to the open arrays, closing the full ones.
    for (;;) {
      if (stack_.empty()) return std::optional<RespValue>(std::move(item));
      Frame& top = stack_.back();
      top.value.elements.push_back(std::move(item));
      if (--top.remaining > 0) break;
      item = std::move(top.value);
      stack_.pop_back();
    }
  }
}

}  // namespace sg::redis

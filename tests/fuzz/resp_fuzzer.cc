// The RESP2 reply parser (client/redis/resp.h) on hostile bytes, as a
// server that is not Redis, or a broken one, could send them to
// sessiongridctl import-redis. Beyond "no crash, no leak, no UB": feeding
// the same bytes in pieces (cut where the input's first byte says) yields
// exactly the replies, or the error, that feeding them whole does.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "client/redis/resp.h"

namespace {

using sg::redis::RespLimits;
using sg::redis::RespParser;
using sg::redis::RespValue;

bool Same(const RespValue& a, const RespValue& b) {
  if (a.type != b.type || a.str != b.str || a.integer != b.integer ||
      a.elements.size() != b.elements.size()) {
    return false;
  }
  for (size_t i = 0; i < a.elements.size(); ++i) {
    if (!Same(a.elements[i], b.elements[i])) return false;
  }
  return true;
}

struct Outcome {
  std::vector<RespValue> values;
  bool failed = false;
};

// Small limits, so that the fuzzer reaches them.
RespLimits Limits() {
  RespLimits l;
  l.max_bulk_bytes = 4096;
  l.max_array_elements = 256;
  l.max_depth = 8;
  l.max_line_bytes = 256;
  return l;
}

void Drain(RespParser& parser, Outcome* out) {
  while (!out->failed) {
    absl::StatusOr<std::optional<RespValue>> next = parser.Next();
    if (!next.ok()) {
      out->failed = true;
      return;
    }
    if (!next->has_value()) return;
    out->values.push_back(std::move(**next));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 16;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1,
                               size - 1);

  Outcome whole;
  {
    RespParser parser(Limits());
    parser.Feed(bytes);
    Drain(parser, &whole);
  }
  Outcome pieces;
  {
    RespParser parser(Limits());
    for (size_t at = 0; at < bytes.size() && !pieces.failed; at += chunk) {
      parser.Feed(bytes.substr(at, chunk));
      Drain(parser, &pieces);
    }
  }
  // Both stop at the same reply: the error or the end of the bytes.
  if (whole.failed != pieces.failed ||
      whole.values.size() != pieces.values.size()) {
    std::abort();
  }
  for (size_t i = 0; i < whole.values.size(); ++i) {
    if (!Same(whole.values[i], pieces.values[i])) std::abort();
  }
  return 0;
}

// The edge's strict request-head checks (edge/http/request_validation) on
// raw bytes from the network. Beyond "no crash, no leak, no UB": the
// scanner gives exactly the same outcome (state, status, reason, bounds)
// whether the bytes arrive whole or in pieces (cut where the input's first
// byte says), its head bounds lie in the input, and it answers only the
// statuses its contract names.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "edge/http/request_validation.h"

namespace {

using sg::edge::HeadLimits;
using sg::edge::HeadVerdict;
using sg::edge::RequestHeadScanner;

// Aborts naming the property that failed.
#define CHECK_PROPERTY(cond)                                \
  do {                                                      \
    if (!(cond)) {                                          \
      std::fprintf(stderr, "property failed: %s\n", #cond); \
      std::abort();                                         \
    }                                                       \
  } while (0)

bool KnownStatus(int status) {
  return status == 400 || status == 414 || status == 431 || status == 501 ||
         status == 505;
}

struct Outcome {
  RequestHeadScanner::State state;
  size_t begin = 0, end = 0;
  int status = 0;
  std::string_view reason;  // static text
};

// Feeds `bytes` growing by `step` each call (0: all at once).
Outcome Scan(std::string_view bytes, size_t step, const HeadLimits& limits) {
  RequestHeadScanner scanner(limits);
  RequestHeadScanner::State state = RequestHeadScanner::State::kNeedMore;
  size_t have = step == 0 ? bytes.size() : 0;
  for (;;) {
    if (step != 0)
      have = have + step < bytes.size() ? have + step : bytes.size();
    state = scanner.Scan(bytes.substr(0, have));
    if (state != RequestHeadScanner::State::kNeedMore || have == bytes.size()) {
      break;
    }
  }
  Outcome o;
  o.state = state;
  if (state == RequestHeadScanner::State::kComplete) {
    o.begin = scanner.head_begin();
    o.end = scanner.head_end();
  } else if (state == RequestHeadScanner::State::kRejected) {
    o.status = scanner.verdict().status;
    o.reason = scanner.verdict().reason;
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = data[0] % 17;  // 0: whole
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1),
                               size - 1);
  // Small limits, so that the fuzzer reaches them.
  HeadLimits limits;
  limits.max_request_line = 256;
  limits.max_head = 1024;

  const Outcome whole = Scan(bytes, 0, limits);
  const Outcome pieces = Scan(bytes, step == 0 ? 1 : step, limits);
  CHECK_PROPERTY(whole.state == pieces.state);
  CHECK_PROPERTY(whole.begin == pieces.begin && whole.end == pieces.end);
  // Exactly the same answer: the first byte that breaks a rule decides,
  // however the bytes were split (no longer 400 whole vs 414/431 in pieces).
  CHECK_PROPERTY(whole.status == pieces.status);
  CHECK_PROPERTY(whole.reason == pieces.reason);
  if (whole.state == RequestHeadScanner::State::kRejected) {
    CHECK_PROPERTY(KnownStatus(whole.status));
  }
  if (whole.state == RequestHeadScanner::State::kComplete) {
    CHECK_PROPERTY(whole.begin <= whole.end && whole.end <= bytes.size());
    CHECK_PROPERTY(whole.end - whole.begin <= limits.max_head);
    const HeadVerdict v = sg::edge::ValidateRequestHead(
        bytes.substr(whole.begin, whole.end - whole.begin));
    CHECK_PROPERTY(v.ok() || KnownStatus(v.status));
    CHECK_PROPERTY(v.ok() || !v.reason.empty());
  }
  // The validator alone, on anything.
  const HeadVerdict any = sg::edge::ValidateRequestHead(bytes);
  CHECK_PROPERTY(any.ok() || KnownStatus(any.status));
  return 0;
}

// Strict RFC 9112 checks of an HTTP/1.1 request head, before Beast parses
// it. Beast alone accepts obs-fold, a Transfer-Encoding it cannot decode,
// repeated Content-Length values and a missing or repeated Host; a proxy
// that lets those through is open to request smuggling. Pure functions over
// the raw bytes: no Beast, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sg::edge {

// What to answer to a head. `status` 0 means the head is acceptable;
// otherwise 400, 414, 431, 501 or 505, with `reason` a short static text
// (for logs and the reply body).
struct HeadVerdict {
  int status = 0;
  std::string_view reason;

  bool ok() const { return status == 0; }
};

// One complete request head: the request line, the field lines and the
// blank line (every line ended by CRLF). Leading empty lines must already
// be skipped. Rules, each answered 400 unless said otherwise:
//  - line endings: CR must be followed by LF and LF preceded by CR;
//  - request line: `method SP target SP HTTP/D.D`, single spaces; method
//    a token; HTTP major version other than 1 -> 505;
//  - target: origin-form ("/..."), absolute-form ("http://" or "https://"
//    with a host) or "*" for OPTIONS only; no CTL, SP, DEL, '#' nor bytes
//    >= 0x80 (browsers percent-encode them); CONNECT -> 501 (not a forward
//    proxy);
//  - field lines: a token name directly followed by ':' (no obs-fold, no
//    space before the colon); the value may hold SP, HTAB, VCHAR and
//    obs-text (0x80-0xFF, passed on byte for byte, not checked as UTF-8)
//    but no other control byte (NUL, DEL, ...);
//  - Host: exactly one in HTTP/1.1 (at most one in HTTP/1.0), a valid
//    uri-host[:port] (or empty);
//  - Content-Length: at most one field, 1*DIGIT (at most 19 digits), no
//    list;
//  - Transfer-Encoding: a well-formed list (else 400); not in HTTP/1.0 and
//    not with Content-Length; any coding but `chunked` -> 501; `chunked`
//    exactly once, without parameters.
// Limits are not checked here (see RequestHeadScanner). Thread-safe.
HeadVerdict ValidateRequestHead(std::string_view head);

struct HeadLimits {
  // The request line without its CRLF; longer -> 414.
  size_t max_request_line = 8 * 1024;
  // Everything up to and including the blank line (leading empty lines
  // count); longer -> 431.
  size_t max_head = 32 * 1024;
};

// Finds the end of a request head in bytes that arrive piece by piece and
// refuses it as early as possible (a bare LF, or a limit crossed, is
// answered before the head is complete). The answer depends only on the
// bytes, not on how they were split: the first byte that breaks a rule
// decides (a byte past max_head -> 431; a bare CR or LF -> 400; a
// request-line byte past max_request_line, its CR aside -> 414). Each call
// scans only the bytes not seen before, so a head trickled one byte at a
// time costs linear time.
// Not thread-safe; one per connection, Reset() per request.
class RequestHeadScanner final {
 public:
  enum class State : uint8_t { kNeedMore, kComplete, kRejected };

  explicit RequestHeadScanner(HeadLimits limits) : limits_(limits) {}

  // `buffered`: every byte received for this request so far, from its
  // first byte; each call passes the bytes of the previous call plus any
  // new ones. Once kComplete or kRejected, returns that again.
  State Scan(std::string_view buffered);

  // kComplete: the head is buffered[head_begin(), head_end()); the bytes
  // before head_begin() are empty lines to drop (RFC 9112 §2.2).
  size_t head_begin() const { return begin_; }
  size_t head_end() const { return end_; }
  // kRejected: what to answer.
  HeadVerdict verdict() const { return verdict_; }

  // For the next request.
  void Reset();

 private:
  State Reject(int status, std::string_view reason);

  HeadLimits limits_;
  State state_ = State::kNeedMore;
  size_t pos_ = 0;         // next byte to scan
  size_t line_start_ = 0;  // first byte of the current line
  size_t begin_ = 0;
  size_t end_ = 0;
  bool request_line_done_ = false;
  HeadVerdict verdict_;
};

}  // namespace sg::edge

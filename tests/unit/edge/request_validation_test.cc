#include "edge/http/request_validation.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace sg::edge {
namespace {

// A head with the given request line and field lines ("Name: v\r\n" each).
std::string Head(std::string_view request_line, std::string_view fields) {
  std::string h(request_line);
  h.append("\r\n").append(fields).append("\r\n");
  return h;
}

int Status(std::string_view request_line, std::string_view fields) {
  return ValidateRequestHead(Head(request_line, fields)).status;
}

constexpr std::string_view kHost = "Host: app.test\r\n";

TEST(RequestValidationTest, AcceptsOrdinaryRequests) {
  EXPECT_EQ(Status("GET / HTTP/1.1", kHost), 0);
  EXPECT_EQ(Status("GET /a/b?c=d&e=%20f HTTP/1.1", kHost), 0);
  EXPECT_EQ(Status("POST /form HTTP/1.1",
                   "Host: app.test:8080\r\nContent-Length: 12\r\n"),
            0);
  EXPECT_EQ(Status("POST /up HTTP/1.1",
                   "Host: app.test\r\nTransfer-Encoding: chunked\r\n"),
            0);
  EXPECT_EQ(Status("POST /up HTTP/1.1",
                   "Host: app.test\r\nTransfer-Encoding:\tCHUNKED \r\n"),
            0);
  EXPECT_EQ(Status("OPTIONS * HTTP/1.1", kHost), 0);
  EXPECT_EQ(Status("GET http://app.test/x HTTP/1.1", kHost), 0);
  EXPECT_EQ(Status("GET HTTPS://[::1]:8443 HTTP/1.1", kHost), 0);
  EXPECT_EQ(Status("GET / HTTP/1.0", ""), 0);            // Host optional in 1.0
  EXPECT_EQ(Status("PURGE /cache HTTP/1.1", kHost), 0);  // any token
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: \r\n"), 0);  // empty is allowed
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: [::1]:80\r\nX-Empty:\r\n"), 0);
}

TEST(RequestValidationTest, HostMustAppearExactlyOnceInHttp11) {
  EXPECT_EQ(Status("GET / HTTP/1.1", ""), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a.test\r\nHost: a.test\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1", "host: a.test\r\nHOST: b.test\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.0", "Host: a\r\nHost: b\r\n"), 400);
}

TEST(RequestValidationTest, HostValueMustBeHostAndPort) {
  for (const char* bad :
       {"Host: a b\r\n", "Host: a.test:80:80\r\n", "Host: :80\r\n",
        "Host: a.test:8o\r\n", "Host: a.test:123456\r\n", "Host: [::1\r\n",
        "Host: []\r\n", "Host: a/b\r\n", "Host: a@b\r\n", "Host: a%zz\r\n"}) {
    EXPECT_EQ(Status("GET / HTTP/1.1", bad), 400) << bad;
  }
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a%2Db.test\r\n"), 0);
}

TEST(RequestValidationTest, ObsoleteLineFoldingIsRejected) {
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a\r\nX-A: a\r\n b\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a\r\nX-A: a\r\n\tb\r\n"), 400);
  // Whitespace between the request line and the first field.
  EXPECT_EQ(Status("GET / HTTP/1.1", " Host: a\r\n"), 400);
  EXPECT_EQ(
      ValidateRequestHead(Head("GET / HTTP/1.1", "Host: a\r\nX-A: a\r\n b\r\n"))
          .reason,
      "obsolete line folding");
}

TEST(RequestValidationTest, OnlyALoneChunkedTransferCodingIsAccepted) {
  auto te = [](std::string_view value) {
    return Status("POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: " +
                                         std::string(value) + "\r\n");
  };
  // Codings the edge does not implement: 501.
  EXPECT_EQ(te("gzip"), 501);
  EXPECT_EQ(te("identity"), 501);
  EXPECT_EQ(te("gzip, chunked"), 501);
  EXPECT_EQ(te("chunked, gzip"), 501);
  EXPECT_EQ(te("x-custom;q=1"), 501);
  // Malformed, or chunked twice: 400.
  EXPECT_EQ(te("chunked, chunked"), 400);
  EXPECT_EQ(te(""), 400);
  EXPECT_EQ(te(" , ,"), 400);
  EXPECT_EQ(te("chunked;x=1"), 400);
  EXPECT_EQ(te("chu nked"), 400);
  EXPECT_EQ(te("gzip;"), 400);
  EXPECT_EQ(te("\"chunked\""), 400);
  // Empty list elements are ignored (RFC 9110 §5.6.1).
  EXPECT_EQ(te(", chunked"), 0);
  // Two field lines form one list.
  EXPECT_EQ(Status("POST / HTTP/1.1",
                   "Host: a\r\nTransfer-Encoding: chunked\r\n"
                   "Transfer-Encoding: chunked\r\n"),
            400);
  EXPECT_EQ(Status("POST / HTTP/1.1",
                   "Host: a\r\nTransfer-Encoding: gzip\r\n"
                   "Transfer-Encoding: chunked\r\n"),
            501);
  // HTTP/1.0 has no transfer codings.
  EXPECT_EQ(Status("POST / HTTP/1.0", "Transfer-Encoding: chunked\r\n"), 400);
}

TEST(RequestValidationTest, ContentLengthWithTransferEncodingIsRejected) {
  EXPECT_EQ(Status("POST / HTTP/1.1",
                   "Host: a\r\nContent-Length: 5\r\n"
                   "Transfer-Encoding: chunked\r\n"),
            400);
  EXPECT_EQ(Status("POST / HTTP/1.1",
                   "Host: a\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Length: 5\r\n"),
            400);
}

TEST(RequestValidationTest, ContentLengthMustBeOneDecimalNumber) {
  auto cl = [](std::string_view fields) {
    return Status("POST / HTTP/1.1", "Host: a\r\n" + std::string(fields));
  };
  EXPECT_EQ(cl("Content-Length: 0\r\n"), 0);
  EXPECT_EQ(cl("Content-Length: 007\r\n"), 0);
  EXPECT_EQ(cl("Content-Length: 5\r\nContent-Length: 5\r\n"), 400);
  EXPECT_EQ(cl("Content-Length: 5\r\nContent-Length: 6\r\n"), 400);
  EXPECT_EQ(cl("Content-Length: 5, 5\r\n"), 400);
  EXPECT_EQ(cl("Content-Length: -1\r\n"), 400);
  EXPECT_EQ(cl("Content-Length: +5\r\n"), 400);
  EXPECT_EQ(cl("Content-Length: 0x10\r\n"), 400);
  EXPECT_EQ(cl("Content-Length: 5 5\r\n"), 400);
  EXPECT_EQ(cl("Content-Length:\r\n"), 400);
  EXPECT_EQ(cl("Content-Length: 99999999999999999999\r\n"), 400);
}

TEST(RequestValidationTest, BareLineEndingsAreRejected) {
  EXPECT_EQ(ValidateRequestHead("GET / HTTP/1.1\nHost: a\r\n\r\n").status, 400);
  EXPECT_EQ(ValidateRequestHead("GET / HTTP/1.1\r\nHost: a\n\r\n").status, 400);
  EXPECT_EQ(ValidateRequestHead("GET / HTTP/1.1\r\nHost: a\r\n\n").status, 400);
  EXPECT_EQ(
      ValidateRequestHead("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n").status,
      400);
  EXPECT_EQ(ValidateRequestHead("GET / HTTP/1.1\r\nHost: a\r\n").status,
            400);  // no blank line
}

TEST(RequestValidationTest, ControlBytesInFieldsAreRejected) {
  for (char c : {'\0', '\x01', '\x08', '\x0b', '\x0c', '\x1f', '\x7f'}) {
    std::string value = "Host: a\r\nX-A: x";
    value.push_back(c);
    value.append("y\r\n");
    EXPECT_EQ(Status("GET / HTTP/1.1", value), 400) << static_cast<int>(c);
    std::string name = "Host: a\r\nX-";
    name.push_back(c);
    name.append(": v\r\n");
    EXPECT_EQ(Status("GET / HTTP/1.1", name), 400) << static_cast<int>(c);
  }
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a\r\nX-A: tab\there\r\n"), 0);
}

TEST(RequestValidationTest, FieldNamesAreTokensFollowedByAColon) {
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host : a\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a\r\nTransfer-Encoding :x\r\n"),
            400);
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a\r\n: empty\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a\r\nNoColon\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a\r\nX(A): v\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a\r\nX\xc3\xa9: v\r\n"), 400);
}

TEST(RequestValidationTest, ObsTextInValuesIsAllowedAndNotCheckedAsUtf8) {
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a\r\nX-A: caf\xc3\xa9\r\n"), 0);
  EXPECT_EQ(Status("GET / HTTP/1.1", "Host: a\r\nX-A: \xff\xfe\x80\r\n"), 0);
}

TEST(RequestValidationTest, MethodMustBeAToken) {
  EXPECT_EQ(Status("G(T / HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GE\x01T / HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("G\xc3\xa9T / HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status(" GET / HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GET", kHost), 400);
}

TEST(RequestValidationTest, TargetMustBeOriginAbsoluteOrAsteriskForm) {
  EXPECT_EQ(Status("GET * HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GET relative HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GET ftp://a.test/ HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GET http:/// HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GET http://user@a.test/ HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GET /a#frag HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GET /a\x01 HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GET /a\x7f HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GET /caf\xc3\xa9 HTTP/1.1", kHost), 400);
  EXPECT_EQ(Status("GET /a b HTTP/1.1", kHost), 400);  // space in target
  EXPECT_EQ(Status("GET  / HTTP/1.1", kHost), 400);    // two spaces
  EXPECT_EQ(Status("GET / HTTP/1.1 ", kHost), 400);    // trailing space
  EXPECT_EQ(Status("CONNECT a.test:443 HTTP/1.1", kHost), 501);
}

TEST(RequestValidationTest, VersionMustBeHttp1) {
  EXPECT_EQ(Status("GET / HTTP/2.0", kHost), 505);
  EXPECT_EQ(Status("GET / HTTP/0.9", kHost), 505);
  EXPECT_EQ(Status("GET / HTTP/1.10", kHost), 400);
  EXPECT_EQ(Status("GET / http/1.1", kHost), 400);
  EXPECT_EQ(Status("GET / HTTP/1", kHost), 400);
}

// ---------------------------------------------------------------------------

using State = RequestHeadScanner::State;

TEST(RequestHeadScannerTest, FindsTheHeadFedOneByteAtATime) {
  const std::string bytes =
      "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nbody-of-the-request";
  RequestHeadScanner scanner(HeadLimits{});
  State state = State::kNeedMore;
  size_t fed = 0;
  while (state == State::kNeedMore && fed < bytes.size()) {
    state = scanner.Scan(std::string_view(bytes).substr(0, ++fed));
  }
  ASSERT_EQ(state, State::kComplete);
  EXPECT_EQ(scanner.head_begin(), 2u);  // the leading empty line
  EXPECT_EQ(bytes.substr(scanner.head_end()), "body-of-the-request");
  EXPECT_EQ(fed, scanner.head_end());  // complete as soon as it could be
  // The same answer when asked again.
  EXPECT_EQ(scanner.Scan(bytes), State::kComplete);
}

TEST(RequestHeadScannerTest, RejectsABareLfBeforeTheHeadIsComplete) {
  RequestHeadScanner scanner(HeadLimits{});
  EXPECT_EQ(scanner.Scan("GET / HTTP/1.1\nHost"), State::kRejected);
  EXPECT_EQ(scanner.verdict().status, 400);
  RequestHeadScanner cr(HeadLimits{});
  EXPECT_EQ(cr.Scan("GET / HTTP/1.1\rX"), State::kRejected);
}

TEST(RequestHeadScannerTest, LongRequestLineIs414EvenBeforeItEnds) {
  HeadLimits limits;
  limits.max_request_line = 100;
  limits.max_head = 1000;
  RequestHeadScanner scanner(limits);
  const std::string line = "GET /" + std::string(200, 'a');
  EXPECT_EQ(scanner.Scan(line), State::kRejected);
  EXPECT_EQ(scanner.verdict().status, 414);

  // Exactly at the limit is fine.
  RequestHeadScanner at(limits);
  std::string exact = "GET /";
  exact.append(100 - exact.size() - 9, 'a').append(" HTTP/1.1");
  ASSERT_EQ(exact.size(), 100u);
  EXPECT_EQ(at.Scan(exact), State::kNeedMore);
  EXPECT_EQ(at.Scan(exact + "\r\nHost: a\r\n\r\n"), State::kComplete);
  RequestHeadScanner over(limits);
  EXPECT_EQ(over.Scan("GET /a" + exact.substr(5) + "\r\nHost: a\r\n\r\n"),
            State::kRejected);
  EXPECT_EQ(over.verdict().status, 414);
}

TEST(RequestHeadScannerTest, LargeHeadIs431EvenBeforeItEnds) {
  HeadLimits limits;
  limits.max_request_line = 100;
  limits.max_head = 1000;
  RequestHeadScanner scanner(limits);
  const std::string head =
      "GET / HTTP/1.1\r\nHost: a\r\nCookie: " + std::string(2000, 'c');
  EXPECT_EQ(scanner.Scan(head), State::kRejected);
  EXPECT_EQ(scanner.verdict().status, 431);
  // So do endless empty lines before the request line.
  RequestHeadScanner blank(limits);
  std::string crlfs;
  for (int i = 0; i < 600; ++i) crlfs.append("\r\n");
  EXPECT_EQ(blank.Scan(crlfs), State::kRejected);
  EXPECT_EQ(blank.verdict().status, 431);
}

std::string Repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out.append(s);
  return out;
}

// The scanner's answer for `bytes` fed in one call, or growing by `step`.
struct ScanOutcome {
  State state;
  int status;
  std::string reason;
  size_t begin, end;
};
ScanOutcome ScanInSteps(const std::string& bytes, size_t step,
                        const HeadLimits& limits) {
  RequestHeadScanner scanner(limits);
  State state = State::kNeedMore;
  size_t fed = step == 0 ? bytes.size() : 0;
  do {
    if (step != 0) fed = std::min(bytes.size(), fed + step);
    state = scanner.Scan(std::string_view(bytes).substr(0, fed));
  } while (state == State::kNeedMore && fed < bytes.size());
  const bool done = state == State::kComplete;
  return {state, scanner.verdict().status,
          std::string(scanner.verdict().reason),
          done ? scanner.head_begin() : 0, done ? scanner.head_end() : 0};
}

// docs/robustness.md "Found": a bad line ending past a limit was 400 read
// whole and 414/431 read in pieces. The first byte that breaks a rule
// decides, however the bytes are split.
TEST(RequestHeadScannerTest, SameAnswerWholeAndByteByByte) {
  HeadLimits limits;
  limits.max_request_line = 16;
  limits.max_head = 64;
  const std::string long_line = "GET /" + std::string(20, 'a');
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  const struct {
    std::string bytes;
    State state;
    int status;
  } cases[] = {
      // A bare LF or CR past the request-line limit: the limit comes first.
      {long_line + "\n", State::kRejected, 414},
      {long_line + "\rX", State::kRejected, 414},
      // ... and past the head limit.
      {head + std::string(60, 'x') + "\n", State::kRejected, 431},
      {head + std::string(60, 'x') + "\rY", State::kRejected, 431},
      // Within the limits the bad ending is what is answered.
      {"GET / HTTP/1.1\nHost: a\r\n\r\n", State::kRejected, 400},
      {head + "x\ry\r\n\r\n", State::kRejected, 400},
      // A line of exactly max_request_line bytes, a head of exactly max_head.
      {"GET /aaa HTTP/1.1\r\nHost: a\r\n\r\n", State::kRejected, 414},
      {"GET /aa HTTP/1.1\r\nHost: a\r\n\r\n", State::kComplete, 0},
      {head + std::string(64 - head.size() - 4, 'x') + "\r\n\r\n",
       State::kComplete, 0},
      {head + std::string(64 - head.size() - 3, 'x') + "\r\n\r\n",
       State::kRejected, 431},
      // Leading empty lines count toward the head.
      {Repeat("\r\n", 40), State::kRejected, 431},
      {"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", State::kComplete, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::PrintToString(c.bytes));
    const ScanOutcome whole = ScanInSteps(c.bytes, 0, limits);
    EXPECT_EQ(whole.state, c.state);
    EXPECT_EQ(whole.status, c.status);
    for (size_t step : {1u, 2u, 3u, 7u}) {
      SCOPED_TRACE(step);
      const ScanOutcome pieces = ScanInSteps(c.bytes, step, limits);
      EXPECT_EQ(pieces.state, whole.state);
      EXPECT_EQ(pieces.status, whole.status);
      EXPECT_EQ(pieces.reason, whole.reason);
      EXPECT_EQ(pieces.begin, whole.begin);
      EXPECT_EQ(pieces.end, whole.end);
    }
  }
}

TEST(RequestHeadScannerTest, CompleteHeadIsValidatedAndResetStartsOver) {
  RequestHeadScanner scanner(HeadLimits{});
  EXPECT_EQ(scanner.Scan("GET / HTTP/1.1\r\n\r\n"), State::kRejected);
  EXPECT_EQ(scanner.verdict().status, 400);  // no Host
  scanner.Reset();
  EXPECT_EQ(scanner.Scan("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            State::kComplete);
  EXPECT_TRUE(scanner.verdict().ok());
}

}  // namespace
}  // namespace sg::edge

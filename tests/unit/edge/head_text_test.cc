// AppendHeadText must write what Beast's serializer writes for the same
// head, byte for byte: the proxy uses either, by whether chunk framing
// follows. Beast's own writer (operator<< on a header) is the reference.
#include "edge/proxy/head_text.h"

#include <gtest/gtest.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>

namespace sg::edge::proxy {
namespace {

namespace http = boost::beast::http;

template <bool isRequest>
std::string BeastText(const http::header<isRequest>& head) {
  std::ostringstream os;
  os << head;
  return os.str();
}

template <bool isRequest>
http::header<isRequest> Parse(const std::string& text) {
  http::parser<isRequest, http::empty_body> parser;
  parser.skip(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(text), ec);
  EXPECT_FALSE(ec) << ec.message() << " parsing " << text;
  EXPECT_TRUE(parser.is_header_done());
  return parser.release().base();
}

std::string Text(const http::request_header<>& head) {
  std::string out = "kept:";  // appends, never replaces
  AppendHeadText(head, out);
  EXPECT_EQ(out.substr(0, 5), "kept:");
  return out.substr(5);
}

std::string Text(const http::response_header<>& head) {
  std::string out;
  AppendHeadText(head, out);
  return out;
}

TEST(HeadTextTest, ParsedRequestsMatchBeast) {
  for (const std::string raw : {
           "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
           "FROB /x?y=1 HTTP/1.0\r\nX-Odd-Case: v\r\nx-odd-case: w\r\n\r\n",
           "POST /p HTTP/1.1\r\nContent-Length: 0\r\nCookie: a=b; c=d\r\n\r\n",
           "OPTIONS * HTTP/1.1\r\nHost: h\r\nEmpty: \r\n\r\n",
       }) {
    const auto head = Parse<true>(raw);
    EXPECT_EQ(Text(head), BeastText(head)) << raw;
    EXPECT_EQ(Text(head), raw);
  }
}

TEST(HeadTextTest, ParsedResponsesMatchBeast) {
  for (const std::string raw : {
           "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
           "HTTP/1.1 404 Gone Fishing\r\nSet-Cookie: a=1\r\n"
           "Set-Cookie: b=2\r\n\r\n",
           "HTTP/1.0 599 \r\nX: y\r\n\r\n",  // no reason, unknown code
           "HTTP/1.1 204 \r\n\r\n",          // no reason: the standard one
       }) {
    const auto head = Parse<false>(raw);
    EXPECT_EQ(Text(head), BeastText(head)) << raw;
  }
}

TEST(HeadTextTest, EditedHeadsMatchBeast) {
  // The proxy edits heads before writing them: erase, set, keep-alive.
  http::response<http::empty_body> res{http::status::ok, 10};
  res.set(http::field::server, "origin");
  res.insert("X-Trace", "1");
  res.insert("X-Trace", "2");
  res.erase(http::field::server);
  res.keep_alive(true);  // written as a field while the version is 1.0
  res.version(11);
  res.content_length(12);
  EXPECT_EQ(Text(res.base()), BeastText(res.base()));
  EXPECT_EQ(Text(res.base()),
            "HTTP/1.1 200 OK\r\nX-Trace: 1\r\nX-Trace: 2\r\n"
            "Connection: keep-alive\r\nContent-Length: 12\r\n\r\n");

  http::request<http::empty_body> req{http::verb::get, "/a", 11};
  req.set(http::field::via, "1.1 sessiongrid-edge");
  req.set("X-Session-Data", std::string(3000, 'A'));
  EXPECT_EQ(Text(req.base()), BeastText(req.base()));
}

TEST(HeadTextTest, ExtraFieldsFollowTheHeadsOwn) {
  http::request<http::empty_body> req{http::verb::get, "/a", 11};
  req.set(http::field::host, "h");
  std::string out;
  AppendHeadText(req.base(), out, "X-Session-Data: YWI=\r\n");
  req.insert("X-Session-Data", "YWI=");  // where Beast would have put it
  EXPECT_EQ(out, BeastText(req.base()));
}

TEST(HeadTextTest, RandomHeadsMatchBeast) {
  const unsigned seed = 20261207;
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  auto token = [&](size_t max_len) {
    static constexpr char kChars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    std::string s(1 + rng() % max_len, 'x');
    for (char& c : s) c = kChars[rng() % (sizeof(kChars) - 1)];
    return s;
  };
  for (int i = 0; i < 200; ++i) {
    http::response<http::empty_body> res;
    res.result(100 + rng() % 500);
    if (rng() % 2) res.reason(token(20));
    http::request<http::empty_body> req;
    req.method_string(token(8));
    req.target("/" + token(40));
    const unsigned version = rng() % 2 ? 11 : 10;
    res.version(version);
    req.version(version);
    const int fields = rng() % 12;
    for (int f = 0; f < fields; ++f) {
      const std::string name = token(16), value = token(60);
      res.insert(name, value);
      req.insert(name, value);
    }
    ASSERT_EQ(Text(res.base()), BeastText(res.base())) << "case " << i;
    ASSERT_EQ(Text(req.base()), BeastText(req.base())) << "case " << i;
  }
}

}  // namespace
}  // namespace sg::edge::proxy

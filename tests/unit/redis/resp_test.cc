#include "client/redis/resp.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sg::redis {
namespace {

using ::testing::HasSubstr;
using Type = RespValue::Type;

// Feeds `bytes` in one piece and returns every complete reply.
std::vector<RespValue> ParseAll(RespParser& parser, std::string_view bytes) {
  parser.Feed(bytes);
  std::vector<RespValue> out;
  for (;;) {
    absl::StatusOr<std::optional<RespValue>> next = parser.Next();
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || !next->has_value()) return out;
    out.push_back(std::move(**next));
  }
}

absl::Status ErrorOf(std::string_view bytes, RespLimits limits = {}) {
  RespParser parser(limits);
  parser.Feed(bytes);
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<std::optional<RespValue>> next = parser.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return absl::OkStatus();
  }
  return absl::OkStatus();
}

TEST(RespParserTest, ParsesEveryScalarType) {
  RespParser parser;
  std::vector<RespValue> v =
      ParseAll(parser,
               "+OK\r\n-WRONGTYPE Operation against a key\r\n:-42\r\n"
               "$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n");
  ASSERT_EQ(v.size(), 8u);
  EXPECT_EQ(v[0].type, Type::kSimpleString);
  EXPECT_EQ(v[0].str, "OK");
  EXPECT_TRUE(v[1].is_error());
  EXPECT_EQ(v[1].str, "WRONGTYPE Operation against a key");
  EXPECT_EQ(v[2].type, Type::kInteger);
  EXPECT_EQ(v[2].integer, -42);
  EXPECT_EQ(v[3].type, Type::kBulkString);
  EXPECT_EQ(v[3].str, "hello");
  EXPECT_EQ(v[4].type, Type::kBulkString);
  EXPECT_EQ(v[4].str, "");
  EXPECT_TRUE(v[5].is_nil());  // GET of a missing key
  EXPECT_TRUE(v[6].is_nil());  // nil array
  EXPECT_EQ(v[7].type, Type::kArray);
  EXPECT_TRUE(v[7].elements.empty());
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(RespParserTest, BulkStringsAreBinarySafe) {
  RespParser parser;
  const std::string payload("a\r\nb\0c", 6);
  std::vector<RespValue> v = ParseAll(parser, "$6\r\n" + payload + "\r\n");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].str, payload);
}

TEST(RespParserTest, ParsesNestedArraysLikeAScanReply) {
  RespParser parser;
  std::vector<RespValue> v = ParseAll(
      parser,
      "*2\r\n$4\r\n1792\r\n*3\r\n$5\r\nsess:\r\n$-1\r\n*2\r\n:1\r\n*0\r\n");
  ASSERT_EQ(v.size(), 1u);
  const RespValue& r = v[0];
  ASSERT_EQ(r.type, Type::kArray);
  ASSERT_EQ(r.elements.size(), 2u);
  EXPECT_EQ(r.elements[0].str, "1792");
  const RespValue& inner = r.elements[1];
  ASSERT_EQ(inner.elements.size(), 3u);
  EXPECT_EQ(inner.elements[0].str, "sess:");
  EXPECT_TRUE(inner.elements[1].is_nil());
  ASSERT_EQ(inner.elements[2].elements.size(), 2u);
  EXPECT_EQ(inner.elements[2].elements[0].integer, 1);
  EXPECT_EQ(inner.elements[2].elements[1].type, Type::kArray);
}

TEST(RespParserTest, ReassemblesRepliesSplitAtEveryByte) {
  const std::string wire =
      "*3\r\n$3\r\nabc\r\n*2\r\n:7\r\n-ERR x\r\n$-1\r\n+PONG\r\n$11\r\n"
      "hello world\r\n";
  RespParser parser;
  std::vector<RespValue> got;
  for (char c : wire) {
    parser.Feed(std::string_view(&c, 1));
    for (;;) {
      absl::StatusOr<std::optional<RespValue>> next = parser.Next();
      ASSERT_TRUE(next.ok()) << next.status();
      if (!next->has_value()) break;
      got.push_back(std::move(**next));
    }
  }
  ASSERT_EQ(got.size(), 3u);
  ASSERT_EQ(got[0].elements.size(), 3u);
  EXPECT_EQ(got[0].elements[0].str, "abc");
  EXPECT_EQ(got[0].elements[1].elements[0].integer, 7);
  EXPECT_EQ(got[0].elements[1].elements[1].str, "ERR x");
  EXPECT_TRUE(got[0].elements[2].is_nil());
  EXPECT_EQ(got[1].str, "PONG");
  EXPECT_EQ(got[2].str, "hello world");
}

TEST(RespParserTest, KeepsTheCompletedElementsOfAPartialArray) {
  // 1000 elements arrive in two halves: the first half is consumed at once
  // and not parsed again when the rest comes.
  std::string first = "*1000\r\n";
  for (int i = 0; i < 500; ++i) first += "$3\r\nkey\r\n";
  std::string second;
  for (int i = 0; i < 500; ++i) second += ":1\r\n";
  RespParser parser;
  parser.Feed(first + "$3\r\nke");  // ends inside a bulk string
  absl::StatusOr<std::optional<RespValue>> next = parser.Next();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(parser.buffered(), std::string("$3\r\nke").size());
  parser.Feed("y\r\n");
  parser.Feed(second.substr(4));  // one integer fewer: 499 + the key
  next = parser.Next();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->elements.size(), 1000u);
  EXPECT_EQ((*next)->elements[500].str, "key");
  EXPECT_EQ((*next)->elements[999].integer, 1);
}

TEST(RespParserTest, ProtocolViolationsAreDataLoss) {
  struct Case {
    const char* wire;
    const char* says;
  };
  const Case cases[] = {
      {"HTTP/1.1 400 Bad Request\r\n", "unexpected byte 0x48"},
      {":12x\r\n", "bad number"},
      {"$abc\r\n", "bad number"},
      {"$3\r\nabcXY", "not followed by CRLF"},
      {"$-2\r\n", "bulk length -2"},
      {"*-5\r\n", "array length -5"},
  };
  for (const Case& c : cases) {
    absl::Status s = ErrorOf(c.wire);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << c.wire;
    EXPECT_THAT(s.message(), HasSubstr(c.says)) << c.wire;
  }
}

TEST(RespParserTest, LimitsBoundWhatAPeerCanMakeUsHold) {
  RespLimits limits;
  limits.max_bulk_bytes = 10;
  limits.max_array_elements = 4;
  limits.max_depth = 3;
  limits.max_line_bytes = 16;
  EXPECT_THAT(ErrorOf("$11\r\n", limits).message(),
              HasSubstr("bulk string of 11"));
  EXPECT_THAT(ErrorOf("*5\r\n", limits).message(), HasSubstr("array of 5"));
  EXPECT_THAT(ErrorOf("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", limits).message(),
              HasSubstr("nested deeper than 3"));
  EXPECT_THAT(ErrorOf("+" + std::string(40, 'x'), limits).message(),
              HasSubstr("longer than 16"));
  // A complete line over the limit too, not only one still arriving.
  EXPECT_THAT(ErrorOf("+" + std::string(40, 'x') + "\r\n", limits).message(),
              HasSubstr("longer than 16"));
  EXPECT_TRUE(ErrorOf("*1\r\n*1\r\n*1\r\n:1\r\n", limits).ok());
}

TEST(RespParserTest, AnErrorIsSticky) {
  RespParser parser;
  parser.Feed("?\r\n+OK\r\n");
  EXPECT_FALSE(parser.Next().ok());
  parser.Feed("+OK\r\n");
  absl::StatusOr<std::optional<RespValue>> again = parser.Next();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kDataLoss);
}

TEST(RespEncodeTest, CommandsAreArraysOfBulkStrings) {
  EXPECT_EQ(EncodeCommand({"GET", "sess:a b"}),
            "*2\r\n$3\r\nGET\r\n$8\r\nsess:a b\r\n");
  EXPECT_EQ(EncodeCommand({"SET", std::string("k\r\n", 3), ""}),
            "*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n");
  // What we encode, we parse back.
  RespParser parser;
  std::vector<RespValue> v = ParseAll(parser, EncodeCommand({"a", "", "c"}));
  ASSERT_EQ(v.size(), 1u);
  ASSERT_EQ(v[0].elements.size(), 3u);
  EXPECT_EQ(v[0].elements[2].str, "c");
}

}  // namespace
}  // namespace sg::redis

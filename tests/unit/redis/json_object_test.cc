#include "client/json_object.h"

#include <string>

#include "gtest/gtest.h"

namespace sg::client {
namespace {

TEST(JsonObjectTest, AcceptsWhatExpressSessionStores) {
  EXPECT_TRUE(IsJsonObject(
      R"({"cookie":{"originalMaxAge":86400000,"expires":"2026-12-03T18:00:00.000Z","secure":false,"httpOnly":true,"path":"/"},"user":"alice","counter":2})"));
  EXPECT_TRUE(IsJsonObject("{}"));
  EXPECT_TRUE(IsJsonObject(" \t\r\n{ } \n"));
  EXPECT_TRUE(IsJsonObject(
      R"({"a":[1,-0.5e+3,2E-2,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"],"b":{"c":[]}})"));
  EXPECT_TRUE(IsJsonObject("{\"caf\xc3\xa9\":\"\xe2\x82\xac\"}"));  // raw UTF-8
}

TEST(JsonObjectTest, RefusesWhatIsNotOneJsonObject) {
  const char* cases[] = {
      "",
      "not json",
      "[]",
      "[{}]",
      "\"str\"",
      "42",
      "null",
      "{",
      "{}}",
      "{} {}",
      "{\"a\"}",
      "{\"a\":}",
      "{\"a\":1,}",
      "{,}",
      "{a:1}",
      "{'a':1}",
      "{\"a\":01}",
      "{\"a\":1.}",
      "{\"a\":.5}",
      "{\"a\":-}",
      "{\"a\":1e}",
      "{\"a\":tru}",
      "{\"a\":\"\\x\"}",
      "{\"a\":\"\\u12g4\"}",
      "{\"a\":\"unterminated}",
      "{\"a\":\"tab\there\"}",
      "{\"a\":NaN}",
  };
  for (const char* c : cases) EXPECT_FALSE(IsJsonObject(c)) << c;
  EXPECT_FALSE(IsJsonObject(std::string("{\"a\":1}\0", 8)));
}

TEST(JsonObjectTest, BoundsNesting) {
  std::string ok = "{\"a\":";
  std::string deep = ok;
  for (int i = 0; i < 900; ++i) ok += "[";
  for (int i = 0; i < 900; ++i) ok += "]";
  ok += "}";
  EXPECT_TRUE(IsJsonObject(ok));
  for (int i = 0; i < 100000; ++i) deep += "[";
  EXPECT_FALSE(IsJsonObject(deep));  // and does not overflow the stack
}

}  // namespace
}  // namespace sg::client

#include "examples/demo-app/mini_json.h"

#include "gtest/gtest.h"

namespace sg::demo {
namespace {

TEST(MiniJsonTest, ParsesFlatObjectOfEveryValueKind) {
  absl::StatusOr<JsonObject> o = ParseFlatJsonObject(
      R"( { "s" : "a\"b\\c\n\u00e9\ud83d\ude00", "n": -12.5e3, "t": true,
            "f": false, "z": null } )");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->at("s").kind, JsonValue::Kind::kString);
  EXPECT_EQ(o->at("s").text, "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(o->at("n").kind, JsonValue::Kind::kNumber);
  EXPECT_EQ(o->at("n").text, "-12.5e3");
  EXPECT_TRUE(o->at("t").boolean);
  EXPECT_EQ(o->at("f").kind, JsonValue::Kind::kBool);
  EXPECT_FALSE(o->at("f").boolean);
  EXPECT_EQ(o->at("z").kind, JsonValue::Kind::kNull);
}

TEST(MiniJsonTest, EmptyObjectAndRepeatedKeyKeepsLast) {
  EXPECT_TRUE(ParseFlatJsonObject("{}")->empty());
  EXPECT_EQ(ParseFlatJsonObject(R"({"a":"1","a":"2"})")->at("a").text, "2");
}

TEST(MiniJsonTest, RejectsMalformedInput) {
  for (const char* bad :
       {"", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x",
        "{\"a\":{}}", "{\"a\":[1]}", "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00\"}", "{\"a\":\"unterminated}", "{\"a\":01x}",
        "{\"a\":tru}", "{\"a\":\"\x01\"}", "{a:1}"}) {
    EXPECT_FALSE(ParseFlatJsonObject(bad).ok()) << bad;
  }
}

TEST(MiniJsonTest, QuoteEscapesWhatJsonRequires) {
  EXPECT_EQ(JsonQuote("plain"), "\"plain\"");
  EXPECT_EQ(JsonQuote("q\"b\\n\nt\t\x01"), R"("q\"b\\n\nt\t\u0001")");
  EXPECT_EQ(JsonQuote("\xc3\xa9"), "\"\xc3\xa9\"");
}

TEST(MiniJsonTest, QuotedStringParsesBack) {
  const std::string original = "we\"ird\\\n\x1f\xc3\xa9";
  absl::StatusOr<JsonObject> o =
      ParseFlatJsonObject("{\"k\":" + JsonQuote(original) + "}");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->at("k").text, original);
}

}  // namespace
}  // namespace sg::demo

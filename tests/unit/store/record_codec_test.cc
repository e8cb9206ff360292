#include "server/store/record_codec.h"

#include <string>

#include "gtest/gtest.h"

namespace sg::store::codec {
namespace {

SessionRecord Sample() {
  SessionRecord r;
  r.id = NewSessionId();
  r.data = std::string("bin\0ary", 7);
  r.principal = "alice@example.com";
  r.create_time = absl::FromUnixMicros(1'700'000'000'123'456);
  r.last_access_time = r.create_time + absl::Seconds(3);
  r.expire_time = r.create_time + absl::Hours(2);
  r.ttl = absl::Hours(2);
  r.version = Hlc{1'700'000'000'123, 7, "node-a"};
  return r;
}

TEST(RecordCodecTest, RecordRoundTrips) {
  const SessionRecord in = Sample();
  std::string value;
  EncodeRecord(in, &value);
  SessionRecord out;
  ASSERT_TRUE(DecodeRecord(in.id, value, &out).ok());
  EXPECT_EQ(out.id, in.id);
  EXPECT_EQ(out.data, in.data);
  EXPECT_EQ(out.principal, in.principal);
  EXPECT_EQ(out.create_time, in.create_time);
  EXPECT_EQ(out.last_access_time, in.last_access_time);
  EXPECT_EQ(out.expire_time, in.expire_time);
  EXPECT_EQ(out.ttl, in.ttl);
  EXPECT_EQ(out.version, in.version);
}

TEST(RecordCodecTest, ExpiryStampAndClassAreReadableWithoutDecoding) {
  SessionRecord r = Sample();
  std::string value;
  EncodeRecord(r, &value);
  ASSERT_TRUE(PeekStamp(value).has_value());
  EXPECT_EQ(StampToTime(*PeekStamp(value)), r.expire_time);
  EXPECT_TRUE(PeekAuthenticated(value));
  r.principal.clear();
  EncodeRecord(r, &value);
  EXPECT_FALSE(PeekAuthenticated(value));
}

TEST(RecordCodecTest, TruncatedHeaderIsDataLoss) {
  SessionRecord r = Sample();
  r.data.clear();
  std::string value;
  EncodeRecord(r, &value);
  // Every strict prefix cuts into the header (the data is empty).
  for (size_t n = 0; n < value.size(); ++n) {
    SessionRecord out;
    EXPECT_EQ(DecodeRecord(r.id, value.substr(0, n), &out).code(),
              absl::StatusCode::kDataLoss)
        << n;
  }
}

TEST(RecordCodecTest, UnknownFormatIsDataLoss) {
  std::string value;
  EncodeRecord(Sample(), &value);
  value[kStampBytes] = static_cast<char>(0x70);
  SessionRecord out;
  EXPECT_EQ(DecodeRecord("id", value, &out).code(),
            absl::StatusCode::kDataLoss);
}

TEST(RecordCodecTest, TombstoneRoundTrips) {
  Tombstone in{Hlc{42, 3, "n9"}, absl::FromUnixSeconds(1'800'000'000)};
  std::string value;
  EncodeTombstone(in, &value);
  EXPECT_EQ(StampToTime(*PeekStamp(value)), in.gc_deadline);
  Tombstone out;
  ASSERT_TRUE(DecodeTombstone(value, &out).ok());
  EXPECT_EQ(out.version, in.version);
  EXPECT_EQ(out.gc_deadline, in.gc_deadline);
  EXPECT_EQ(DecodeTombstone(value.substr(0, 5), &out).code(),
            absl::StatusCode::kDataLoss);
}

TEST(RecordCodecTest, PrincipalKeysSplitEvenWithNulInPrincipal) {
  const std::string id = NewSessionId();
  const std::string principal("a\0b", 3);
  std::string key;
  PrincipalKey(principal, id, &key);
  auto parts = SplitPrincipalKey(key);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->principal, principal);
  EXPECT_EQ(parts->id, id);
  EXPECT_EQ(IdFromPrincipalKey(key, principal), std::string_view(id));
  // "a" shares the scan prefix "a\0" but does not own the key.
  EXPECT_FALSE(IdFromPrincipalKey(key, "a").has_value());
  EXPECT_TRUE(key.starts_with(PrincipalPrefix("a")));
  EXPECT_FALSE(SplitPrincipalKey("short").has_value());
}

}  // namespace
}  // namespace sg::store::codec

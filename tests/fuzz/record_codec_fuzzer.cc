// libFuzzer target: the store's value decoders (server/store/record_codec)
// on arbitrary bytes, as a corrupt or hostile RocksDB value would present
// them. Whatever decodes must re-encode to a value that decodes the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/store/record_codec.h"

namespace codec = sg::store::codec;

namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    __builtin_printf("record_codec_fuzzer: %s\n", what);
    std::abort();
  }
}

bool SameRecord(const sg::store::SessionRecord& a,
                const sg::store::SessionRecord& b) {
  return a.id == b.id && a.data == b.data && a.principal == b.principal &&
         a.create_time == b.create_time &&
         a.last_access_time == b.last_access_time &&
         a.expire_time == b.expire_time && a.ttl == b.ttl &&
         a.version.wall_millis == b.version.wall_millis &&
         a.version.logical == b.version.logical &&
         a.version.node_id == b.version.node_id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(bytes), size);

  (void)codec::PeekStamp(value);
  (void)codec::PeekAuthenticated(value);
  const auto meta = codec::PeekSessionMeta(value);

  sg::store::SessionRecord record;
  const absl::Status decoded = codec::DecodeRecord("id", value, &record);
  Require(decoded.ok() == meta.has_value(),
          "DecodeRecord and PeekSessionMeta disagree");
  if (decoded.ok()) {
    Require(meta->principal == record.principal, "meta principal");
    Require(meta->expire_time == record.expire_time, "meta expiry");
    std::string again;
    codec::EncodeRecord(record, &again);
    sg::store::SessionRecord round;
    Require(codec::DecodeRecord("id", again, &round).ok(), "re-decode");
    Require(SameRecord(record, round), "round trip changed the record");
    Require(codec::PeekAuthenticated(again) == record.authenticated(),
            "re-encoded flag");
  }

  codec::Tombstone tombstone;
  if (codec::DecodeTombstone(value, &tombstone).ok()) {
    std::string again;
    codec::EncodeTombstone(tombstone, &again);
    codec::Tombstone round;
    Require(codec::DecodeTombstone(again, &round).ok(), "tombstone re-decode");
    Require(round.gc_deadline == tombstone.gc_deadline &&
                round.version.wall_millis == tombstone.version.wall_millis &&
                round.version.logical == tombstone.version.logical &&
                round.version.node_id == tombstone.version.node_id,
            "tombstone round trip");
  }

  // The same bytes as a principal-index key.
  if (auto parts = codec::SplitPrincipalKey(value)) {
    std::string key;
    codec::PrincipalKey(parts->principal, parts->id, &key);
    Require(key == value, "principal key round trip");
    auto id = codec::IdFromPrincipalKey(value, parts->principal);
    Require(id.has_value() && *id == parts->id, "IdFromPrincipalKey");
  }
  return 0;
}

#include "server/store/record_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace sg::store::codec {
namespace {

constexpr uint8_t kFormatV1 = 0x10;  // high nibble: format version
constexpr uint8_t kFormatMask = 0xF0;
constexpr uint8_t kFlagAuthenticated = 0x01;

void PutFixed64(std::string* out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((u >> (8 * i)) & 0xFF);
  out->append(buf, 8);
}

void PutVarint(std::string* out, uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

void PutBytes(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s.data(), s.size());
}

// A bounds-checked cursor over an encoded value.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64 && pos_ < in_.size(); shift += 7) {
      uint8_t b = static_cast<uint8_t>(in_[pos_++]);
      result |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  bool SignedVarint(int64_t* v) {
    uint64_t u;
    if (!Varint(&u)) return false;
    *v = UnZigZag(u);
    return true;
  }
  bool Bytes(std::string_view* s) {
    uint64_t n;
    if (!Varint(&n) || n > in_.size() - pos_) return false;
    *s = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Byte(uint8_t* b) {
    if (pos_ >= in_.size()) return false;
    *b = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  void Skip(size_t n) { pos_ += n; }
  std::string_view Rest() const { return in_.substr(pos_); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

absl::Status Malformed(const char* what) {
  return absl::DataLossError(absl::StrCat("malformed ", what, " value"));
}

}  // namespace

int64_t TimeToStamp(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time StampToTime(int64_t micros) { return absl::FromUnixMicros(micros); }

std::optional<int64_t> PeekStamp(std::string_view value) {
  if (value.size() < kStampBytes) return std::nullopt;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) {
    u |= static_cast<uint64_t>(static_cast<uint8_t>(value[i])) << (8 * i);
  }
  return static_cast<int64_t>(u);
}

bool PeekAuthenticated(std::string_view value) {
  if (value.size() <= kStampBytes) return false;
  return (static_cast<uint8_t>(value[kStampBytes]) & kFlagAuthenticated) != 0;
}

void EncodeRecord(const SessionRecord& r, std::string* out) {
  out->clear();
  out->reserve(kStampBytes + 1 + 5 * 10 + r.version.node_id.size() +
               r.principal.size() + r.data.size() + 4);
  PutFixed64(out, TimeToStamp(r.expire_time));
  out->push_back(static_cast<char>(
      kFormatV1 | (r.authenticated() ? kFlagAuthenticated : 0)));
  PutVarint(out, ZigZag(TimeToStamp(r.create_time)));
  PutVarint(out, ZigZag(TimeToStamp(r.last_access_time)));
  PutVarint(out, ZigZag(absl::ToInt64Microseconds(r.ttl)));
  PutVarint(out, ZigZag(r.version.wall_millis));
  PutVarint(out, r.version.logical);
  PutBytes(out, r.version.node_id);
  PutBytes(out, r.principal);
  out->append(r.data);
}

namespace {

// Every field of a session value, as views into it.
struct ParsedSession {
  int64_t expire, create, access, ttl, wall;
  uint64_t logical;
  std::string_view node_id, principal, data;
};

std::optional<ParsedSession> ParseSession(std::string_view value) {
  std::optional<int64_t> expire = PeekStamp(value);
  if (!expire) return std::nullopt;
  Reader in(value);
  in.Skip(kStampBytes);
  ParsedSession p;
  p.expire = *expire;
  uint8_t flags;
  if (!in.Byte(&flags) || (flags & kFormatMask) != kFormatV1 ||
      !in.SignedVarint(&p.create) || !in.SignedVarint(&p.access) ||
      !in.SignedVarint(&p.ttl) || !in.SignedVarint(&p.wall) ||
      !in.Varint(&p.logical) || p.logical > UINT32_MAX ||
      !in.Bytes(&p.node_id) || !in.Bytes(&p.principal)) {
    return std::nullopt;
  }
  p.data = in.Rest();
  return p;
}

}  // namespace

absl::Status DecodeRecord(std::string_view id, std::string_view value,
                          SessionRecord* out) {
  std::optional<ParsedSession> p = ParseSession(value);
  if (!p) return Malformed("session");
  out->id.assign(id.data(), id.size());
  out->data.assign(p->data.data(), p->data.size());
  out->principal.assign(p->principal.data(), p->principal.size());
  out->create_time = StampToTime(p->create);
  out->last_access_time = StampToTime(p->access);
  out->expire_time = StampToTime(p->expire);
  out->ttl = absl::Microseconds(p->ttl);
  out->version.wall_millis = p->wall;
  out->version.logical = static_cast<uint32_t>(p->logical);
  out->version.node_id.assign(p->node_id.data(), p->node_id.size());
  return absl::OkStatus();
}

std::optional<SessionMeta> PeekSessionMeta(std::string_view value) {
  std::optional<ParsedSession> p = ParseSession(value);
  if (!p) return std::nullopt;
  return SessionMeta{StampToTime(p->expire), StampToTime(p->create),
                     StampToTime(p->access), p->principal};
}

void EncodeIndexValue(absl::Time expire_time, std::string* out) {
  out->clear();
  PutFixed64(out, TimeToStamp(expire_time));
}

void EncodeTombstone(const Tombstone& t, std::string* out) {
  out->clear();
  PutFixed64(out, TimeToStamp(t.gc_deadline));
  PutVarint(out, ZigZag(t.version.wall_millis));
  PutVarint(out, t.version.logical);
  out->append(t.version.node_id);
}

absl::Status DecodeTombstone(std::string_view value, Tombstone* out) {
  std::optional<int64_t> deadline = PeekStamp(value);
  if (!deadline) return Malformed("tombstone");
  Reader in(value);
  in.Skip(kStampBytes);
  int64_t wall;
  uint64_t logical;
  if (!in.SignedVarint(&wall) || !in.Varint(&logical) || logical > UINT32_MAX) {
    return Malformed("tombstone");
  }
  out->gc_deadline = StampToTime(*deadline);
  out->version.wall_millis = wall;
  out->version.logical = static_cast<uint32_t>(logical);
  out->version.node_id.assign(in.Rest().data(), in.Rest().size());
  return absl::OkStatus();
}

void PrincipalKey(std::string_view principal, std::string_view id,
                  std::string* out) {
  out->clear();
  out->reserve(principal.size() + 1 + id.size());
  out->append(principal.data(), principal.size());
  out->push_back('\0');
  out->append(id.data(), id.size());
}

std::string PrincipalPrefix(std::string_view principal) {
  std::string prefix(principal);
  prefix.push_back('\0');
  return prefix;
}

// Ids never hold NUL, so the last NUL of a key ends the principal, even when
// the principal itself holds NUL bytes and whatever the id's length.
std::optional<std::string_view> IdFromPrincipalKey(std::string_view key,
                                                   std::string_view principal) {
  if (key.size() <= principal.size() + 1 ||
      key.substr(0, principal.size()) != principal ||
      key[principal.size()] != '\0') {
    return std::nullopt;
  }
  std::string_view id = key.substr(principal.size() + 1);
  if (id.find('\0') != std::string_view::npos) return std::nullopt;
  return id;
}

std::optional<PrincipalKeyParts> SplitPrincipalKey(std::string_view key) {
  size_t sep = key.rfind('\0');
  if (sep == std::string_view::npos || sep + 1 == key.size()) {
    return std::nullopt;
  }
  return PrincipalKeyParts{key.substr(0, sep), key.substr(sep + 1)};
}

}  // namespace sg::store::codec

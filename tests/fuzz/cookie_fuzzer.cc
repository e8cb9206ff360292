// Session cookies from the network (edge/http/cookie_header,
// edge/session_cookie): the Cookie header lookup, percent-decoding and
// signature verification on hostile bytes. Properties: a found value is a
// view into the header; decoding never writes past its buffer and fails
// only when the buffer is too small; no forged input verifies (the
// fuzzer cannot compute an HMAC); and any id the signer signs verifies
// back to the same id under the signing key, encoded or not.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "edge/http/cookie_header.h"
#include "edge/session_cookie.h"

namespace {

using sg::edge::CookieSigner;
using sg::edge::VerifiedCookie;

void Check(bool ok) {
  if (!ok) std::abort();
}

const CookieSigner& Signer() {
  static const auto* signer =
      CookieSigner::Create({"fuzz-current-secret", "fuzz-old-secret"})
          ->release();
  return *signer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // "<name>\n<header>": the name to look up, then the Cookie header.
  const size_t nl = in.find('\n');
  const std::string_view name =
      nl == std::string_view::npos ? "connect.sid" : in.substr(0, nl);
  const std::string_view header =
      nl == std::string_view::npos ? in : in.substr(nl + 1);

  const std::optional<std::string_view> raw =
      sg::edge::FindCookie(header, name);
  if (raw) {
    Check(raw->data() >= header.data() &&
          raw->data() + raw->size() <= header.data() + header.size());
    char small[64];
    char big[4096];
    const auto a = sg::edge::DecodeCookieValue(*raw, small);
    const auto b = sg::edge::DecodeCookieValue(*raw, big);
    if (a) Check(*a <= sizeof(small) && b && *a == *b);
    if (raw->size() <= sizeof(big)) Check(b.has_value());  // decoding shrinks
  }

  const CookieSigner& signer = Signer();
  const VerifiedCookie header_cookie = signer.VerifyHeader(header, name);
  const VerifiedCookie value_cookie = signer.VerifyValue(header);
  // Random bytes do not carry a valid HMAC-SHA256 of our secrets.
  Check(!header_cookie.ok() && !value_cookie.ok());
  Check(header_cookie.key_index() == -1 && header_cookie.id().empty());

  // Round trip: whatever id the signer signs verifies to itself.
  std::string id(header.substr(0, sg::edge::kMaxSessionIdBytes));
  for (char& c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '"' || c == ',' || c == ';' ||
        c == '\\') {
      c = 'x';
    }
  }
  if (!id.empty()) {
    const VerifiedCookie encoded = signer.VerifyValue(signer.EncodedValue(id));
    Check(encoded.ok() && encoded.id() == id && encoded.key_index() == 0);
    const VerifiedCookie plain = signer.VerifyValue(signer.Sign(id));
    // Unencoded form: verifies unless a '%' escape in the id decodes.
    if (id.find('%') == std::string::npos) {
      Check(plain.ok() && plain.id() == id);
    }
    const std::string cookie_header =
        "a=1; connect.sid=" + signer.EncodedValue(id) + "; b=2";
    const VerifiedCookie found =
        signer.VerifyHeader(cookie_header, "connect.sid");
    Check(found.ok() && found.id() == id);
  }
  return 0;
}

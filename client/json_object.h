// Whether bytes are one JSON object (RFC 8259), as JSON.parse would accept
// it and `typeof v === 'object' && !Array.isArray(v)` would hold: what
// express-session stores in connect-redis. A validator only: it builds
// nothing and allocates nothing.
#pragma once

#include <string_view>

namespace sg::client {

// True when `text` is a JSON object, with optional JSON whitespace around
// it. Bytes >= 0x80 inside strings are accepted as they are (no UTF-8
// check, like a decoder that substitutes bad sequences). Nesting deeper
// than 1000 is refused. Pure function, thread-safe.
bool IsJsonObject(std::string_view text);

}  // namespace sg::client

// Just enough JSON for the demo app: reads one flat object whose values are
// strings, numbers, booleans or null, and quotes strings for output. Nested
// values are rejected: the demo's bodies and session data are flat.
#pragma once

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace sg::demo {

// A parsed value. Numbers keep their source text; `kind` says which member
// is meaningful.
struct JsonValue {
  enum class Kind { kString, kNumber, kBool, kNull };
  Kind kind = Kind::kNull;
  std::string text;  // the decoded string, or the number's text
  bool boolean = false;
};

using JsonObject = absl::flat_hash_map<std::string, JsonValue>;

// Parses `{ "key": value, ... }`. Rejects nested objects and arrays,
// trailing garbage, invalid escapes and unpaired surrogates. A repeated key
// keeps its last value, as JSON.parse does.
absl::StatusOr<JsonObject> ParseFlatJsonObject(std::string_view text);

// `"text"` with JSON escapes (control characters as \u00XX). The input is
// passed through byte for byte otherwise, so UTF-8 stays UTF-8.
std::string JsonQuote(std::string_view text);

}  // namespace sg::demo

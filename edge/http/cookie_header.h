// Allocation-free Cookie request header lookup.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace sg::edge {

// Finds cookie `name` in a Cookie header value ("a=1; b=2") the way the npm
// `cookie` parser (used by cookie-parser and express-session) does: pairs
// split on ';', name and value trimmed, a pair without '=' ignored, the
// FIRST pair with the name wins, surrounding double quotes removed. Returns
// the raw (still percent-encoded) value as a view into `header`, or nullopt.
// Pure; does not allocate.
std::optional<std::string_view> FindCookie(std::string_view header,
                                           std::string_view name);

// Percent-decodes `in` into `out` like JavaScript's decodeURIComponent as
// cookie parsers apply it: when `in` has a malformed escape, the value is
// kept as is (copied undecoded). Returns the decoded length, or nullopt
// when `out` is too small. Does not allocate.
std::optional<size_t> DecodeCookieValue(std::string_view in,
                                        std::span<char> out);

}  // namespace sg::edge

// Request-target normalization for path matching.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace sg::classifier {

// The classifier normalizes paths into a stack buffer of this size.
inline constexpr size_t kMaxPathBytes = 2048;

// Writes the lower-cased, percent-decoded, dot-segment-resolved path of a
// request target into `out` and returns its length, or nullopt if it does
// not fit. Steps, in order:
//  1. absolute-form "http://host/p?q" -> "/p?q"; query ('?') and fragment
//     ('#') are dropped (the seed dropped the query only after matching
//     the extension, so "/page?x=.js" could look static).
//  2. every valid %XX is decoded (including %2F and %2E, so "/%61ssets/"
//     is "/assets/" and "/assets/%2e%2e/api" climbs); malformed escapes
//     stay literal; ASCII letters are lower-cased, as the seed did.
//  3. "." and ".." segments are removed (RFC 3986 5.2.4) for paths that
//     start with '/', so "/assets/../api/auth/x" is "/api/auth/x".
// An empty path becomes "/". Bytes of `out` past the returned length may
// have been written. Pure; does not allocate.
std::optional<size_t> NormalizePath(std::string_view target,
                                    std::span<char> out);

// The extension of the last path segment (from its last '.'), or empty
// when it has none or ends in '.'. The seed took the last dot of the whole
// path, so "/v1.2/users" had the extension ".2/users".
std::string_view LastSegmentExtension(std::string_view path);

}  // namespace sg::classifier

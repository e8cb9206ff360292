// HOST:PORT parsing and host facts shared by every binary (one copy).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sg {

enum class HostKind { kIPv4, kIPv6, kName };

struct HostPort {
  std::string host;  // without brackets
  int port = 0;
  HostKind kind = HostKind::kName;
  // "HOST:PORT", or "[ADDR]:PORT" for IPv6.
  std::string ToString() const;
};

// Parses HOST:PORT or [IPV6]:PORT; the port (1-65535) is required. Errors
// are INVALID_ARGUMENT and start with `what` (a flag name, say).
absl::StatusOr<HostPort> ParseHostPort(std::string_view text,
                                       std::string_view what);

// 0.0.0.0, ::, or empty: an address to bind, not to tell others.
bool IsWildcardHost(std::string_view host);

// This machine's host name, or "" when it has none.
std::string Hostname();

// Whether `host` resolves (getaddrinfo) to at least one address.
bool Resolvable(const std::string& host);

}  // namespace sg

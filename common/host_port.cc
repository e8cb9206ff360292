#include "common/host_port.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace sg {

std::string HostPort::ToString() const {
  return kind == HostKind::kIPv6 ? absl::StrCat("[", host, "]:", port)
                                 : absl::StrCat(host, ":", port);
}

namespace {

bool IsIPv4(const std::string& host) {
  in_addr addr;
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool IsIPv6(const std::string& host) {
  in6_addr addr;
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

bool IsHostName(absl::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '.' || c == '_';
  });
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(std::string_view text_in,
                                       std::string_view what_flag) {
  absl::string_view text(text_in.data(), text_in.size());
  auto BadTarget = [&](absl::string_view what, absl::string_view t) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(what_flag), ": ", what, " in \"", t, "\""));
  };
  HostPort out;
  absl::string_view port_text;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return BadTarget("unterminated '['", text);
    }
    out.host = std::string(text.substr(1, close - 1));
    absl::string_view rest = text.substr(close + 1);
    if (!absl::ConsumePrefix(&rest, ":")) {
      return BadTarget("missing :PORT", text);
    }
    port_text = rest;
    if (!IsIPv6(out.host)) return BadTarget("bad IPv6 address", text);
    out.kind = HostKind::kIPv6;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return BadTarget("missing :PORT", text);
    }
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) {
      return BadTarget("IPv6 addresses need brackets, [ADDR]:PORT", text);
    }
    if (IsIPv4(out.host)) {
      out.kind = HostKind::kIPv4;
    } else if (!IsHostName(out.host) ||
               std::all_of(out.host.begin(), out.host.end(), [](char c) {
                 return absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
                        c == '.';
               })) {
      return BadTarget("bad host", text);
    }
  }
  if (port_text.empty() ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) {
                     return absl::ascii_isdigit(static_cast<unsigned char>(c));
                   }) ||
      !absl::SimpleAtoi(port_text, &out.port) || out.port < 1 ||
      out.port > 65535) {
    return BadTarget("port must be 1..65535", text);
  }
  return out;
}

bool IsWildcardHost(std::string_view host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "";
  return name;
}

bool Resolvable(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &result) != 0) return false;
  freeaddrinfo(result);
  return true;
}

}  // namespace sg

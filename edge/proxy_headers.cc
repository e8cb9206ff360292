#include "edge/proxy_headers.h"

#include "edge/http/text_util.h"

namespace sg::edge {
namespace {

char Lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// Calls `fn(token)` for each trimmed, non-empty comma-separated element.
template <typename Fn>
void ForEachToken(std::string_view value, Fn fn) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view token = TrimOws(value.substr(0, comma));
    if (!token.empty()) {
      if (!fn(token)) return;
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

bool IsHopByHopHeader(std::string_view name) {
  switch (name.size()) {
    case 2:
      return EqualsIgnoreCase(name, "te");
    case 7:
      return EqualsIgnoreCase(name, "upgrade") ||
             EqualsIgnoreCase(name, "trailer");
    case 10:
      return EqualsIgnoreCase(name, "connection") ||
             EqualsIgnoreCase(name, "keep-alive");
    case 16:
      return EqualsIgnoreCase(name, "proxy-connection");
    case 17:
      return EqualsIgnoreCase(name, "transfer-encoding");
    default:
      return false;
  }
}

void ConnectionTokens::Add(std::string_view header_value) {
  ForEachToken(header_value, [this](std::string_view token) {
    if (size_ == kMax) {
      overflowed_ = true;
      return false;
    }
    tokens_[size_++] = token;
    return true;
  });
}

bool ConnectionTokens::Contains(std::string_view name) const {
  for (size_t i = 0; i < size_; ++i) {
    if (EqualsIgnoreCase(tokens_[i], name)) return true;
  }
  return false;
}

bool IsSessionHeader(std::string_view name) {
  return StartsWithIgnoreCase(name, kSessionHeaderPrefix);
}

FieldAction ForwardAction(std::string_view name, const ConnectionTokens& tokens,
                          bool is_request, bool upgrade_passthrough) {
  if (IsSessionHeader(name)) return FieldAction::kDrop;
  if (upgrade_passthrough && EqualsIgnoreCase(name, "upgrade")) {
    return FieldAction::kKeep;
  }
  if (IsHopByHopHeader(name)) return FieldAction::kDrop;
  if (is_request && EqualsIgnoreCase(name, "expect")) return FieldAction::kDrop;
  // A Connection option may name an end-to-end field to make it hop-by-hop,
  // but never the framing or identity fields a request needs upstream.
  if (tokens.Contains(name) && !EqualsIgnoreCase(name, "host") &&
      !EqualsIgnoreCase(name, "content-length")) {
    return FieldAction::kDrop;
  }
  return FieldAction::kKeep;
}

std::string AppendForwardedFor(std::string_view existing,
                               std::string_view peer) {
  existing = TrimOws(existing);
  std::string out;
  out.reserve(existing.size() + 2 + peer.size());
  if (!existing.empty()) {
    out.append(existing);
    out.append(", ");
  }
  out.append(peer);
  return out;
}

std::string_view SetCookieName(std::string_view set_cookie_value) {
  const size_t semi = set_cookie_value.find(';');
  std::string_view pair = set_cookie_value.substr(0, semi);
  const size_t eq = pair.find('=');
  if (eq == std::string_view::npos) return {};
  return TrimOws(pair.substr(0, eq));
}

bool HeaderHasToken(std::string_view value, std::string_view token) {
  bool found = false;
  ForEachToken(value, [&](std::string_view t) {
    if (EqualsIgnoreCase(t, token)) {
      found = true;
      return false;
    }
    return true;
  });
  return found;
}

}  // namespace sg::edge

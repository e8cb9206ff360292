// Pure header rules of the reverse proxy: what is hop-by-hop, what belongs
// to the session protocol, how X-Forwarded-* are extended. No I/O; the
// Beast code applies these decisions to real messages.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace sg::edge {

// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// ASCII case-insensitive prefix test.
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);

// The hop-by-hop fields of RFC 9110 section 7.6.1 (Connection,
// Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade), plus
// Trailer, which only describes this hop's chunked framing.
bool IsHopByHopHeader(std::string_view name);

// The option tokens of Connection header values ("close, X-Foo"): header
// names that are hop-by-hop for this message only. Holds views into the
// header values, so they must outlive it. Keeps at most kMax tokens; more
// are reported by overflowed() (the caller then treats the message as
// suspicious and drops every unknown field the tokens could name: we simply
// keep the first kMax). Does not allocate.
class ConnectionTokens final {
 public:
  static constexpr size_t kMax = 16;
  // Adds the tokens of one Connection (or Proxy-Connection) header value.
  void Add(std::string_view header_value);
  // Whether `name` is one of the tokens (case-insensitive).
  bool Contains(std::string_view name) const;
  size_t size() const { return size_; }
  bool overflowed() const { return overflowed_; }

 private:
  std::array<std::string_view, kMax> tokens_{};
  size_t size_ = 0;
  bool overflowed_ = false;
};

// Request header fields whose names start with this prefix belong to the
// session protocol between the edge and the upstream. Clients may not send
// them; the upstream's are consumed by the edge.
inline constexpr std::string_view kSessionHeaderPrefix = "x-session-";
bool IsSessionHeader(std::string_view name);

// What to do with a request or response field when forwarding.
enum class FieldAction { kKeep, kDrop };

// Decides one field of a message being forwarded. `upgrade_passthrough`
// keeps Upgrade (and the edge re-adds "Connection: upgrade") for WebSocket
// handshakes; Expect is dropped from requests because the edge answers
// "100 Continue" itself.
FieldAction ForwardAction(std::string_view name, const ConnectionTokens& tokens,
                          bool is_request, bool upgrade_passthrough);

// X-Forwarded-For after this hop: `existing` (the client's header, possibly
// empty) with `peer` appended ("a, b" + ", peer").
std::string AppendForwardedFor(std::string_view existing,
                               std::string_view peer);

// The cookie name of a Set-Cookie value ("connect.sid=...; Path=/" ->
// "connect.sid"), trimmed; empty when there is no '='.
std::string_view SetCookieName(std::string_view set_cookie_value);

// Whether a comma-separated header value contains `token`
// (case-insensitive), e.g. Connection: "keep-alive, Upgrade" has "upgrade".
bool HeaderHasToken(std::string_view value, std::string_view token);

}  // namespace sg::edge

#include "edge/http/request_validation.h"

namespace sg::edge {
namespace {

constexpr HeadVerdict Bad(std::string_view reason) { return {400, reason}; }

bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsHex(unsigned char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 9110 §5.6.2 tchar.
bool IsTchar(unsigned char c) {
  if (IsAlpha(c) || IsDigit(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

// field-vchar / SP / HTAB, with obs-text allowed (RFC 9110 §5.5).
bool IsFieldValueByte(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

bool IStartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         IEquals(s.substr(0, prefix.size()), prefix);
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// unreserved / sub-delims (RFC 3986 reg-name without pct-encoded).
bool IsRegNameByte(unsigned char c) {
  if (IsAlpha(c) || IsDigit(c)) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}

// uri-host [ ":" port ] (RFC 9110 §7.2), or empty.
bool IsValidHost(std::string_view h) {
  if (h.empty()) return true;
  size_t i = 0;
  if (h[0] == '[') {
    const size_t close = h.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (unsigned char c : h.substr(1, close - 1)) {
      if (!IsHex(c) && c != ':' && c != '.') return false;
    }
    i = close + 1;
  } else {
    while (i < h.size() && h[i] != ':') {
      const unsigned char c = static_cast<unsigned char>(h[i]);
      if (c == '%') {
        if (i + 2 >= h.size() || !IsHex(h[i + 1]) || !IsHex(h[i + 2])) {
          return false;
        }
        i += 3;
        continue;
      }
      if (!IsRegNameByte(c)) return false;
      ++i;
    }
    if (i == 0) return false;  // ":80"
  }
  if (i == h.size()) return true;
  if (h[i] != ':') return false;
  const std::string_view port = h.substr(i + 1);
  if (port.size() > 5) return false;
  for (unsigned char c : port) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

bool IsTargetByte(unsigned char c) { return c > 0x20 && c < 0x7f && c != '#'; }

HeadVerdict CheckTarget(std::string_view method, std::string_view target) {
  if (target.empty()) return Bad("empty request target");
  for (unsigned char c : target) {
    if (!IsTargetByte(c)) return Bad("invalid byte in request target");
  }
  if (method == "CONNECT") return {501, "CONNECT is not supported"};
  if (target == "*") {
    if (method != "OPTIONS") return Bad("asterisk-form is for OPTIONS only");
    return {};
  }
  if (target.front() == '/') return {};
  for (std::string_view scheme : {"http://", "https://"}) {
    if (IStartsWith(target, scheme)) {
      std::string_view rest = target.substr(scheme.size());
      const size_t end = rest.find_first_of("/?");
      const std::string_view authority = rest.substr(0, end);
      // userinfo in an http(s) URI is an error (RFC 9110 §4.2.4).
      if (authority.empty() || authority.find('@') != std::string_view::npos ||
          !IsValidHost(authority)) {
        return Bad("invalid authority in absolute-form target");
      }
      return {};
    }
  }
  return Bad("request target is not origin-form or absolute-form");
}

// Transfer-Encoding seen over every field line of the head.
struct TransferCodings {
  bool present = false;
  bool malformed = false;
  bool unknown = false;
  int chunked = 0;
  int elements = 0;
};

// transfer-coding = token *( OWS ";" OWS token "=" ( token / quoted ) ).
// Returns false when the parameters are malformed.
bool ValidParameters(std::string_view params) {
  while (!params.empty()) {
    params = TrimOws(params);
    if (params.empty() || params.front() != ';') return false;
    params.remove_prefix(1);
    params = TrimOws(params);
    size_t eq = params.find('=');
    if (eq == std::string_view::npos) return false;
    if (!IsToken(TrimOws(params.substr(0, eq)))) return false;
    params.remove_prefix(eq + 1);
    params = TrimOws(params);
    if (params.empty()) return false;
    if (params.front() == '"') {
      size_t i = 1;
      for (; i < params.size() && params[i] != '"'; ++i) {
        if (params[i] == '\\') ++i;
      }
      if (i >= params.size()) return false;
      params.remove_prefix(i + 1);
    } else {
      size_t i = 0;
      while (i < params.size() && IsTchar(params[i])) ++i;
      if (i == 0) return false;
      params.remove_prefix(i);
    }
    params = TrimOws(params);
  }
  return true;
}

void AddTransferCodings(std::string_view value, TransferCodings* te) {
  te->present = true;
  while (true) {
    const size_t comma = value.find(',');
    std::string_view element = TrimOws(value.substr(0, comma));
    if (!element.empty()) {  // empty list elements are ignored (§5.6.1)
      ++te->elements;
      const size_t semi = element.find(';');
      const std::string_view name = TrimOws(element.substr(0, semi));
      const bool has_params = semi != std::string_view::npos;
      if (!IsToken(name) ||
          (has_params && !ValidParameters(element.substr(semi)))) {
        te->malformed = true;
      } else if (IEquals(name, "chunked")) {
        ++te->chunked;
        if (has_params) te->malformed = true;  // chunked has none
      } else {
        te->unknown = true;
      }
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool ValidContentLength(std::string_view v) {
  if (v.empty() || v.size() > 19) return false;
  for (unsigned char c : v) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// Splits off the next CRLF-terminated line; false on a bare CR or LF, or
// when no CRLF is left.
bool NextLine(std::string_view* rest, std::string_view* line,
              bool* bad_ending) {
  for (size_t i = 0; i < rest->size(); ++i) {
    const char c = (*rest)[i];
    if (c == '\n') {
      *bad_ending = true;  // LF without CR
      return false;
    }
    if (c == '\r') {
      if (i + 1 >= rest->size() || (*rest)[i + 1] != '\n') {
        *bad_ending = true;
        return false;
      }
      *line = rest->substr(0, i);
      rest->remove_prefix(i + 2);
      return true;
    }
  }
  return false;
}

}  // namespace

HeadVerdict ValidateRequestHead(std::string_view head) {
  std::string_view rest = head;
  std::string_view line;
  bool bad_ending = false;
  if (!NextLine(&rest, &line, &bad_ending)) {
    return Bad(bad_ending ? "bare CR or LF" : "incomplete request line");
  }

  // method SP request-target SP HTTP-version
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Bad("malformed request line");
  const std::string_view method = line.substr(0, sp1);
  if (!IsToken(method)) return Bad("invalid method");
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Bad("malformed request line");
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" ||
      !IsDigit(version[5]) || version[6] != '.' || !IsDigit(version[7])) {
    return Bad("malformed HTTP version");
  }
  if (version[5] != '1') return {505, "HTTP version not supported"};
  const bool http10 = version[7] == '0';
  if (HeadVerdict v = CheckTarget(method, target); !v.ok()) return v;

  int hosts = 0;
  bool host_valid = true;
  int content_lengths = 0;
  bool content_length_valid = true;
  TransferCodings te;
  for (;;) {
    if (!NextLine(&rest, &line, &bad_ending)) {
      return Bad(bad_ending ? "bare CR or LF" : "head without blank line");
    }
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      return Bad("obsolete line folding");
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Bad("field line without ':'");
    const std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Bad("invalid field name");
    const std::string_view value = TrimOws(line.substr(colon + 1));
    for (unsigned char c : value) {
      if (!IsFieldValueByte(c)) return Bad("control byte in field value");
    }
    if (IEquals(name, "host")) {
      ++hosts;
      host_valid = host_valid && IsValidHost(value);
    } else if (IEquals(name, "content-length")) {
      ++content_lengths;
      content_length_valid = content_length_valid && ValidContentLength(value);
    } else if (IEquals(name, "transfer-encoding")) {
      AddTransferCodings(value, &te);
    }
  }
  if (!rest.empty()) return Bad("bytes after the blank line");

  if (hosts > 1) return Bad("more than one Host");
  if (hosts == 0 && !http10) return Bad("HTTP/1.1 request without Host");
  if (!host_valid) return Bad("invalid Host");
  if (content_lengths > 1) return Bad("more than one Content-Length");
  if (!content_length_valid) return Bad("invalid Content-Length");
  if (te.present) {
    if (te.malformed || te.elements == 0) {
      return Bad("malformed Transfer-Encoding");
    }
    if (http10) return Bad("Transfer-Encoding in HTTP/1.0");
    if (content_lengths > 0) {
      return Bad("both Content-Length and Transfer-Encoding");
    }
    if (te.unknown) return {501, "transfer coding not implemented"};
    if (te.chunked > 1) return Bad("chunked applied more than once");
  }
  return {};
}

void RequestHeadScanner::Reset() {
  state_ = State::kNeedMore;
  pos_ = 0;
  line_start_ = 0;
  begin_ = 0;
  end_ = 0;
  request_line_done_ = false;
  verdict_ = {};
}

RequestHeadScanner::State RequestHeadScanner::Reject(int status,
                                                     std::string_view reason) {
  state_ = State::kRejected;
  verdict_ = {status, reason};
  return state_;
}

// One rule per byte, in order, so that the answer depends only on the bytes
// and never on how TCP split them: the first byte that breaks a rule
// decides. A byte past max_head is 431 before its value is looked at; then a
// bad line ending is 400; then a request-line byte that is not its CR or LF
// and lies past max_request_line is 414. (Checking limits once per read
// instead answered 400 or 414/431 for the same bytes, depending on where
// the reads ended.)
RequestHeadScanner::State RequestHeadScanner::Scan(std::string_view buffered) {
  if (state_ != State::kNeedMore) return state_;
  for (; pos_ < buffered.size(); ++pos_) {
    if (pos_ >= limits_.max_head) {
      return Reject(431, "request header fields too large");
    }
    const char c = buffered[pos_];
    const bool after_cr = pos_ > line_start_ && buffered[pos_ - 1] == '\r';
    if (c != '\n') {
      if (after_cr) return Reject(400, "bare CR");
      if (!request_line_done_ && c != '\r' &&
          pos_ - line_start_ >= limits_.max_request_line) {
        return Reject(414, "request line too long");
      }
      continue;
    }
    if (!after_cr) return Reject(400, "bare LF");
    const size_t line_len = pos_ - 1 - line_start_;
    if (!request_line_done_) {
      if (line_len == 0) {
        begin_ = pos_ + 1;  // an empty line before the request line
      } else {
        request_line_done_ = true;
      }
    } else if (line_len == 0) {
      end_ = pos_ + 1;
      verdict_ = ValidateRequestHead(buffered.substr(begin_, end_ - begin_));
      state_ = verdict_.ok() ? State::kComplete : State::kRejected;
      return state_;
    }
    line_start_ = pos_ + 1;
  }
  return state_;
}

}  // namespace sg::edge

#include "edge/classifier/classifier.h"

#include "common/status_macros.h"
#include "edge/http/cookie_header.h"
#include "edge/http/text_util.h"

namespace sg::classifier {
namespace {

// Static-prefix, session-free and auth-required lists share one trie.
constexpr int kStaticList = 0;
constexpr int kFreeList = 1;
constexpr int kAuthList = 2;

bool EqualsIgnoreCase(std::string_view a, std::string_view lower_b) {
  if (a.size() != lower_b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != lower_b[i]) return false;
  }
  return true;
}

// `lower_needle` is non-empty and lower-case.
bool ContainsIgnoreCase(std::string_view hay, std::string_view lower_needle) {
  if (hay.size() < lower_needle.size()) return false;
  const size_t last = hay.size() - lower_needle.size();
  const char first = lower_needle[0];
  for (size_t i = 0; i <= last; ++i) {
    if (AsciiLower(hay[i]) != first) continue;
    size_t j = 1;
    while (j < lower_needle.size() &&
           AsciiLower(hay[i + j]) == lower_needle[j]) {
      ++j;
    }
    if (j == lower_needle.size()) return true;
  }
  return false;
}

// express's req.cookies[name] is truthy: present with a non-empty value.
bool HasCookie(std::string_view header, std::string_view name) {
  const std::optional<std::string_view> v = edge::FindCookie(header, name);
  return v.has_value() && !v->empty();
}

// Rules 10 and 11 ask whether the session cookie and any auth cookie are
// set; this answers both in one pass over the header instead of one per
// name, and stops as soon as the answer is known. names[0] is the session
// cookie, names[1..] the auth cookies, at most 64 in all. Parses as
// edge::FindCookie does: pairs split on ';', a pair without '=' ignored,
// name and value trimmed of spaces and tabs, the first pair with a name
// decides for it, one pair of surrounding double quotes removed.
struct CookieAnswer {
  bool session = false;
  bool auth = false;
};
CookieAnswer HasSessionAndAuthCookies(std::string_view header,
                                      const std::vector<std::string>& names) {
  const uint64_t all =
      names.size() >= 64 ? ~uint64_t{0} : (uint64_t{1} << names.size()) - 1;
  uint64_t decided = 0;
  uint64_t present = 0;
  auto known = [&] {
    return decided == all ||
           ((decided & 1) != 0 && ((present & 1) == 0 || (present >> 1) != 0));
  };
  while (!header.empty() && !known()) {
    const size_t semi = header.find(';');
    const std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view()
                                            : header.substr(semi + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = edge::TrimOws(pair.substr(0, eq));
    for (size_t i = 0; i < names.size(); ++i) {
      const uint64_t bit = uint64_t{1} << i;
      if ((decided & bit) != 0 || name.size() != names[i].size() ||
          name != names[i]) {
        continue;
      }
      decided |= bit;
      std::string_view value = edge::TrimOws(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      if (!value.empty()) present |= bit;
    }
  }
  return CookieAnswer{(present & 1) != 0, (present >> 1) != 0};
}

std::vector<std::string> Lowered(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  out.reserve(in.size());
  for (const std::string& s : in) out.push_back(edge::AsciiLowerCopy(s));
  return out;
}

}  // namespace

absl::Status ClassifierOptions::Validate() const {
  for (const std::string& cidr : trusted_proxies) {
    absl::StatusOr<Cidr> parsed = Cidr::Parse(cidr);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          edge::Cat("trusted_proxies: ", parsed.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Classifier>> Classifier::Create(
    const Rules& rules, const ClassifierOptions& options) {
  SG_RETURN_IF_ERROR(rules.Validate());
  SG_RETURN_IF_ERROR(options.Validate());
  const size_t total_reasons =
      8 + rules.static_extensions.size() + rules.static_prefixes.size() +
      rules.session_free_api_paths.size() + rules.internal_ip_ranges.size() +
      rules.internal_user_agents.size();
  if (total_reasons >= kNoMatch) {
    return absl::InvalidArgumentError("too many rule entries");
  }
  size_t ua_bytes = 0;
  for (const std::string& p : rules.internal_user_agents) ua_bytes += p.size();
  if (ua_bytes > 100000) {
    return absl::InvalidArgumentError(
        "internal_user_agents: patterns exceed 100000 bytes in total");
  }

  auto c = std::unique_ptr<Classifier>(new Classifier());
  c->rules_ = rules;
  c->options_ = options;
  const std::vector<std::string> extensions = Lowered(rules.static_extensions);
  const std::vector<std::string> static_prefixes =
      Lowered(rules.static_prefixes);
  const std::vector<std::string> free_paths =
      Lowered(rules.session_free_api_paths);
  const std::vector<std::string> auth_paths =
      Lowered(rules.auth_required_paths);
  const std::vector<std::string> user_agents =
      Lowered(rules.internal_user_agents);
  c->extensions_ = ExtensionTable(extensions);
  c->prefixes_ = PrefixTrie({&static_prefixes, &free_paths, &auth_paths});
  c->user_agents_ = SubstringMatcher(user_agents);
  std::vector<Cidr> cidrs;
  for (const std::string& s : rules.internal_ip_ranges) {
    SG_ASSIGN_OR_RETURN(Cidr cidr, Cidr::Parse(s));
    cidrs.push_back(cidr);
  }
  c->internal_ips_ = CidrSet(cidrs);
  cidrs.clear();
  for (const std::string& s : options.trusted_proxies) {
    SG_ASSIGN_OR_RETURN(Cidr cidr, Cidr::Parse(s));
    cidrs.push_back(cidr);
  }
  c->trusted_proxies_ = CidrSet(cidrs);
  c->session_cookie_ = rules.session_cookie_name;
  c->auth_cookies_ = rules.auth_cookie_names;
  c->cookie_names_.push_back(rules.session_cookie_name);
  c->cookie_names_.insert(c->cookie_names_.end(),
                          rules.auth_cookie_names.begin(),
                          rules.auth_cookie_names.end());

  // Dense reason ids, in priority order.
  auto add = [&](ReasonKind kind, uint16_t index, std::string name) {
    c->reasons_.push_back(Reason{kind, index});
    c->names_.push_back(std::move(name));
  };
  auto add_list = [&](ReasonKind kind, std::string_view label,
                      const std::vector<std::string>& list) {
    c->base_[static_cast<int>(kind)] =
        static_cast<uint16_t>(c->reasons_.size());
    for (size_t i = 0; i < list.size(); ++i) {
      add(kind, static_cast<uint16_t>(i), edge::Cat(label, ":", list[i]));
    }
  };
  auto add_one = [&](ReasonKind kind, std::string name) {
    c->base_[static_cast<int>(kind)] =
        static_cast<uint16_t>(c->reasons_.size());
    add(kind, 0, std::move(name));
  };
  add_one(ReasonKind::kSessionRequired, "session_required");
  add_one(ReasonKind::kWebsocketUpgrade, "websocket_upgrade");
  add_list(ReasonKind::kStaticExtension, "static_extension", extensions);
  add_list(ReasonKind::kStaticPrefix, "static_prefix", static_prefixes);
  add_list(ReasonKind::kSessionFreeApi, "session_free_api", free_paths);
  std::vector<std::string> ranges;
  for (const std::string& s : rules.internal_ip_ranges) {
    ranges.push_back(std::string(edge::TrimOws(s)));
  }
  add_list(ReasonKind::kInternalIp, "internal_ip", Lowered(ranges));
  add_list(ReasonKind::kInternalUa, "internal_ua", user_agents);
  add_one(ReasonKind::kEmptyOrShortUa, "empty_or_short_ua");
  add_one(ReasonKind::kMethod, "method:OPTIONS");
  add(ReasonKind::kMethod, 1, "method:HEAD");
  add_one(ReasonKind::kNonBrowserAccept, "non_browser_accept");
  add_one(ReasonKind::kUnauthenticatedHtmlRequest,
          "unauthenticated_html_request");
  add_one(ReasonKind::kAnonymousSessionCookie, "anonymous_session_cookie");
  return c;
}

std::string_view Classifier::ReasonName(uint16_t reason_id) const {
  return reason_id < names_.size() ? std::string_view(names_[reason_id])
                                   : std::string_view();
}

std::string_view Classifier::ReasonName(Reason reason) const {
  return ReasonName(ReasonId(reason));
}

Reason Classifier::ReasonAt(uint16_t reason_id) const {
  return reason_id < reasons_.size() ? reasons_[reason_id] : Reason{};
}

uint16_t Classifier::ReasonId(Reason reason) const {
  return static_cast<uint16_t>(base_[static_cast<int>(reason.kind)] +
                               reason.index);
}

Decision Classifier::Make(ReasonKind kind, uint16_t index, int priority) const {
  Decision d;
  d.bypass = kind != ReasonKind::kSessionRequired;
  d.reason = Reason{kind, index};
  d.reason_id = static_cast<uint16_t>(base_[static_cast<int>(kind)] + index);
  d.priority = priority;
  return d;
}

std::optional<IpAddress> Classifier::ClientIp(
    const RequestView& request) const {
  if (!request.peer.has_value()) return std::nullopt;
  if (request.x_forwarded_for.empty() || trusted_proxies_.empty() ||
      trusted_proxies_.Match(*request.peer) < 0) {
    return request.peer;
  }
  // Walk right to left: each hop was appended by the proxy to its right,
  // so hops are believable only while those proxies are trusted.
  std::string_view rest = request.x_forwarded_for;
  std::optional<IpAddress> leftmost;
  while (true) {
    const size_t comma = rest.rfind(',');
    const std::string_view entry = edge::TrimOws(
        comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    if (!entry.empty()) {
      const std::optional<IpAddress> hop = IpAddress::Parse(entry);
      if (!hop.has_value()) return std::nullopt;
      if (trusted_proxies_.Match(*hop) < 0) return hop;
      leftmost = hop;
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(0, comma);
  }
  return leftmost.has_value() ? leftmost : request.peer;
}

Decision Classifier::Classify(const RequestView& req) const {
  char buffer[kMaxPathBytes];
  const std::optional<size_t> path_len = NormalizePath(req.target, buffer);
  const bool path_known = path_len.has_value();
  const std::string_view path =
      path_known ? std::string_view(buffer, *path_len) : std::string_view();

  // 1. WebSocket upgrade.
  if (EqualsIgnoreCase(req.upgrade, "websocket")) {
    return Make(ReasonKind::kWebsocketUpgrade, 0, 1);
  }
  // 2. Static extension of the last segment. Before the prefix walk, which
  // a static asset (a third of requests) then never needs.
  if (path_known) {
    const std::string_view ext = LastSegmentExtension(path);
    if (!ext.empty()) {
      const uint16_t i = extensions_.Find(ext);
      if (i != kNoMatch) return Make(ReasonKind::kStaticExtension, i, 2);
    }
  }
  const PrefixTrie::Result prefixes =
      path_known ? prefixes_.Match(path) : PrefixTrie::Result{};
  // An overlong path is treated as auth-required (see the header).
  const bool auth_required = !path_known || prefixes[kAuthList] != kNoMatch;
  if (path_known) {
    // 3. Static prefix.
    if (prefixes[kStaticList] != kNoMatch) {
      return Make(ReasonKind::kStaticPrefix, prefixes[kStaticList], 3);
    }
    // 4. Session-free API.
    if (prefixes[kFreeList] != kNoMatch) {
      return Make(ReasonKind::kSessionFreeApi, prefixes[kFreeList], 4);
    }
  }
  const std::string_view method =
      req.method.empty() ? std::string_view("GET") : req.method;
  const bool is_get = EqualsIgnoreCase(method, "get");
  // 5. Internal client address, unless the path needs auth.
  if (!auth_required && !internal_ips_.empty()) {
    const std::optional<IpAddress> ip = ClientIp(req);
    if (ip.has_value()) {
      const int i = internal_ips_.Match(*ip);
      if (i >= 0) {
        return Make(ReasonKind::kInternalIp, static_cast<uint16_t>(i), 5);
      }
    }
  }
  // 6. Internal / automated user agent: smallest list index that occurs.
  if (!req.user_agent.empty()) {
    const uint16_t i = user_agents_.FindFirst(req.user_agent);
    if (i != kNoMatch) return Make(ReasonKind::kInternalUa, i, 6);
  }
  // 7. Empty or short user agent (byte length; the seed counted UTF-16
  // units, which differs only for non-ASCII agents).
  if (req.user_agent.size() < 10 && is_get && !auth_required) {
    return Make(ReasonKind::kEmptyOrShortUa, 0, 7);
  }
  // 8. Preflight / HEAD.
  if (EqualsIgnoreCase(method, "options")) {
    return Make(ReasonKind::kMethod, 0, 8);
  }
  if (EqualsIgnoreCase(method, "head")) return Make(ReasonKind::kMethod, 1, 8);
  // 9. Accept header that is neither HTML nor JSON.
  const bool accepts_html = ContainsIgnoreCase(req.accept, "text/html");
  if (!req.accept.empty() && !accepts_html &&
      !ContainsIgnoreCase(req.accept, "application/json") && is_get &&
      !auth_required) {
    return Make(ReasonKind::kNonBrowserAccept, 0, 9);
  }
  if (!is_get || auth_required) return Make(ReasonKind::kSessionRequired, 0, 0);
  bool has_session_cookie;
  bool has_auth_cookie;
  if (cookie_names_.size() <= 64) {
    const CookieAnswer a = HasSessionAndAuthCookies(req.cookie, cookie_names_);
    has_session_cookie = a.session;
    has_auth_cookie = a.auth;
  } else {
    has_session_cookie = HasCookie(req.cookie, session_cookie_);
    has_auth_cookie = false;
    for (const std::string& name : auth_cookies_) {
      if (!has_session_cookie) break;  // not asked
      if (HasCookie(req.cookie, name)) {
        has_auth_cookie = true;
        break;
      }
    }
  }
  // 10. Production HTML page view without a session cookie.
  if (options_.production && accepts_html && !has_session_cookie) {
    return Make(ReasonKind::kUnauthenticatedHtmlRequest, 0, 10);
  }
  // 11. Session cookie without any auth cookie: an anonymous session.
  if (has_session_cookie && !has_auth_cookie) {
    return Make(ReasonKind::kAnonymousSessionCookie, 0, 11);
  }
  return Make(ReasonKind::kSessionRequired, 0, 0);
}

}  // namespace sg::classifier

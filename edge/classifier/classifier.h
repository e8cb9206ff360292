// The edge bypass classifier: decides per request whether it needs a
// session at all. Rules and priority order are those of the seed's
// `shouldSkipSession` (session-bypass.ts v3.0.0), with its faults fixed:
//
//  * Client IP: X-Forwarded-For is used only when the TCP peer is a trusted
//    proxy, and then the right-most hop that is not a trusted proxy is the
//    client. The seed took the left-most XFF entry from anyone, so any
//    client could claim "127.0.0.1" and be treated as internal.
//  * IP ranges are real CIDRs; IPv4-mapped IPv6 peers match IPv4 ranges.
//  * Extensions, prefixes and UA patterns are compared case-insensitively.
//    The seed lower-cased the path but listed ".LICENSE", which therefore
//    never matched; here ".license" does.
//  * The path is percent-decoded, lower-cased and dot-segment-resolved
//    before any path rule, and the query is stripped first, so
//    "/assets/../api/auth/x" is an auth path, "/%61ssets/x.js" is static.
//  * The extension comes from the last path segment only ("/v1.2/users"
//    has none; the seed saw ".2/users").
//  * Reasons never embed client input: "internal_ip:" names the matched
//    CIDR from the rules, not the client address, so metric labels stay
//    bounded by the rules.
//
// Paths longer than kMaxPathBytes (2 KiB) are not decoded: the path rules
// (2, 3, 4) do not match them and they are treated as auth-required, so
// rules 5, 7, 9, 10 and 11 keep the session; rules 1, 6 and 8, which the
// seed applies to every path, still bypass. Overlong paths thus never gain
// a bypass they would not have had.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "edge/classifier/ip.h"
#include "edge/classifier/matchers.h"
#include "edge/classifier/path.h"
#include "edge/classifier/rules.h"

namespace sg::classifier {

// Why a request was (not) bypassed. Values are stable.
enum class ReasonKind : uint8_t {
  kSessionRequired = 0,         // no bypass
  kWebsocketUpgrade,            // 1
  kStaticExtension,             // 2, index into static_extensions
  kStaticPrefix,                // 3, index into static_prefixes
  kSessionFreeApi,              // 4, index into session_free_api_paths
  kInternalIp,                  // 5, index into internal_ip_ranges
  kInternalUa,                  // 6, index into internal_user_agents
  kEmptyOrShortUa,              // 7
  kMethod,                      // 8, index 0 = OPTIONS, 1 = HEAD
  kNonBrowserAccept,            // 9
  kUnauthenticatedHtmlRequest,  // 10
  kAnonymousSessionCookie,      // 11
};
inline constexpr int kNumReasonKinds = 12;

// A reason: its kind plus, for list rules, the index of the matched entry.
struct Reason {
  ReasonKind kind = ReasonKind::kSessionRequired;
  uint16_t index = 0;
  friend bool operator==(const Reason&, const Reason&) = default;
};

// The classifier's answer. `reason_id` is dense in [0, num_reasons()) so a
// caller can count decisions in a flat array without allocating.
struct Decision {
  bool bypass = false;
  Reason reason;
  uint16_t reason_id = 0;
  int priority = 0;  // the seed's priority (1..11), 0 for session_required
};

// The parts of a request the classifier looks at: views into the request's
// own memory, valid for the duration of Classify(). Absent headers are
// empty. If a header occurs more than once, pass the values joined with
// ", " (for X-Forwarded-For at least the last header: the right-most hops
// are the ones that count).
struct RequestView {
  std::string_view method;           // "GET"
  std::string_view target;           // request-target: "/path?query"
  std::string_view upgrade;          // Upgrade header
  std::string_view user_agent;       // User-Agent header
  std::string_view accept;           // Accept header
  std::string_view cookie;           // Cookie header
  std::optional<IpAddress> peer;     // TCP peer address
  std::string_view x_forwarded_for;  // X-Forwarded-For header
};

// Per-deployment settings (the rules file holds the lists).
struct ClassifierOptions {
  // Enables rule 10 (unauthenticated_html_request), as the seed's
  // ENVIRONMENT.isProduction did.
  bool production = false;
  // Peers whose X-Forwarded-For is believed (CIDRs). Empty: never.
  std::vector<std::string> trusted_proxies;

  absl::Status Validate() const;
};

// Compiled rules. Immutable after Create(): Classify() is thread-safe,
// never allocates and never throws.
class Classifier final {
 public:
  // Validates and compiles. Errors name the offending entry.
  static absl::StatusOr<std::unique_ptr<Classifier>> Create(
      const Rules& rules, const ClassifierOptions& options);

  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  // Classifies one request. The same computation serves enforcing and
  // shadow mode; shadow mode is the caller ignoring `bypass`.
  Decision Classify(const RequestView& request) const;

  // The client address rule 5 uses: the peer, or when the peer is a
  // trusted proxy, the right-most untrusted X-Forwarded-For hop (the
  // left-most hop if all are trusted). nullopt when there is no peer or a
  // hop that must be believed is not an address.
  std::optional<IpAddress> ClientIp(const RequestView& request) const;

  // Every reason this classifier can return, by dense id: metrics can
  // pre-register all labels. ReasonName() renders as the seed did
  // ("static_extension:.js", "internal_ua:curl", "method:HEAD"); entries
  // are shown lower-cased, as they are matched.
  size_t num_reasons() const { return names_.size(); }
  std::string_view ReasonName(uint16_t reason_id) const;
  std::string_view ReasonName(Reason reason) const;
  Reason ReasonAt(uint16_t reason_id) const;
  uint16_t ReasonId(Reason reason) const;

  const Rules& rules() const { return rules_; }
  const ClassifierOptions& options() const { return options_; }

 private:
  Classifier() = default;
  Decision Make(ReasonKind kind, uint16_t index, int priority) const;

  Rules rules_;
  ClassifierOptions options_;
  ExtensionTable extensions_;
  PrefixTrie prefixes_;  // lists: static, session-free, auth-required
  SubstringMatcher user_agents_;
  CidrSet internal_ips_;
  CidrSet trusted_proxies_;
  std::string session_cookie_;
  std::vector<std::string> auth_cookies_;
  std::vector<std::string> cookie_names_;         // session, then auth cookies
  std::array<uint16_t, kNumReasonKinds> base_{};  // first id of each kind
  std::vector<std::string> names_;                // by reason id
  std::vector<Reason> reasons_;                   // by reason id
};

}  // namespace sg::classifier

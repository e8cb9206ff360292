// The bypass classifier's rule lists and their file format.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sg::classifier {

// The lists the classifier is compiled from, in priority order within each
// list (the first entry that matches wins, as in the seed). Plain data.
struct Rules {
  std::vector<std::string> static_extensions;       // ".js", with the dot
  std::vector<std::string> static_prefixes;         // "/assets/"
  std::vector<std::string> session_free_api_paths;  // "/api/health"
  std::vector<std::string> internal_user_agents;    // substrings: "curl"
  std::vector<std::string> internal_ip_ranges;      // CIDRs: "10.0.0.0/8"
  std::vector<std::string> auth_required_paths;     // "/api/auth/"
  // Cookies for rules 10 and 11 (anonymous session detection).
  std::string session_cookie_name = "connect.sid";
  std::vector<std::string> auth_cookie_names = {"auth_token", "user_id"};

  // The seed's lists (session-bypass.ts v3.0.0), same entries and order,
  // with the IP regexes written as CIDRs. Equal to edge/rules/default.yaml.
  static Rules SeedDefaults();

  // Checks every entry (extension starts with '.', non-empty patterns,
  // parsable CIDRs, no duplicates). Errors name the list and entry.
  absl::Status Validate() const;

  friend bool operator==(const Rules&, const Rules&) = default;
};

// Parses the rules file format, a small YAML subset:
//
//   # comment
//   static_extensions:
//     - ".js"          # double- or single-quoted, or plain
//     - '.css'
//   session_cookie_name: "connect.sid"
//   auth_cookie_names: []
//
// Top-level keys are the field names of Rules; list keys hold "- item"
// lines indented under them. A list key that is absent is empty; the two
// cookie keys keep their defaults. Errors carry "<source_name>:<line>: ".
absl::StatusOr<Rules> ParseRules(std::string_view text,
                                 std::string_view source_name = "<rules>");

// Reads and parses a rules file. The only I/O in sg_classifier.
absl::StatusOr<Rules> LoadRulesFile(const std::string& path);

}  // namespace sg::classifier

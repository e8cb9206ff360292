#include "edge/classifier/rules.h"

#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "common/status_macros.h"
#include "edge/classifier/ip.h"
#include "edge/http/text_util.h"

namespace sg::classifier {
namespace {

using ListField = std::vector<std::string> Rules::*;

struct ListKey {
  std::string_view name;
  ListField field;
};

constexpr ListKey kListKeys[] = {
    {"static_extensions", &Rules::static_extensions},
    {"static_prefixes", &Rules::static_prefixes},
    {"session_free_api_paths", &Rules::session_free_api_paths},
    {"internal_user_agents", &Rules::internal_user_agents},
    {"internal_ip_ranges", &Rules::internal_ip_ranges},
    {"auth_required_paths", &Rules::auth_required_paths},
    {"auth_cookie_names", &Rules::auth_cookie_names},
};

// Checks one entry of a list; the error text has no location.
absl::Status CheckEntry(std::string_view list, std::string_view value) {
  if (value.empty()) {
    return absl::InvalidArgumentError(
        edge::Cat(list, ": empty entries are not allowed"));
  }
  if (list == "static_extensions") {
    if (value.front() != '.' || value.size() < 2 ||
        value.find('/') != std::string_view::npos || value.size() > 16) {
      return absl::InvalidArgumentError(
          edge::Cat(list, ": \"", value,
                    "\" must be a '.' then 1-15 characters, no '/'"));
    }
  } else if (list == "static_prefixes" || list == "session_free_api_paths" ||
             list == "auth_required_paths") {
    if (value.front() != '/') {
      return absl::InvalidArgumentError(
          edge::Cat(list, ": \"", value, "\" must start with '/'"));
    }
  } else if (list == "internal_ip_ranges") {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(value);
    if (!cidr.ok()) {
      return absl::InvalidArgumentError(
          edge::Cat(list, ": ", cidr.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ErrorAt(std::string_view source, int line, std::string_view msg) {
  return absl::InvalidArgumentError(edge::Cat(source, ":", line, ": ", msg));
}

// Parses a scalar: "double" (\" \\ escapes), 'single' ('' escape) or plain.
// Strips a trailing comment. Returns an error message in `error` on failure.
bool ParseScalar(std::string_view s, std::string* out, std::string* error) {
  s = edge::TrimSpace(s);
  out->clear();
  if (s.empty()) return true;
  if (s.front() == '"' || s.front() == '\'') {
    const char quote = s.front();
    size_t i = 1;
    bool closed = false;
    for (; i < s.size(); ++i) {
      const char c = s[i];
      if (quote == '"' && c == '\\') {
        if (i + 1 >= s.size()) break;
        const char e = s[++i];
        if (e != '"' && e != '\\') {
          *error = edge::Cat("unsupported escape \\", std::string(1, e));
          return false;
        }
        out->push_back(e);
      } else if (quote == '\'' && c == '\'' && i + 1 < s.size() &&
                 s[i + 1] == '\'') {
        out->push_back('\'');
        ++i;
      } else if (c == quote) {
        closed = true;
        ++i;
        break;
      } else {
        out->push_back(c);
      }
    }
    if (!closed) {
      *error = "unterminated quoted string";
      return false;
    }
    std::string_view rest = edge::TrimSpace(s.substr(i));
    if (!rest.empty() && rest.front() != '#') {
      *error = edge::Cat("unexpected text after quoted string: ", rest);
      return false;
    }
    return true;
  }
  // Plain scalar: a comment starts at " #".
  size_t hash = s.find(" #");
  if (hash != std::string_view::npos) s = s.substr(0, hash);
  s = edge::TrimSpace(s);
  if (!s.empty() &&
      (s.front() == '[' || s.front() == '{' || s.front() == '&' ||
       s.front() == '*' || s.front() == '|' || s.front() == '>')) {
    *error = edge::Cat("unsupported YAML syntax: ", s);
    return false;
  }
  out->assign(s);
  return true;
}

}  // namespace

Rules Rules::SeedDefaults() {
  Rules r;
  r.static_extensions = {
      ".js",   ".mjs",  ".cjs",   ".css", ".scss", ".sass", ".less",
      ".png",  ".jpg",  ".jpeg",  ".gif", ".svg",  ".webp", ".ico",
      ".avif", ".woff", ".woff2", ".ttf", ".eot",  ".otf",  ".mp3",
      ".mp4",  ".webm", ".ogg",   ".wav", ".pdf",  ".zip",  ".gz",
      ".br",   ".json", ".xml",   ".txt", ".md",   ".map",  ".LICENSE",
  };
  r.static_prefixes = {
      "/assets/",       "/static/",  "/public/",      "/dist/",   "/build/",
      "/node_modules/", "/_next/",   "/__vite",       "/favicon", "/robots.txt",
      "/sitemap",       "/manifest", "/.well-known/",
  };
  r.internal_user_agents = {
      "axios",
      "node-fetch",
      "got",
      "superagent",
      "request",
      "undici",
      "needle",
      "bent",
      "phin",
      "curl",
      "wget",
      "httpie",
      "postman",
      "insomnia",
      "uptimerobot",
      "pingdom",
      "newrelic",
      "datadog",
      "prometheus",
      "grafana",
      "zabbix",
      "nagios",
      "healthcheck",
      "kube-probe",
      "googlehc",
      "replit",
      "heroku",
      "vercel",
      "netlify",
      "cloudflare",
      "aws",
      "azure",
      "gcp",
      "digitalocean",
      "googlebot",
      "bingbot",
      "yandexbot",
      "duckduckbot",
      "baiduspider",
      "slurp",
      "facebookexternalhit",
      "twitterbot",
      "linkedinbot",
      "slackbot",
      "discordbot",
      "telegrambot",
      "whatsapp",
      "applebot",
      "semrushbot",
      "ahrefsbot",
      "mj12bot",
      "dotbot",
      "petalbot",
      "bytespider",
      "gptbot",
      "claudebot",
      "playwright",
      "puppeteer",
      "selenium",
      "cypress",
      "jest",
      "mocha",
      "vitest",
  };
  // The seed's regexes as CIDRs. /^fc00:/ and /^fd00:/ only matched two
  // /16s of the unique-local block; fc00::/7 is the whole block.
  r.internal_ip_ranges = {
      "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
      "::1/128",     "fe80::/10",  "fc00::/7",
  };
  r.auth_required_paths = {
      "/api/auth/",  "/api/session",     "/api/user",  "/api/admin",
      "/api/wallet", "/api/transaction", "/api/stake", "/api/governance",
      "/login",      "/register",        "/dashboard", "/profile",
      "/settings",
  };
  r.session_free_api_paths = {
      "/api/health",
      "/api/status",
      "/api/metrics",
      "/api/ping",
      "/api/version",
      "/api/blocks",
      "/api/transactions/public",
      "/api/validators/list",
      "/api/network/stats",
      "/api/price",
      "/api/market",
      "/api/explorer/",
      "/api/production-monitor/",
  };
  return r;
}

absl::Status Rules::Validate() const {
  for (const ListKey& key : kListKeys) {
    absl::flat_hash_set<std::string> seen;
    for (const std::string& value : this->*key.field) {
      SG_RETURN_IF_ERROR(CheckEntry(key.name, value));
      if (!seen.insert(edge::AsciiLowerCopy(value)).second) {
        return absl::InvalidArgumentError(
            edge::Cat(key.name, ": duplicate entry \"", value, "\""));
      }
    }
  }
  if (session_cookie_name.empty()) {
    return absl::InvalidArgumentError("session_cookie_name must not be empty");
  }
  return absl::OkStatus();
}

absl::StatusOr<Rules> ParseRules(std::string_view text,
                                 std::string_view source_name) {
  Rules rules;
  for (const ListKey& key : kListKeys) (rules.*key.field).clear();
  bool auth_cookie_names_seen = false;
  absl::flat_hash_set<std::string> seen_keys;
  absl::flat_hash_set<std::string> seen_values;
  std::string_view current_list_name;
  std::vector<std::string>* current_list = nullptr;
  int line_no = 0;
  std::string value;
  std::string error;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text =
        nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string_view stripped = edge::TrimSpace(line);
    if (stripped.empty() || stripped.front() == '#') continue;
    if (line.find('\t') < line.find_first_not_of(" \t")) {
      return ErrorAt(source_name, line_no,
                     "tabs are not allowed in indentation");
    }
    const bool indented = line.front() == ' ';
    if (stripped.front() == '-') {
      if (stripped.size() > 1 && stripped[1] != ' ') {
        return ErrorAt(source_name, line_no, "expected \"- value\"");
      }
      if (!indented) {
        return ErrorAt(source_name, line_no, "list items must be indented");
      }
      if (current_list == nullptr) {
        return ErrorAt(source_name, line_no, "list item outside of a list key");
      }
      if (!ParseScalar(stripped.substr(1), &value, &error)) {
        return ErrorAt(source_name, line_no, error);
      }
      if (absl::Status s = CheckEntry(current_list_name, value); !s.ok()) {
        return ErrorAt(source_name, line_no, std::string(s.message()));
      }
      if (!seen_values.insert(edge::AsciiLowerCopy(value)).second) {
        return ErrorAt(
            source_name, line_no,
            edge::Cat(current_list_name, ": duplicate entry \"", value, "\""));
      }
      current_list->push_back(value);
      continue;
    }
    if (indented) {
      return ErrorAt(source_name, line_no,
                     "unexpected indentation (only list items are indented)");
    }
    const size_t colon = stripped.find(':');
    if (colon == std::string_view::npos) {
      return ErrorAt(source_name, line_no, "expected \"key:\"");
    }
    const std::string key(stripped.substr(0, colon));
    if (!seen_keys.insert(key).second) {
      return ErrorAt(source_name, line_no,
                     edge::Cat("duplicate key \"", key, "\""));
    }
    const std::string_view rest = edge::TrimSpace(stripped.substr(colon + 1));
    current_list = nullptr;
    current_list_name = {};
    seen_values.clear();
    if (key == "session_cookie_name") {
      if (!ParseScalar(rest, &value, &error)) {
        return ErrorAt(source_name, line_no, error);
      }
      if (value.empty()) {
        return ErrorAt(source_name, line_no,
                       "session_cookie_name must not be empty");
      }
      rules.session_cookie_name = value;
      continue;
    }
    const ListKey* list_key = nullptr;
    for (const ListKey& k : kListKeys) {
      if (k.name == key) list_key = &k;
    }
    if (list_key == nullptr) {
      return ErrorAt(source_name, line_no,
                     edge::Cat("unknown key \"", key, "\""));
    }
    if (list_key->field == &Rules::auth_cookie_names) {
      auth_cookie_names_seen = true;
    }
    if (rest.substr(0, 2) == "[]") {
      const std::string_view after = edge::TrimSpace(rest.substr(2));
      if (after.empty() || after.front() == '#') continue;  // empty list
    }
    if (!rest.empty() && rest.front() != '#') {
      return ErrorAt(source_name, line_no,
                     edge::Cat("\"", key,
                               "\" is a list: put items on the following "
                               "lines as \"  - value\", or write []"));
    }
    current_list = &(rules.*list_key->field);
    current_list_name = list_key->name;
  }
  if (!auth_cookie_names_seen) {
    rules.auth_cookie_names = Rules().auth_cookie_names;
  }
  return rules;
}

absl::StatusOr<Rules> LoadRulesFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        edge::Cat("cannot open rules file \"", path, "\""));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(
        edge::Cat("error reading rules file \"", path, "\""));
  }
  return ParseRules(contents.str(), path);
}

}  // namespace sg::classifier

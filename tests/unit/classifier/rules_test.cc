#include "edge/classifier/rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sg::classifier {
namespace {

using ::testing::HasSubstr;

TEST(RulesTest, DefaultFileReproducesSeedListsExactly) {
  auto rules = LoadRulesFile(SG_DEFAULT_RULES);
  ASSERT_TRUE(rules.ok()) << rules.status();
  const Rules seed = Rules::SeedDefaults();
  EXPECT_EQ(rules->static_extensions, seed.static_extensions);
  EXPECT_EQ(rules->static_prefixes, seed.static_prefixes);
  EXPECT_EQ(rules->session_free_api_paths, seed.session_free_api_paths);
  EXPECT_EQ(rules->internal_user_agents, seed.internal_user_agents);
  EXPECT_EQ(rules->internal_ip_ranges, seed.internal_ip_ranges);
  EXPECT_EQ(rules->auth_required_paths, seed.auth_required_paths);
  EXPECT_EQ(rules->session_cookie_name, "connect.sid");
  EXPECT_EQ(rules->auth_cookie_names,
            (std::vector<std::string>{"auth_token", "user_id"}));
  EXPECT_TRUE(*rules == seed);
}

// Spot checks against the seed text itself (section 3.1), so SeedDefaults
// cannot drift silently: sizes, first and last entries of every list.
TEST(RulesTest, SeedDefaultsMatchSeedDocument) {
  const Rules r = Rules::SeedDefaults();
  EXPECT_EQ(r.static_extensions.size(), 35u);
  EXPECT_EQ(r.static_extensions.front(), ".js");
  EXPECT_EQ(r.static_extensions.back(), ".LICENSE");
  EXPECT_EQ(r.static_prefixes.size(), 13u);
  EXPECT_EQ(r.static_prefixes.back(), "/.well-known/");
  EXPECT_EQ(r.internal_user_agents.size(), 63u);
  EXPECT_EQ(r.internal_user_agents.front(), "axios");
  EXPECT_EQ(r.internal_user_agents[24], "googlehc");
  EXPECT_EQ(r.internal_user_agents.back(), "vitest");
  EXPECT_EQ(r.auth_required_paths.size(), 13u);
  EXPECT_EQ(r.auth_required_paths.back(), "/settings");
  EXPECT_EQ(r.session_free_api_paths.size(), 13u);
  EXPECT_EQ(r.session_free_api_paths.back(), "/api/production-monitor/");
  EXPECT_EQ(r.internal_ip_ranges,
            (std::vector<std::string>{"127.0.0.0/8", "10.0.0.0/8",
                                      "172.16.0.0/12", "192.168.0.0/16",
                                      "::1/128", "fe80::/10", "fc00::/7"}));
  EXPECT_TRUE(r.Validate().ok());
}

TEST(RulesTest, ParsesQuotingCommentsAndEmptyLists) {
  auto rules = ParseRules(R"(# header
static_extensions:
  - ".js"   # trailing comment
  - '.it''s'
  - .css
internal_user_agents: []
static_prefixes: [] # none
session_cookie_name: 'sid'
auth_cookie_names:
  - "token"
)");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ(rules->static_extensions,
            (std::vector<std::string>{".js", ".it's", ".css"}));
  EXPECT_TRUE(rules->internal_user_agents.empty());
  EXPECT_EQ(rules->session_cookie_name, "sid");
  EXPECT_EQ(rules->auth_cookie_names, (std::vector<std::string>{"token"}));
}

TEST(RulesTest, AbsentKeysAreEmptyExceptCookieDefaults) {
  auto rules = ParseRules("static_prefixes:\n  - /x/\n");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_TRUE(rules->static_extensions.empty());
  EXPECT_EQ(rules->session_cookie_name, "connect.sid");
  EXPECT_EQ(rules->auth_cookie_names,
            (std::vector<std::string>{"auth_token", "user_id"}));
}

TEST(RulesTest, ErrorsCarryLineNumbers) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"bogus:\n  - x\n", "f.yaml:1: unknown key \"bogus\""},
      {"static_prefixes:\n  - /a\n  - /a\n",
       "f.yaml:3: static_prefixes: duplicate"},
      {"# c\n  - /a\n", "f.yaml:2: list item outside of a list key"},
      {"static_prefixes:\n- /a\n", "f.yaml:2: list items must be indented"},
      {"static_prefixes:\n  - assets\n",
       "f.yaml:2: static_prefixes: \"assets\" must start with '/'"},
      {"static_extensions:\n  - js\n", "f.yaml:2: static_extensions"},
      {"internal_ip_ranges:\n  - 10.0.0.1/8\n",
       "f.yaml:2: internal_ip_ranges: CIDR \"10.0.0.1/8\" has host bits set"},
      {"internal_ip_ranges:\n  - 10.0.0.0/40\n",
       "f.yaml:2: internal_ip_ranges: invalid CIDR prefix"},
      {"static_prefixes:\n  - \"/a\n", "f.yaml:2: unterminated quoted string"},
      {"static_prefixes: /a\n", "f.yaml:1: \"static_prefixes\" is a list"},
      {"static_prefixes:\n  -/a\n", "f.yaml:2: expected \"- value\""},
      {"\n\nstatic_prefixes:\n\t- /a\n", "f.yaml:4: tabs"},
      {"static_prefixes:\n  - /a\nstatic_prefixes:\n",
       "f.yaml:3: duplicate key"},
      {"internal_user_agents:\n  - \"\"\n",
       "f.yaml:2: internal_user_agents: empty"},
      {"session_cookie_name: \"\"\n",
       "f.yaml:1: session_cookie_name must not be empty"},
      {"noколон\n", "f.yaml:1: expected \"key:\""},
      {"static_prefixes:\n    nested: x\n", "f.yaml:2: unexpected indentation"},
      {"internal_user_agents:\n  - [a, b]\n",
       "f.yaml:2: unsupported YAML syntax"},
  };
  for (const Case& c : cases) {
    auto rules = ParseRules(c.text, "f.yaml");
    ASSERT_FALSE(rules.ok()) << c.text;
    EXPECT_THAT(std::string(rules.status().message()), HasSubstr(c.error))
        << c.text;
  }
}

TEST(RulesTest, LoadReportsMissingFile) {
  auto rules = LoadRulesFile("/nonexistent/rules.yaml");
  ASSERT_FALSE(rules.ok());
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace sg::classifier

#include "common/flags.h"

#include <cstdlib>

#include "gtest/gtest.h"

namespace sg {
namespace {

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return argv;
}

TEST(ParseByteSizeTest, AcceptsPlainNumbersAndBinaryUnits) {
  EXPECT_EQ(*ParseByteSize("65536"), 65536u);
  EXPECT_EQ(*ParseByteSize("64KiB"), 64u << 10);
  EXPECT_EQ(*ParseByteSize("256MiB"), 256u << 20);
  EXPECT_EQ(*ParseByteSize("1GiB"), 1u << 30);
  EXPECT_EQ(*ParseByteSize("1.5k"), 1536u);
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("MiB").ok());
  EXPECT_FALSE(ParseByteSize("12XB").ok());
  EXPECT_FALSE(ParseByteSize("-5").ok());
}

TEST(ParseDurationFlagTest, AcceptsAbslDurationsAndZero) {
  EXPECT_EQ(*ParseDurationFlag("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseDurationFlag("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDurationFlag("250ms"), absl::Milliseconds(250));
  EXPECT_FALSE(ParseDurationFlag("banana").ok());
  EXPECT_FALSE(ParseDurationFlag("-1s").ok());
  EXPECT_FALSE(ParseDurationFlag("inf").ok());
}

class FlagSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    flags_.AddString("data-dir", &data_dir_, "where");
    flags_.AddDuration("default-ttl", &ttl_, "ttl");
    flags_.AddBool("sync-writes", &sync_, "sync");
    flags_.AddBytes("max-bytes", &bytes_, "bytes");
  }
  void TearDown() override { unsetenv("SGTEST_DATA_DIR"); }

  absl::StatusOr<std::vector<std::string>> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "prog");
    auto argv = Argv(args);
    return flags_.Parse(static_cast<int>(argv.size()), argv.data());
  }

  std::string data_dir_ = "./d";
  absl::Duration ttl_ = absl::Hours(24);
  bool sync_ = false;
  uint64_t bytes_ = 10;
  FlagSet flags_{"prog", "test", "SGTEST"};
};

TEST_F(FlagSetTest, ParsesBothSpellingsAndPositionals) {
  auto rest = Parse({"--data-dir=/a", "--default-ttl", "1h", "--sync-writes",
                     "pos", "--max-bytes=2KiB"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(data_dir_, "/a");
  EXPECT_EQ(ttl_, absl::Hours(1));
  EXPECT_TRUE(sync_);
  EXPECT_EQ(bytes_, 2048u);
  EXPECT_EQ(*rest, std::vector<std::string>{"pos"});
}

TEST_F(FlagSetTest, EnvironmentAppliesAndFlagsWin) {
  setenv("SGTEST_DATA_DIR", "/from-env", 1);
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(data_dir_, "/from-env");
  ASSERT_TRUE(Parse({"--data-dir=/from-flag"}).ok());
  EXPECT_EQ(data_dir_, "/from-flag");
}

TEST_F(FlagSetTest, ErrorsNameTheFlag) {
  auto bad = Parse({"--default-ttl=banana"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--default-ttl"), absl::string_view::npos);
  auto unknown = Parse({"--nope"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("--nope"), absl::string_view::npos);
  auto missing = Parse({"--data-dir"});
  ASSERT_FALSE(missing.ok());
  auto boolean = Parse({"--sync-writes=maybe"});
  ASSERT_FALSE(boolean.ok());
  EXPECT_TRUE(Parse({"--no-sync-writes"}).ok());
  EXPECT_FALSE(sync_);
}

TEST_F(FlagSetTest, UsageListsFlagsWithDefaultsAndEnvironment) {
  std::string usage = flags_.Usage();
  EXPECT_NE(usage.find("--data-dir  (default: ./d)"), std::string::npos) << usage;
  EXPECT_NE(usage.find("--default-ttl  (default: 24h)"), std::string::npos);
  EXPECT_NE(usage.find("SGTEST_<NAME>"), std::string::npos);
}

TEST_F(FlagSetTest, DescribeOptionErrorNamesTheMatchingFlag) {
  EXPECT_EQ(flags_.DescribeOptionError(
                absl::InvalidArgumentError("default_ttl must be positive")),
            "flag --default-ttl: default_ttl must be positive");
  EXPECT_EQ(flags_.DescribeOptionError(absl::InvalidArgumentError("other")),
            "other");
}

}  // namespace
}  // namespace sg

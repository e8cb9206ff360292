#include "edge/classifier/ip.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

namespace sg::classifier {
namespace {

IpAddress Ip(const char* s) {
  auto ip = IpAddress::Parse(s);
  EXPECT_TRUE(ip.has_value()) << s;
  return ip.value_or(IpAddress{});
}

TEST(IpAddressTest, ParsesForms) {
  EXPECT_EQ(Ip("10.1.2.3"), IpAddress::FromV4(0x0a010203));
  EXPECT_EQ(Ip(" 10.1.2.3 "), Ip("10.1.2.3"));
  EXPECT_EQ(Ip("10.1.2.3:8080"), Ip("10.1.2.3"));
  EXPECT_EQ(Ip("::ffff:10.1.2.3"), Ip("10.1.2.3"));
  EXPECT_EQ(Ip("[::1]:443"), Ip("::1"));
  EXPECT_EQ(Ip("fe80::1%eth0"), Ip("fe80::1"));
  EXPECT_TRUE(Ip("10.1.2.3").is_v4());
  EXPECT_FALSE(Ip("::1").is_v4());
  for (const char* bad : {"", "unknown", "1.2.3", "1.2.3.256", "::g", "[::1",
                          "1.2.3.4.5", "localhost"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).has_value()) << bad;
  }
}

// IPv4 is parsed without inet_pton; it must accept exactly what
// inet_pton(AF_INET) accepts (no leading zeros, four parts, 0..255).
TEST(IpAddressTest, Ipv4AgreesWithInetPton) {
  std::mt19937 rng(5);
  const std::string alphabet = "0123456789...x";
  for (int iter = 0; iter < 100000; ++iter) {
    std::string s;
    if (rng() % 2) {
      for (int k = 0; k < 4; ++k) {
        std::string part = std::to_string(rng() % 300);
        if (rng() % 8 == 0) part = "0" + part;
        s += (k ? "." : "") + part;
      }
      if (rng() % 10 == 0) s.erase(rng() % s.size(), 1);
    } else {
      for (int k = rng() % 18; k > 0; --k)
        s += alphabet[rng() % alphabet.size()];
    }
    in_addr a4;
    const bool want = !s.empty() && inet_pton(AF_INET, s.c_str(), &a4) == 1;
    const auto got = IpAddress::Parse(s);
    ASSERT_EQ(got.has_value(), want) << "[" << s << "]";
    if (want) {
      EXPECT_EQ(std::memcmp(&got->bytes[12], &a4, 4), 0) << s;
      EXPECT_TRUE(got->is_v4()) << s;
    }
  }
  EXPECT_FALSE(IpAddress::Parse("01.2.3.4").has_value());
  EXPECT_FALSE(IpAddress::Parse("1.2.3.4.").has_value());
  EXPECT_FALSE(IpAddress::Parse("1.2.3.4 5").has_value());
  EXPECT_TRUE(IpAddress::Parse("0.0.0.0").has_value());
  // inet_pton is handed a C string: a NUL ends the text.
  EXPECT_TRUE(IpAddress::Parse(std::string("1.2.3.4\0x", 9)).has_value());
}

TEST(CidrTest, ParsesAndMatches) {
  auto c = Cidr::Parse("172.16.0.0/12");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->Contains(Ip("172.16.0.1")));
  EXPECT_TRUE(c->Contains(Ip("172.31.255.255")));
  EXPECT_FALSE(c->Contains(Ip("172.32.0.0")));
  EXPECT_FALSE(c->Contains(Ip("172.15.255.255")));
  auto v6 = Cidr::Parse("fc00::/7");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->Contains(Ip("fd12:3456::1")));
  EXPECT_TRUE(v6->Contains(Ip("fc00::1")));
  EXPECT_FALSE(v6->Contains(Ip("fe00::1")));
  auto host = Cidr::Parse("::1");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->prefix_len, 128);
  auto all = Cidr::Parse("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Contains(Ip("8.8.8.8")));
  EXPECT_FALSE(all->Contains(Ip("2001:db8::1")));  // v4 only
}

TEST(CidrTest, RejectsBadInput) {
  for (const char* bad :
       {"10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "10/8", "fe80::/129",
        "fe80::1/10", "x", "[::1]/128", "10.0.0.0/8x", "10.0.0.0/-1"}) {
    EXPECT_FALSE(Cidr::Parse(bad).ok()) << bad;
  }
}

TEST(CidrSetTest, ReturnsSmallestMatchingIndex) {
  std::vector<Cidr> cidrs;
  for (const char* s : {"192.168.0.0/16", "10.0.0.0/8", "10.1.0.0/16"}) {
    cidrs.push_back(*Cidr::Parse(s));
  }
  CidrSet set(cidrs);
  EXPECT_EQ(set.Match(Ip("10.1.2.3")), 1);
  EXPECT_EQ(set.Match(Ip("192.168.1.1")), 0);
  EXPECT_EQ(set.Match(Ip("::ffff:192.168.1.1")), 0);
  EXPECT_EQ(set.Match(Ip("8.8.8.8")), -1);
  EXPECT_EQ(CidrSet().Match(Ip("8.8.8.8")), -1);
}

}  // namespace
}  // namespace sg::classifier

// IP addresses and CIDR sets for the bypass classifier.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sg::classifier {

// An IPv4 or IPv6 address. IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), so
// "::ffff:10.0.0.1" and "10.0.0.1" are the same address and IPv4 CIDRs match
// both (the seed's regexes missed the mapped form Node reports on dual-stack
// sockets). Trivially copyable.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};

  // Parses "1.2.3.4", "::1", "fe80::1%eth0" (zone dropped), "[::1]",
  // "[::1]:80" and "1.2.3.4:80" (port dropped). Surrounding spaces are
  // trimmed. Returns nullopt on anything else. Does not allocate.
  static std::optional<IpAddress> Parse(std::string_view text);
  // Builds an address from a host-order IPv4 value.
  static IpAddress FromV4(uint32_t v4);

  bool is_v4() const;
  uint64_t hi() const;
  uint64_t lo() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// A network: address with host bits zero, prefix length in the 128-bit space.
struct Cidr {
  IpAddress network;
  int prefix_len = 0;  // 0..128 (IPv4 /n is stored as 96 + n)

  // Parses "10.0.0.0/8", "fe80::/10", or a bare address (a /32 or /128).
  // Rejects host bits set ("10.0.0.1/8") so a typo cannot widen a range.
  static absl::StatusOr<Cidr> Parse(std::string_view text);
  bool Contains(const IpAddress& ip) const;
};

// An ordered list of CIDRs. Immutable after construction; thread-safe to
// read. Match() is a branch-light scan over pre-masked 64-bit halves.
class CidrSet final {
 public:
  CidrSet() = default;
  explicit CidrSet(const std::vector<Cidr>& cidrs);

  // Returns the smallest list index whose network contains `ip`, or -1.
  int Match(const IpAddress& ip) const;
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uint64_t net_hi, net_lo, mask_hi, mask_lo;
  };
  std::vector<Entry> entries_;
};

}  // namespace sg::classifier

// Ring: consistent hashing with virtual nodes. A session's token comes from
// its id bytes (ids are uniformly random), a node's tokens from hashing its
// id, so every node that knows the same members computes the same owners.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sg::replication {

// The token of a session id: the first 60 bits its base64url characters
// encode, left-aligned in 64 bits. Characters outside the alphabet count 0.
uint64_t TokenOf(std::string_view session_id);

// A stable 64-bit hash (FNV-1a, then a finalizer): the same on every node
// and build, unlike absl::Hash.
uint64_t StableHash(std::string_view bytes, uint64_t seed = 0);

// Immutable once built; share it by pointer and rebuild on membership change.
class Ring final {
 public:
  static constexpr int kDefaultVirtualNodes = 64;

  // `nodes`: node ids, each once. An empty ring owns nothing.
  explicit Ring(std::vector<std::string> nodes,
                int virtual_nodes = kDefaultVirtualNodes);

  // The first `n` distinct nodes clockwise from `token` (fewer when the
  // ring has fewer nodes), the primary first.
  std::vector<std::string> Owners(uint64_t token, int n) const;
  std::vector<std::string> OwnersOfId(std::string_view id, int n) const {
    return Owners(TokenOf(id), n);
  }

  // One arc of the ring: tokens in (start, end] share one owner list.
  struct Range {
    uint64_t start;
    uint64_t end;
    std::vector<std::string> owners;
  };
  std::vector<Range> Ranges(int n) const;

  // Fraction of the token space of which `node` owns a replica (N = n).
  double Share(std::string_view node, int n) const;

  const std::vector<std::string>& nodes() const { return nodes_; }
  size_t size() const { return nodes_.size(); }

 private:
  struct Point {
    uint64_t token;
    uint32_t node;  // index into nodes_
  };
  std::vector<std::string> nodes_;
  std::vector<Point> points_;  // sorted by token
};

}  // namespace sg::replication

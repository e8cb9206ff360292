#include "server/replication/ring.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"

namespace sg::replication {
namespace {

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  const char* alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(alphabet[i])] = i;
  return t;
}
constexpr std::array<int8_t, 256> kDecode = MakeDecodeTable();

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

uint64_t TokenOf(std::string_view id) {
  uint64_t token = 0;
  for (size_t i = 0; i < 10; ++i) {
    int v = i < id.size() ? kDecode[static_cast<uint8_t>(id[i])] : 0;
    token = (token << 6) | static_cast<uint64_t>(v < 0 ? 0 : v);
  }
  return token << 4;
}

uint64_t StableHash(std::string_view bytes, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ Mix(seed);
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix(h);
}

Ring::Ring(std::vector<std::string> nodes, int virtual_nodes)
    : nodes_(std::move(nodes)) {
  std::sort(nodes_.begin(), nodes_.end());
  nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
  for (uint32_t n = 0; n < nodes_.size(); ++n) {
    for (int v = 0; v < virtual_nodes; ++v) {
      points_.push_back(
          Point{StableHash(absl::StrCat(nodes_[n], "#", v)), n});
    }
  }
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.token != b.token ? a.token < b.token : a.node < b.node;
  });
}

std::vector<std::string> Ring::Owners(uint64_t token, int n) const {
  std::vector<std::string> owners;
  if (points_.empty() || n <= 0) return owners;
  const size_t want = std::min<size_t>(static_cast<size_t>(n), nodes_.size());
  auto it = std::lower_bound(
      points_.begin(), points_.end(), token,
      [](const Point& p, uint64_t t) { return p.token < t; });
  size_t i = static_cast<size_t>(it - points_.begin());
  std::vector<bool> taken(nodes_.size(), false);
  for (size_t step = 0; step < points_.size() && owners.size() < want; ++step) {
    const Point& p = points_[(i + step) % points_.size()];
    if (taken[p.node]) continue;
    taken[p.node] = true;
    owners.push_back(nodes_[p.node]);
  }
  return owners;
}

std::vector<Ring::Range> Ring::Ranges(int n) const {
  std::vector<Range> ranges;
  for (size_t i = 0; i < points_.size(); ++i) {
    const uint64_t start = points_[(i + points_.size() - 1) % points_.size()].token;
    ranges.push_back(Range{start, points_[i].token, Owners(points_[i].token, n)});
  }
  return ranges;
}

double Ring::Share(std::string_view node, int n) const {
  if (points_.empty()) return 0;
  if (points_.size() == 1) return node == nodes_[0] ? 1.0 : 0.0;
  long double owned = 0;
  for (const Range& r : Ranges(n)) {
    if (std::find(r.owners.begin(), r.owners.end(), node) == r.owners.end()) {
      continue;
    }
    owned += static_cast<long double>(r.end - r.start);  // wraps mod 2^64
  }
  return static_cast<double>(owned / 18446744073709551616.0L);
}

}  // namespace sg::replication

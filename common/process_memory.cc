#include "common/process_memory.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace sg {
namespace {

// The cgroup v2 directory of this process, from /proc/self/cgroup's "0::"
// line.
std::optional<std::string> CgroupDir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return "/sys/fs/cgroup" + line.substr(3);
  }
  return std::nullopt;
}

std::optional<int64_t> ReadCgroupValue(const char* file) {
  auto dir = CgroupDir();
  if (!dir) return std::nullopt;
  std::ifstream in(*dir + "/" + file);
  std::string value;
  if (!(in >> value) || value == "max") return std::nullopt;
  try {
    return static_cast<int64_t>(std::stoll(value));
  } catch (...) {
    return std::nullopt;
  }
}

// /proc/self/statm's resident and shared (file-backed) pages, in bytes;
// zeros if unreadable.
struct Statm {
  int64_t resident_bytes = 0;
  int64_t shared_bytes = 0;
};
Statm ReadStatm() {
  std::ifstream in("/proc/self/statm");
  int64_t size_pages = 0, resident_pages = 0, shared_pages = 0;
  if (!(in >> size_pages >> resident_pages >> shared_pages)) return {};
  const int64_t page = sysconf(_SC_PAGESIZE);
  return {resident_pages * page, shared_pages * page};
}

}  // namespace

int64_t ProcessRssBytes() { return ReadStatm().resident_bytes; }

int64_t ProcessAnonymousRssBytes() {
  const Statm m = ReadStatm();
  return std::max<int64_t>(m.resident_bytes - m.shared_bytes, 0);
}

std::optional<int64_t> CgroupMemoryUsageBytes() {
  return ReadCgroupValue("memory.current");
}

std::optional<int64_t> CgroupMemoryLimitBytes() {
  return ReadCgroupValue("memory.max");
}

}  // namespace sg

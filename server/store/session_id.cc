// Session id minting and validation.
#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "server/store/session_store.h"

namespace sg::store {
namespace {

constexpr size_t kIdRandomBytes = 32;
constexpr char kBase64Url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static_assert((kIdRandomBytes * 8 + 5) / 6 == kSessionIdLength);

// Lookup table: true for the 64 base64url characters.
constexpr std::array<bool, 256> MakeAlphabetTable() {
  std::array<bool, 256> table{};
  for (int i = 0; i < 64; ++i)
    table[static_cast<uint8_t>(kBase64Url[i])] = true;
  return table;
}
constexpr std::array<bool, 256> kIsIdChar = MakeAlphabetTable();

void FillRandom(uint8_t* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = getrandom(buf + done, len - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Without the OS CSPRNG no id would be safe to hand out: this is a
      // broken platform invariant, not a request error.
      std::fprintf(stderr, "sessiongrid: getrandom failed (errno %d)\n", errno);
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace

std::string NewSessionId() {
  uint8_t raw[kIdRandomBytes];
  FillRandom(raw, sizeof(raw));
  std::string id(kSessionIdLength, '\0');
  size_t out = 0;
  size_t i = 0;
  for (; i + 3 <= kIdRandomBytes; i += 3) {
    uint32_t v = (uint32_t{raw[i]} << 16) | (uint32_t{raw[i + 1]} << 8) |
                 uint32_t{raw[i + 2]};
    id[out++] = kBase64Url[(v >> 18) & 63];
    id[out++] = kBase64Url[(v >> 12) & 63];
    id[out++] = kBase64Url[(v >> 6) & 63];
    id[out++] = kBase64Url[v & 63];
  }
  // 32 = 3 * 10 + 2: two bytes left, which take three characters.
  uint32_t v = (uint32_t{raw[i]} << 16) | (uint32_t{raw[i + 1]} << 8);
  id[out++] = kBase64Url[(v >> 18) & 63];
  id[out++] = kBase64Url[(v >> 12) & 63];
  id[out++] = kBase64Url[(v >> 6) & 63];
  return id;
}

absl::Status ValidateSessionId(std::string_view id) {
  if (id.size() < kMinSessionIdLength || id.size() > kMaxSessionIdLength) {
    return absl::InvalidArgumentError(
        "session id must be 22 to 128 base64url characters (ids this server "
        "mints have 43)");
  }
  for (char c : id) {
    if (!kIsIdChar[static_cast<uint8_t>(c)]) {
      return absl::InvalidArgumentError(
          "session id has a character outside base64url");
    }
  }
  return absl::OkStatus();
}

}  // namespace sg::store

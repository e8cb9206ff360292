#include "client/redis_import.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/json_object.h"
#include "common/status_macros.h"
#include "grpcpp/client_context.h"

namespace sg::client {
namespace {

namespace v1 = ::sessiongrid::v1;
using redis::RespValue;

constexpr int kMaxBatch = 1000;  // BatchCreate's limit

// google.rpc.Code numbers of the per-entry statuses.
constexpr int kCodeOk = 0;
constexpr int kCodeInvalidArgument = 3;
constexpr int kCodeAlreadyExists = 6;
constexpr int kCodePermissionDenied = 7;
constexpr int kCodeResourceExhausted = 8;

void Skip(RedisImportStats* stats, const char* reason) {
  ++stats->skipped[reason];
}

// Reads one batch of keys (GET and PTTL pipelined), checks each and, unless
// dry-running, creates the sessions in one BatchCreate.
absl::Status ImportKeys(redis::RedisClient& redis, const Client* sessions,
                        const RedisImportOptions& options,
                        const std::vector<std::string>& keys,
                        RedisImportStats* stats) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(keys.size() * 2);
  for (const std::string& key : keys) {
    commands.push_back({"GET", key});
    commands.push_back({"PTTL", key});
  }
  SG_ASSIGN_OR_RETURN(std::vector<RespValue> replies, redis.Pipeline(commands));

  v1::BatchCreateRequest batch;
  for (size_t i = 0; i < keys.size(); ++i) {
    RespValue& value = replies[2 * i];
    const RespValue& pttl = replies[2 * i + 1];
    ++stats->scanned;
    if (value.is_error()) {
      if (absl::StartsWith(value.str, "WRONGTYPE")) {
        Skip(stats, "wrong_type");
        continue;
      }
      return redis::ReplyError(redis.address(), value);
    }
    if (pttl.type != RespValue::Type::kInteger) {
      return absl::DataLossError(
          absl::StrCat("redis ", redis.address(), ": PTTL answered a ",
                       std::string(redis::TypeName(pttl.type)), " for ",
                       absl::CHexEscape(keys[i])));
    }
    // PTTL 0: under a millisecond left. Not "no TTL" (-1): giving it the
    // default TTL would bring back a session Redis is about to expire.
    if (value.is_nil() || pttl.integer == -2 || pttl.integer == 0) {
      Skip(stats, "expired");
      continue;
    }
    if (value.type != RespValue::Type::kBulkString) {
      return absl::DataLossError(
          absl::StrCat("redis ", redis.address(), ": GET answered a ",
                       std::string(redis::TypeName(value.type))));
    }
    const std::string_view id =
        std::string_view(keys[i]).substr(options.prefix.size());
    if (!IsImportableId(id)) {
      Skip(stats, "bad_id");
      continue;
    }
    if (!IsJsonObject(value.str)) {
      Skip(stats, "not_json_object");
      continue;
    }
    v1::CreateRequest* create = batch.add_requests();
    create->set_id(std::string(id));
    create->set_data(std::move(value.str));
    if (pttl.integer > 0) {
      create->mutable_ttl()->set_seconds((pttl.integer + 999) / 1000);
    } else if (options.default_ttl > absl::ZeroDuration()) {
      create->mutable_ttl()->set_seconds(static_cast<int64_t>(
          std::ceil(absl::ToDoubleSeconds(options.default_ttl))));
    }
  }
  if (batch.requests_size() == 0) return absl::OkStatus();
  if (options.dry_run) {
    stats->imported += batch.requests_size();
    return absl::OkStatus();
  }

  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options.rpc_timeout));
  v1::BatchCreateResponse response;
  grpc::Status rpc =
      sessions->NextSessionStub()->BatchCreate(&ctx, batch, &response);
  if (!rpc.ok()) {
    absl::Status s = FromGrpcStatus(rpc);
    return absl::Status(s.code(), absl::StrCat("BatchCreate: ", s.message()));
  }
  if (response.results_size() != batch.requests_size()) {
    return absl::DataLossError(
        absl::StrCat("BatchCreate answered ", response.results_size(),
                     " results for ", batch.requests_size(), " sessions"));
  }
  for (const v1::CreateResult& r : response.results()) {
    switch (r.status().code()) {
      case kCodeOk:
        ++stats->imported;
        break;
      case kCodeAlreadyExists:
        Skip(stats, "exists");
        break;
      case kCodeInvalidArgument:
        Skip(stats, "refused_invalid");
        break;
      case kCodeResourceExhausted:
        Skip(stats, "refused_memory");
        break;
      case kCodePermissionDenied:
        return absl::PermissionDeniedError(
            "sessiongrid-server refused application ids: start it with "
            "--allow-client-ids (needed for the import only)");
      default:
        return absl::Status(
            static_cast<absl::StatusCode>(r.status().code()),
            absl::StrCat("BatchCreate entry failed: ", r.status().message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RedisImportOptions::Validate() const {
  if (batch < 1 || batch > kMaxBatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch: want 1..", kMaxBatch, ", got ", batch));
  }
  if (cursor.empty() || !std::all_of(cursor.begin(), cursor.end(), [](char c) {
        return c >= '0' && c <= '9';
      })) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cursor: want the number an earlier run printed, got \"",
                     cursor, "\""));
  }
  if (default_ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--default-ttl: must be positive");
  }
  if (rpc_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout: must be positive");
  }
  return absl::OkStatus();
}

int64_t RedisImportStats::skipped_total() const {
  int64_t n = 0;
  for (const auto& [reason, count] : skipped) n += count;
  return n;
}

std::string RedisImportStats::ToJson(bool dry_run) const {
  std::string skips;
  for (const auto& [reason, count] : skipped) {
    absl::StrAppend(&skips, skips.empty() ? "" : ",", "\"", reason,
                    "\":", count);
  }
  return absl::StrCat("{\"scanned\":", scanned, ",\"imported\":", imported,
                      ",\"skipped\":{", skips, "},\"cursor\":\"", cursor,
                      "\",\"done\":", done ? "true" : "false",
                      ",\"elapsedMs\":", absl::ToInt64Milliseconds(elapsed),
                      ",\"dryRun\":", dry_run ? "true" : "false", "}");
}

bool IsImportableId(std::string_view id) {
  if (id.size() < 22 || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

absl::Status ImportRedis(
    redis::RedisClient& redis, const Client* sessions,
    const RedisImportOptions& options, const Clock& clock,
    const std::atomic<bool>* stop,
    absl::FunctionRef<void(const RedisImportStats&)> progress,
    RedisImportStats* stats) {
  SG_RETURN_IF_ERROR(options.Validate());
  if (!options.dry_run && sessions == nullptr) {
    return absl::InvalidArgumentError("import: no SessionGrid client");
  }
  const absl::Time started = clock.Now();
  stats->cursor = options.cursor;
  const std::string pattern = redis::GlobEscape(options.prefix) + "*";
  std::string cursor = options.cursor;
  absl::Status status;
  while (stop == nullptr || !stop->load()) {
    absl::StatusOr<redis::ScanPage> page =
        redis.Scan(cursor, pattern, options.batch);
    if (!page.ok()) {
      status = page.status();
      break;
    }
    std::vector<std::string> keys;
    for (std::string& k : page->keys) {
      // MATCH is a glob; the prefix test is exact.
      if (absl::StartsWith(k, options.prefix)) keys.push_back(std::move(k));
    }
    for (size_t i = 0; i < keys.size() && status.ok();
         i += static_cast<size_t>(options.batch)) {
      const size_t end =
          std::min(keys.size(), i + static_cast<size_t>(options.batch));
      status = ImportKeys(
          redis, sessions, options,
          std::vector<std::string>(keys.begin() + i, keys.begin() + end),
          stats);
    }
    if (!status.ok()) break;
    cursor = std::move(page->cursor);
    stats->cursor = cursor;
    stats->done = cursor == "0";
    stats->elapsed = clock.Now() - started;
    progress(*stats);
    if (stats->done) break;
  }
  stats->elapsed = clock.Now() - started;
  return status;
}

}  // namespace sg::client

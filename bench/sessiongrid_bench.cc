// sessiongrid-bench: closed-loop load against a SessionGrid node from one
// process. `--concurrency` slots each keep exactly one call in flight with
// the gRPC callback API, spread over `--channels` HTTP/2 connections; a slot
// issues its next call from the completion of the previous one. After
// `--warmup` the slots record latencies into their own histograms for
// `--duration`, then stop by themselves; the histograms are merged once all
// slots have stopped. Prints one JSON line on stdout.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "latency_histogram.h"
#include "sessiongrid/batcher.h"
#include "sessiongrid/pipeline.h"
#include "sessiongrid/client.h"

namespace sg::bench {
namespace {

namespace v1 = ::sessiongrid::v1;
using SteadyClock = std::chrono::steady_clock;

enum class Op { kCreate, kGet, kUpdate, kTouch, kMix };

constexpr const char* kUsage = R"(sessiongrid-bench: closed-loop gRPC load.

Usage: sessiongrid-bench [flags]   (--flag=value or --flag value)

  --target T        server(s), as sessiongridctl --server (127.0.0.1:7400)
  --op OP           create | get | update | touch | mix (get)
                    mix: 70% get, 15% touch, 10% update, 5% create
  --concurrency N   calls in flight (50)
  --channels N      HTTP/2 connections, 0 = max(2, cores) up to 8 (0)
  --duration D      measured time (10s)
  --warmup D        load before measuring, not recorded (1s)
  --value-size N    bytes of session data for create/update (1024)
  --keys N          sessions created first for get/update/touch/mix (10000)
  --principal-prefix P  the preloaded sessions are logged in, as P0, P1, ...
                    (none: anonymous)
  --ids-out FILE    writes the preloaded sessions' ids to FILE, one per line
                    (for tools that drive the same sessions through an edge)
  --ids-in FILE     no preload: get/update/touch/mix pick from the ids in FILE
                    (one per line, e.g. an earlier --ids-out)
  --distinct-data   every preloaded or created session gets random data of
                    its own (the default shares one payload, which
                    compresses on disk)
  --timeout D       deadline of one call (5s)
  --seed N          seed for key choice and payload (1)
  --mode M          the path each call takes (unary):
                    unary: one RPC per call (the stubs' async surface);
                    batch: the client's SessionBatcher (BatchGet/BatchCreate,
                    at most --batch per RPC; only --op=get and create);
                    stream: the client's SessionPipeline (calls multiplexed
                    on --streams SessionService/Stream streams)
  --batch N         entries per batch RPC with --mode=batch (128); N > 0
                    alone also means --mode=batch
  --batch-in-flight N  batch RPCs outstanding at once with --batch (1)
  --streams N       streams with --mode=stream (0 = --channels)
  --server-pid PID  also reports the CPU time process PID (the server, on
                    this machine) used in the measured window, per op

Output, one line: {"op","concurrency","channels","duration_s","ops",
"ops_per_sec","p50_us","p99_us","p999_us","errors","errors_by_code",
"value_size","mode","batch","client_cpu_us_per_op","server_cpu_us_per_op"} (the
last is null without --server-pid; both are user + system time of every
thread, in the measured window, divided by its ops). Only successful calls that started and ended inside
the measured window count as ops; failed ones count as errors, by status
code in "errors_by_code" (e.g. {"NOT_FOUND":12}) and on stderr.
)";

struct Config {
  std::string target = "127.0.0.1:7400";
  Op op = Op::kGet;
  std::string op_name = "get";
  int concurrency = 50;
  int channels = 0;
  absl::Duration duration = absl::Seconds(10);
  absl::Duration warmup = absl::Seconds(1);
  int value_size = 1024;
  int keys = 10000;
  std::string principal_prefix;
  std::string ids_out;
  std::string ids_in;
  bool distinct_data = false;
  absl::Duration timeout = absl::Seconds(5);
  uint64_t seed = 1;
  std::string mode = "unary";
  int batch = 0;
  int batch_in_flight = 1;
  int streams = 0;
  int server_pid = 0;
};

absl::StatusOr<Op> ParseOp(const std::string& name) {
  static const auto* kOps =
      new std::map<std::string, Op>{{"create", Op::kCreate},
                                    {"get", Op::kGet},
                                    {"update", Op::kUpdate},
                                    {"touch", Op::kTouch},
                                    {"mix", Op::kMix}};
  auto it = kOps->find(name);
  if (it == kOps->end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--op: unknown \"", name, "\""));
  }
  return it->second;
}

// Returns nullopt and prints usage for --help.
absl::StatusOr<std::optional<Config>> ParseArgs(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return std::optional<Config>();
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected ", arg));
    }
    if (arg == "--distinct-data") {  // the one flag without a value
      c.distinct_data = true;
      continue;
    }
    std::string value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
    }
    const std::string name = absl::StrReplaceAll(arg.substr(2), {{"_", "-"}});
    auto bad = [&] {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": bad value \"", value, "\""));
    };
    bool ok = true;
    if (name == "target") {
      c.target = value;
    } else if (name == "op") {
      absl::StatusOr<Op> op = ParseOp(value);
      if (!op.ok()) return op.status();
      c.op = *op;
      c.op_name = value;
    } else if (name == "concurrency") {
      ok = absl::SimpleAtoi(value, &c.concurrency) && c.concurrency >= 1 &&
           c.concurrency <= 100000;
    } else if (name == "channels") {
      ok = absl::SimpleAtoi(value, &c.channels) && c.channels >= 0 &&
           c.channels <= 64;
    } else if (name == "duration") {
      ok = absl::ParseDuration(value, &c.duration) &&
           c.duration > absl::ZeroDuration();
    } else if (name == "warmup") {
      ok = absl::ParseDuration(value, &c.warmup) &&
           c.warmup >= absl::ZeroDuration();
    } else if (name == "value-size") {
      ok = absl::SimpleAtoi(value, &c.value_size) && c.value_size >= 0;
    } else if (name == "keys") {
      ok = absl::SimpleAtoi(value, &c.keys) && c.keys >= 1;
    } else if (name == "principal-prefix") {
      c.principal_prefix = value;
    } else if (name == "ids-out") {
      c.ids_out = value;
      ok = !value.empty();
    } else if (name == "ids-in") {
      c.ids_in = value;
      ok = !value.empty();
    } else if (name == "distinct-data") {
      ok = value == "true" || value == "false";
      c.distinct_data = value == "true";
    } else if (name == "timeout") {
      ok = absl::ParseDuration(value, &c.timeout) &&
           c.timeout > absl::ZeroDuration();
    } else if (name == "server-pid") {
      ok = absl::SimpleAtoi(value, &c.server_pid) && c.server_pid > 0;
    } else if (name == "batch-in-flight") {
      ok = absl::SimpleAtoi(value, &c.batch_in_flight) &&
           c.batch_in_flight >= 1 && c.batch_in_flight <= 64;
    } else if (name == "batch") {
      ok = absl::SimpleAtoi(value, &c.batch) && c.batch >= 0 && c.batch <= 1000;
    } else if (name == "mode") {
      c.mode = value;
      ok = value == "unary" || value == "batch" || value == "stream";
    } else if (name == "streams") {
      ok = absl::SimpleAtoi(value, &c.streams) && c.streams >= 0 &&
           c.streams <= 64;
    } else if (name == "seed") {
      ok = absl::SimpleAtoi(value, &c.seed);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!ok) return bad();
  }
  if (c.batch > 0 && c.mode == "unary") c.mode = "batch";
  if (c.mode == "batch" && c.batch == 0) c.batch = 128;
  if (c.mode != "batch") c.batch = 0;
  if (c.mode == "batch" && c.op != Op::kGet && c.op != Op::kCreate) {
    return absl::InvalidArgumentError(
        "--mode=batch works with --op=get or create");
  }
  if (c.channels == 0) {
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    c.channels = std::clamp(cores, 2, 8);
  }
  if (c.streams == 0) c.streams = c.channels;
  return std::optional<Config>(c);
}

std::string MakePayload(int size, uint64_t seed) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::mt19937_64 rng(seed);
  std::string out(static_cast<size_t>(size), 'x');
  for (char& ch : out) ch = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return out;
}

// Session i's own random data (6 bits of a 64-bit draw per character: as
// incompressible as session data gets, and cheap for millions of sessions).
std::string DistinctPayload(int size, uint64_t seed, int i) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::mt19937_64 rng(seed * 1'000'003 + static_cast<uint64_t>(i));
  std::string out(static_cast<size_t>(size), 'x');
  uint64_t bits = 0;
  for (int k = 0; k < size; ++k) {
    if (k % 10 == 0) bits = rng();
    out[static_cast<size_t>(k)] = kAlphabet[bits & 63];
    bits >>= 6;
  }
  return out;
}

// Creates `keys` sessions with `concurrency` async chains; returns their ids.
// With a `principal_prefix`, session i is logged in as <prefix><i>; with
// `distinct_data` each gets DistinctPayload, else all share `payload`.
absl::StatusOr<std::vector<std::string>> Preload(
    const client::Client& client, int keys, int concurrency,
    const std::string& payload, const std::string& principal_prefix,
    bool distinct_data, uint64_t seed) {
  std::vector<std::string> ids(static_cast<size_t>(keys));
  std::atomic<int> next{0};
  absl::Mutex mu;
  int failures = 0;
  absl::Status first_error;
  const int chains = std::min(concurrency, keys);
  absl::BlockingCounter done(chains);
  std::function<void()> start_next = [&] {
    const int i = next.fetch_add(1, std::memory_order_relaxed);
    if (i >= keys) {
      done.DecrementCount();
      return;
    }
    if (i > 0 && i % 1'000'000 == 0) {
      std::cerr << "preload: " << i << " of " << keys << " sessions\n";
    }
    v1::CreateRequest req;
    req.set_data(distinct_data
                     ? DistinctPayload(static_cast<int>(payload.size()), seed, i)
                     : payload);
    if (!principal_prefix.empty()) {
      req.set_principal(absl::StrCat(principal_prefix, i));
    }
    client.CreateAsync(std::move(req),
                       [&, i](absl::StatusOr<v1::CreateResponse> r) {
                         if (r.ok()) {
                           ids[i] = r->session().id();
                         } else {
                           absl::MutexLock lock(&mu);
                           if (failures++ == 0) first_error = r.status();
                         }
                         start_next();
                       });
  };
  for (int c = 0; c < chains; ++c) start_next();
  done.Wait();
  if (failures > 0) {
    return absl::Status(
        first_error.code(),
        absl::StrCat("preload: ", failures, " of ", keys,
                     " creates failed; first: ", first_error.message()));
  }
  return ids;
}

// One call in flight at a time. Between issue and completion only the gRPC
// completion touches the slot; the completion then issues the next call, so
// the slot's fields are never accessed concurrently.
struct Slot {
  client::Client::SessionStub* stub = nullptr;
  std::mt19937_64 rng;
  std::optional<grpc::ClientContext> context;
  v1::CreateRequest create_req;
  v1::CreateResponse create_resp;
  v1::GetRequest get_req;
  v1::GetResponse get_resp;
  v1::UpdateRequest update_req;
  v1::UpdateResponse update_resp;
  v1::TouchRequest touch_req;
  v1::TouchResponse touch_resp;
  SteadyClock::time_point started;
  LatencyHistogram histogram;
  uint64_t ops = 0;
  std::array<uint64_t, 17> errors{};
};

// CPU time (user + system, every thread) used so far, in microseconds.
int64_t OwnCpuMicros() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto micros = [](const timeval& t) {
    return static_cast<int64_t>(t.tv_sec) * 1'000'000 + t.tv_usec;
  };
  return micros(usage.ru_utime) + micros(usage.ru_stime);
}

// The same for another process, from /proc/PID/stat; -1 when unreadable.
int64_t ProcessCpuMicros(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  const size_t comm_end = stat.rfind(')');  // the name may hold spaces
  if (comm_end == std::string::npos) return -1;
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(comm_end + 1), ' ', absl::SkipEmpty());
  int64_t utime = 0, stime = 0;  // fields 14 and 15 of the whole line
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return -1;
  }
  return (utime + stime) * 1'000'000 / sysconf(_SC_CLK_TCK);
}

struct CpuSample {
  int64_t own = 0;
  int64_t server = -1;
};

struct Result {
  LatencyHistogram histogram;
  uint64_t ops = 0;
  std::array<uint64_t, 17> errors{};
  CpuSample cpu_before, cpu_after;  // at the measured window's ends
};

class Runner final {
 public:
  Runner(const Config& config, const client::Client& client,
         const std::vector<std::string>& ids, const std::string& payload,
         client::SessionBatcher* batcher, client::SessionPipeline* pipeline)
      : config_(config), ids_(ids), batcher_(batcher), pipeline_(pipeline) {
    for (int i = 0; i < config.concurrency; ++i) {
      auto slot = std::make_unique<Slot>();
      slot->stub = client.NextSessionStub();
      slot->rng.seed(config.seed * 1'000'003 + static_cast<uint64_t>(i));
      slot->create_req.set_data(payload);
      slot->update_req.set_data(payload);
      slots_.push_back(std::move(slot));
    }
  }

  Result Run() {
    const auto start = SteadyClock::now();
    measure_start_ = start + absl::ToChronoNanoseconds(config_.warmup);
    end_ = measure_start_ + absl::ToChronoNanoseconds(config_.duration);
    absl::BlockingCounter stopped(static_cast<int>(slots_.size()));
    stopped_ = &stopped;
    for (auto& slot : slots_) Issue(*slot);
    // This thread only waits: it samples CPU time at the window's ends.
    std::this_thread::sleep_until(measure_start_);
    const CpuSample before = SampleCpu();
    std::this_thread::sleep_until(end_);
    const CpuSample after = SampleCpu();
    stopped.Wait();
    Result result;
    result.cpu_before = before;
    result.cpu_after = after;
    for (const auto& slot : slots_) {
      result.histogram.Merge(slot->histogram);
      result.ops += slot->ops;
      for (size_t c = 0; c < result.errors.size(); ++c) {
        result.errors[c] += slot->errors[c];
      }
    }
    return result;
  }

 private:
  CpuSample SampleCpu() const {
    CpuSample sample;
    sample.own = OwnCpuMicros();
    if (config_.server_pid > 0) {
      sample.server = ProcessCpuMicros(config_.server_pid);
    }
    return sample;
  }

  // With --distinct-data each create carries data of its own.
  void FreshData(Slot& slot) {
    if (!config_.distinct_data) return;
    slot.create_req.set_data(DistinctPayload(
        config_.value_size, config_.seed + 1,
        created_.fetch_add(1, std::memory_order_relaxed)));
  }

  Op PickOp(Slot& slot) const {
    if (config_.op != Op::kMix) return config_.op;
    const uint64_t roll = slot.rng() % 100;
    if (roll < 70) return Op::kGet;
    if (roll < 85) return Op::kTouch;
    if (roll < 95) return Op::kUpdate;
    return Op::kCreate;
  }

  const std::string& RandomId(Slot& slot) const {
    return ids_[slot.rng() % ids_.size()];
  }

  void Issue(Slot& slot) {
    if (batcher_ != nullptr) {
      IssueBatched(slot);
      return;
    }
    if (pipeline_ != nullptr) {
      IssueStreamed(slot);
      return;
    }
    slot.context.reset();
    slot.context.emplace();
    slot.context->set_deadline(SteadyToSystem(SteadyClock::now()) +
                               absl::ToChronoNanoseconds(config_.timeout));
    auto done = [this, &slot](grpc::Status status) { OnDone(slot, status); };
    grpc::ClientContext* ctx = &*slot.context;
    slot.started = SteadyClock::now();
    switch (PickOp(slot)) {
      case Op::kCreate:
        FreshData(slot);
        slot.stub->async()->Create(ctx, &slot.create_req, &slot.create_resp,
                                   std::move(done));
        break;
      case Op::kGet:
        slot.get_req.set_id(RandomId(slot));
        slot.stub->async()->Get(ctx, &slot.get_req, &slot.get_resp,
                                std::move(done));
        break;
      case Op::kUpdate:
        slot.update_req.set_id(RandomId(slot));
        slot.stub->async()->Update(ctx, &slot.update_req, &slot.update_resp,
                                   std::move(done));
        break;
      case Op::kTouch:
        slot.touch_req.set_id(RandomId(slot));
        slot.stub->async()->Touch(ctx, &slot.touch_req, &slot.touch_resp,
                                  std::move(done));
        break;
      case Op::kMix:
        break;  // PickOp never returns kMix
    }
  }

  // Through the batcher: the slot's call joins whatever batch leaves next.
  void IssueBatched(Slot& slot) {
    slot.started = SteadyClock::now();
    auto done = [this, &slot](absl::StatusOr<v1::Session> result) {
      OnDone(slot, result.ok()
                       ? grpc::Status::OK
                       : grpc::Status(static_cast<grpc::StatusCode>(
                                          result.status().code()),
                                      std::string(result.status().message())));
    };
    if (config_.op == Op::kCreate) {
      FreshData(slot);
      batcher_->Create(slot.create_req, std::move(done));
    } else {
      slot.get_req.set_id(RandomId(slot));
      batcher_->Get(slot.get_req, std::move(done));
    }
  }

  // Through the pipeline: the slot's call shares a stream with the others.
  void IssueStreamed(Slot& slot) {
    slot.started = SteadyClock::now();
    auto done = [this, &slot](const auto& result) {
      OnDone(slot, result.ok()
                       ? grpc::Status::OK
                       : grpc::Status(static_cast<grpc::StatusCode>(
                                          result.status().code()),
                                      std::string(result.status().message())));
    };
    switch (PickOp(slot)) {
      case Op::kCreate:
        FreshData(slot);
        pipeline_->Create(slot.create_req, std::move(done));
        break;
      case Op::kGet:
        slot.get_req.set_id(RandomId(slot));
        pipeline_->Get(slot.get_req, std::move(done));
        break;
      case Op::kUpdate:
        slot.update_req.set_id(RandomId(slot));
        pipeline_->Update(slot.update_req, std::move(done));
        break;
      case Op::kTouch:
        slot.touch_req.set_id(RandomId(slot));
        pipeline_->Touch(slot.touch_req, std::move(done));
        break;
      case Op::kMix:
        break;  // PickOp never returns kMix
    }
  }

  void OnDone(Slot& slot, const grpc::Status& status) {
    const auto now = SteadyClock::now();
    if (slot.started >= measure_start_ && now <= end_) {
      if (status.ok()) {
        ++slot.ops;
        slot.histogram.Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now -
                                                                 slot.started)
                .count()));
      } else {
        const int code = static_cast<int>(status.error_code());
        ++slot.errors[code >= 0 && code < 17 ? code : 2];
      }
    }
    if (now >= end_) {
      stopped_->DecrementCount();  // last touch of shared state
      return;
    }
    Issue(slot);
  }

  static std::chrono::system_clock::time_point SteadyToSystem(
      SteadyClock::time_point t) {
    return std::chrono::system_clock::now() +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(
               t - SteadyClock::now());
  }

  const Config& config_;
  const std::vector<std::string>& ids_;
  client::SessionBatcher* const batcher_;
  client::SessionPipeline* const pipeline_;
  std::vector<std::unique_ptr<Slot>> slots_;
  SteadyClock::time_point measure_start_;
  SteadyClock::time_point end_;
  absl::BlockingCounter* stopped_ = nullptr;
  std::atomic<int> created_{0};  // --distinct-data: the next create's index
};

int Fail(const absl::Status& status) {
  std::cerr << "error: " << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int Main(int argc, char** argv) {
  absl::StatusOr<std::optional<Config>> parsed = ParseArgs(argc, argv);
  if (!parsed.ok()) return Fail(parsed.status());
  if (!parsed->has_value()) return 0;
  const Config& config = **parsed;
  // As in the server and the edge: Debian's Abseil checks every Mutex
  // acquisition for deadlocks, which a load generator should not pay.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  client::ClientOptions options;
  options.target = config.target;
  options.deadline = config.timeout;
  options.connections = config.channels;
  options.seed = config.seed;
  absl::StatusOr<std::unique_ptr<client::Client>> client =
      client::Client::Create(options);
  if (!client.ok()) return Fail(client.status());
  absl::Status connected = (*client)->WaitForConnected(config.timeout);
  if (!connected.ok()) return Fail(connected);

  const std::string payload = MakePayload(config.value_size, config.seed);
  std::vector<std::string> ids;
  if (config.op != Op::kCreate && !config.ids_in.empty()) {
    std::ifstream in(config.ids_in);
    for (std::string id; std::getline(in, id);) {
      if (!id.empty()) ids.push_back(std::move(id));
    }
    if (ids.empty()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--ids-in: no ids in ", config.ids_in)));
    }
  } else if (config.op != Op::kCreate) {
    absl::StatusOr<std::vector<std::string>> loaded =
        Preload(**client, config.keys, config.concurrency, payload,
                config.principal_prefix, config.distinct_data, config.seed);
    if (!loaded.ok()) return Fail(loaded.status());
    ids = *std::move(loaded);
    if (!config.ids_out.empty()) {
      std::ofstream out(config.ids_out);
      for (const std::string& id : ids) out << id << "\n";
      out.flush();
      if (!out) {
        return Fail(absl::UnavailableError(
            absl::StrCat("--ids-out: cannot write ", config.ids_out)));
      }
    }
  }

  std::unique_ptr<client::SessionBatcher> batcher;
  if (config.batch > 0) {
    client::BatcherOptions batch_options;
    batch_options.max_batch = config.batch;
    batch_options.max_in_flight = config.batch_in_flight;
    batch_options.deadline = config.timeout;
    auto made = client::SessionBatcher::Create(client->get(), batch_options);
    if (!made.ok()) return Fail(made.status());
    batcher = *std::move(made);
  }
  std::unique_ptr<client::SessionPipeline> pipeline;
  if (config.mode == "stream") {
    client::PipelineOptions stream_options;
    stream_options.streams = config.streams;
    auto made = client::SessionPipeline::Create(client->get(), stream_options);
    if (!made.ok()) return Fail(made.status());
    pipeline = *std::move(made);
  }
  Runner runner(config, **client, ids, payload, batcher.get(), pipeline.get());
  const Result result = runner.Run();
  if (batcher) {
    std::cerr << "batched: " << batcher->rpcs_sent()
              << " RPCs (warm-up included)\n";
  }
  if (pipeline) {
    const client::SessionPipeline::Stats st = pipeline->stats();
    std::cerr << "streamed: " << st.calls_sent << " calls in "
              << st.messages_sent << " messages on " << st.streams_opened
              << " streams, " << st.resent << " resent (warm-up included)\n";
  }

  uint64_t errors = 0;
  std::string by_code;       // " NOT_FOUND=3 UNAVAILABLE=1", for stderr
  std::string by_code_json;  // "NOT_FOUND":3,"UNAVAILABLE":1
  for (size_t c = 0; c < result.errors.size(); ++c) {
    if (result.errors[c] == 0) continue;
    errors += result.errors[c];
    const std::string name =
        absl::StatusCodeToString(static_cast<absl::StatusCode>(c));
    absl::StrAppend(&by_code, " ", name, "=", result.errors[c]);
    absl::StrAppend(&by_code_json, by_code_json.empty() ? "" : ",", "\"", name,
                    "\":", result.errors[c]);
  }
  if (errors > 0) std::cerr << "errors by code:" << by_code << "\n";

  const double seconds = absl::ToDoubleSeconds(config.duration);
  auto per_op = [&](int64_t before, int64_t after) -> std::string {
    if (before < 0 || after < 0 || result.ops == 0) return "null";
    return absl::StrFormat("%.1f", static_cast<double>(after - before) /
                                       static_cast<double>(result.ops));
  };
  auto us = [&](double q) {
    return static_cast<double>(result.histogram.ValueAtQuantile(q)) / 1000.0;
  };
  std::cout << absl::StrFormat(
                   R"({"op":"%s","concurrency":%d,"channels":%d,)"
                   R"("duration_s":%.3f,"ops":%d,"ops_per_sec":%.1f,)"
                   R"("p50_us":%.1f,"p99_us":%.1f,"p999_us":%.1f,)"
                   R"("errors":%d,"errors_by_code":{%s},)"
                   R"("value_size":%d,"mode":"%s","batch":%d,)"
                   R"("client_cpu_us_per_op":%s,"server_cpu_us_per_op":%s})",
                   config.op_name, config.concurrency, config.channels, seconds,
                   result.ops, static_cast<double>(result.ops) / seconds,
                   us(0.50), us(0.99), us(0.999), errors, by_code_json,
                   config.value_size, config.mode, config.batch,
                   per_op(result.cpu_before.own, result.cpu_after.own),
                   per_op(result.cpu_before.server, result.cpu_after.server))
            << std::endl;
  return result.ops > 0 ? 0 : 1;
}

}  // namespace
}  // namespace sg::bench

int main(int argc, char** argv) { return sg::bench::Main(argc, argv); }

#include "tests/testutil/cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sg::testutil {
namespace v1 = ::sessiongrid::v1;

// Ports the kernel hands out for port 0 come from the ephemeral range,
// where other tests' outgoing connections take them too between our check
// and the server's bind. Below that range only another listener could, and
// ctest runs test processes side by side: each port is also reserved with
// an flock on a file named for it, held until this process exits (the
// kernel drops the lock when it dies, so a crashed test leaks nothing), so
// two tests never pick the same port in the window before their servers
// bind it.
namespace {
bool ReserveAcrossTestProcesses(int port) {
  static const std::string dir = [] {
    std::string d =
        std::filesystem::temp_directory_path() / "sessiongrid-test-ports";
    std::error_code ignored;
    std::filesystem::create_directories(d, ignored);
    std::filesystem::permissions(d, std::filesystem::perms::all, ignored);
    return d;
  }();
  const std::string path = absl::StrCat(dir, "/", port);
  const int fd = open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
  if (fd < 0) return true;  // no reservation possible: the bind check decides
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return false;
  }
  return true;  // fd stays open: the lock lasts as long as this process
}
}  // namespace

int FreePort() {
  static std::atomic<uint32_t> salt{static_cast<uint32_t>(getpid()) * 7919u};
  for (int attempt = 0; attempt < 200; ++attempt) {
    const uint32_t r = salt.fetch_add(2654435761u) ^ static_cast<uint32_t>(
                           absl::ToUnixNanos(absl::Now()));
    const int port = 20000 + static_cast<int>(r % 12000);  // 20000-31999
    if (!ReserveAcrossTestProcesses(port)) continue;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (ok) return port;
  }
  return 0;
}

bool PollUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (done()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

std::string NodeSpec::client_address() const {
  return absl::StrCat(host, ":", client_port);
}
std::string NodeSpec::peer_address() const {
  return absl::StrCat(host, ":", peer_port);
}

void TestCluster::UsePeerDns(const std::string& name) {
  const int port = FreePort();
  for (int i = 0; i < size(); ++i) {
    nodes_[i].host = absl::StrCat("127.0.0.", i + 1);
    nodes_[i].peer_port = port;
  }
  peer_dns_ = absl::StrCat(name, ":", port);
}

std::vector<std::string> TestCluster::FastFlags() {
  return {"--heartbeat-interval=100ms", "--suspect-after=400ms",
          "--dead-after=1s",            "--replica-timeout=500ms",
          "--anti-entropy-interval=1s", "--hint-window=10m",
          "--tombstone-ttl=1h",         "--drain-timeout=5s",
          // /metrics on loopback, never the production 0.0.0.0:9400.
          "--metrics-listen=127.0.0.1:0"};
}

TestCluster::TestCluster(std::string server_bin, std::string dir, int size,
                         std::vector<std::string> extra)
    : server_bin_(std::move(server_bin)), dir_(std::move(dir)), extra_(std::move(extra)) {
  for (int i = 0; i < size; ++i) {
    NodeSpec n;
    n.client_port = FreePort();
    n.peer_port = FreePort();
    n.node_id = absl::StrCat("n", i);
    n.data_dir = absl::StrCat(dir_, "/", n.node_id);
    nodes_.push_back(n);
  }
  procs_.resize(size);
  up_.resize(size);
  {
    absl::MutexLock lock(&stubs_mu_);
    session_stubs_.resize(size);
    admin_stubs_.resize(size);
  }
  node_flags_.resize(size);
  node_wrappers_.resize(size);
}

TestCluster::~TestCluster() {
  for (int i = 0; i < size(); ++i) {
    if (procs_[i] != nullptr) {
      procs_[i]->Signal(SIGCONT);
      procs_[i]->Signal(SIGKILL);
      procs_[i]->Wait(absl::Seconds(10));
    }
  }
}

void TestCluster::SetNodeFlags(int i, std::vector<std::string> flags) {
  node_flags_[i] = std::move(flags);
}

void TestCluster::SetNodeWrapper(int i, std::vector<std::string> prefix) {
  node_wrappers_[i] = std::move(prefix);
}

std::vector<std::string> TestCluster::ArgsFor(int i) const {
  std::vector<std::string> peers;
  for (const NodeSpec& n : nodes_) peers.push_back(n.peer_address());
  const NodeSpec& n = nodes_[i];
  std::vector<std::string> argv = {
      server_bin_,
      "--listen=" + n.client_address(),
      "--peer-listen=" + n.peer_address(),
      peer_dns_.empty() ? "--peers=" + absl::StrJoin(peers, ",")
                        : "--peer-dns=" + peer_dns_,
      "--node-id=" + n.node_id,
      "--data-dir=" + n.data_dir};
  for (const std::string& f : FastFlags()) argv.push_back(f);
  for (const std::string& f : extra_) argv.push_back(f);
  for (const std::string& f : node_flags_[i]) argv.push_back(f);
  argv.insert(argv.begin(), node_wrappers_[i].begin(), node_wrappers_[i].end());
  return argv;
}

void TestCluster::Connect(int i) {
  auto channel =
      grpc::CreateChannel(nodes_[i].client_address(), client_credentials_);
  absl::MutexLock lock(&stubs_mu_);
  if (session_stubs_[i] != nullptr) {
    retired_session_stubs_.push_back(std::move(session_stubs_[i]));
    retired_admin_stubs_.push_back(std::move(admin_stubs_[i]));
  }
  session_stubs_[i] = v1::SessionService::NewStub(channel);
  admin_stubs_[i] = v1::AdminService::NewStub(channel);
}

void TestCluster::Start(int i) {
  if (i < 0) {
    for (int k = 0; k < size(); ++k) {
      if (procs_[k] == nullptr) Start(k);
    }
    return;
  }
  // Stubs exist even when the node does not come up, so a test's calls
  // fail with an error (and its assertions say so) instead of crashing.
  Connect(i);
  auto p = Subprocess::Start(ArgsFor(i));
  if (!p.ok()) return;
  procs_[i] = std::move(*p);
  up_[i] = true;
  procs_[i]->WaitForLine("msg=listening", absl::Seconds(30));
}

int TestCluster::AddNode(std::vector<std::string> extra) {
  NodeSpec n;
  n.client_port = FreePort();
  n.peer_port = FreePort();
  n.node_id = absl::StrCat("n", size());
  n.data_dir = absl::StrCat(dir_, "/", n.node_id);
  nodes_.push_back(n);
  procs_.emplace_back();
  up_.emplace_back(false);
  {
    absl::MutexLock lock(&stubs_mu_);
    session_stubs_.emplace_back();
    admin_stubs_.emplace_back();
  }
  node_flags_.push_back(std::move(extra));
  node_wrappers_.emplace_back();
  Start(size() - 1);
  return size() - 1;
}

void TestCluster::Kill(int i) {
  if (procs_[i] == nullptr) return;
  // No SIGCONT first: SIGKILL ends a stopped process as it is, whereas a
  // woken one runs for a moment (its expired peer deadlines fire and it
  // answers clients UNAVAILABLE) before the kill lands.
  procs_[i]->Signal(SIGKILL);
  up_[i] = false;
  procs_[i]->Wait(absl::Seconds(10));
  procs_[i].reset();
}

void TestCluster::Terminate(int i) {
  if (procs_[i] == nullptr) return;
  procs_[i]->Signal(SIGTERM);
  up_[i] = false;
  procs_[i]->Wait(absl::Seconds(30));
  procs_[i].reset();
}

void TestCluster::Pause(int i) { procs_[i]->Signal(SIGSTOP); }
void TestCluster::Resume(int i) { procs_[i]->Signal(SIGCONT); }

void TestCluster::Wipe(int i) {
  std::error_code ec;
  std::filesystem::remove_all(nodes_[i].data_dir, ec);
}

v1::SessionService::Stub& TestCluster::sessions(int i) {
  absl::MutexLock lock(&stubs_mu_);
  return *session_stubs_[i];
}
v1::AdminService::Stub& TestCluster::admin(int i) {
  absl::MutexLock lock(&stubs_mu_);
  return *admin_stubs_[i];
}

absl::StatusOr<v1::ReadLocalResponse> TestCluster::ReadLocal(int i,
                                                            const std::string& id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  v1::ReadLocalRequest req;
  req.set_id(id);
  v1::ReadLocalResponse resp;
  grpc::Status s = admin(i).ReadLocal(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        s.error_message());
  }
  return resp;
}

absl::StatusOr<v1::ClusterStatusResponse> TestCluster::Status(int i) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  v1::ClusterStatusResponse resp;
  grpc::Status s = admin(i).ClusterStatus(&ctx, v1::ClusterStatusRequest(), &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        s.error_message());
  }
  return resp;
}

bool TestCluster::WaitForView(int i, absl::Duration timeout) {
  return PollUntil(
      [&] {
        auto st = Status(i);
        if (!st.ok()) return false;
        for (int k = 0; k < size(); ++k) {
          bool found = false;
          for (const auto& n : st->nodes()) {
            if (n.node_id() != nodes_[k].node_id) continue;
            found = true;
            const bool alive = n.liveness() == "ALIVE";
            if (alive != running(k)) return false;
          }
          if (!found && running(k)) return false;
        }
        return true;
      },
      timeout);
}

bool TestCluster::WaitForNoHints(absl::Duration timeout) {
  return PollUntil(
      [&] {
        for (int k = 0; k < size(); ++k) {
          if (!running(k)) continue;
          auto st = Status(k);
          if (!st.ok() || st->hints_pending() != 0) return false;
        }
        return true;
      },
      timeout);
}

}  // namespace sg::testutil

namespace sg::testutil {

bool TestCluster::WaitForAntiEntropyAfter(absl::Time since,
                                          absl::Duration timeout) {
  // Rounds are stamped in whole seconds: one strictly later second means a
  // round that began after `since`.
  const int64_t after = absl::ToUnixSeconds(since) + 1;
  return PollUntil(
      [&] {
        for (int k = 0; k < size(); ++k) {
          if (!running(k)) continue;
          auto st = Status(k);
          if (!st.ok()) return false;
          for (const auto& n : st->nodes()) {
            if (n.self() || n.liveness() != "ALIVE") continue;
            if (n.last_anti_entropy().seconds() < after) return false;
          }
        }
        return true;
      },
      timeout);
}

}  // namespace sg::testutil

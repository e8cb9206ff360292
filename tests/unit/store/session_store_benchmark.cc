// Store hot paths without gRPC: Get (with and without touch) and Create.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "server/store/session_store.h"

namespace sg::store {
namespace {

struct Fixture {
  std::string dir;
  std::unique_ptr<SessionStore> store;
  std::vector<std::string> ids;

  explicit Fixture(int sessions) {
    std::string tmpl = "/tmp/sg_store_bench_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) abort();
    dir = tmpl;
    StoreOptions options;
    options.data_dir = dir;
    auto opened = SessionStore::Open(options, Clock::Real());
    if (!opened.ok()) abort();
    store = std::move(*opened);
    for (int i = 0; i < sessions; ++i) {
      auto r = store->Create(
          CreateParams{std::string(512, 'x'), i % 2 ? "user" : "", {}});
      if (!r.ok()) abort();
      ids.push_back(r->id);
    }
  }
  ~Fixture() {
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

void BM_Get(benchmark::State& state) {
  static Fixture* fixture = nullptr;
  if (state.thread_index() == 0) fixture = new Fixture(10000);
  const bool touch = state.range(0) != 0;
  size_t i = state.thread_index() * 7919;
  for (auto _ : state) {
    auto r =
        fixture->store->Get(fixture->ids[i++ % fixture->ids.size()], touch);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete fixture;
    fixture = nullptr;
  }
}
BENCHMARK(BM_Get)->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();

void BM_Create(benchmark::State& state) {
  Fixture fixture(0);
  const std::string data(512, 'x');
  for (auto _ : state) {
    auto r = fixture.store->Create(CreateParams{data, "", {}});
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Create);

}  // namespace
}  // namespace sg::store

BENCHMARK_MAIN();

#!/usr/bin/env bash
# What a tight memory budget costs a create flood. The same node is run
# twice on a fresh data dir, once without a limit and once under
# --memory-limit (40MiB), and each time CONCURRENCY (64) callers create
# sessions of VALUE_SIZE (4 KiB, random data each) for DURATION (20s). For
# each run the script reports creates/s, p50 and p99, every failed call by
# status code, the node's peak RSS and peak anonymous RSS (what the budget
# judges; sampled every 100 ms), its memory level
# and evictions at the end, and how often RocksDB slowed or stopped writes
# (the "Stalling writes" / "Stopping writes" lines of its LOG). The last
# line is the ratio limited / unlimited, the goal of issue 10 (≥ 0.5 ×,
# p99 ≤ 50 ms).
#
#   BUILD_DIR=build bench/tight-budget.sh
#
# Env: BUILD_DIR (build), MEMORY_LIMIT (40MiB), DURATION (20s), WARMUP (2s),
# CONCURRENCY (64), VALUE_SIZE (4096), MODE (unary: the bench's --mode).
# Everything on 127.0.0.1, in a temp dir removed on exit; progress on
# stderr, the report on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
MEMORY_LIMIT=${MEMORY_LIMIT:-40MiB}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-64}
VALUE_SIZE=${VALUE_SIZE:-4096}
MODE=${MODE:-unary}

SERVER=$BUILD_DIR/server/sessiongrid-server
CTL=$BUILD_DIR/client/sessiongridctl
BENCH=$BUILD_DIR/bench/sessiongrid-bench

die() { echo "tight-budget: $*" >&2; exit 1; }
say() { echo "tight-budget: $*" >&2; }
for bin in "$SERVER" "$CTL" "$BENCH"; do
  [[ -x "$bin" ]] || die "missing $bin (build it, or set BUILD_DIR)"
done
command -v python3 >/dev/null || die "missing python3"
. "$ROOT/scripts/lib/loopback.sh"

TMP=$(mktemp -d -t sg-tight.XXXXXX)
SERVER_PID=0 SAMPLER_PID=0
stop_pid() {
  [ "$1" != 0 ] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop_pid "$SAMPLER_PID"
  stop_pid "$SERVER_PID"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# sample_rss PID FILE: VmRSS and RssAnon (KiB) every 100 ms until PID exits
# or the sampler is killed. The node's budget judges the anonymous part;
# the rest is the mapped code of the binary and its libraries.
sample_rss() {
  while [ -r "/proc/$1/status" ]; do
    awk '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} END {print r, a}' \
      "/proc/$1/status" >>"$2" 2>/dev/null || break
    sleep 0.1
  done
}

metric() {  # METRICS-FILE NAME: the sum of every sample of NAME
  awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $2} END {print s + 0}' "$1"
}

# run NAME [server flags...]: one node, one flood; leaves $TMP/NAME.json
# (the bench's line with the node's figures added).
run() {
  local name=$1
  shift
  local port mport data=$TMP/data-$name log=$TMP/$name.server.log
  port=$(free_port)
  mport=$(free_port)
  "$SERVER" --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$mport" \
    --data-dir "$data" --node-id tight "$@" >/dev/null 2>"$log" &
  SERVER_PID=$!
  poll_until 60 "$SERVER_PID" "$CTL" --server "127.0.0.1:$port" --timeout 2s health ||
    { tail -20 "$log" >&2; die "the $name node did not become healthy"; }
  sample_rss "$SERVER_PID" "$TMP/$name.rss" &
  SAMPLER_PID=$!
  say "$name: $CONCURRENCY callers create $VALUE_SIZE-byte sessions for $DURATION ..."
  "$BENCH" --target "127.0.0.1:$port" --op create --mode "$MODE" \
    --concurrency "$CONCURRENCY" --value-size "$VALUE_SIZE" --distinct-data \
    --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SERVER_PID" \
    >"$TMP/$name.bench.json" 2>"$TMP/$name.bench.err" ||
    { cat "$TMP/$name.bench.err" >&2; die "the $name bench failed"; }
  curl -sf "http://127.0.0.1:$mport/metrics" >"$TMP/$name.metrics" ||
    die "the $name node's /metrics did not answer"
  stop_pid "$SAMPLER_PID"
  SAMPLER_PID=0
  stop_pid "$SERVER_PID"
  SERVER_PID=0
  local stalled stopped
  stalled=$(cat "$data"/LOG* 2>/dev/null | grep -c 'Stalling writes' || true)
  stopped=$(cat "$data"/LOG* 2>/dev/null | grep -c 'Stopping writes' || true)
  python3 - "$TMP/$name.bench.json" "$TMP/$name.rss" "$name" \
    "$(metric "$TMP/$name.metrics" sg_server_memory_level)" \
    "$(metric "$TMP/$name.metrics" sg_server_evictions_total)" \
    "$stalled" "$stopped" >"$TMP/$name.json" <<'EOF'
import json, sys
bench, rss_file, name, level, evictions, stalled, stopped = sys.argv[1:]
j = json.load(open(bench))
rows = [l.split() for l in open(rss_file) if len(l.split()) == 2]
rss = [int(r) for r, _ in rows]
anon = [int(a) for _, a in rows]
j.update(name=name, peak_rss_kib=max(rss) if rss else None,
         peak_anon_kib=max(anon) if anon else None,
         memory_level=float(level), evictions=float(evictions),
         stall_lines=int(stalled), stop_lines=int(stopped))
print(json.dumps(j))
EOF
}

say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run unlimited
run limited --memory-limit "$MEMORY_LIMIT"
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$TMP/unlimited.json" "$TMP/limited.json" "$MEMORY_LIMIT" <<'EOF'
import json, sys
u, l = (json.load(open(p)) for p in sys.argv[1:3])
limit = sys.argv[3]
print(f"{'run':<22} {'creates/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7}"
      f" {'peak RSS (anon) MiB':>20} {'level':>6} {'evictions':>10} {'stall/stop lines':>17}")
for j, label in ((u, "unlimited"), (l, f"--memory-limit={limit}")):
    rss = (f"{j['peak_rss_kib'] / 1024:.1f} ({j['peak_anon_kib'] / 1024:.1f})"
           if j["peak_rss_kib"] else "n/a")
    print(f"{label:<22} {j['ops_per_sec']:>10,.0f} {j['p50_us'] / 1000:>7.2f}"
          f" {j['p99_us'] / 1000:>7.2f} {j['errors']:>7} {rss:>20}"
          f" {j['memory_level']:>6.0f} {j['evictions']:>10.0f}"
          f" {j['stall_lines']:>8}/{j['stop_lines']:<8}")
    if j["errors"]:
        print(f"  errors by code: {j.get('errors_by_code')}")
ratio = l["ops_per_sec"] / u["ops_per_sec"] if u["ops_per_sec"] else 0
print(f"limited / unlimited creates/s: {ratio:.2f}   (goal >= 0.5, p99 <= 50 ms:"
      f" {'met' if ratio >= 0.5 and l['p99_us'] <= 50000 else 'not met'})")
EOF

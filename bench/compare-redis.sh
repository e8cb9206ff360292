#!/usr/bin/env bash
# Measures SessionGrid against Redis on this machine, in one run, one load
# after the other, and prints the throughput ratios.
#
#   BUILD_DIR=build bench/compare-redis.sh
#
# Redis: AOF with fsync every second, no RDB snapshots, load from
# redis-benchmark (-c 50, 1 KiB values, GET and SET over 10000 keys).
# SessionGrid: one node with its data dir in a temp dir, load from
# sessiongrid-bench (--op create, then --op get, 50 calls in flight, 1 KiB).
# Everything listens on 127.0.0.1 only, on free ports; both servers are
# killed on exit.
#
# Environment: BUILD_DIR (build), CONCURRENCY (50), VALUE_SIZE (1024),
# DURATION (10s), REDIS_REQUESTS (500000), KEYS (10000).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ "$BUILD_DIR" == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
CONCURRENCY=${CONCURRENCY:-50}
VALUE_SIZE=${VALUE_SIZE:-1024}
DURATION=${DURATION:-10s}
REDIS_REQUESTS=${REDIS_REQUESTS:-500000}
KEYS=${KEYS:-10000}
BATCH=${BATCH:-128}

SERVER="$BUILD_DIR/server/sessiongrid-server"
CTL="$BUILD_DIR/client/sessiongridctl"
BENCH="$BUILD_DIR/bench/sessiongrid-bench"

die() { echo "compare-redis: $*" >&2; exit 1; }
# shellcheck source=bench/cpu.sh
source "$ROOT/bench/cpu.sh"

for bin in "$SERVER" "$CTL" "$BENCH"; do
  [[ -x "$bin" ]] || die "missing $bin (build it, or set BUILD_DIR)"
done
for tool in redis-server redis-cli redis-benchmark python3; do
  command -v "$tool" >/dev/null || die "missing $tool"
done

TMP=$(mktemp -d -t sg-compare-redis.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/../scripts/lib/loopback.sh"

# wait_ready NAME PID CMD...: polls CMD for up to 10 s while the process
# lives; returns 1 (after saying why) when it never succeeds.
wait_ready() {
  local name=$1 pid=$2 rc=0
  shift 2
  poll_until 10 "$pid" "$@" || rc=$?
  case $rc in
    0) return 0 ;;
    2) echo "compare-redis: $name exited during start-up" >&2 ;;
    *) echo "compare-redis: $name not ready after 10 s" >&2 ;;
  esac
  return 1
}

# --- Redis -----------------------------------------------------------------
REDIS_PORT=$(free_port)
mkdir -p "$TMP/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --appendonly yes \
  --appendfsync everysec --save "" --dir "$TMP/redis" \
  --logfile "$TMP/redis/redis.log" &
PIDS+=($!)
REDIS_PID=$!
redis_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping)" == PONG ]]; }
if ! wait_ready redis "$REDIS_PID" redis_ping; then
  tail -20 "$TMP/redis/redis.log" >&2
  exit 1
fi

# --- SessionGrid -------------------------------------------------------------
SG_PORT=$(free_port)
mkdir -p "$TMP/sg"
"$SERVER" --listen "127.0.0.1:$SG_PORT" --data-dir "$TMP/sg" \
  >"$TMP/sg.log" 2>&1 &
PIDS+=($!)
SG_PID=$!
if ! wait_ready sessiongrid "$SG_PID" \
  "$CTL" --server "127.0.0.1:$SG_PORT" --timeout 500ms health; then
  tail -20 "$TMP/sg.log" >&2
  exit 1
fi

echo "machine: $(nproc) cores; $(redis-server --version | cut -d' ' -f1-3)" >&2
echo "load: concurrency $CONCURRENCY, value $VALUE_SIZE B, $KEYS keys" >&2

# --- Load, one after the other ----------------------------------------------
# measure NAME PID CMD...: runs CMD and records the CPU time process PID (all
# threads) used meanwhile, in µs, in $TMP/cpu-NAME. For Redis; the session
# node's is taken by sessiongrid-bench --server-pid over its measured window.
measure() {
  local name=$1 pid=$2 before
  shift 2
  before=$(cpu_us "$pid")
  "$@"
  echo $(($(cpu_us "$pid") - before)) >"$TMP/cpu-$name"
}
echo "redis-benchmark: $REDIS_REQUESTS requests per test ..." >&2
for t in set get; do
  measure "redis-$t" "$REDIS_PID" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" \
    -c "$CONCURRENCY" -d "$VALUE_SIZE" -r "$KEYS" -t "$t" -n "$REDIS_REQUESTS" \
    --csv >"$TMP/redis-$t.csv"
done
{ cat "$TMP/redis-set.csv"; tail -n +2 "$TMP/redis-get.csv"; } >"$TMP/redis.csv"

sg_bench() {  # NAME OP [flags...]
  local name=$1 op=$2
  shift 2
  echo "sessiongrid-bench --op=$op $* for $DURATION ..." >&2
  "$BENCH" --target "127.0.0.1:$SG_PORT" --server-pid "$SG_PID" --op "$op" \
    --keys "$KEYS" --concurrency "$CONCURRENCY" --value-size "$VALUE_SIZE" \
    --duration "$DURATION" "$@" >"$TMP/$name.json"
}
sg_bench sg-create create
sg_bench sg-get get
# The batched path (what the edge uses): the same 50 calls in flight, sent
# through the client's SessionBatcher as BatchCreate/BatchGet RPCs.
sg_bench sg-create-batch create --mode batch --batch "$BATCH"
sg_bench sg-get-batch get --mode batch --batch "$BATCH"
# The streamed path: the same 50 calls in flight, multiplexed by the
# client's SessionPipeline on SessionService/Stream streams.
sg_bench sg-create-stream create --mode stream
sg_bench sg-get-stream get --mode stream

# --- Report ------------------------------------------------------------------
python3 - "$TMP/redis.csv" "$TMP/sg-create.json" "$TMP/sg-get.json" \
  "$TMP/sg-create-batch.json" "$TMP/sg-get-batch.json" "$TMP" "$REDIS_REQUESTS" \
  "$TMP/sg-create-stream.json" "$TMP/sg-get-stream.json" <<'EOF'
import csv, json, os, sys

def cpu(name):  # the server's CPU µs during run NAME
    return int(open(os.path.join(sys.argv[6], "cpu-" + name)).read())

redis = {}
with open(sys.argv[1]) as f:
    for row in csv.DictReader(f):
        redis[row["test"]] = row
create = json.load(open(sys.argv[2]))
get = json.load(open(sys.argv[3]))
create_b = json.load(open(sys.argv[4]))
get_b = json.load(open(sys.argv[5]))
create_s = json.load(open(sys.argv[8]))
get_s = json.load(open(sys.argv[9]))

def redis_row(name):
    r = redis[name]
    server_us = cpu("redis-" + name.lower()) / int(sys.argv[7])
    return (float(r["rps"]), float(r["p50_latency_ms"]),
            float(r["p99_latency_ms"]), 0, server_us, None)

def sg_row(j):
    return (j["ops_per_sec"], j["p50_us"] / 1000, j["p99_us"] / 1000,
            j["errors"], j["server_cpu_us_per_op"], j["client_cpu_us_per_op"])

def us(v):
    return "n/a" if v is None else f"{v:.1f}"

rows = [
    ("redis", "SET", redis_row("SET")),
    ("redis", "GET", redis_row("GET")),
    ("sessiongrid", "Create", sg_row(create)),
    ("sessiongrid", "Get", sg_row(get)),
    ("sg batched", "Create", sg_row(create_b)),
    ("sg batched", "Get", sg_row(get_b)),
    ("sg streamed", "Create", sg_row(create_s)),
    ("sg streamed", "Get", sg_row(get_s)),
]
# CPU per op (user + system µs): the server's, and the load generator's
# where it can be read (sessiongrid-bench; redis-benchmark's is not taken).
print(f"{'system':<13} {'op':<7} {'ops/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
      f" {'server us/op':>13} {'client us/op':>13}")
for system, op, (ops, p50, p99, errors, server_us, client_us) in rows:
    print(f"{system:<13} {op:<7} {ops:>10.0f} {p50:>8.3f} {p99:>8.3f} {errors:>7}"
          f" {us(server_us):>13} {us(client_us):>13}")
# Every failure, by status code: an unexplained error count is a finding.
for system, op, j in (("sessiongrid", "Create", create), ("sessiongrid", "Get", get),
                      ("sg batched", "Create", create_b), ("sg batched", "Get", get_b),
                      ("sg streamed", "Create", create_s), ("sg streamed", "Get", get_s)):
    if j["errors"]:
        print(f"  {system} {op} errors by code: {j.get('errors_by_code')}")
get_ratio = get["ops_per_sec"] / float(redis["GET"]["rps"])
set_ratio = create["ops_per_sec"] / float(redis["SET"]["rps"])
print(f"GET(sg)/GET(redis)    = {get_ratio:.2f}")
print(f"Create(sg)/SET(redis) = {set_ratio:.2f}")
print(f"batched GET(sg)/GET(redis)    = {get_b['ops_per_sec'] / float(redis['GET']['rps']):.2f}")
print(f"batched Create(sg)/SET(redis) = {create_b['ops_per_sec'] / float(redis['SET']['rps']):.2f}")
print(f"streamed GET(sg)/GET(redis)    = {get_s['ops_per_sec'] / float(redis['GET']['rps']):.2f}")
print(f"streamed Create(sg)/SET(redis) = {create_s['ops_per_sec'] / float(redis['SET']['rps']):.2f}")
print("raw sessiongrid-bench:")
for j in (create, get, create_b, get_b, create_s, get_s):
    print(json.dumps(j))
EOF

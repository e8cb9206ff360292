#!/usr/bin/env bash
# What a node costs as its sessions grow. One sessiongrid-server under
# --memory-limit (256MiB) is loaded to each size in SIZES (10k, 1M, 10M
# sessions of 1 KiB, each with its own random data so the disk figure is not
# flattered by compression), and at each size the script measures:
#   - Get throughput and p99, random ids over every preloaded session,
#   - Create throughput and p99, random data too (those creates stay: the
#     next size only tops up to its count, and Gets pick from the preloaded
#     ids, get_ids in the report),
#   - the server's RSS and CPU µs per call,
#   - bytes on disk per session (du of the data dir / live sessions),
#   - the time to reopen the store: SIGTERM, start again, until it listens.
# Redis (no persistence) holds the same number of 1 KiB values side by side,
# for its used_memory and RSS; where that would pass REDIS_MAX_MIB (half
# the machine's memory) Redis is not loaded, and its figure is extrapolated
# from its bytes per key at the largest size it held (the report says so).
#
#   BUILD_DIR=build bench/scale.sh
#
# Env: BUILD_DIR (build), SIZES ("10000 1000000 10000000"), DURATION (10s per
# measurement), CONCURRENCY (50), MEMORY_LIMIT (256MiB), VALUE_SIZE (1024),
# REDIS_MAX_MIB (half of MemTotal), PROFILE_DIR (none: after each size's
# measured Get, one more Get run under `perf record`, the node's flat
# profile kept as PROFILE_DIR/get-SIZE.txt). Everything on 127.0.0.1, in a temp dir
# removed on exit; progress on stderr, the report on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
SIZES=${SIZES:-10000 1000000 10000000}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-50}
MEMORY_LIMIT=${MEMORY_LIMIT:-256MiB}
VALUE_SIZE=${VALUE_SIZE:-1024}
REDIS_MAX_MIB=${REDIS_MAX_MIB:-$(awk '/^MemTotal:/ {print int($2 / 2048)}' /proc/meminfo)}

SERVER=$BUILD_DIR/server/sessiongrid-server
CTL=$BUILD_DIR/client/sessiongridctl
BENCH=$BUILD_DIR/bench/sessiongrid-bench

die() { echo "scale: $*" >&2; exit 1; }
say() { echo "scale: $*" >&2; }
for bin in "$SERVER" "$CTL" "$BENCH"; do
  [[ -x "$bin" ]] || die "missing $bin (build it, or set BUILD_DIR)"
done
for tool in redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || die "missing $tool"
done
. "$ROOT/scripts/lib/loopback.sh"
# shellcheck source=bench/profile.sh
. "$ROOT/bench/profile.sh"
if [[ -n "${PROFILE_DIR:-}" ]]; then
  command -v perf >/dev/null || die "missing perf (PROFILE_DIR needs it)"
  mkdir -p "$PROFILE_DIR"
fi

TMP=$(mktemp -d -t sg-scale.XXXXXX)
SERVER_PID=0 REDIS_PID=0
cleanup() {
  local pid
  for pid in "$SERVER_PID" "$REDIS_PID"; do
    [ "$pid" != 0 ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "$SERVER_PID" "$REDIS_PID"; do
    [ "$pid" != 0 ] && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
json() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

# --- The node ----------------------------------------------------------------
PORT=$(free_port)
# start_server: starts it (SERVER_PID) and sets START_MS to the time until
# its "listening" line: opening the store is most of it.
start_server() {
  local t0 log=$TMP/server.log.$((++STARTS))
  t0=$(date +%s%N)
  "$SERVER" --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" --node-id scale \
    --memory-limit "$MEMORY_LIMIT" >/dev/null 2>"$log" &
  SERVER_PID=$!
  poll_until 600 "$SERVER_PID" grep -q 'msg=listening' "$log" ||
    { tail -20 "$log" >&2; die "the server did not start"; }
  START_MS=$((($(date +%s%N) - t0) / 1000000))
}
stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || die "the server exited non-zero on SIGTERM"
  SERVER_PID=0
}
STARTS=0
start_server
node_stat() {  # node_stat FIELD: a NodeStats counter of the node
  "$CTL" --server "127.0.0.1:$PORT" stats |
    python3 -c 'import json, sys; print(int(json.load(sys.stdin)["stats"].get(sys.argv[1], 0)))' "$1"
}
live_sessions() { node_stat sessions; }

# --- Redis: memory only, so no persistence -----------------------------------
REDIS_PORT=$(free_port)
mkdir -p "$TMP/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  --dir "$TMP/redis" --logfile "$TMP/redis/redis.log" &
REDIS_PID=$!
poll_until 10 "$REDIS_PID" redis-cli -p "$REDIS_PORT" ping ||
  die "redis did not start"
redis_used() { redis-cli -p "$REDIS_PORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
# redis_load FROM TO: SET sess:FROM .. sess:TO-1 to VALUE_SIZE random bytes
# (hex of urandom), through redis-cli --pipe.
redis_load() {
  python3 - "$1" "$2" "$VALUE_SIZE" <<'PY' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
import os, sys
lo, hi, size = map(int, sys.argv[1:])
out = sys.stdout.buffer
for i in range(lo, hi):
    key = b"sess:%d" % i
    val = os.urandom(size // 2).hex().encode()
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(val), val))
PY
}

say "one node, --memory-limit=$MEMORY_LIMIT, $VALUE_SIZE-byte sessions, sizes: $SIZES; load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$TMP/ids"
REPORT=$TMP/report.tsv
printf 'target\tsessions\tget_ids\tget_ops\tget_p99_ms\tget_server_us\tcreate_ops\tcreate_p99_ms\trss_mib\tdisk_bytes_per_session\treopen_ms\tevictions\tredis_keys\tredis_used_mib\tredis_rss_mib\n' >"$REPORT"
redis_keys=0
redis_bytes_per_key=$((VALUE_SIZE + 90))
redis_note=""
for size in $SIZES; do
  have=$(live_sessions)
  add=$((size - have))
  if ((add > 0)); then
    say "loading $add sessions (to $size) ..."
    "$BENCH" --target "127.0.0.1:$PORT" --op get --keys "$add" --distinct-data \
      --value-size "$VALUE_SIZE" --concurrency "$CONCURRENCY" --ids-out "$TMP/ids.new" \
      --duration 100ms --warmup 0s >/dev/null 2>"$TMP/load.log" ||
      { tail -5 "$TMP/load.log" >&2; die "loading failed"; }
    cat "$TMP/ids.new" >>"$TMP/ids"
  fi
  # RocksDB's flushes and compactions from the load settle before measuring.
  "$CTL" --server "127.0.0.1:$PORT" stats >/dev/null
  say "$size: Get over $(wc -l <"$TMP/ids") ids for $DURATION ..."
  "$BENCH" --target "127.0.0.1:$PORT" --server-pid "$SERVER_PID" --op get \
    --ids-in "$TMP/ids" --concurrency "$CONCURRENCY" --duration "$DURATION" \
    >"$TMP/get.json" 2>"$TMP/get.log" || { cat "$TMP/get.log" >&2; die "get run failed"; }
  if [[ -n "${PROFILE_DIR:-}" ]]; then
    say "$size: profiling a Get run into $PROFILE_DIR/get-$size.txt ..."
    "$BENCH" --target "127.0.0.1:$PORT" --op get --ids-in "$TMP/ids" \
      --concurrency "$CONCURRENCY" --duration "$DURATION" >/dev/null 2>&1 &
    bench_pid=$!
    perf_profile "$PROFILE_DIR/get-$size" "$((${DURATION%s} - 1))" "$SERVER_PID"
    wait "$bench_pid" || die "the profiled get run failed"
  fi
  say "$size: Create for $DURATION ..."
  "$BENCH" --target "127.0.0.1:$PORT" --server-pid "$SERVER_PID" --op create \
    --distinct-data --value-size "$VALUE_SIZE" --concurrency "$CONCURRENCY" --duration "$DURATION" \
    >"$TMP/create.json" 2>"$TMP/create.log" || { cat "$TMP/create.log" >&2; die "create run failed"; }
  for f in get create; do
    errors=$(json "$TMP/$f.json" errors)
    ((errors == 0)) || say "$size: $f saw $errors errors: $(json "$TMP/$f.json" errors_by_code)"
  done
  sessions=$(live_sessions)
  rss=$(($(rss_kib "$SERVER_PID") / 1024))
  evictions=$(node_stat evictions)  # during this size's load and runs (counters restart with the node)
  stop_server
  disk=$(du -sb "$TMP/data" | cut -f1)
  start_server
  reopen=$START_MS
  say "$size: $sessions live sessions, RSS $rss MiB, $((disk / sessions)) B on disk each, reopened in $reopen ms, $evictions evicted meanwhile"

  # Redis with as many values, while it fits.
  # Its size there: bytes per key as measured at the last size (a guess
  # before the first).
  want_mib=$(((size * redis_bytes_per_key) >> 20))
  if ((want_mib <= REDIS_MAX_MIB)); then
    if ((size > redis_keys)); then
      say "$size: Redis: loading $((size - redis_keys)) values ..."
      redis_load "$redis_keys" "$size"
      redis_keys=$size
    fi
    r_used=$(($(redis_used) >> 20))
    r_rss=$(($(rss_kib "$REDIS_PID") / 1024))
    redis_bytes_per_key=$(($(redis_used) / redis_keys))
  else
    r_used="~$(((size * redis_bytes_per_key) >> 20))"
    r_rss=n/a
    redis_note="Redis was not loaded to $size values (about $want_mib MiB, past REDIS_MAX_MIB=$REDIS_MAX_MIB); its used_memory there is extrapolated at $redis_bytes_per_key B/key, measured at $redis_keys keys."
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$sessions" "$(wc -l <"$TMP/ids")" \
    "$(json "$TMP/get.json" ops_per_sec)" "$(python3 -c "print(round($(json "$TMP/get.json" p99_us) / 1000, 2))")" \
    "$(json "$TMP/get.json" server_cpu_us_per_op)" \
    "$(json "$TMP/create.json" ops_per_sec)" "$(python3 -c "print(round($(json "$TMP/create.json" p99_us) / 1000, 2))")" \
    "$rss" "$((disk / sessions))" "$reopen" "$evictions" "$redis_keys" "$r_used" "$r_rss" >>"$REPORT"
done

echo
column -t -s $'\t' "$REPORT"
python3 - "$REPORT" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
first, last = rows[0], rows[-1]
print()
print(f"Get at {last['target']} / Get at {first['target']}: "
      f"{float(last['get_ops']) / float(first['get_ops']):.2f}   (goal >= 0.8)")
used = last["redis_used_mib"].lstrip("~")
print(f"node RSS at {last['target']} / Redis used_memory there: "
      f"{float(last['rss_mib']) / float(used):.3f}   (goal <= 0.05)"
      + ("  [Redis figure extrapolated]" if last["redis_used_mib"].startswith("~") else ""))
PY
[ -n "$redis_note" ] && echo "$redis_note"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end"

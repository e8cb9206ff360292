#!/usr/bin/env bash
# Instructions per session call, the load-independent figure beside the
# ratios of compare-redis.sh: one sessiongrid-server node runs under
# valgrind's callgrind, and sessiongrid-bench drives each path (unary, batch,
# stream) with Get and Create in turn. Callgrind instruments only while a run is
# measured (callgrind_control turns it on and off), so start-up and the
# Get runs' preload are not in the figures.
#
#   BUILD_DIR=build bench/instructions.sh
#
# Prints one row per path and op: calls answered, errors, and the node's
# instructions per call (every thread: gRPC, the service, RocksDB). A
# second pass, with CLIENT=1, runs the load generator under callgrind
# instead (against a native node) for the client library's instructions
# per call. Valgrind runs code ~50x slower, so rates here mean nothing;
# only the counts do.
#
# Environment: BUILD_DIR (build), DURATION (10s per run, in seconds),
# CONCURRENCY (50), VALUE_SIZE (1024), KEYS (2000), CLIENT (0), PROFILE_DIR
# (none: a directory that keeps each run's callgrind dump, named after the
# run, for `callgrind_annotate --inclusive=no PROFILE_DIR/stream-get`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ "$BUILD_DIR" == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-50}
VALUE_SIZE=${VALUE_SIZE:-1024}
KEYS=${KEYS:-2000}
CLIENT=${CLIENT:-0}

SERVER="$BUILD_DIR/server/sessiongrid-server"
CTL="$BUILD_DIR/client/sessiongridctl"
BENCH="$BUILD_DIR/bench/sessiongrid-bench"

die() { echo "instructions: $*" >&2; exit 1; }
for bin in "$SERVER" "$CTL" "$BENCH"; do
  [[ -x "$bin" ]] || die "missing $bin (build it, or set BUILD_DIR)"
done
for tool in valgrind callgrind_control python3; do
  command -v "$tool" >/dev/null || die "missing $tool (scripts/setup installs it)"
done

TMP=$(mktemp -d -t sg-instructions.XXXXXX)
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$ROOT/scripts/lib/loopback.sh"

# callgrind_total FILE: the instructions (Ir) a callgrind dump counted.
callgrind_total() {
  sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$1" | tail -1
}

PORT=$(free_port)
mkdir -p "$TMP/data"
server=("$SERVER" --listen "127.0.0.1:$PORT" --data-dir "$TMP/data")
if [[ "$CLIENT" == 0 ]]; then
  # Counting starts off; each run below turns it on for its own window.
  valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$TMP/server.%p" "${server[@]}" \
    >"$TMP/server.log" 2>&1 &
else
  "${server[@]}" >"$TMP/server.log" 2>&1 &
fi
SERVER_PID=$!
# Under valgrind the node takes a while to start: up to 120 s.
if ! poll_until 120 "$SERVER_PID" \
  "$CTL" --server "127.0.0.1:$PORT" --timeout 2s health; then
  tail -20 "$TMP/server.log" >&2
  die "the node did not become healthy"
fi

bench() {  # OUT-JSON [flags...]
  local out=$1
  shift
  "$BENCH" --target "127.0.0.1:$PORT" --concurrency "$CONCURRENCY" \
    --value-size "$VALUE_SIZE" --timeout 60s "$@" >"$out"
}

# The Get runs read the same preloaded sessions (not counted).
echo "instructions: preloading $KEYS sessions ..." >&2
bench "$TMP/preload.json" --op get --keys "$KEYS" --duration 1s \
  --warmup 0s --ids-out "$TMP/ids"

results=()
# Every Get run before any Create run: the counts cover every thread, so a
# Get run after a Create run would carry that run's flush and compaction.
for op in get create; do
  for mode in unary batch stream; do
    name=$mode-$op
    flags=(--op "$op" --mode "$mode" --duration "$DURATION" --warmup 0s)
    [[ "$op" == get ]] && flags+=(--ids-in "$TMP/ids")
    echo "instructions: $name for $DURATION ..." >&2
    if [[ "$CLIENT" == 0 ]]; then
      callgrind_control --zero "$SERVER_PID" >/dev/null 2>&1
      callgrind_control --instr=on "$SERVER_PID" >/dev/null 2>&1
      bench "$TMP/$name.json" "${flags[@]}" 2>"$TMP/$name.err"
      callgrind_control --instr=off "$SERVER_PID" >/dev/null 2>&1
      rm -f "$TMP"/server."$SERVER_PID".*
      callgrind_control --dump="$name" "$SERVER_PID" >/dev/null 2>&1
      dump=$(ls "$TMP"/server."$SERVER_PID".* | tail -1)
      [[ -n "${PROFILE_DIR:-}" ]] && mkdir -p "$PROFILE_DIR" && cp "$dump" "$PROFILE_DIR/$name"
    else
      # The whole process is counted, start-up included: two runs, of
      # DURATION and twice that, and the difference is the calls' own cost.
      for run in short long; do
        d=$DURATION
        [[ "$run" == long ]] && d=$(python3 -c "print(str(2 * float('${DURATION%s}')) + 's')")
        valgrind --tool=callgrind --callgrind-out-file="$TMP/client-$name-$run" \
          "$BENCH" --target "127.0.0.1:$PORT" --concurrency "$CONCURRENCY" \
          --value-size "$VALUE_SIZE" --timeout 60s "${flags[@]}" --duration "$d" \
          >"$TMP/$name-$run.json" 2>"$TMP/$name-$run.err"
      done
      python3 - "$TMP/$name" "$(callgrind_total "$TMP/client-$name-short")" \
        "$(callgrind_total "$TMP/client-$name-long")" >"$TMP/$name.delta" <<'EOF2'
import json, sys
base, short_ir, long_ir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s, l = (json.load(open(f"{base}-{r}.json")) for r in ("short", "long"))
calls = lambda j: j["ops"] + j["errors"]
# The long run's figures, with the instructions and calls of the short one
# taken away: what the extra calls cost.
l["calls"] = calls(l) - calls(s)
l["run_calls"] = calls(l)  # for calls per RPC, with the long run's RPCs
l["errors"] += s["errors"]
json.dump(l, open(f"{base}.json", "w"))
print(long_ir - short_ir)
EOF2
      cp "$TMP/$name-long.err" "$TMP/$name.err"
      [[ -n "${PROFILE_DIR:-}" ]] && mkdir -p "$PROFILE_DIR" &&
        cp "$TMP/client-$name-long" "$PROFILE_DIR/$name"
      dump=
    fi
    if [[ -n "$dump" ]]; then
      results+=("$name" "$TMP/$name.json" "$(callgrind_total "$dump")")
    else
      results+=("$name" "$TMP/$name.json" "$(cat "$TMP/$name.delta")")
    fi
  done
done

python3 - "$CLIENT" "${results[@]}" <<'EOF'
import json, re, sys
who = "client" if sys.argv[1] != "0" else "node"
args = sys.argv[2:]
# Per-message costs are shared by the calls in a message, so the figure
# depends on how many calls each RPC or stream message carried: shown too.
print(f"{'path':<7} {'op':<7} {'calls':>8} {'errors':>7} {'calls/RPC':>10}"
      f" {who + ' instructions/call':>26}")
for i in range(0, len(args), 3):
    name, path, total = args[i], args[i + 1], int(args[i + 2] or 0)
    j = json.load(open(path))
    mode, op = name.split("-")
    # Every call the window counted, answered or failed, cost instructions.
    calls = j.get("calls", j["ops"] + j["errors"])
    per = f"{total / calls:,.0f}" if calls else "n/a"
    # sessiongrid-bench's stderr: "batched: N RPCs", "streamed: C calls in
    # M messages" (warm-up included; there is none here).
    err = open(path[:-len(".json")] + ".err").read()
    rpcs = re.search(r"(\d+) RPCs", err) or re.search(r"in (\d+) messages", err)
    per_rpc = f"{j.get('run_calls', calls) / int(rpcs.group(1)):.1f}" if rpcs and int(rpcs.group(1)) else "1.0"
    print(f"{mode:<7} {op:<7} {calls:>8} {j['errors']:>7} {per_rpc:>10} {per:>26}")
    if j["errors"]:
        print(f"        errors by code: {j.get('errors_by_code')}")
EOF

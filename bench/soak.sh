#!/usr/bin/env bash
# Soak: one sessiongrid-server with a memory budget under 30 minutes of mixed
# load (sessiongrid-bench --op=mix: 70% get, 15% touch, 10% update, 5%
# create; sessions live 60 s), RSS / sessions / memory level sampled every
# second to a CSV, then plotted next to the seed's reported growth.
#
# Usage: bench/soak.sh [--duration 30m] [--memory-limit 256MiB]
#                      [--concurrency 16] [--keys 10000] [--out bench]
# Env: BUILD_DIR (default build). Writes OUT/soak.csv, OUT/soak.png,
# OUT/soak.summary.csv and OUT/soak.final-stats.json. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=30m
LIMIT=256MiB
CONCURRENCY=16
KEYS=10000
OUT=bench
WARMUP_S=300
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --memory-limit) LIMIT=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --keys) KEYS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --warmup-seconds) WARMUP_S=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

BUILD_DIR=${BUILD_DIR:-build}
SERVER=$BUILD_DIR/server/sessiongrid-server
BENCH=$BUILD_DIR/bench/sessiongrid-bench
CTL=$BUILD_DIR/client/sessiongridctl
for bin in "$SERVER" "$BENCH" "$CTL"; do
  [ -x "$bin" ] || { echo "soak.sh: $bin missing (scripts/build first)" >&2; exit 1; }
done
# Debian's python3 (python3-matplotlib), not a pyenv one.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import matplotlib' 2>/dev/null ||
  { echo "soak.sh: python3-matplotlib missing (scripts/setup)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/sg-soak-XXXXXX)
SERVER_PID=""
SAMPLER_PID=""
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The binaries are copied so that a rebuild during the soak cannot touch them.
cp "$SERVER" "$BENCH" "$CTL" "$WORK/"
: >"$WORK/server.log"  # exists before the poll below reads it
nice -n 10 "$WORK/sessiongrid-server" --listen=127.0.0.1:0 --data-dir="$WORK/data" \
  --memory-limit="$LIMIT" --default-ttl=60s --sweep-interval=5s \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

ADDR=""
for _ in $(seq 1 300); do
  ADDR=$(sed -n 's/.*msg=listening address=\([^ ]*\).*/\1/p' "$WORK/server.log" | head -1)
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "soak.sh: server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
grep 'msg="memory budget"' "$WORK/server.log" >&2 || true

mkdir -p "$OUT"
"$PY" bench/soak_sample.py --pid "$SERVER_PID" --ctl "$WORK/sessiongridctl" \
  --target "$ADDR" --out "$OUT/soak.csv" &
SAMPLER_PID=$!

echo "soak.sh: $DURATION of mixed load on $ADDR (limit $LIMIT), sampling to $OUT/soak.csv" >&2
nice -n 10 "$WORK/sessiongrid-bench" --target "$ADDR" --op mix --duration "$DURATION" \
  --warmup 0s --concurrency "$CONCURRENCY" --keys "$KEYS" \
  >"$WORK/bench.json" 2>"$WORK/bench.err" || true
cat "$WORK/bench.json" >&2
tail -5 "$WORK/bench.err" >&2 || true

kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
"$WORK/sessiongridctl" --server "$ADDR" stats >"$OUT/soak.final-stats.json" || true
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""
grep -c 'msg="memory level changed"' "$WORK/server.log" | sed 's/^/soak.sh: level changes logged: /' >&2 || true

LIMIT_BYTES=$("$PY" - "$LIMIT" <<'PY'
import re, sys
m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?", sys.argv[1].strip(), re.I)
scale = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
print(int(float(m.group(1)) * scale[(m.group(2) or "")[:1].upper()]) if m else 0)
PY
)
"$PY" bench/soak_plot.py --csv "$OUT/soak.csv" --png "$OUT/soak.png" \
  --summary "$OUT/soak.summary.csv" --warmup "$WARMUP_S" \
  --limit-bytes "$LIMIT_BYTES" --bench-json "$WORK/bench.json"
# Failed calls by code: NOT_FOUND (a session that expired under the mix) is
# expected; anything else is a finding.
grep -E '^(bench_errors|rss_spread)' "$OUT/soak.summary.csv" | sed 's/^/soak.sh: /' >&2

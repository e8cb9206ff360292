#!/usr/bin/env bash
# The cost of replication, in one run on this machine: Create and Get
# through one node alone, then through a three-node cluster (N=3, W=2, R=1)
# with the load spread over the three — all on the same cores, so this is
# what replication costs, not what scale-out gains. Then two repair
# figures: the time a returning node takes to receive HINTS hints, and
# what one anti-entropy round costs between two identical replicas of
# AE_SESSIONS sessions (time and bytes on the wire, from the node's log).
#
#   BUILD_DIR=build bench/compare-cluster.sh
#
# Environment: BUILD_DIR (build), CONCURRENCY (50), VALUE_SIZE (1024),
# DURATION (10s), KEYS (10000), HINTS (100000), AE_SESSIONS (1000000;
# 0 skips that part). Everything on 127.0.0.1, free ports, killed on exit.
# Errors are reported by status code; any error is printed, never hidden.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ "$BUILD_DIR" == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
CONCURRENCY=${CONCURRENCY:-50}
VALUE_SIZE=${VALUE_SIZE:-1024}
DURATION=${DURATION:-10s}
KEYS=${KEYS:-10000}
HINTS=${HINTS:-100000}
AE_SESSIONS=${AE_SESSIONS:-1000000}

SERVER="$BUILD_DIR/server/sessiongrid-server"
CTL="$BUILD_DIR/client/sessiongridctl"
BENCH="$BUILD_DIR/bench/sessiongrid-bench"
for bin in "$SERVER" "$CTL" "$BENCH"; do
  [[ -x "$bin" ]] || { echo "compare-cluster: missing $bin" >&2; exit 1; }
done

TMP=$(mktemp -d -t sg-compare-cluster.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. "$ROOT/scripts/lib/loopback.sh"

say() { echo "compare-cluster: $*" >&2; }
healthy() { "$CTL" --server "$1" --timeout 500ms health >/dev/null 2>&1; }

# launch_node NAME CLIENT_PORT [FLAGS...]: starts a node in the background.
launch_node() {
  local name=$1 port=$2
  shift 2
  mkdir -p "$TMP/$name"
  "$SERVER" --listen "127.0.0.1:$port" --data-dir "$TMP/$name" --node-id "$name" \
    "$@" >>"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}
# wait_node NAME CLIENT_PORT: until SERVING (a cluster node: once it knows
# W members).
wait_node() {
  poll_until 20 "$(eval echo \$PID_$1)" healthy "127.0.0.1:$2" || {
    say "$1 did not start"; tail -20 "$TMP/$1.log" >&2; exit 1; }
}
start_node() { launch_node "$@"; wait_node "$1" "$2"; }

# bench LABEL TARGET ARGS...: one sessiongrid-bench run; JSON to $TMP/LABEL.json,
# errors by code to $TMP/LABEL.err.
bench() {
  local label=$1 target=$2
  shift 2
  say "sessiongrid-bench $label ..."
  "$BENCH" --target "$target" --concurrency "$CONCURRENCY" \
    --value-size "$VALUE_SIZE" --duration "$DURATION" "$@" \
    >"$TMP/$label.json" 2>"$TMP/$label.err"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start" >&2

# --- One node ------------------------------------------------------------------
P1=$(free_port)
start_node single "$P1"
bench single-create "127.0.0.1:$P1" --op create
bench single-get "127.0.0.1:$P1" --op get --keys "$KEYS"
kill -TERM "$PID_single"; wait "$PID_single" 2>/dev/null || true

# --- Three nodes, N=3 W=2 R=1 ------------------------------------------------------
C=() PEERS=()
for i in 1 2 3; do C+=("$(free_port)"); PEERS+=("127.0.0.1:$(free_port)"); done
PEER_LIST=$(IFS=,; echo "${PEERS[*]}")
TARGETS="127.0.0.1:${C[0]},127.0.0.1:${C[1]},127.0.0.1:${C[2]}"
CLUSTER_FLAGS=(--peers "$PEER_LIST" --heartbeat-interval 200ms --dead-after 2s)
for i in 0 1 2; do
  launch_node "n$i" "${C[i]}" --peer-listen "${PEERS[i]}" "${CLUSTER_FLAGS[@]}"
done
for i in 0 1 2; do wait_node "n$i" "${C[i]}"; done
cluster_alive() {
  [[ $("$CTL" --server "127.0.0.1:${C[0]}" status | grep -c ' ALIVE ') -eq 3 ]]
}
poll_until 20 "$PID_n0" cluster_alive || { say "cluster did not form"; exit 1; }
bench cluster-create "$TARGETS" --op create
bench cluster-get "$TARGETS" --op get --keys "$KEYS"

# --- Hints: n2 away while HINTS sessions are written, then back --------------------
kill -9 "$PID_n2"; wait "$PID_n2" 2>/dev/null || true
two_alive() { [[ $("$CTL" --server "127.0.0.1:${C[0]}" status | grep -c ' DEAD ') -eq 1 ]]; }
poll_until 20 "$PID_n0" two_alive || { say "n2 not seen dead"; exit 1; }
say "writing $HINTS sessions while n2 is down ..."
"$BENCH" --target "127.0.0.1:${C[0]},127.0.0.1:${C[1]}" --op get --keys "$HINTS" \
  --concurrency "$CONCURRENCY" --value-size "$VALUE_SIZE" --duration 1s \
  >"$TMP/hint-load.json" 2>"$TMP/hint-load.err"
hints_pending() {
  "$CTL" --server "127.0.0.1:$1" status --json | python3 -c \
    'import json,sys; print(int(json.load(sys.stdin).get("hintsPending", 0)))'
}
H0=$(hints_pending "${C[0]}"); H1=$(hints_pending "${C[1]}")
say "hints pending: n0 $H0, n1 $H1; restarting n2"
T0=$(date +%s.%N)
start_node n2 "${C[2]}" --peer-listen "${PEERS[2]}" "${CLUSTER_FLAGS[@]}"
no_hints() {
  [[ $(hints_pending "${C[0]}") -eq 0 && $(hints_pending "${C[1]}") -eq 0 ]]
}
poll_until 600 "$PID_n2" no_hints || { say "hints did not drain in 600 s"; exit 1; }
T1=$(date +%s.%N)
N2_SESSIONS=$("$CTL" --server "127.0.0.1:${C[2]}" stats | python3 -c \
  'import json,sys; print(int(json.load(sys.stdin)["stats"]["sessions"]))')
for i in 0 1 2; do kill -TERM "$(eval echo \$PID_n$i)" 2>/dev/null || true; done
for i in 0 1 2; do wait "$(eval echo \$PID_n$i)" 2>/dev/null || true; done

# --- Anti-entropy between two identical replicas ---------------------------------
AE_LINE="skipped (AE_SESSIONS=0)"
if [[ "$AE_SESSIONS" -gt 0 ]]; then
  A=("$(free_port)" "$(free_port)") AP=("127.0.0.1:$(free_port)" "127.0.0.1:$(free_port)")
  AE_PEERS="${AP[0]},${AP[1]}"
  for i in 0 1; do
    launch_node "ae$i" "${A[i]}" --peer-listen "${AP[i]}" --peers "$AE_PEERS" \
      --replication-factor 2 --write-quorum 2 --read-quorum 1 \
      --anti-entropy-interval 24h --anti-entropy-rate 0 --tombstone-ttl 30h
  done
  for i in 0 1; do wait_node "ae$i" "${A[i]}"; done
  say "loading $AE_SESSIONS sessions into both replicas (W=2) ..."
  "$BENCH" --target "127.0.0.1:${A[0]}" --op get --keys "$AE_SESSIONS" \
    --concurrency "$CONCURRENCY" --value-size "$VALUE_SIZE" --duration 1s \
    >"$TMP/ae-load.json" 2>"$TMP/ae-load.err"
  # Restart one replica with a short interval: its first round compares
  # the two full, identical replicas.
  kill -TERM "$PID_ae0"; wait "$PID_ae0" 2>/dev/null || true
  : >"$TMP/ae0.log"
  start_node ae0 "${A[0]}" --peer-listen "${AP[0]}" --peers "$AE_PEERS" \
    --replication-factor 2 --write-quorum 2 --read-quorum 1 \
    --anti-entropy-interval 3s --anti-entropy-rate 0 --tombstone-ttl 30h
  ae_done() { grep -q 'msg="anti-entropy round"' "$TMP/ae0.log"; }
  poll_until 600 "$PID_ae0" ae_done || { say "no anti-entropy round"; exit 1; }
  AE_LINE=$(grep -m1 'msg="anti-entropy round"' "$TMP/ae0.log")
fi

# --- Report ------------------------------------------------------------------------
python3 - "$TMP" "$H0" "$H1" "$T0" "$T1" "$N2_SESSIONS" "$AE_LINE" <<'EOF'
import json, sys, os
tmp, h0, h1, t0, t1, n2_sessions, ae_line = sys.argv[1:]
def load(label):
    j = json.load(open(os.path.join(tmp, label + ".json")))
    err = open(os.path.join(tmp, label + ".err")).read().strip()
    return j, err
print(f"{'setup':<22} {'op':<7} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
rows = {}
for setup, prefix in (("1 node", "single"), ("3 nodes N=3 W=2 R=1", "cluster")):
    for op in ("create", "get"):
        j, err = load(f"{prefix}-{op}")
        rows[(prefix, op)] = j
        print(f"{setup:<22} {op:<7} {j['ops_per_sec']:>9.0f} {j['p50_us']/1000:>8.3f} "
              f"{j['p99_us']/1000:>8.3f} {j['errors']:>7}")
        if j["errors"]:
            print(f"  errors by code: {err}")
for op in ("create", "get"):
    r = rows[("cluster", op)]["ops_per_sec"] / rows[("single", op)]["ops_per_sec"]
    print(f"{op}: 3 nodes / 1 node = {r:.2f}")
print(f"hints: n0 {h0} + n1 {h1} pending; the returned node had {n2_sessions} "
      f"sessions {float(t1) - float(t0):.1f} s after its restart began (all hints replayed)")
print(f"anti-entropy, two identical replicas: {ae_line}")
EOF
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end" >&2

#!/usr/bin/env bash
# Runs the Jest E2E suites against the real binaries on loopback: a session
# server, the demo app and sessiongrid-edge in front of it, all on free
# ports in a temp dir. Builds nothing (scripts/build does); installs the
# npm test tools with `npm ci` if node_modules is missing or stale.
#
# Usage: tests/e2e/run.sh BUILD_DIR [jest args...]
#   e.g. tests/e2e/run.sh build session-bypass
# Binaries default to BUILD_DIR's layout; SG_SERVER_BIN, SG_EDGE_BIN,
# SG_DEMO_BIN and SG_CTL_BIN override them. E2E_EDGE_FLAGS adds edge flags
# (--classifier-mode=shadow switches the classifier off), E2E_DEMO_FLAGS
# demo app flags (--session-on-every-request: the seed's broken app).
# Exits with Jest's exit code.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [jest args...]" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
shift

SERVER_BIN=${SG_SERVER_BIN:-$BUILD_DIR/server/sessiongrid-server}
EDGE_BIN=${SG_EDGE_BIN:-$BUILD_DIR/edge/sessiongrid-edge}
DEMO_BIN=${SG_DEMO_BIN:-$BUILD_DIR/examples/demo-app/sessiongrid-demo-app}
CTL_BIN=${SG_CTL_BIN:-$BUILD_DIR/client/sessiongridctl}
for var in SERVER_BIN EDGE_BIN DEMO_BIN CTL_BIN; do
  if [ ! -x "${!var}" ]; then
    echo "e2e: missing binary ${!var} (build it first: scripts/build)" >&2
    exit 1
  fi
  # Absolute: the tests run from another directory.
  printf -v "$var" '%s' "$(readlink -f "${!var}")"
done
for tool in node npm curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "e2e: $tool not found (scripts/setup installs it)" >&2
    exit 1
  fi
done

# npm ci when node_modules is absent or older than the lock file.
if [ ! -f "$HERE/node_modules/.package-lock.json" ] ||
   [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sg-e2e.XXXXXX")
pids=()
names=()
status=1

cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # Bounded wait for a clean exit, then SIGKILL whatever is left.
  for _ in $(seq 1 100); do
    alive=0
    for pid in "${pids[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$status" != 0 ]; then
    for name in "${names[@]}"; do
      echo "---- e2e: last lines of $name.log ----" >&2
      tail -n 25 "$WORK/$name.log" >&2 || true
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'status=130; exit 130' INT TERM

# start NAME CMD...: runs CMD in the background, output to $WORK/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

# wait_listening NAME: the "msg=listening" line of NAME's log, waiting at
# most 20 s and failing early if the process died.
wait_listening() {
  local name=$1 pid=${pids[-1]} line
  for _ in $(seq 1 200); do
    line=$(grep -m1 'msg=listening' "$WORK/$name.log" || true)
    if [ -n "$line" ]; then
      echo "$line"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "e2e: $name exited before listening" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "e2e: $name did not log msg=listening within 20 s" >&2
  return 1
}

# field KEY LINE: the value of KEY=VALUE in a logfmt line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

start server "$SERVER_BIN" --listen=127.0.0.1:0 --data-dir="$WORK/data" \
  --node-id=e2e
line=$(wait_listening server)
SERVER_ADDR=$(field address "$line")

# shellcheck disable=SC2086
start demo-app "$DEMO_BIN" --listen=127.0.0.1:0 ${E2E_DEMO_FLAGS:-}
line=$(wait_listening demo-app)
DEMO_ADDR=$(field address "$line")

# Two keys: the first signs, both verify (the rotation test uses the second).
for _ in 1 2; do
  od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
  echo
done >"$WORK/cookie-secrets"

# Loopback is a trusted proxy, so tests can present public client
# addresses in X-Forwarded-For; --production enables the seed's rule 10.
# shellcheck disable=SC2086
start edge "$EDGE_BIN" \
  --listen=127.0.0.1:0 --admin-listen=127.0.0.1:0 \
  --upstream="http://$DEMO_ADDR" --session-service="$SERVER_ADDR" \
  --cookie-secret-file="$WORK/cookie-secrets" \
  --trusted-proxies=127.0.0.1/32,::1/128 --production \
  --drain-delay=0s ${E2E_EDGE_FLAGS:-}
line=$(wait_listening edge)
EDGE_ADDR=$(field address "$line")
ADMIN_ADDR=$(field admin "$line")

# Ready when the edge says so and a request reaches the app through it.
ready=0
for _ in $(seq 1 200); do
  if curl -sf -o /dev/null "http://$ADMIN_ADDR/readyz" &&
     curl -sf -o /dev/null -A e2e-readiness-probe "http://$EDGE_ADDR/api/health"; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "e2e: the edge did not become ready within 20 s" >&2
  exit 1
fi
echo "e2e: server $SERVER_ADDR, demo app $DEMO_ADDR, edge $EDGE_ADDR (admin $ADMIN_ADDR)" >&2

set +e
(
  cd "$HERE" &&
    TEST_URL="http://$EDGE_ADDR" ADMIN_URL="http://$ADMIN_ADDR" \
    DEMO_URL="http://$DEMO_ADDR" \
    COOKIE_SECRET_FILE="$WORK/cookie-secrets" \
    SG_CTL="$CTL_BIN" SG_SESSION_SERVICE="$SERVER_ADDR" \
    npx --no -- jest --ci "$@"
)
status=$?
set -e
exit "$status"

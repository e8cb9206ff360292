#!/usr/bin/env bash
# Stack against stack: the same small Express app (the demo app: a
# logged-in page view reads and increments a counter) as its users run it
# today, and with SessionGrid, in one run on this machine:
#
#   (A) nginx proxy_pass → Express + express-session + connect-redis → Redis
#   (B) sessiongrid-edge → the same Express app with edgeSession() →
#       sessiongrid-server
#
#   BUILD_DIR=build bench/compare-express.sh
#
# For each stack: USERS distinct users log in through its front; then wrk
# (-t2 -c64 -d DURATION --latency) requests GET /api/user/counter, each
# request with one of the users' cookies in turn (a read and a write of the
# session per request); then a bot flood of BOTS requests (Googlebot
# User-Agent, no cookie) to GET /api/counter, the same handler, which on
# express-session creates a session per request. Reported per stack:
# logged-in req/s, p50, p99, every response by status code and wrk's socket
# errors; for the flood, sessions created and the memory the store grew by
# (Redis used_memory and redis-server RSS; sessiongrid-server RSS). The
# ratio B/A of logged-in req/s is the figure for bench/RESULTS.md.
#
# Redis runs with AOF fsync every second and no snapshots; sessiongrid-server
# at its defaults (every write in the WAL, not fsynced: --sync-writes off).
# Also printed: the CPU each process spent per logged-in request. Everything
# listens on 127.0.0.1 on free ports in a temp dir; all processes are killed
# on exit.
#
# Environment: BUILD_DIR (build), USERS (1000), DURATION (10s),
# CONNECTIONS (64), THREADS (2), WARMUP (2s), BOTS (100000), EDGE_FLAGS
# (extra sessiongrid-edge flags), KEEP_TMP (keep the temp dir and its logs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ "$BUILD_DIR" == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
USERS=${USERS:-1000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2s}
BOTS=${BOTS:-100000}
STACK="$ROOT/bench/express-stack"
GOOGLEBOT='Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'

SERVER="$BUILD_DIR/server/sessiongrid-server"
CTL="$BUILD_DIR/client/sessiongridctl"
EDGE="$BUILD_DIR/edge/sessiongrid-edge"

die() { echo "compare-express: $*" >&2; exit 1; }
# shellcheck source=bench/cpu.sh
source "$ROOT/bench/cpu.sh"

for bin in "$SERVER" "$CTL" "$EDGE"; do
  [[ -x "$bin" ]] || die "missing $bin (build it, or set BUILD_DIR)"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x "$NGINX" ]] || die "missing nginx (scripts/setup installs it)"
for tool in redis-server redis-cli wrk node curl openssl python3; do
  command -v "$tool" >/dev/null || die "missing $tool"
done
[[ -d "$ROOT/integrations/express/node_modules/connect-redis" ]] ||
  die "missing integrations/express/node_modules (scripts/setup installs them)"

TMP=$(mktemp -d -t sg-compare-express.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -n "${KEEP_TMP:-}" ]] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/../scripts/lib/loopback.sh"

wait_for() {
  local what=$1 pid=$2 rc=0
  shift 2
  poll_until 15 "$pid" "$@" || rc=$?
  case $rc in
    0) return 0 ;;
    2) die "$what exited during start-up (logs in $TMP)" ;;
    *) die "$what not ready within 15 s" ;;
  esac
}
# wait_listening LOG PID: the "msg=listening" line of a SessionGrid log.
wait_listening() {
  local log=$1 pid=$2
  wait_for "$log" "$pid" grep -q 'msg=listening' "$log"
  grep -m1 'msg=listening' "$log"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

SECRET=$(openssl rand -hex 32)
printf '%s\n' "$SECRET" >"$TMP/cookie-secret"

# start_app MODE NAME [ARGS...]: starts the Express app; sets APP_PORT and
# APP_PID (not a $(...) subshell: its PID must reach the cleanup list).
start_app() {
  local mode=$1 name=$2
  shift 2
  APP_PORT=$(free_port)
  node "$STACK/app.js" "$mode" "$APP_PORT" "$@" >"$TMP/$name.log" 2>&1 &
  APP_PID=$!
  PIDS+=("$APP_PID")
  wait_for "app $name" "$APP_PID" grep -q '^listening' "$TMP/$name.log"
}

# --- (A) Redis, Express with connect-redis, nginx ---------------------------
REDIS_PORT=$(free_port)
mkdir -p "$TMP/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --appendonly yes \
  --appendfsync everysec --save "" --dir "$TMP/redis" \
  --logfile "$TMP/redis/redis.log" &
PIDS+=($!)
REDIS_PID=$!
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
redis_ping() { [[ "$(rcli ping 2>/dev/null)" == PONG ]]; }
wait_for redis "$REDIS_PID" redis_ping
start_app redis app-redis "$REDIS_PORT" "$SECRET"
APP_A=$APP_PORT
APP_A_PID=$APP_PID

NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$APP_A; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>>"$TMP/nginx/error.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_for nginx "$!" curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/api/health"

# --- (B) sessiongrid-server, Express with edgeSession(), sessiongrid-edge ---
"$SERVER" --listen=127.0.0.1:0 --data-dir="$TMP/data" --node-id=bench \
  2>"$TMP/server.log" &
PIDS+=($!)
SERVER_PID=$!
SERVER_ADDR=$(field address "$(wait_listening "$TMP/server.log" "$SERVER_PID")")
start_app edge app-edge
APP_B=$APP_PORT
APP_B_PID=$APP_PID
# shellcheck disable=SC2086
"$EDGE" --listen=127.0.0.1:0 --admin-listen=127.0.0.1:0 \
  --upstream="http://127.0.0.1:$APP_B" --session-service="$SERVER_ADDR" \
  --cookie-secret-file="$TMP/cookie-secret" ${EDGE_FLAGS:-} 2>"$TMP/edge.log" &
PIDS+=($!)
EDGE_PID=$!
EDGE_LINE=$(wait_listening "$TMP/edge.log" "$EDGE_PID")
EDGE_ADDR=$(field address "$EDGE_LINE")
wait_for edge "$EDGE_PID" curl -sf -o /dev/null "http://$(field admin "$EDGE_LINE")/readyz"

sg_sessions() {
  "$CTL" --server "$SERVER_ADDR" stats |
    python3 -c 'import json, sys; print(int(json.load(sys.stdin)["stats"].get("sessions", 0)))'
}
redis_used() { rcli info memory | awk -F: '/^used_memory:/ {print $2+0}'; }

# --- logins -----------------------------------------------------------------
echo "compare-express: logging $USERS users in through each stack" >&2
node "$STACK/login.js" "http://127.0.0.1:$NGINX_PORT" "$USERS" >"$TMP/cookies-a" ||
  die "logins through nginx failed"
node "$STACK/login.js" "http://$EDGE_ADDR" "$USERS" >"$TMP/cookies-b" ||
  die "logins through the edge failed"
# Sanity: a logged-in request sees its user in both stacks.
for pair in "127.0.0.1:$NGINX_PORT a" "$EDGE_ADDR b"; do
  set -- $pair
  who=$(curl -sf -A 'Mozilla/5.0 Chrome/124.0' -H "Cookie: $(head -n1 "$TMP/cookies-$2")" \
    "http://$1/api/user/whoami")
  grep -q '"loggedIn":true' <<<"$who" || die "stack $2: a login cookie is not logged in: $who"
done

# wrk_run NAME URL DURATION [env...]: runs wrk with cookies.lua; leaves its
# output in $TMP/wrk-NAME.txt.
wrk_run() {
  local name=$1 url=$2 duration=$3
  shift 3
  env "$@" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency \
    -s "$STACK/cookies.lua" "$url" >"$TMP/wrk-$name.txt"
}
# measure NAME URL COOKIES LABEL:PID...: the logged-in run; also the CPU
# each labelled process spent per request during it.
declare -A RPS P50 P99 CODES CPU
measure() {
  local name=$1 url=$2 cookies=$3 entry
  shift 3
  wrk_run "$name-warmup" "$url" "$WARMUP" COOKIES="$cookies"
  local -A before
  for entry in "$@"; do before[$entry]=$(cpu_us "${entry#*:}"); done
  wrk_run "$name" "$url" "$DURATION" COOKIES="$cookies"
  local out="$TMP/wrk-$name.txt" requests
  requests=$(awk '/requests in/ {print $1}' "$out")
  CPU[$name]=""
  for entry in "$@"; do
    CPU[$name]+="${entry%%:*} $((($(cpu_us "${entry#*:}") - before[$entry]) / requests)) us, "
  done
  CPU[$name]=${CPU[$name]%, }
  RPS[$name]=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  P50[$name]=$(awk '$1 == "50%" {print $2}' "$out")
  P99[$name]=$(awk '$1 == "99%" {print $2}' "$out")
  CODES[$name]=$(awk '/^status / {printf "%s%s: %s", sep, $2, $3; sep=", "} /^errors / {printf "; socket errors c/r/w/t %s", $2}' "$out")
}

echo "compare-express: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $USERS users, on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
measure a "http://127.0.0.1:$NGINX_PORT" "$TMP/cookies-a" \
  "nginx:$NGINX_PID" "express:$APP_A_PID" "redis:$REDIS_PID"
measure b "http://$EDGE_ADDR" "$TMP/cookies-b" \
  "edge:$EDGE_PID" "express:$APP_B_PID" "sessiongrid-server:$SERVER_PID"

# --- bot flood --------------------------------------------------------------
# flood NAME HOST PORT: BOTS requests, Googlebot, no cookie (flood.py).
declare -A FLOOD_RPS FLOOD_CODES
flood() {
  local name=$1 out="$TMP/flood-$1.json"
  python3 "$STACK/flood.py" "$2" "$3" /api/counter "$GOOGLEBOT" "$BOTS" "$CONNECTIONS" >"$out"
  FLOOD_RPS[$name]=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["rps"])' "$out")
  FLOOD_CODES[$name]=$(python3 -c 'import json, sys; print(", ".join(f"{k}: {v}" for k, v in json.load(open(sys.argv[1]))["status"].items()))' "$out")
}
keys_before=$(rcli dbsize)
used_before=$(redis_used)
redis_rss_before=$(rss_kib "$REDIS_PID")
flood a 127.0.0.1 "$NGINX_PORT"
keys_after=$(rcli dbsize)
used_after=$(redis_used)
redis_rss_after=$(rss_kib "$REDIS_PID")

sg_before=$(sg_sessions)
sg_rss_before=$(rss_kib "$SERVER_PID")
flood b "${EDGE_ADDR%:*}" "${EDGE_ADDR##*:}"
sg_after=$(sg_sessions)
sg_rss_after=$(rss_kib "$SERVER_PID")

ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}' if b else 'n/a')" "$1" "$2"; }

printf '\nlogged-in GET /api/user/counter, %s users\n' "$USERS"
printf '%-46s %10s %9s %9s  %s\n' stack req/s p50 p99 responses
printf '%-46s %10s %9s %9s  %s\n' "(A) nginx → express-session+connect-redis" "${RPS[a]}" "${P50[a]}" "${P99[a]}" "${CODES[a]}"
printf '%-46s %10s %9s %9s  %s\n' "(B) sessiongrid-edge → edgeSession()" "${RPS[b]}" "${P50[b]}" "${P99[b]}" "${CODES[b]}"
echo "CPU per logged-in request: (A) ${CPU[a]}; (B) ${CPU[b]}"
echo "B/A logged-in req/s: $(ratio "${RPS[b]}" "${RPS[a]}")"
printf '\nbot flood: %s requests, Googlebot, GET /api/counter, no cookie\n' "$BOTS"
printf '(A) %s req/s (%s); sessions created: %s; Redis used_memory +%s KiB, redis-server RSS +%s KiB\n' \
  "${FLOOD_RPS[a]}" "${FLOOD_CODES[a]}" "$((keys_after - keys_before))" \
  "$(((used_after - used_before) / 1024))" "$((redis_rss_after - redis_rss_before))"
printf '(B) %s req/s (%s); sessions created: %s; sessiongrid-server RSS +%s KiB\n' \
  "${FLOOD_RPS[b]}" "${FLOOD_CODES[b]}" "$((sg_after - sg_before))" \
  "$((sg_rss_after - sg_rss_before))"
echo "B/A flood req/s: $(ratio "${FLOOD_RPS[b]}" "${FLOOD_RPS[a]}")"

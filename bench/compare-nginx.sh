#!/usr/bin/env bash
# sessiongrid-edge against nginx as a reverse proxy, on this machine, in one
# run, one load after the other, against the same static origin:
#
#   origin   nginx serving a small static file (the reference ceiling)
#   (a) edge, bypassed       GET /assets/x.js through sessiongrid-edge
#   (b) nginx proxy_pass     the same request through nginx with upstream
#                            keepalive
#   (c) edge, with session   GET /api/user/profile carrying the signed
#                            cookie of one of 10,000 distinct logged-in
#                            sessions (SESSIONS), a different one on each
#                            request: one session Get per request
#
#   BUILD_DIR=build bench/compare-nginx.sh
#
# Load: wrk -t2 -c64 -d10s --latency with a browser User-Agent, after a 2 s
# warm-up per target. Prints req/s, p50 and p99 per target, and the ratios
# edge/nginx (a/b) and session/bypassed (c/a), and the CPU time each proxy
# (and the session service) spent per request during the measured run
# (user + system, from /proc; less noisy than req/s on a shared machine).
# Everything listens on
# 127.0.0.1 only, on free ports, in a temp dir; all processes are killed
# on exit.
#
# Environment: BUILD_DIR (build), DURATION (10s), THREADS (2),
# CONNECTIONS (64), WARMUP (2s), SESSIONS (10000), EDGE_FLAGS (extra
# sessiongrid-edge flags), PROFILE_DIR (none: after the measured runs, (a),
# (b) and (c) run once more under `perf record`, and PROFILE_DIR keeps each
# proxy's flat profile as NAME.txt); SERVER_BIN, CTL_BIN, EDGE_BIN,
# BENCH_BIN override the binaries' paths.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ "$BUILD_DIR" == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}
SESSIONS=${SESSIONS:-10000}
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36'

SERVER=${SERVER_BIN:-$BUILD_DIR/server/sessiongrid-server}
CTL=${CTL_BIN:-$BUILD_DIR/client/sessiongridctl}
EDGE=${EDGE_BIN:-$BUILD_DIR/edge/sessiongrid-edge}
BENCH=${BENCH_BIN:-$BUILD_DIR/bench/sessiongrid-bench}

die() { echo "compare-nginx: $*" >&2; exit 1; }
# shellcheck source=bench/cpu.sh
source "$ROOT/bench/cpu.sh"
# shellcheck source=bench/profile.sh
source "$ROOT/bench/profile.sh"

for bin in "$SERVER" "$CTL" "$EDGE" "$BENCH"; do
  [[ -x "$bin" ]] || die "missing $bin (build it, or set BUILD_DIR)"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x "$NGINX" ]] || die "missing nginx (scripts/setup installs it)"
tools="wrk curl openssl python3"
[[ -n "${PROFILE_DIR:-}" ]] && tools+=" perf"
for tool in $tools; do
  command -v "$tool" >/dev/null || die "missing $tool"
done

TMP=$(mktemp -d -t sg-compare-nginx.XXXXXX)
# nginx workers run as an unprivileged user when started as root: the
# origin's files must be readable by them.
chmod 755 "$TMP"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/../scripts/lib/loopback.sh"

# wait_for DESCRIPTION COMMAND...: retries COMMAND for at most 15 s.
wait_for() {
  local what=$1
  shift
  poll_until 15 0 "$@" || die "$what not ready within 15 s"
}

# wait_listening LOG PID: the "msg=listening" line of a SessionGrid log.
wait_listening() {
  local log=$1 pid=$2 line
  for _ in $(seq 1 150); do
    line=$(grep -m1 'msg=listening' "$log" || true)
    if [[ -n "$line" ]]; then echo "$line"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "$log: exited"; }
    sleep 0.1
  done
  die "$log: no msg=listening within 15 s"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

declare -A NGINX_PID  # name -> master pid (cpu_us counts its workers too)
# nginx NAME PORT SERVER_BLOCK: starts nginx in the foreground (daemon off)
# with its own config, pid, logs and temp paths under $TMP/NAME.
start_nginx() {
  local name=$1 port=$2 block=$3 dir="$TMP/$1"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
$block
  }
}
CONF
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" 2>>"$dir/error.log" &
  PIDS+=($!)
  NGINX_PID[$name]=$!
  wait_for "nginx $name" curl -sf -o /dev/null "http://127.0.0.1:$port/assets/x.js"
}

# The static origin: every path answers the same small file.
mkdir -p "$TMP/site/assets"
python3 -c 'print("// sessiongrid bench asset\n" + "x" * 200)' >"$TMP/site/assets/x.js"
ORIGIN_PORT=$(free_port)
start_nginx origin "$ORIGIN_PORT" "    root $TMP/site;
    location / { try_files /assets/x.js =404; }"

# nginx as the reverse proxy under comparison, keepalive to the origin.
PROXY_PORT=$(free_port)
start_nginx proxy "$PROXY_PORT" "    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
  upstream origin {
    server 127.0.0.1:$ORIGIN_PORT;
    keepalive 64;"

# The session service and one session for (c).
"$SERVER" --listen=127.0.0.1:0 --data-dir="$TMP/data" --node-id=bench \
  2>"$TMP/server.log" &
PIDS+=($!)
SERVER_PID=$!
line=$(wait_listening "$TMP/server.log" "${PIDS[-1]}")
SERVER_ADDR=$(field address "$line")
# SESSIONS logged-in sessions (bench-user-0, ...) with 1 KiB of data.
"$BENCH" --target "$SERVER_ADDR" --op get --keys "$SESSIONS" \
  --principal-prefix bench-user- --ids-out "$TMP/ids" --duration 100ms \
  --warmup 0s >/dev/null 2>"$TMP/preload.log" ||
  { cat "$TMP/preload.log" >&2; die "preloading $SESSIONS sessions failed"; }
(( $(wc -l <"$TMP/ids") == SESSIONS )) || die "preload wrote $(wc -l <"$TMP/ids") ids"

# The edge, with a fresh cookie secret.
openssl rand -hex 32 >"$TMP/cookie-secret"
# shellcheck disable=SC2086
"$EDGE" --listen=127.0.0.1:0 --admin-listen=127.0.0.1:0 \
  --upstream="http://127.0.0.1:$ORIGIN_PORT" --session-service="$SERVER_ADDR" \
  --cookie-secret-file="$TMP/cookie-secret" ${EDGE_FLAGS:-} 2>"$TMP/edge.log" &
PIDS+=($!)
EDGE_PID=$!
EDGE_LINE=$(wait_listening "$TMP/edge.log" "${PIDS[-1]}")
EDGE_ADDR=$(field address "$EDGE_LINE")
ADMIN_ADDR=$(field admin "$EDGE_LINE")
wait_for "edge" curl -sf -o /dev/null "http://$ADMIN_ADDR/readyz"

# express-session's cookie for each id: s:<id>.<base64(HMAC-SHA256(secret,
# id)) without '=' padding>, URI-encoded (':' '+' '/' are the characters
# that change); one "Cookie: ..." value per line.
python3 - "$(head -n1 "$TMP/cookie-secret")" "$TMP/ids" >"$TMP/cookies" <<'PY'
import base64, hashlib, hmac, sys
secret = sys.argv[1].encode()
for line in open(sys.argv[2]):
    sid = line.strip()
    sig = base64.b64encode(hmac.new(secret, sid.encode(), hashlib.sha256).digest())
    value = f"s:{sid}.{sig.decode().rstrip('=')}"
    value = value.replace(":", "%3A").replace("+", "%2B").replace("/", "%2F")
    print(f"connect.sid={value}")
PY
COOKIE=$(head -n1 "$TMP/cookies")
# wrk: each request carries the next session's cookie (each wrk thread walks
# the list from its own start).
cat >"$TMP/sessions.lua" <<LUA
local cookies = {}
for line in io.lines("$TMP/cookies") do cookies[#cookies + 1] = line end
local i = math.random(#cookies)
request = function()
  i = i % #cookies + 1
  wrk.headers["Cookie"] = cookies[i]  -- kept: the -H headers live there too
  return wrk.format()
end
LUA


node_reads() {
  "$CTL" --server "$SERVER_ADDR" stats |
    python3 -c 'import json, sys; print(int(json.load(sys.stdin)["stats"].get("reads", 0)))'
}

# Sanity: each target answers 200 with the asset; the cookie is accepted
# (the session is read: the server's read count moves).
for url in "http://127.0.0.1:$ORIGIN_PORT/assets/x.js" \
           "http://$EDGE_ADDR/assets/x.js" \
           "http://127.0.0.1:$PROXY_PORT/assets/x.js"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -A "$UA" "$url")
  [[ "$code" == 200 ]] || die "$url answered $code"
done
reads_before=$(node_reads)
curl -sf -o /dev/null -A "$UA" -H "Cookie: $COOKIE" "http://$EDGE_ADDR/api/user/profile" ||
  die "the session request failed"
(( $(node_reads) > reads_before )) ||
  die "the signed cookie did not lead to a session read (check the edge log: $TMP/edge.log)"

# run NAME URL [wrk args...]: warm-up, then the measured run, during which
# the CPU time of $PROXY_PIDS (and of the session service) is taken.
declare -A RPS P50 P99 ERRS REQS CPU SERVER_CPU
run() {
  local name=$1 url=$2
  shift 2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "User-Agent: $UA" "$@" "$url" >/dev/null
  local out cpu0 server0
  # shellcheck disable=SC2086
  cpu0=$(cpu_us $PROXY_PIDS)
  server0=$(cpu_us "$SERVER_PID")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -H "User-Agent: $UA" "$@" "$url")
  # shellcheck disable=SC2086
  CPU[$name]=$(( $(cpu_us $PROXY_PIDS) - cpu0 ))
  SERVER_CPU[$name]=$(( $(cpu_us "$SERVER_PID") - server0 ))
  REQS[$name]=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$out" >"$TMP/wrk-$name.txt"
  RPS[$name]=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  P50[$name]=$(awk '$1 == "50%" {print $2}' <<<"$out")
  P99[$name]=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local non2xx sock
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  sock=$(grep -o 'Socket errors:.*' <<<"$out" || true)
  ERRS[$name]="${non2xx:-0} non-2xx${sock:+; $sock}"
}

echo "compare-nginx: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency on $(nproc) cores" >&2
PROXY_PIDS=${NGINX_PID[origin]}
run origin "http://127.0.0.1:$ORIGIN_PORT/assets/x.js"
PROXY_PIDS=$EDGE_PID
run edge_bypass "http://$EDGE_ADDR/assets/x.js"
PROXY_PIDS=${NGINX_PID[proxy]}
run nginx_proxy "http://127.0.0.1:$PROXY_PORT/assets/x.js"
reads_before=$(node_reads)
PROXY_PIDS=$EDGE_PID
run edge_session "http://$EDGE_ADDR/api/user/profile" -s "$TMP/sessions.lua" \
  -H "Accept: application/json"
reads_after=$(node_reads)

# Profiles come after the measured runs so that perf's cost is in none of
# the figures above.
if [[ -n "${PROFILE_DIR:-}" ]]; then
  mkdir -p "$PROFILE_DIR"
  secs=${DURATION%s}
  # profile NAME URL [wrk args...]: wrk for DURATION while perf samples
  # $PROXY_PIDS (and the session service, into NAME-server).
  profile() {
    local name=$1 url=$2
    shift 2
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "User-Agent: $UA" "$@" "$url" \
      >"$PROFILE_DIR/wrk-$name.txt" &
    local wrk_pid=$!
    # shellcheck disable=SC2086
    perf_profile "$PROFILE_DIR/$name" "$((secs - 1))" $PROXY_PIDS &
    local perf_pid=$!
    if [[ "$name" == edge_session ]]; then
      perf_profile "$PROFILE_DIR/$name-server" "$((secs - 1))" "$SERVER_PID"
    fi
    wait "$perf_pid" "$wrk_pid"
  }
  echo "compare-nginx: profiling (a), (b), (c) into $PROFILE_DIR" >&2
  PROXY_PIDS=$EDGE_PID
  profile edge_bypass "http://$EDGE_ADDR/assets/x.js"
  PROXY_PIDS=${NGINX_PID[proxy]}
  profile nginx_proxy "http://127.0.0.1:$PROXY_PORT/assets/x.js"
  PROXY_PIDS=$EDGE_PID
  profile edge_session "http://$EDGE_ADDR/api/user/profile" -s "$TMP/sessions.lua" \
    -H "Accept: application/json"
fi

ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}' if b else 'n/a')" "$1" "$2"; }

printf '\n%-34s %12s %10s %10s  %s\n' target req/s p50 p99 errors
printf '%-34s %12s %10s %10s  %s\n' "origin (nginx static, direct)" "${RPS[origin]}" "${P50[origin]}" "${P99[origin]}" "${ERRS[origin]}"
printf '%-34s %12s %10s %10s  %s\n' "(a) edge, bypassed /assets/x.js" "${RPS[edge_bypass]}" "${P50[edge_bypass]}" "${P99[edge_bypass]}" "${ERRS[edge_bypass]}"
printf '%-34s %12s %10s %10s  %s\n' "(b) nginx proxy_pass keepalive" "${RPS[nginx_proxy]}" "${P50[nginx_proxy]}" "${P99[nginx_proxy]}" "${ERRS[nginx_proxy]}"
printf '%-34s %12s %10s %10s  %s\n' "(c) edge, valid session cookie" "${RPS[edge_session]}" "${P50[edge_session]}" "${P99[edge_session]}" "${ERRS[edge_session]}"
echo
echo "edge/nginx (a/b):        $(ratio "${RPS[edge_bypass]}" "${RPS[nginx_proxy]}")   (goal >= 1.0)"
echo "session/bypassed (c/a):  $(ratio "${RPS[edge_session]}" "${RPS[edge_bypass]}")   (goal >= 0.6)"
echo "session reads during (c): $((reads_after - reads_before)) for ${REQS[edge_session]} measured requests (plus the warm-up), over $SESSIONS distinct sessions"
echo
echo "CPU per request (user + system, µs), measured run only:"
echo "  origin nginx (static):          $(per_op "${CPU[origin]}" "${REQS[origin]}")"
echo "  (a) edge, bypassed:             $(per_op "${CPU[edge_bypass]}" "${REQS[edge_bypass]}")"
echo "  (b) nginx proxy_pass:           $(per_op "${CPU[nginx_proxy]}" "${REQS[nginx_proxy]}")"
echo "  (c) edge, with session:         $(per_op "${CPU[edge_session]}" "${REQS[edge_session]}")  + session service $(per_op "${SERVER_CPU[edge_session]}" "${REQS[edge_session]}")"
echo "edge/nginx CPU per request (a/b): $(ratio "$(per_op "${CPU[edge_bypass]}" "${REQS[edge_bypass]}")" "$(per_op "${CPU[nginx_proxy]}" "${REQS[nginx_proxy]}")")   (below 1.0: the edge is cheaper)"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end"

# Shell helpers shared by the benchmark and end-to-end scripts. Source it:
#   . "$(dirname "$0")/../scripts/lib/loopback.sh"

# Servers these scripts start serve /metrics on loopback only (a free
# port), not on the production default 0.0.0.0:9400.
export SESSIONGRID_METRICS_LISTEN=${SESSIONGRID_METRICS_LISTEN:-127.0.0.1:0}

# free_port: prints a TCP port free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# poll_until SECONDS PID CMD...: runs CMD every 0.1 s until it succeeds
# (returns 0), PID exits (returns 2; PID 0 means "no process to watch"), or
# SECONDS pass (returns 1).
poll_until() {
  local seconds=$1 pid=$2 i
  shift 2
  for ((i = 0; i < seconds * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ "$pid" != 0 ] && ! kill -0 "$pid" 2>/dev/null; then return 2; fi
    sleep 0.1
  done
  return 1
}

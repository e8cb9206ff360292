# Sourced by the bench scripts: the CPU time processes have used, read from
# /proc, so a script can report CPU per request (steadier than req/s on a
# shared machine) without another tool.

# cpu_us PID...: user + system CPU time (all threads) of the processes and
# their direct children so far, in microseconds (nginx's workers are its
# master's children). A process that has exited counts 0.
cpu_us() {
  local pid child stat ticks=0
  for pid in "$@"; do
    for child in "$pid" $(pgrep -P "$pid" || true); do
      stat=$(cat "/proc/$child/stat" 2>/dev/null) || continue
      stat=${stat##*) }  # the fields after "(comm) ", comm may hold spaces
      read -r -a f <<<"$stat"
      ticks=$((ticks + f[11] + f[12]))  # utime, stime
    done
  done
  echo $((ticks * 1000000 / $(getconf CLK_TCK)))
}

# per_op MICROSECONDS COUNT: µs per operation with one decimal ("n/a" for 0).
per_op() {
  if (($2 == 0)); then echo n/a; return; fi
  printf '%d.%d\n' $(($1 / $2)) $((($1 * 10 / $2) % 10))
}

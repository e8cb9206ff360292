# Sourced by the bench scripts: a flat CPU profile of running processes
# with `perf record -e cpu-clock` (a software clock: this machine has no
# hardware counters), for RESULTS.md's "where the time goes".

# perf_profile OUT SECONDS PID...: samples the processes and their direct
# children (nginx's workers) for SECONDS, keeps OUT.perf.data and writes
# OUT.txt: self time by shared object, then by symbol. PERF_RECORD_ARGS
# replaces the sampling flags (-F 1999), e.g. with "-F 499 --call-graph
# dwarf,16384" for callers (then `perf report -i OUT.perf.data -G`).
perf_profile() {
  local out=$1 seconds=$2 pid pids=""
  shift 2
  for pid in "$@"; do
    pids+="${pids:+,}$pid"
    for pid in $(pgrep -P "$pid" || true); do pids+=",$pid"; done
  done
  # shellcheck disable=SC2086 # PERF_RECORD_ARGS is a list of words
  perf record -q -e cpu-clock ${PERF_RECORD_ARGS:--F 1999} -p "$pids" -o "$out.perf.data" \
    -- sleep "$seconds" >/dev/null 2>"$out.perf.log" ||
    { cat "$out.perf.log" >&2; return 1; }
  {
    perf report -i "$out.perf.data" --no-children --sort dso --stdio \
      --percent-limit 0.5 2>/dev/null
    perf report -i "$out.perf.data" --no-children -F overhead,dso,sym --stdio \
      --percent-limit 0.4 2>/dev/null
  } | grep -v -e '^$' -e '^# *$' -e '^# \.' | sed -E 's/ {2,}/  /g; s/ +$//' >"$out.txt"
}

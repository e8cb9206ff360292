#!/usr/bin/python3
"""Plots a soak CSV (bench/soak_sample.py) to a PNG and writes its summary.

RSS and sessions over time, the memory budget, and for comparison the seed's
reported growth (10 MB to 512 MB over two hours, then an OOM kill).
Needs python3-matplotlib (Debian; scripts/setup installs it).
"""
import argparse
import csv
import json
import statistics
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MIB = 1 << 20


def num(v, default=0):
    """int(v), or `default` for an empty or malformed cell."""
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--csv", required=True)
    p.add_argument("--png", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--warmup", type=float, default=300.0,
                   help="seconds excluded from the flatness figures")
    p.add_argument("--limit-bytes", type=int, default=0)
    p.add_argument("--bench-json", default="")
    args = p.parse_args()

    with open(args.csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        print("soak_plot: empty CSV", file=sys.stderr)
        return 1
    t = [float(r["t_s"]) for r in rows]
    rss = [num(r["rss_bytes"]) / MIB for r in rows]
    # A stats call that timed out leaves the NodeStats columns empty: a gap
    # in the sessions line, not a zero.
    sessions = [num(r["sessions"], None) for r in rows]
    missed = sum(1 for x in sessions if x is None)
    steady = [i for i, x in enumerate(t) if x >= args.warmup]
    if not steady:
        steady = list(range(len(t)))
    rss_s = [rss[i] for i in steady]
    ses_s = [sessions[i] for i in steady if sessions[i] is not None]
    levels = sorted({r["memory_level"] for r in rows if r["memory_level"]})
    last = rows[-1]

    bench = {}
    if args.bench_json:
        try:
            with open(args.bench_json) as f:
                bench = json.loads(f.read().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            bench = {}

    by_code = bench.get("errors_by_code") or {}
    lo, hi = min(rss_s), max(rss_s)
    summary = {
        "duration_s": round(t[-1], 1),
        "samples": len(rows),
        "stats_samples_missed": missed,
        "warmup_s": args.warmup,
        "limit_mib": round(args.limit_bytes / MIB, 1) if args.limit_bytes else 0,
        "rss_min_mib": round(lo, 1),
        "rss_max_mib": round(hi, 1),
        "rss_mean_mib": round(statistics.mean(rss_s), 1),
        "rss_spread_pct_of_max": round(100.0 * (hi - lo) / hi, 1) if hi else 0,
        "rss_spread_pct_of_min": round(100.0 * (hi - lo) / lo, 1) if lo else 0,
        "rss_peak_all_mib": round(max(rss), 1),
        "sessions_min": min(ses_s),
        "sessions_max": max(ses_s),
        "sessions_mean": round(statistics.mean(ses_s)),
        "creates": num(last["creates"]),
        "evictions": num(last["evictions"]),
        "expirations": num(last["expirations"]),
        "sessions_final": num(last["sessions"]),
        "memory_levels_seen": levels,
        "bench_ops_per_sec": bench.get("ops_per_sec"),
        "bench_ops": bench.get("ops"),
        "bench_errors": bench.get("errors"),
        # NOT_FOUND is expected under the mix: a get, touch or update of a
        # key whose session expired (sessions live 60 s). Any other code is
        # a finding.
        "bench_errors_expected_not_found": by_code.get("NOT_FOUND", 0),
        "bench_errors_unexpected": sum(
            n for code, n in by_code.items() if code != "NOT_FOUND"),
        "bench_errors_by_code": " ".join(
            f"{code}={n}" for code, n in sorted(by_code.items())) or "none",
        "bench_p99_us": bench.get("p99_us"),
    }
    with open(args.summary, "w") as f:
        for k, v in summary.items():
            f.write(f"{k},{v if not isinstance(v, list) else ' '.join(v)}\n")

    fig, ax = plt.subplots(figsize=(11, 5.5))
    minutes = [x / 60 for x in t]
    ax.plot(minutes, rss, color="tab:blue", lw=1.2, label="SessionGrid RSS (MiB)")
    seed_end = min(t[-1], 7200.0)
    ax.plot([0, seed_end / 60], [10, 10 + 502 * seed_end / 7200], color="tab:red",
            ls="--", lw=1.2, label="seed: 10 → 512 MB over 2 h (reported)")
    if args.limit_bytes:
        ax.axhline(args.limit_bytes / MIB, color="gray", ls=":", lw=1,
                   label=f"--memory-limit ({args.limit_bytes / MIB:.0f} MiB)")
    ax.axvline(args.warmup / 60, color="lightgray", lw=0.8)
    ax.set_xlabel("minutes")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(minutes, [float("nan") if x is None else x for x in sessions],
             color="tab:green", lw=1, alpha=0.8, label="sessions stored")
    ax2.set_ylabel("sessions")
    ax2.set_ylim(bottom=0, top=max(x for x in sessions if x is not None) * 1.3 + 1)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left",
              fontsize=9)
    ax.set_title(
        f"Soak: mixed load, TTL 60 s — RSS {lo:.0f}–{hi:.0f} MiB after warm-up "
        f"(spread {summary['rss_spread_pct_of_max']}%), "
        f"sessions {summary['sessions_min']}–{summary['sessions_max']}")
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    for k, v in summary.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

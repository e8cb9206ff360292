#!/usr/bin/python3
"""Samples one sessiongrid-server every second into a CSV until stopped.

Columns: t_s, rss_bytes (VmRSS of the process), then NodeStats fields read
with sessiongridctl: sessions, anonymous, authenticated, memory_level,
evictions, expirations, creates, block_cache_bytes, memtable_bytes.
Stops on SIGTERM/SIGINT or when the process is gone. Python stdlib only.
"""
import argparse
import csv
import json
import signal
import subprocess
import sys
import time

FIELDS = ["t_s", "rss_bytes", "sessions", "anonymous", "authenticated",
          "memory_level", "evictions", "expirations", "creates",
          "block_cache_bytes", "memtable_bytes"]


def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def node_stats(ctl, target):
    try:
        out = subprocess.run([ctl, "--server", target, "--timeout", "2s", "stats"],
                             capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return {}
    if out.returncode != 0:
        return {}
    try:
        return json.loads(out.stdout).get("stats", {})
    except json.JSONDecodeError:
        return {}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--ctl", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--interval", type=float, default=1.0)
    args = p.parse_args()

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))

    start = time.monotonic()
    next_at = start
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        while not stopping:
            rss = rss_of(args.pid)
            if rss is None:
                break
            s = node_stats(args.ctl, args.target)
            m = s.get("memory", {})
            w.writerow([
                round(time.monotonic() - start, 3), rss,
                s.get("sessions", ""), s.get("anonymousSessions", ""),
                s.get("authenticatedSessions", ""), s.get("memoryLevel", ""),
                s.get("evictions", 0), s.get("expirations", 0),
                s.get("creates", 0), m.get("blockCacheBytes", 0),
                m.get("memtableBytes", 0)])
            f.flush()
            next_at += args.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

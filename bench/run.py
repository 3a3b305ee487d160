"""Run every benchmark and print one report: `python -m bench.run [--quick]`.

Full: matching at 1k/10k/100k/1M endpoints, the pipeline (throughput, latency at 200-2,000
events/s, memory, 1/2/4 deliver workers), delivery statistics at 10M attempts; ≤ 30 min on 2
cores. --quick: 1k/100k endpoints, shorter pipeline runs, 1/2 deliver workers, statistics at 1M
attempts; ≤ 4 min. Volume (10 days × 1M rows of history beside an empty database) takes
~10 min alone, ~1 min with --quick. Each benchmark runs in its own process with its
own database and redis-server, removed at the end; raw figures go to bench/out/*.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Seconds a benchmark may take; volume's full run seeds 10M rows a table first (~7 min here).
TIMEOUT_S = {"volume": 3600}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the ≤ 3 min version")
    p.add_argument(
        "--only",
        choices=["match", "pipeline", "stats", "retention", "volume"],
        help="run one benchmark",
    )
    args = p.parse_args()
    match_args = (
        ["--sizes", "100000", "--runs", "3", "--batches", "10"]
        if args.quick
        else ["--sizes", "1000000", "--runs", "3", "--batches", "30"]
    )
    jobs = {
        "match": [sys.executable, "-m", "bench.match_bench", *match_args],
        "pipeline": [sys.executable, "-m", "bench.pipeline_bench"]
        + (["--quick"] if args.quick else []),
        "stats": [sys.executable, "-m", "bench.stats_bench"] + (["--quick"] if args.quick else []),
        "retention": [sys.executable, "-m", "bench.retention_bench"]
        + (["--quick"] if args.quick else []),
        "volume": [sys.executable, "-m", "bench.volume"] + (["--quick"] if args.quick else []),
    }
    from bench.machine import machine

    print(f"# EthHook benchmarks ({'quick' if args.quick else 'full'})\n")
    print(f"Machine: {machine()}\n")
    started = time.monotonic()
    status = 0
    for name, cmd in jobs.items():
        if args.only and name != args.only:
            continue
        # Each in its own process group, so an interrupted run leaves no child behind.
        proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
        try:
            status |= proc.wait(timeout=TIMEOUT_S.get(name, 1500))
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.terminate()
            proc.wait(30)
            status |= 1
    print(f"\nTotal: {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Soak: the whole pipeline under a steady stream for minutes, a random fault every minute; loses none.

The command line of the soak driver in tests/support/soak.py (the suite runs it for two minutes:
tests/faults/test_soak.py).
The pipeline of the fault tests (`tests/faults`: a private PostgreSQL cluster and redis-server,
anvil, the listener and the match, deliver and beat workers as real processes, a verifying
receiver) takes `--rate` events/s (`--events-per-tx` Transfers per transaction) for `--minutes`.
Every `--fault-every-s` one fault from FAULTS is injected, drawn with a seeded RNG from a shuffled
deck (every kind once before any repeats); a killed process is started again after
KILLED_FOR_S. Then the stream stops, everything settles, and the report gives events emitted
(from the receipts) and received, LOST (must be 0), repeated webhook-ids, latency from
transaction sent to webhook received, the faults with their times, CPU and the RSS of every
process (with its children) at start and at end. Summary on stdout, JSON in bench/out/soak.json;
the exit status is 1 when an event was lost or a process stopped by itself.

The pipeline runs on the fault tests' settings (short leases: a killed deliver worker's
deliveries are sent again after 20 s) but for the dispatch lease, the product's 60 s unless
`--dispatch-lease-s` says otherwise (see DISPATCH_LEASE_S). The test receiver answers with
TCP_NODELAY (see answer_without_nagle) and the stream credits the same addresses over and over
(see SameAddresses): without either, the test equipment, not the pipeline, set the pace.

With `--partition-interval 5m --retention-minutes 15` the history is partitioned at that
interval and retention runs (beat: once an interval), on a retry schedule that fits in half the
retention (tests/support/soak_history.py). The database's size (pg_database_size, the history
tables' partitions and their count) is sampled every `--size-every-s`; the report adds the
partitions made and dropped, the open deliveries at the end, whether any delivery seen open in a
partition aging past retention was dropped before it was sent (exit status 1), the size per
interval and its min and max over the last half of the stream relative to its mean (the bar:
within ±15 %). `--deliver-down AT_S FOR_S` stops the deliver worker for FOR_S seconds from AT_S
(no fault meanwhile): its deliveries stay pending, and with a retention shorter than that,
retention must hold their partitions until they are sent.

Usage: python -m bench.soak [--minutes 10] [--rate 300] [--events-per-tx 30] [--seed N]
                            [--fault-every-s 60] [--dispatch-lease-s 60]
                            [--partition-interval 5m --retention-minutes 15] [--size-every-s 30]
                            [--deliver-down AT_S FOR_S]
                            [--out bench/out/soak.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.support.soak import DISPATCH_LEASE_S, soak
from tests.support.soak_history import Retention

OUT = Path(__file__).resolve().parent / "out" / "soak.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=300.0, help="events per second")
    parser.add_argument("--events-per-tx", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None, help="the fault RNG's (printed)")
    parser.add_argument("--fault-every-s", type=float, default=60.0)
    parser.add_argument("--dispatch-lease-s", type=float, default=DISPATCH_LEASE_S)
    parser.add_argument("--partition-interval", help="ETHHOOK_PARTITION_INTERVAL, e.g. 5m")
    parser.add_argument("--retention-minutes", type=float, default=None)
    parser.add_argument("--size-every-s", type=float, default=30.0)
    parser.add_argument("--deliver-down", type=float, nargs=2, metavar=("AT_S", "FOR_S"),
                        help="stop the deliver worker at AT_S for FOR_S (no fault meanwhile)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    retention = None
    if (args.partition_interval is None) != (args.retention_minutes is None):
        parser.error("--partition-interval and --retention-minutes go together")
    if args.partition_interval is not None:
        try:
            retention = Retention.of(args.partition_interval, args.retention_minutes)
        except ValueError as exc:
            parser.error(f"--partition-interval {args.partition_interval}: {exc}")
    report = soak(
        minutes=args.minutes,
        rate=args.rate,
        events_per_tx=args.events_per_tx,
        seed=args.seed,
        fault_every_s=args.fault_every_s,
        out=args.out,
        dispatch_lease_s=args.dispatch_lease_s,
        retention=retention,
        size_every_s=args.size_every_s,
        deliver_outage=(args.deliver_down[0], args.deliver_down[1]) if args.deliver_down else None,
    )
    failed = report["lost"] or report["died"] or report["unrecoverable"]
    failed = failed or report.get("history", {}).get("open_dropped", 0)
    failed = failed or not report["stream_alive_to_the_end"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Profile one deliver worker (gevent, 100 greenlets as workers/README.md recommends) draining a preloaded queue, with py-spy.

Preloads `--events` synthetic events × `--endpoints` (10) endpoints of pending deliveries (matched in-process, deliver
tasks enqueued), starts the worker, records it with py-spy while it drains, and prints the functions
with the most samples (inclusive and self). Usage: python -m bench.profile_deliver [--events 1000] [--endpoints 10] [--seconds 10]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess

import bench.common as c


def preload(receiver: c.ReceiverProcess, events: int, endpoints: int = 10) -> int:
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.workqueue import enqueue_groups
    from tests.support.db import store_and_match
    from tests.support.endpoints import add_endpoint
    from tests.support.factories import TRANSFER, address, transfer

    token = address(7)
    secrets = {}
    for i in range(endpoints):
        path = f"/tp/p{i}"
        _, secrets[path] = add_endpoint(receiver.url(path), contracts=[token], events=[TRANSFER])
    receiver.configure(secrets)
    total = 0
    for start in range(0, events, 100):
        batch = [
            transfer(contract=token, block=1 + start // 100, log_index=i, value=start + i)
            for i in range(min(100, events - start))
        ]
        with session_scope() as session:
            groups = store_and_match(session, batch, utcnow())
        enqueue_groups(groups)
        total += sum(len(g.delivery_ids) for g in groups)
    return total


def py_spy() -> str:
    """The venv's py-spy (the `bench` extra), else one on PATH."""
    own = c.BIN / "py-spy"
    found = str(own) if own.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("profile: py-spy not found: install the bench extra (pip install py-spy)")
    return found


def summarize(raw: str, top: int = 35) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    lines = [f"{total} samples", "-- inclusive --"]
    lines += [f"{100 * n / total:5.1f}% {f}" for f, n in inclusive.most_common(top)]
    lines += ["-- self --"]
    lines += [f"{100 * n / total:5.1f}% {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument(
        "--endpoints",
        type=int,
        default=10,
        help="endpoints receiving every event (1: the one-endpoint burst of bench.pipeline_bench)",
    )
    p.add_argument(
        "--gil",
        action="store_true",
        help="sample only the thread holding the GIL: CPU spent in Python, not waits",
    )
    args = p.parse_args()
    c.on_sigterm_exit()
    with c.services():
        receiver = c.ReceiverProcess()
        try:
            expected = preload(receiver, args.events, args.endpoints)
            c.log(f"profile: {expected} deliveries queued")
            worker = c.start_worker("deliver-prof", "deliver", "gevent", c.DELIVER_CONCURRENCY)
            try:
                out = c.TMP / "deliver.pyspy"
                subprocess.run(
                    [
                        py_spy(),
                        "record",
                        "--pid",
                        str(worker.proc.pid),
                        "--duration",
                        str(int(args.seconds)),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "-o",
                        str(out),
                        *(["--gil"] if args.gil else []),
                    ],
                    check=True,
                    capture_output=True,
                )
                stats = receiver.stats()
                rate = (stats["count"] - 1) / max(stats["last"] - stats["first"], 1e-9)
                c.log(f"profile: {stats['count']} delivered, {rate:,.0f} webhooks/s while recorded")
                raw = out.read_text()
                kept = (
                    c.ROOT / "bench" / "out" / "deliver.pyspy"
                )  # the raw stacks, for a flame graph
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_text(raw)
                print(summarize(raw))
            finally:
                worker.stop()
        finally:
            receiver.stop()


if __name__ == "__main__":
    main()

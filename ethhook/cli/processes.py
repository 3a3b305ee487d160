"""`ethhook listen`, `ethhook up` and `ethhook demo`: the long-running processes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ethhook.config import Settings
from ethhook.exceptions import InputError


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from ethhook.supervise import Supervisor, run_until_signalled, standard_children

    if not any(chain.enabled for chain in settings.chains):
        raise InputError(
            "no chain to follow: set ETHEREUM_WS/ETHEREUM_HTTP (or ARBITRUM_, OPTIMISM_, BASE_), "
            "or add chains with ETHHOOK_CHAINS_FILE"
        )
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    pool = ["-P", args.deliver_pool, "-c", str(args.deliver_concurrency)]
    children = standard_children(Path(args.workdir) / "celerybeat-schedule", pool)
    env = dict(os.environ)
    if settings.worker_metrics_port:
        # Two workers on one machine: each serves /metrics on its own port.
        env_per_child = {
            "match": settings.worker_metrics_port,
            "deliver": settings.worker_metrics_port + 1,
        }
        for child in children:
            if child.name in env_per_child:
                child.args = [
                    "env",
                    f"ETHHOOK_WORKER_METRICS_PORT={env_per_child[child.name]}",
                    *child.args,
                ]
    print(f"ethhook up: {', '.join(c.name for c in children)} (Ctrl-C stops them all)", flush=True)
    return run_until_signalled(Supervisor(children, env))


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.demo.run import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            events=args.events,
            workdir=Path(args.workdir),
            keep_running=args.keep_running,
            timeout_s=args.timeout_s,
        )
    )


def cmd_listen(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.listen import run_listener

    return run_listener(settings)

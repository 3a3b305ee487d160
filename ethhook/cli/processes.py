"""`ethhook listen`, `ethhook up` and `ethhook demo`: the long-running processes."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ethhook.cli.common import (
    Commands,
    Schema,
    add_command,
    number,
    positive_int,
)
from ethhook.config import Settings
from ethhook.exceptions import InputError

log = logging.getLogger(__name__)


def register(commands: Commands) -> None:
    add_command(
        commands,
        "listen",
        cmd_listen,
        "run the chain listener (all configured chains)",
        schema=Schema.IF_REACHABLE,
    )
    up = add_command(
        commands,
        "up",
        cmd_up,
        "run the listener, a match worker, a deliver worker, beat and the HTTP API (with the "
        "console) together on this machine",
        schema=Schema.IF_REACHABLE,
    )
    up.add_argument("--workdir", default=".ethhook", help="folder for beat's schedule file")
    up.add_argument("--deliver-pool", default="gevent", choices=["gevent", "threads", "prefork"])
    up.add_argument("--deliver-concurrency", type=positive_int, default=100)
    up.add_argument(
        "--no-api",
        action="store_true",
        help="do not serve the HTTP API (ETHHOOK_API_HOST:ETHHOOK_API_PORT, 127.0.0.1:8080)",
    )
    demo = add_command(
        commands,
        "demo",
        cmd_demo,
        "the whole pipeline on a local chain with a verifying receiver; nothing to set up",
        schema=Schema.NONE,  # its own database, made by its own `ethhook db upgrade`
    )
    demo.add_argument("--events", type=positive_int, default=1000, help="Transfer events to emit")
    demo.add_argument(
        "--workdir",
        default=".ethhook-demo",
        help="working folder (SQLite database, Redis socket, logs)",
    )
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="keep everything running after the summary, until Ctrl-C, and serve the HTTP API "
        "and the console on 127.0.0.1 (ETHHOOK_API_PORT if free); prints their address and a key",
    )
    demo.add_argument(
        "--timeout-s",
        type=number,
        default=180.0,
        help="give up waiting for webhooks after this long",
    )


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from ethhook.db.secrets import warn_if_plaintext
    from ethhook.logs import configure
    from ethhook.supervise import Child, Supervisor, ethhook, run_until_signalled, standard_children

    if not any(chain.enabled for chain in settings.chains):
        raise InputError(
            "no chain to follow: set ETHEREUM_WS/ETHEREUM_HTTP (or ARBITRUM_, OPTIMISM_, BASE_), "
            "or add chains with ETHHOOK_CHAINS_FILE"
        )
    configure(settings, "up")
    env = dict(os.environ)
    if warn_if_plaintext(settings):
        # Said once here for every process below, rather than once by each of them.
        env["ETHHOOK_WARN_PLAINTEXT_SECRETS"] = "false"
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    pool = ["-P", args.deliver_pool, "-c", str(args.deliver_concurrency)]
    children = standard_children(Path(args.workdir) / "celerybeat-schedule", pool)
    if settings.worker_metrics_port:
        # Two workers on one machine: each serves /metrics on a port of its own.
        for offset, name in enumerate(("match", "deliver")):
            port = str(settings.worker_metrics_port + offset)
            next(c for c in children if c.name == name).env["ETHHOOK_WORKER_METRICS_PORT"] = port
    if not args.no_api:
        children.append(Child("api", ethhook("api")))
    log.info("up.starting processes=%s (Ctrl-C stops them all)", ",".join(c.name for c in children))
    return run_until_signalled(Supervisor(children, env))


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.demo.run import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            events=args.events,
            workdir=Path(args.workdir),
            keep_running=args.keep_running,
            timeout_s=args.timeout_s,
            api_port=settings.api_port,
        )
    )


def cmd_listen(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db.secrets import warn_if_plaintext
    from ethhook.listen import run_listener
    from ethhook.logs import configure

    if any(chain.enabled for chain in settings.chains):  # else it stops at once, saying why
        configure(settings, "listener")
        warn_if_plaintext(settings)
    return run_listener(settings)

"""`ethhook stats`: delivery statistics per endpoint, from the rollups."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import timedelta
from typing import Any

from ethhook.cli.common import Commands, add_command, positive_int, since
from ethhook.cli.output import emit, table
from ethhook.config import Settings

DEFAULT_WINDOW = timedelta(hours=24)


def register(commands: Commands) -> None:
    stats = add_command(
        commands,
        "stats",
        cmd_stats,
        "delivery statistics per endpoint: attempts by outcome, success rate, latency P50/P95",
    )
    stats.add_argument(
        "--since",
        default=None,
        metavar="ISO",
        help="attempts from this time on (default: the last 24 hours), e.g. 2026-11-27T08:00Z",
    )
    stats.add_argument("--endpoint", type=positive_int, default=None, metavar="ID")


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.service.stats import delivery_stats

    now = utcnow()
    start = since(args.since) if args.since else now - DEFAULT_WINDOW
    ids = None if args.endpoint is None else [args.endpoint]
    with session_scope() as session:
        stats = delivery_stats(session, start, now, endpoint_ids=ids)
    rows = [dataclasses.asdict(s) for s in stats]
    data = {"since": start, "until": now, "endpoints": rows}
    emit(args, data, lambda: _human(rows))
    return 0


def _human(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no delivery attempts in this period"

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    lines = [
        (
            s["endpoint_id"],
            s["attempts"],
            s["succeeded"],
            s["client_errors"],
            s["server_errors"],
            s["no_response"],
            "-" if s["success_rate"] is None else f"{100 * s['success_rate']:.1f}%",
            ms(s["latency_p50_ms"]),
            ms(s["latency_p95_ms"]),
            s["dead_lettered"],
            s["deliveries"]["pending"] + s["deliveries"]["waiting"],
            s["deliveries"]["failed"],
        )
        for s in rows
    ]
    headers = (
        "ENDPOINT", "ATTEMPTS", "OK", "4XX", "5XX", "NO ANSWER", "SUCCESS", "P50 MS", "P95 MS",
        "GIVEN UP", "QUEUED", "FAILED",
    )  # fmt: skip
    return table(lines, headers)

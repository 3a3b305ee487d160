"""`ethhook delivery`: inspect deliveries and send them again."""

from __future__ import annotations

import argparse
from typing import Any

from ethhook.cli.common import (
    Commands,
    Parser,
    add_command,
    add_group,
    describe,
    emit,
    json_default,
    positive_int,
    since,
    table,
)
from ethhook.config import Settings
from ethhook.db.models import DeliveryStatus
from ethhook.exceptions import InputError
from ethhook.service.deliveries import DeliveryFilter
from ethhook.service.public import to_public
from ethhook.service.scope import OPERATOR


def register(commands: Commands) -> None:
    group = add_group(commands, "delivery", "inspect and retry deliveries")
    listing = add_command(group, "list", cmd_delivery_list, "list deliveries, newest filters first")
    _add_filters(listing)
    listing.add_argument("--limit", type=positive_int, default=100)
    retry = add_command(
        group,
        "retry",
        cmd_delivery_retry,
        "send deliveries again now: by ids, or every one matching --status/--endpoint/--since",
    )
    retry.add_argument("ids", nargs="*", type=positive_int, help="delivery ids")
    _add_filters(retry)
    show = add_command(group, "show", cmd_delivery_show, "show a delivery with every attempt")
    show.add_argument("id", type=positive_int, help="delivery id")


def _add_filters(parser: Parser) -> None:
    """The filters `delivery list` and `delivery retry` share (see _where)."""
    parser.add_argument("--status", choices=DeliveryStatus.ALL, default=None)
    parser.add_argument("--endpoint", type=positive_int, default=None, metavar="ID")
    parser.add_argument(
        "--since",
        default=None,
        metavar="ISO",
        help="created at or after, e.g. 2026-11-27T08:00Z",
    )


def _where(args: argparse.Namespace) -> DeliveryFilter:
    """The deliveries --status/--endpoint/--since select."""
    return DeliveryFilter(
        status=args.status,
        endpoint_id=args.endpoint,
        since=since(args.since) if args.since else None,
    )


def cmd_delivery_list(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.deliveries import list_deliveries
    from ethhook.service.pages import MAX_LIMIT

    where = _where(args)
    data: list[dict[str, Any]] = []
    cursor: str | None = None
    with session_scope() as session:
        while len(data) < args.limit:
            limit = min(MAX_LIMIT, args.limit - len(data))
            page = list_deliveries(session, where, scope=OPERATOR, cursor=cursor, limit=limit)
            data += [to_public(d) for d in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    rows = [
        (
            d["id"],
            d["endpoint_id"],
            d["kind"],
            d["status"],
            d["attempt_count"],
            d["last_status_code"],
            json_default(d["created_at"]),
        )
        for d in data
    ]
    headers = ("ID", "ENDPOINT", "KIND", "STATUS", "ATTEMPTS", "LAST", "CREATED")
    emit(args, data, lambda: table(rows, headers) if rows else "no deliveries")
    return 0


def cmd_delivery_show(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.deliveries import show_delivery

    with session_scope() as session:
        details = show_delivery(session, args.id, scope=OPERATOR)
    data = to_public(details.as_public())

    def human() -> str:
        head = {k: v for k, v in data.items() if k != "attempts"}
        rows = [
            (
                a["attempt"],
                json_default(a["started_at"]),
                f"{a['duration_ms']:.1f}",
                a["status_code"],
                (a["error"] or "")[:60],
                (a["response_body"] or "")[:40],
            )
            for a in data["attempts"]
        ]
        attempts = (
            table(rows, ("#", "STARTED", "MS", "STATUS", "ERROR", "BODY"))
            if rows
            else "no attempts yet"
        )
        return describe(head) + "\n\n" + attempts

    emit(args, data, human)
    return 0


def cmd_delivery_retry(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.deliveries import retry_deliveries, retry_matching
    from ethhook.workqueue import enqueue_groups

    if args.ids and (args.status or args.endpoint or args.since):
        raise InputError("give delivery ids or --status/--endpoint/--since, not both")
    where = _where(args)
    with session_scope() as session:
        if args.ids:
            plan = retry_deliveries(session, args.ids, scope=OPERATOR)
        else:
            plan = retry_matching(session, where, scope=OPERATOR)
    count = plan.count
    enqueued = enqueue_groups(plan.groups)
    data = {"count": count, "enqueued_tasks": enqueued}
    emit(args, data, lambda: f"retrying {count} deliveries ({enqueued} tasks enqueued)")
    return 0

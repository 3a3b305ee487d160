"""`ethhook delivery`: inspect deliveries and send them again."""

from __future__ import annotations

import argparse

from ethhook.cli.common import Group, arg, as_operator, every_page, positive_int, since
from ethhook.cli.output import Column, describe, emit, emit_table, json_default, table
from ethhook.config import Settings
from ethhook.db.models import DeliveryStatus
from ethhook.exceptions import InputError
from ethhook.service.deliveries import KINDS, DeliveryFilter
from ethhook.service.public import to_public

GROUP = Group("delivery", "inspect and retry deliveries")
register = GROUP.register
# The filters `delivery list` and `delivery retry` share (see _where).
FILTERS = (
    arg("--status", choices=DeliveryStatus.ALL, default=None),
    arg("--endpoint", type=positive_int, default=None, metavar="ID"),
    arg("--since", default=None, metavar="ISO", help="created at or after, e.g. 2026-11-27T08:00Z"),
    arg("--until", default=None, metavar="ISO", help="created before"),
    arg("--kind", choices=KINDS, default=None, help="the webhook's type"),
    arg("--tx", default=None, metavar="HASH", help="of an event of this transaction"),
)
# `delivery list`'s table: a column's header, and the field it shows.
COLUMNS: dict[str, Column] = {
    "ID": "id",
    "ENDPOINT": "endpoint_id",
    "SEQ": "sequence",
    "ORIGIN": "origin",
    "KIND": "kind",
    "STATUS": "status",
    "ATTEMPTS": "attempt_count",
    "LAST": "last_status_code",
    "CREATED": "created_at",
}


def _where(args: argparse.Namespace) -> DeliveryFilter:
    """The deliveries the FILTERS select."""
    return DeliveryFilter(
        status=args.status,
        endpoint_id=args.endpoint,
        since=since(args.since) if args.since else None,
        until=since(args.until, "--until") if args.until else None,
        kind=args.kind,
        tx_hash=args.tx,
    )


def _filtered(args: argparse.Namespace) -> bool:
    return any(
        getattr(args, name) for name in ("status", "endpoint", "since", "until", "kind", "tx")
    )


@GROUP.command(
    "list",
    "list deliveries, newest filters first",
    *FILTERS,
    arg("--limit", type=positive_int, default=100),
)
def cmd_delivery_list(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.deliveries import list_deliveries

    emit_table(
        args, every_page(list_deliveries, _where(args), most=args.limit), COLUMNS, "no deliveries"
    )
    return 0


@GROUP.command(
    "retry",
    "send deliveries again now: by ids, or every one the filters select",
    arg("ids", nargs="*", type=positive_int, help="delivery ids"),
    *FILTERS,
)
def cmd_delivery_retry(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.deliveries import retry_deliveries, retry_matching
    from ethhook.workqueue import enqueue_groups

    if args.ids and _filtered(args):
        raise InputError(
            "give delivery ids or filters (--status/--endpoint/--since/--until/--kind/--tx), "
            "not both"
        )
    if args.ids:
        plan = as_operator(retry_deliveries, args.ids)
    else:
        plan = as_operator(retry_matching, _where(args))
    count = plan.count
    enqueued = enqueue_groups(plan.groups)
    data = {"count": count, "enqueued_tasks": enqueued}
    emit(args, data, lambda: f"retrying {count} deliveries ({enqueued} tasks enqueued)")
    return 0


@GROUP.command(
    "show",
    "show a delivery with every attempt",
    arg("id", type=positive_int, help="delivery id"),
)
def cmd_delivery_show(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.deliveries import show_delivery

    data = to_public(as_operator(show_delivery, args.id).as_public())

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

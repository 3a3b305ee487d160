"""`ethhook delivery` and `ethhook replay`: inspect deliveries and send them again."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select

from ethhook.cli.common import (
    Commands,
    Parser,
    add_command,
    add_group,
    describe,
    emit,
    json_default,
    non_negative_int,
    positive_int,
    since,
    table,
)
from ethhook.config import Settings
from ethhook.db.models import DeliveryStatus
from ethhook.exceptions import InputError, NotFoundError


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
    _register_replay(commands)


def _add_filters(parser: Parser) -> None:
    """The filters `delivery list` and `delivery retry` share (see _delivery_query)."""
    parser.add_argument("--status", choices=DeliveryStatus.ALL, default=None)
    parser.add_argument("--endpoint", type=positive_int, default=None, metavar="ID")
    parser.add_argument(
        "--since",
        default=None,
        metavar="ISO",
        help="created at or after, e.g. 2026-11-27T08:00Z",
    )


def _register_replay(commands: Commands) -> None:
    replay = add_command(
        commands,
        "replay",
        cmd_replay,
        "re-read a block range from the chain and deliver it again (same webhook-ids)",
    )
    replay.add_argument("--chain", required=True, metavar="ID_OR_NAME", help="chain id or name")
    replay.add_argument("--from-block", type=non_negative_int, required=True, metavar="A")
    replay.add_argument("--to-block", type=non_negative_int, required=True, metavar="B")
    replay.add_argument(
        "--endpoint",
        type=positive_int,
        default=None,
        metavar="ID",
        help="deliver to this endpoint only (default: every matching endpoint)",
    )


def _delivery_json(delivery: Any) -> dict[str, Any]:
    from ethhook.types import webhook_id_for

    return {
        "id": delivery.id,
        "webhook_id": webhook_id_for(delivery.endpoint_id, delivery.event_id, delivery.kind),
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "kind": delivery.kind,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
    }


def _delivery_query(args: argparse.Namespace) -> Any:
    from ethhook.db.models import Delivery

    query = select(Delivery).order_by(Delivery.id)
    if args.status:
        query = query.where(Delivery.status == args.status)
    if args.endpoint:
        query = query.where(Delivery.endpoint_id == args.endpoint)
    if args.since:
        query = query.where(Delivery.created_at >= since(args.since))
    return query


def cmd_delivery_list(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope

    with session_scope() as session:
        deliveries = session.scalars(_delivery_query(args).limit(args.limit)).all()
        data = [_delivery_json(d) for d in deliveries]
    rows = [
        (
            d["id"],
            d["endpoint_id"],
            d["kind"],
            d["status"],
            d["attempts"],
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
    from ethhook.db.models import Delivery

    with session_scope() as session:
        delivery = session.get(Delivery, args.id)
        if delivery is None:
            raise NotFoundError(f"no delivery with id {args.id} (see `ethhook delivery list`)")
        data = _delivery_json(delivery)
        data["attempt_list"] = [
            {
                "attempt": a.attempt_number,
                "started_at": a.started_at,
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "error": a.error,
                "response_body": a.response_body,
            }
            for a in delivery.attempt_rows
        ]

    def human() -> str:
        head = {k: v for k, v in data.items() if k != "attempt_list"}
        rows = [
            (
                a["attempt"],
                json_default(a["started_at"]),
                f"{a['duration_ms']:.1f}",
                a["status_code"],
                (a["error"] or "")[:60],
                (a["response_body"] or "")[:40],
            )
            for a in data["attempt_list"]
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
    from ethhook.db.models import Delivery
    from ethhook.deliver.manual import retry_deliveries
    from ethhook.workqueue import enqueue_groups

    if args.ids and (args.status or args.endpoint or args.since):
        raise InputError("give delivery ids or --status/--endpoint/--since, not both")
    if not args.ids and not args.status:
        raise InputError(
            "give delivery ids, or --status failed (with --endpoint/--since) to retry many"
        )
    with session_scope() as session:
        if args.ids:
            ids = list(dict.fromkeys(args.ids))
        else:
            ids = list(session.scalars(_delivery_query(args).with_only_columns(Delivery.id)))
        groups = retry_deliveries(session, ids)
    count = sum(len(g.delivery_ids) for g in groups)
    enqueued = enqueue_groups(groups)
    data = {"retried": count, "enqueued_tasks": enqueued}
    emit(args, data, lambda: f"retrying {count} deliveries ({enqueued} tasks enqueued)")
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.config import ChainConfig
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.endpoints import get_endpoint, parse_chain
    from ethhook.listen.replay import fetch_range
    from ethhook.match.replay import redeliver
    from ethhook.workqueue import enqueue_groups

    if args.to_block < args.from_block:
        raise InputError(f"--to-block {args.to_block} is before --from-block {args.from_block}")
    chain_id = parse_chain(args.chain, settings)
    chain = settings.chain_by_id(chain_id) or ChainConfig(settings.chain_name(chain_id), chain_id)
    addresses: list[str] | None = None
    if args.endpoint is not None:
        with session_scope() as session:
            endpoint = get_endpoint(session, args.endpoint)
            if not endpoint.active:
                raise InputError(
                    f"endpoint {endpoint.id} is disabled; `ethhook endpoint enable` it first"
                )
            watched = {f.address for f in endpoint.filters if f.chain_id in (None, chain_id)}
            if not watched:
                raise InputError(f"endpoint {endpoint.id} does not watch chain {chain.name}")
            addresses = None if None in watched else sorted(a for a in watched if a)
    events, head = fetch_range(chain, args.from_block, args.to_block, addresses)
    with session_scope() as session:
        groups = redeliver(session, events, head, utcnow(), args.endpoint)
    count = sum(len(g.delivery_ids) for g in groups)
    enqueue_groups(groups)
    data = {"chain_id": chain_id, "events": len(events), "deliveries": count}
    emit(
        args,
        data,
        lambda: (
            f"replaying {len(events)} events of {chain.name} blocks "
            f"{args.from_block}-{args.to_block}: {count} deliveries queued"
        ),
    )
    return 0

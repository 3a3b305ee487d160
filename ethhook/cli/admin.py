"""`ethhook db` and `ethhook endpoint`: the schema and the registered endpoints."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ethhook.cli.common import describe, emit, json_default, table
from ethhook.config import Settings
from ethhook.exceptions import InputError


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    command.upgrade(config, "head")
    emit(args, {"upgraded": True}, lambda: "database is at the latest schema")
    return 0


def _endpoint_json(endpoint: Any, with_secret: bool = False) -> dict[str, Any]:
    data = {
        "id": endpoint.id,
        "name": endpoint.name,
        "url": endpoint.url,
        "active": endpoint.active,
        "disabled_reason": endpoint.disabled_reason,
        "chains": endpoint.chain_ids,
        "contracts": endpoint.contracts,
        "events": endpoint.event_signatures,
        "topics": endpoint.topics,
        "confirmations": endpoint.confirmations,
        "rate_limit_per_s": endpoint.rate_limit_per_s,
        "retry_schedule_s": endpoint.retry_schedule_s,
        "created_at": endpoint.created_at,
    }
    if with_secret:
        data["secret"] = endpoint.secret
        data["previous_secret_expires_at"] = endpoint.previous_secret_expires_at
    return data


def cmd_endpoint_add(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.endpoints import build_spec, create_endpoint

    spec = build_spec(
        url=args.url,
        chains=args.chain,
        contracts=args.contract,
        events=args.event,
        confirmations=args.confirmations,
        rate_limit_per_s=args.rate_limit,
        retry_schedule=args.retry_schedule,
        name=args.name,
        settings=settings,
    )
    with session_scope() as session:
        endpoint = create_endpoint(session, spec)
        data = _endpoint_json(endpoint, with_secret=True)
    emit(args, data, lambda: describe(data))
    return 0


def cmd_endpoint_list(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.db.models import Endpoint

    with session_scope() as session:
        endpoints = session.scalars(select(Endpoint).order_by(Endpoint.id)).all()
        data = [_endpoint_json(e) for e in endpoints]
    rows = [
        (
            d["id"],
            "active" if d["active"] else "disabled",
            d["confirmations"],
            ",".join(map(str, d["chains"])) or "*",
            len(d["contracts"]) or "*",
            len(d["topics"]) or "*",
            d["url"],
        )
        for d in data
    ]
    headers = ("ID", "STATE", "CONF", "CHAINS", "CONTRACTS", "EVENTS", "URL")
    emit(args, data, lambda: table(rows, headers) if rows else "no endpoints")
    return 0


def cmd_endpoint_show(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.db.models import Delivery
    from ethhook.endpoints import get_endpoint

    with session_scope() as session:
        endpoint = get_endpoint(session, args.id)
        data = _endpoint_json(endpoint, with_secret=True)
        counts = session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.endpoint_id == endpoint.id)
            .group_by(Delivery.status)
        ).all()
        data["deliveries"] = {status: count for status, count in counts}
        data["failing_since"] = endpoint.failing_since
    data["circuit_breaker"] = _breaker_state(args.id, settings)
    emit(args, data, lambda: describe(data))
    return 0


def _breaker_state(endpoint_id: int, settings: Settings) -> str:
    import redis

    from ethhook.deliver.breaker import EndpointBreaker
    from ethhook.deliver.shared import redis_client

    breaker = EndpointBreaker(
        redis_client(settings.redis_url),
        endpoint_id,
        settings.breaker_fail_max,
        settings.breaker_reset_timeout_s,
        1.0,
    )
    try:
        return breaker.state()
    except redis.RedisError as exc:
        return f"unknown (Redis unreachable: {exc})"


def _endpoint_change(args: argparse.Namespace, change: Callable[[Session], Any], verb: str) -> int:
    from ethhook.db import session_scope

    with session_scope() as session:
        endpoint = change(session)
        data = _endpoint_json(endpoint, with_secret=verb == "rotated the secret of")
    emit(
        args,
        data,
        lambda: (
            f"{verb} endpoint {args.id}"
            + (
                f"\nsecret: {data['secret']}\nthe previous secret keeps signing until "
                f"{json_default(data['previous_secret_expires_at'])}"
                if "secret" in data
                else ""
            )
        ),
    )
    return 0


def cmd_endpoint_disable(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.endpoints import set_active

    reason = args.reason or "disabled by an operator"
    return _endpoint_change(args, lambda s: set_active(s, args.id, False, reason), "disabled")


def cmd_endpoint_enable(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.endpoints import set_active

    return _endpoint_change(args, lambda s: set_active(s, args.id, True, None), "enabled")


def cmd_endpoint_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.endpoints import rotate_secret

    grace = settings.secret_rotation_grace_s if args.grace_s is None else args.grace_s
    if grace < 0:
        raise InputError(f"invalid --grace-s {grace:g}: expected 0 or more seconds")
    return _endpoint_change(
        args, lambda s: rotate_secret(s, args.id, grace), "rotated the secret of"
    )


def cmd_endpoint_delete(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.endpoints import get_endpoint

    with session_scope() as session:
        session.delete(get_endpoint(session, args.id))
    emit(args, {"deleted": args.id}, lambda: f"deleted endpoint {args.id} and its deliveries")
    return 0

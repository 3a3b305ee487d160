"""Helpers for integration tests: endpoints through the CLI's own code path, counts from the database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from ethhook.config import get_settings
from ethhook.db import get_engine, session_scope
from ethhook.db.models import (
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointFilter,
    Event,
    EventKind,
    utcnow,
)
from ethhook.service.endpoints import create_endpoint
from ethhook.service.scope import OPERATOR
from ethhook.service.validation import build_spec
from ethhook.types import ChainEvent
from ethhook.workqueue import delivery_row, enqueue_match_groups, store_events, store_replayed

BIN = Path(sys.executable).parent


def add_endpoint(url: str, **kw: Any) -> tuple[int, str]:
    """Register an endpoint in-process (in `application_id`, default `default`); returns
    (id, secret)."""
    spec = build_spec(
        url=url,
        chains=kw.get("chains", []),
        contracts=kw.get("contracts", []),
        events=kw.get("events", []),
        confirmations=kw.get("confirmations", 0),
        rate_limit_per_s=kw.get("rate_limit_per_s"),
        retry_schedule=kw.get("retry_schedule"),
        name=kw.get("name"),
        settings=get_settings(),
        where=kw.get("where", ()),
    )
    with session_scope() as session:
        created = create_endpoint(
            session, spec, scope=OPERATOR, application_id=kw.get("application_id")
        )
        return created.endpoint.id, created.secret


def row_counts() -> dict[str, int]:
    with session_scope() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Endpoint, EndpointFilter, Event, Delivery)
        }


def ethhook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `ethhook` console script."""
    full_env = os.environ.copy()
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN / "ethhook"), *args], capture_output=True, text=True, env=full_env, timeout=60
    )


def store_and_match(session: Session, events: Sequence[ChainEvent], now: datetime) -> list[Any]:
    """What the listener and then the matcher do with these events, in one transaction; returns
    the deliver tasks to enqueue."""
    from ethhook.match.service import match_stored

    groups = []
    for group in store_events(session, events, now):
        groups += match_stored(session, group.event_ids, group.token, now)[1]
    return groups


def publish_events(events: Sequence[ChainEvent]) -> int:
    """Store events as the listener does, commit, and publish their matcher tasks."""
    with session_scope() as session:
        groups = store_events(session, events, utcnow())
    return enqueue_match_groups(groups)


def watched_address(n: int) -> str:
    """The address endpoint n of `seed_keyed_endpoints` watches (lowercase)."""
    return "0x" + f"{n:040x}"


def seed_keyed_endpoints(first: int, last: int, token: str, signature: str) -> None:
    """Endpoints first..last in bulk SQL (PostgreSQL), each `to == watched_address(id)` on
    `token`'s Transfers, stored as registration stores them (conditions, keyed filter row, topic
    key); then ANALYZE. Endpoint ids are set explicitly: the sequence is moved past them."""
    from sqlalchemy import text

    from ethhook.abi import parse_event_signature
    from ethhook.db import get_engine

    series = {"a": first, "b": last}
    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO endpoints (id, application_id, url, secret, event_signatures,"
                " conditions, confirmations, active, created_at, updated_at)"
                " SELECT g, (SELECT id FROM applications WHERE name = 'default'),"
                " 'http://127.0.0.1:9/w' || g, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',"
                " json_build_array(CAST(:sig AS text)),"
                " json_build_array('to == 0x' || lpad(to_hex(g), 40, '0')), 0, true, now(), now()"
                " FROM generate_series(:a, :b) g"
            ),
            {**series, "sig": signature},
        )
        conn.execute(
            text(
                "INSERT INTO endpoint_filters (endpoint_id, chain_id, address, topic0, keyed)"
                " SELECT g, 1, :token, :topic0, true FROM generate_series(:a, :b) g"
            ),
            {**series, "token": token, "topic0": parse_event_signature(signature).topic0},
        )
        conn.execute(
            text(
                "INSERT INTO endpoint_topic_keys (endpoint_id, position, value)"
                " SELECT g, 2, '0x' || lpad(to_hex(g), 64, '0') FROM generate_series(:a, :b) g"
            ),
            series,
        )
        conn.execute(
            text(
                "SELECT setval('endpoints_id_seq', GREATEST(:b, (SELECT max(id) FROM endpoints)))"
            ),
            series,
        )
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("endpoints", "endpoint_filters", "endpoint_topic_keys"):
            conn.execute(text(f"ANALYZE {table}"))


def add_pending_deliveries(
    session: Session, endpoint_id: int, events: Sequence[ChainEvent], now: datetime
) -> list[int]:
    """The events stored as matched, and one pending delivery of each to the endpoint, due at
    `now` and held by nobody; their ids, in order."""
    store_replayed(session, events, now)
    rows = [
        delivery_row(
            endpoint_id,
            e.event_id,
            EventKind.INSTANT,
            DeliveryStatus.PENDING,
            now,
            next_attempt_at=now,
        )
        for e in events
    ]
    return sorted(session.scalars(insert(Delivery).returning(Delivery.id), rows).all())


T = TypeVar("T")


def explained(run: Callable[[], T]) -> tuple[T, str]:
    """run()'s result and PostgreSQL's EXPLAIN of the one statement it sent, as it was sent."""
    captured = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        captured.append((statement, parameters))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        result = run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = captured
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("EXPLAIN " + statement, parameters)
        return result, "\n".join(row[0] for row in cursor.fetchall())
    finally:
        raw.close()

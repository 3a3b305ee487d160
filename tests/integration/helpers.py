"""Helpers for integration tests: endpoints through the CLI's own code path, counts from the database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import Delivery, Endpoint, EndpointFilter, Event, utcnow
from ethhook.service.endpoints import create_endpoint
from ethhook.service.scope import OPERATOR
from ethhook.service.validation import build_spec
from ethhook.types import ChainEvent
from ethhook.workqueue import enqueue_match_groups, store_events

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

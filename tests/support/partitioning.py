"""A PostgreSQL database of its own for the partitioning tests: they make and drop partitions and
move time around, which the session's shared database must not see. Five-minute partitions, so
a test spans many intervals without waiting."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, text

from ethhook.config import get_settings
from ethhook.db import dispose_engine, get_engine
from ethhook.db.partitions import forget_partitions
from ethhook.types import ChainEvent
from tests.support.env import BIN, PG_ADMIN_URL, ROOT
from tests.support.factories import address, transfer

INTERVAL_S = 300
ENV = {"ETHHOOK_PARTITION_INTERVAL": "5m", "ETHHOOK_RETENTION_DAYS": "2"}
HISTORY = ("events", "deliveries", "delivery_attempts")


@contextmanager
def private_database(
    env: dict[str, str] | None = None, revision: str | None = None
) -> Iterator[str]:
    """A new database migrated with `ethhook db upgrade` (or `alembic upgrade revision`), this
    process's settings pointed at it (and those of the commands it runs) for the duration, then
    dropped."""
    name = f"ethhook_part_{uuid.uuid4().hex[:8]}"
    url = f"{PG_ADMIN_URL}/{name}"
    admin = create_engine(f"{PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    wanted = {**ENV, **(env or {}), "ETHHOOK_DATABASE_URL": url}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    _forget()
    try:
        command = ["alembic", "upgrade", revision] if revision else ["ethhook", "db", "upgrade"]
        upgrade = subprocess.run(
            [str(BIN / command[0]), *command[1:]],
            env=os.environ.copy(),
            capture_output=True,
            cwd=ROOT,
        )
        assert upgrade.returncode == 0, upgrade.stderr
        yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _forget()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _forget() -> None:
    get_settings.cache_clear()
    dispose_engine()
    forget_partitions()


def event_at(when: datetime, n: int, contract: int = 1, block: int | None = None) -> ChainEvent:
    """A Transfer of `contract` whose block's time is `when` (the n-th of its block)."""
    block = block if block is not None else int(when.timestamp())
    made = transfer(contract=address(contract), block=block, log_index=n, value=n)
    return replace(made, block_timestamp=int(when.timestamp()))


def partition_of(table: str, key_sql: str, params: dict[str, Any]) -> list[str]:
    """The partitions the rows of `table` matching `key_sql` are stored in."""
    with get_engine().connect() as conn:
        found = conn.scalars(
            text(f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {key_sql}"), params
        )
        return sorted(found)


def partitions_of(table: str) -> set[str]:
    with get_engine().connect() as conn:
        return set(
            conn.scalars(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = CAST(:t AS regclass)"
                ),
                {"t": table},
            )
        )

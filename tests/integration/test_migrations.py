"""Alembic migrations and the models agree, on PostgreSQL and on SQLite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import alembic


def test_alembic_check_finds_no_drift_on_postgresql(database):
    result = alembic("check", url=database)
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_sqlite_upgrades_checks_and_downgrades(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ethhook.db'}"
    for args in (("upgrade", "head"), ("check",), ("downgrade", "base"), ("upgrade", "head")):
        result = alembic(*args, url=url)
        assert result.returncode == 0, (args, result.stderr)


@pytest.mark.usefixtures("db")
def test_db_upgrade_is_idempotent(database):
    from tests.support.cli import ethhook

    result = ethhook("db", "upgrade")
    assert result.returncode == 0, result.stderr


def _day_rows_after_upgrade(url: str) -> list[tuple]:
    """Hour rows stored under 0007 (two on one UTC day, one on the next), then the upgrade."""
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, text

    assert alembic("upgrade", "0007", url=url).returncode == 0
    engine = create_engine(url)
    counts = ", ".join(["1"] * 6) + ", 10.0, " + ", ".join(["1"] * 10)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO endpoints (id, application_id, url, secret, event_signatures,"
                " confirmations, active, created_at, updated_at) VALUES (1, (SELECT id FROM"
                " applications WHERE name = 'default'), 'http://x', 's', '[]', 0, true, :t, :t)"
            ),
            {"t": datetime(2026, 11, 30, tzinfo=UTC)},
        )
        for hour in (datetime(2026, 11, 30, 10), datetime(2026, 11, 30, 23), datetime(2026, 12, 1)):
            conn.execute(
                text(f"INSERT INTO delivery_rollups VALUES (1, 3600, :start, {counts})"),
                {"start": hour.replace(tzinfo=UTC)},
            )
    result = alembic("upgrade", "head", url=url)
    assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT period_start, attempts, duration_ms_total FROM delivery_rollups"
                " WHERE period_s = 86400 ORDER BY 1"
            )
        ).all()
    engine.dispose()
    return [(str(start)[:10], attempts, total) for start, attempts, total in rows]


def test_the_stats_migration_adds_up_day_rows_from_hour_rows(tmp_path: Path):
    from sqlalchemy import create_engine, text

    from tests.support.env import PG_ADMIN_URL

    expected = [("2026-11-30", 2, 20.0), ("2026-12-01", 1, 10.0)]
    assert _day_rows_after_upgrade(f"sqlite:///{tmp_path / 'ethhook.db'}") == expected
    admin = create_engine(f"{PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
    name = f"ethhook_migration_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        assert _day_rows_after_upgrade(f"{PG_ADMIN_URL}/{name}") == expected
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

"""Alembic migrations and the models agree, on PostgreSQL and on SQLite."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT


def alembic(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ETHHOOK_DATABASE_URL": url}
    return subprocess.run(
        [str(BIN / "alembic"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


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
    from tests.integration.helpers import ethhook

    result = ethhook("db", "upgrade")
    assert result.returncode == 0, result.stderr

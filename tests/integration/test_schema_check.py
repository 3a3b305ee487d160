"""A database EthHook's migrations never ran on, or ran on only up to an older revision: every
command and process says so in one line naming `ethhook db upgrade`, never with a traceback."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from ethhook.db.schema import SCHEMA_REVISION
from tests.support.cli import alembic, ethhook
from tests.support.env import BIN, PG_ADMIN_URL, ROOT, TMP
from tests.support.waiting import free_port

UPGRADE = "run `ethhook db upgrade`"
# A password in the URL (trust authentication ignores it): no message may show it.
PASSWORD = "hunter2-never-shown"


@pytest.fixture()
def empty_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped at the end); its URL carries a password."""
    name = f"ethhook_schema_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    scheme, _, rest = PG_ADMIN_URL.partition("://")
    user, _, host = rest.partition("@")
    yield f"{scheme}://{user}:{PASSWORD}@{host}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed; fails on a traceback, more lines, or success."""
    assert result.returncode not in (0, None), (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert PASSWORD not in result.stderr
    return lines[0]


def test_a_database_never_migrated_is_one_line_naming_db_upgrade(empty_database: str) -> None:
    # Given a database with no table at all, when a command reads it
    result = ethhook("endpoint", "list", env={"ETHHOOK_DATABASE_URL": empty_database})

    # Then it says which database and what to run, in one line, and prints nothing else
    name = empty_database.rsplit("/", 1)[1]
    assert one_error_line(result) == (
        f"ethhook: error: the database at postgresql+psycopg2://127.0.0.1:5432/{name} has no "
        f"EthHook schema; {UPGRADE}"
    )
    assert result.stdout == ""


def test_an_older_schema_names_both_revisions(empty_database: str) -> None:
    # Given a database migrated up to 0007 only
    assert alembic("upgrade", "0007", url=empty_database).returncode == 0

    # When commands run on it, Then each says where it is and where it must be
    for args in (("endpoint", "list"), ("delivery", "list"), ("app", "list"), ("stats",)):
        result = ethhook(*args, env={"ETHHOOK_DATABASE_URL": empty_database})
        assert one_error_line(result) == (
            f"ethhook: error: the database schema is at 0007, this EthHook needs "
            f"{SCHEMA_REVISION}; {UPGRADE}"
        ), args


def test_bad_input_is_refused_before_the_database_is_checked(empty_database: str) -> None:
    # The check runs on the command's first connection: input refused before it is not a
    # database matter, and says what is wrong with the input.
    env = {"ETHHOOK_DATABASE_URL": empty_database}
    result = ethhook("endpoint", "disable", "1", "--reason", "r" * 501, env=env)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "reason" in line and "db upgrade" not in line


def test_db_upgrade_is_not_blocked_and_fixes_it(empty_database: str) -> None:
    env = {"ETHHOOK_DATABASE_URL": empty_database}
    upgraded = ethhook("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    listed = ethhook("endpoint", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr


def test_a_table_missing_at_the_current_revision_is_one_line_too(empty_database: str) -> None:
    # Given a database at the current revision whose endpoints table was dropped by hand
    assert ethhook("db", "upgrade", env={"ETHHOOK_DATABASE_URL": empty_database}).returncode == 0
    engine = create_engine(empty_database)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE endpoints CASCADE"))
    engine.dispose()

    # When a command reads it, Then the database's own complaint is one line naming the fix
    result = ethhook("endpoint", "list", env={"ETHHOOK_DATABASE_URL": empty_database})
    line = one_error_line(result)
    assert line.startswith("ethhook: error: the database does not have the tables this EthHook")
    assert '(relation "endpoints" does not exist)' in line and line.endswith(UPGRADE)


def run_process(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A long-running process that should stop at once; one that keeps running fails the test."""
    try:
        return subprocess.run(
            args,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=90,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{args} kept running on a database without the schema") from exc


PROCESSES = {
    "listen": [str(BIN / "ethhook"), "listen"],
    "api": [str(BIN / "ethhook"), "api"],
    "up": [str(BIN / "ethhook"), "up", "--workdir", str(TMP / "up-schema"), "--no-api"],
    "worker": [str(BIN / "ethhook-worker"), "-Q", "match", "-c", "1", "-n", "schema@%h"],
}


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_processes_refuse_to_start_on_an_older_schema(process: str, empty_database: str) -> None:
    # Given a database one revision behind
    assert alembic("upgrade", "0008", url=empty_database).returncode == 0
    env = {
        "ETHHOOK_DATABASE_URL": empty_database,
        # A chain to follow (never reached: the process stops before it connects).
        "ETHEREUM_HTTP": f"http://127.0.0.1:{free_port()}",
        "ETHHOOK_API_PORT": str(free_port()),
    }

    # When the process starts, Then it stops at once with one error line naming the fix
    result = run_process(PROCESSES[process], env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line.lower()]
    assert errors == [
        f"ethhook: error: the database schema is at 0008, this EthHook needs {SCHEMA_REVISION}; "
        f"{UPGRADE}"
    ], result.stderr


def test_an_empty_sqlite_file_is_one_line_too(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'ethhook.db'}"
    result = ethhook("endpoint", "list", env={"ETHHOOK_DATABASE_URL": url})
    assert one_error_line(result) == (
        f"ethhook: error: the database at {url} has no EthHook schema; {UPGRADE}"
    )

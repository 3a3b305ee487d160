"""Whether the database has the schema this code needs; if not, one line: `ethhook db upgrade`.

Every command and process checks once as it starts (one query on alembic_version). A table or column
missing anyway (dropped by hand, say) is recognised in the database's own error, for the same line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from ethhook.exceptions import SchemaError
from ethhook.redact import redact_url

# The head of migrations/ (tests/unit/test_db_schema.py fails until they agree). Revisions are
# four-digit numbers, each above the one it revises, so an older schema compares smaller.
SCHEMA_REVISION = "0018"

UPGRADE = "run `ethhook db upgrade`"

# PostgreSQL's undefined_table and undefined_column; SQLite says it in words.
_PG_MISSING = ("42P01", "42703")
_SQLITE_MISSING = ("no such table", "no such column")
# How long a starting process waits for PostgreSQL before it starts without the check.
CONNECT_TIMEOUT_S = 5


def database_at(url: str) -> str:
    """The database named for a message: a SQLite file's URL as it is (a path holds no secret),
    else scheme://host:port/database, without credentials or options."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return url
    return f"{redact_url(url)}/{parsed.database or ''}"


def revision_problem(stored: Sequence[str], database: str) -> str | None:
    """What is wrong with `database` (see database_at) whose alembic_version holds `stored`."""
    if not stored:
        return f"the database at {database} has no EthHook schema; {UPGRADE}"
    if all(re.fullmatch(r"[0-9]{4}", r) for r in stored):
        newest = max(stored, key=int)
        if int(newest) < int(SCHEMA_REVISION):
            return (
                f"the database schema is at {newest}, this EthHook needs {SCHEMA_REVISION}; "
                f"{UPGRADE}"
            )
    # Current; or newer (a rolling upgrade migrates before it replaces the processes), or a
    # revision of someone else's: the code runs, since refusing would stop a rolling upgrade.
    return None


def is_missing_relation(exc: DBAPIError) -> bool:
    """Whether the database refused a statement for a table or column it does not have."""
    code = getattr(exc.orig, "pgcode", None)
    if code is not None:
        return code in _PG_MISSING
    return isinstance(exc, OperationalError) and str(exc.orig).startswith(_SQLITE_MISSING)


def missing_relation_message(exc: DBAPIError) -> str | None:
    """The line for a statement that failed on a missing table or column; None for other errors."""
    if not is_missing_relation(exc):
        return None
    reason = str(exc.orig).strip().splitlines()[0]
    return f"the database does not have the tables this EthHook uses ({reason}); {UPGRADE}"


def stored_revisions(conn: Connection) -> list[str]:
    """The revisions in alembic_version (none when the table is not there); `conn` is left with
    no transaction, as it was."""
    try:
        return [str(r) for r in conn.scalars(text("SELECT version_num FROM alembic_version"))]
    except DBAPIError as exc:
        if is_missing_relation(exc):
            return []
        raise
    finally:
        conn.rollback()


def check_connection(conn: Connection, url: str) -> None:
    """Raise SchemaError unless the database at `url` has this code's schema (or a newer one)."""
    problem = revision_problem(stored_revisions(conn), database_at(url))
    if problem is not None:
        raise SchemaError(problem)


def check_schema(engine: Engine, url: str) -> None:
    """check_connection on a connection of its own."""
    with engine.connect() as conn:
        check_connection(conn, url)


def check_on_first_connection(engine: Engine, url: str) -> None:
    """check_connection on the first connection `engine` makes, before anything else runs on it:
    a command that refuses its input before its first statement never connects at all."""
    checked = False

    def check(conn: Connection) -> None:
        nonlocal checked
        if checked:
            return
        try:
            check_connection(conn, url)
        except BaseException:
            conn.close()  # back to the pool: the caller never sees this connection
            raise
        checked = True

    event.listen(engine, "engine_connect", check)


def check_schema_at_start(url: str) -> None:
    """check_schema for a long-running process: a database that does not answer (yet) is left to
    the process, which reports an outage and retries as it always does; only a database that
    answers with a missing or older schema raises SchemaError."""
    options = {} if url.startswith("sqlite") else {"connect_timeout": CONNECT_TIMEOUT_S}
    engine = create_engine(url, poolclass=NullPool, connect_args=options)
    try:
        check_schema(engine, url)
    except OperationalError:
        return
    finally:
        engine.dispose()

"""Database engine and session scope; the engine is created lazily and disposed after fork."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from ethhook.config import get_settings

_engine: Engine | None = None
_sessionmaker: sessionmaker[Session] | None = None
# Set by check_schema_on_first_use: the next engine made checks the schema on its first connection.
_check_schema = False


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def check_schema_on_first_use() -> None:
    """Make this process check the database's schema (ethhook.db.schema) once, when it first
    reaches the database: a command that refuses its input first never connects at all."""
    global _check_schema
    _check_schema = True


def get_engine() -> Engine:
    global _engine, _sessionmaker, _check_schema
    if _engine is None:
        url = get_settings().database_url
        _engine = make_engine(url)
        if _check_schema:
            from ethhook.db.schema import check_on_first_connection

            check_on_first_connection(_engine, url)
            _check_schema = False
        _sessionmaker = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def dispose_engine() -> None:
    """Forget the connection pool (call in a forked child; connections must not be shared)."""
    global _engine, _sessionmaker
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = None
    _sessionmaker = None


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back otherwise."""
    get_engine()
    assert _sessionmaker is not None
    session = _sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

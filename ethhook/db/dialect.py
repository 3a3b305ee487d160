"""What PostgreSQL and SQLite do differently, named once for every module that asks.

SQLite stays a supported database: it is what lets `ethhook demo` run without a server. The fast
paths (arrays, writable CTEs, advisory locks, SKIP LOCKED) are PostgreSQL's; a caller whose
statements differ asks `is_postgres`, and the rest use the words below instead of branching.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ARRAY, ColumnElement, Connection, Engine, Select, Text, any_, cast
from sqlalchemy import bindparam as _bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from ethhook.db.arrays import array_literal

Bind = Session | Connection | Engine | Dialect
SelectT = TypeVar("SelectT", bound=Select)

# For compiling column types into the text of PostgreSQL-only statements written once.
POSTGRES: Dialect = postgresql.dialect()


def is_postgres(bind: Bind) -> bool:
    """True on PostgreSQL, False on SQLite (the demo's database)."""
    if isinstance(bind, Session):
        return bind.get_bind().dialect.name == "postgresql"
    if isinstance(bind, Dialect):
        return bind.name == "postgresql"
    return bind.dialect.name == "postgresql"


def insert(table: Any, bind: Bind) -> postgresql.Insert | sqlite.Insert:
    """The database's INSERT for `table` (a model or a Table): one with ON CONFLICT clauses
    (`on_conflict_do_nothing`, `on_conflict_do_update`, `excluded`)."""
    return (postgresql.insert if is_postgres(bind) else sqlite.insert)(table)


def array(name: str, values: Sequence[Any], item: Any) -> ColumnElement[Any]:
    """`values` bound as ONE PostgreSQL array parameter named `name`, of `item`s: one text value
    in the array syntax, cast to the array type (`db.arrays.array_literal`; a caller that sends the
    statement's values itself sends `array_literal(values)` under `name`)."""
    literal = array_literal(list(values))
    if isinstance(literal, list):  # values with no plain text form: psycopg2's ARRAY[…]
        return _bindparam(name, literal, type_=ARRAY(item))
    return cast(_bindparam(name, literal, type_=Text), ARRAY(item))


def ids_in(column: Any, ids: Sequence[Any], bind: Bind, item: Any) -> ColumnElement[bool]:
    """`column = ANY(:ids)` on PostgreSQL, the ids bound as one array: a short statement whatever
    their number, nothing per id to render or bind. `column IN (…)` on SQLite."""
    if is_postgres(bind):
        named: ColumnElement[bool] = column == any_(array("ids", ids, item))
        return named
    in_list: ColumnElement[bool] = column.in_(ids)
    return in_list


def skip_locked(query: SelectT, bind: Bind, of: Any = None) -> SelectT:
    """`query` FOR UPDATE SKIP LOCKED (`of` the rows of that table) on PostgreSQL; as it is on
    SQLite, whose writers lock the whole database anyway."""
    if is_postgres(bind):
        return query.with_for_update(skip_locked=True, of=of)
    return query

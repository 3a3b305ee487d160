"""Many rows in one statement: rows sent as one array per column, turned back into rows by `unnest`.

On PostgreSQL the rows travel as one array per column and `unnest` turns them back into rows: one
short statement whatever the batch size, with nothing per row for SQLAlchemy to compile or bind
(a column whose value every row shares travels once, as a scalar).
It is 2× cheaper than a multi-VALUES insert for the matcher's 100-row batches (bench/RESULTS.md).
Each array travels as ONE text value (`db.arrays.array_literal`).
SQLite (the demo's database) gets SQLAlchemy's multi-row INSERT … ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Table, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from ethhook.db.arrays import array_literal
from ethhook.db.dialect import insert, is_postgres


def unnest_of(table: Table, names: Sequence[str], dialect: Dialect, prefix: str = "c") -> str:
    """`unnest(CAST(:c0 AS type[]), …)` over `names` (columns of `table`), in that order: the text
    is the same for any number of rows, so it can be written once."""
    arrays = (
        f"CAST(:{prefix}{i} AS {table.c[name].type.compile(dialect)}[])"
        for i, name in enumerate(names)
    )
    return f"unnest({', '.join(arrays)})"


def arrays_of(
    table: Table,
    names: Sequence[str],
    columns: Sequence[Sequence[Any]],
    dialect: Dialect,
    prefix: str = "c",
) -> dict[str, str | list[Any]]:
    """The parameters of `unnest_of(table, names, dialect, prefix)`: one array of values per
    column (`array_literal`), each value bound as the column's type binds it."""
    params: dict[str, str | list[Any]] = {}
    for i, (name, values) in enumerate(zip(names, columns, strict=True)):
        process = table.c[name].type.bind_processor(dialect)
        params[f"{prefix}{i}"] = array_literal([process(v) for v in values] if process else values)
    return params


class Parent(NamedTuple):
    """What a foreign key would check, for a table that cannot have one (a partitioned history
    table): each row's `column` names a row of `table` by its `key`."""

    column: str
    table: Table
    key: str


def insert_ignoring_conflicts(
    session: Session,
    model: Any,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    returning: Sequence[str] = (),
    parent: Parent | None = None,
) -> list[tuple[Any, ...]]:
    """Insert `rows` (dicts with the same keys) into `model`'s table; rows that conflict on the
    `conflict` columns are left out. Returns the `returning` columns of the inserted rows.

    With `parent`, rows whose parent row does not exist are left out too, and the parent rows
    are locked FOR KEY SHARE until the transaction ends, in the same statement: a delete of one
    waits for this transaction, and then finds the rows inserted here, as with a foreign key."""
    if not rows:
        return []
    table: Table = model.__table__
    if not is_postgres(session):
        if parent is not None:
            rows = _with_parent(session, rows, parent)
            if not rows:
                return []
        # RETURNING makes SQLAlchemy send one multi-VALUES statement, not one INSERT per row.
        columns = table.c[*returning] if returning else table.primary_key.columns
        statement = (
            insert(model, session)
            .on_conflict_do_nothing(index_elements=conflict)
            .returning(*columns)
        )
        inserted = [tuple(r) for r in session.execute(statement, rows)]
        return inserted if returning else []
    dialect = session.get_bind().dialect
    names = list(rows[0])
    quote = dialect.identifier_preparer.quote
    params: dict[str, Any] = {}
    arrays, unnested, values_of = [], [], []
    for i, name in enumerate(names):
        column = table.c[name]
        process = column.type.bind_processor(dialect)
        values = [row[name] for row in rows]
        sql_type = column.type.compile(dialect)
        if i and _all_equal(values):
            # A value every row shares (the batch's time, status, lease expiry) is sent once,
            # not once per row for PostgreSQL to parse (and bound once).
            params[f"c{i}"] = process(values[0]) if process else values[0]
            values_of.append(f"CAST(:c{i} AS {sql_type})")
        else:
            params[f"c{i}"] = array_literal([process(v) for v in values] if process else values)
            arrays.append(f"CAST(:c{i} AS {sql_type}[])")
            unnested.append(f"c{i}")
            values_of.append(f"u.c{i}")
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))})"
        f" SELECT {', '.join(values_of)}"
        f" FROM unnest({', '.join(arrays)}) AS u({', '.join(unnested)})"
    )
    if parent is not None:
        key = parent.table.c[parent.key]
        params["parents"] = array_literal(sorted({row[parent.column] for row in rows}))
        sql += (
            f" WHERE {values_of[names.index(parent.column)]} IN (SELECT {quote(key.name)}"
            f" FROM {quote(parent.table.name)} WHERE {quote(key.name)}"
            f" = ANY(CAST(:parents AS {key.type.compile(dialect)}[])) FOR KEY SHARE)"
        )
    sql += f" ON CONFLICT ({', '.join(map(quote, conflict))}) DO NOTHING"
    if returning:
        sql += f" RETURNING {', '.join(map(quote, returning))}"
        return [tuple(r) for r in session.execute(text(sql), params)]
    session.execute(text(sql), params)
    return []


def _with_parent(
    session: Session, rows: Sequence[dict[str, Any]], parent: Parent
) -> list[dict[str, Any]]:
    """The rows whose parent row exists (SQLite: one writer at a time, nothing to lock)."""
    key = parent.table.c[parent.key]
    wanted = sorted({row[parent.column] for row in rows})
    found = set(session.scalars(select(key).where(key.in_(wanted))))
    return [row for row in rows if row[parent.column] in found]


def _all_equal(values: list[Any]) -> bool:
    """Every value is equal to the first and of its type (1, 1.0 and True are not one value)."""
    return values.count(values[0]) == len(values) and len(set(map(type, values))) == 1

"""Arrays sent to PostgreSQL as ONE text value in its array syntax, which the statement's CAST
reads with the element type's input function.

psycopg2 sends a Python list as `ARRAY[v1, v2, …]`: an expression of one constant per value that
PostgreSQL parses, types and folds one by one. Six arrays of 50 values (ids, texts, times) cost
300 µs of the server's CPU and 340 µs of the client's per statement that way, against 133 and 20
as literals (measured on this project's machine, bench/RESULTS.md §11).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any


def array_literal(values: Sequence[Any]) -> str | list[Any]:
    """`values` as PostgreSQL's array input text (`{1,"a b",NULL}`), for a parameter the
    statement casts to an array type; the list as it is when a value has no plain text form
    here (bytes, nested lists: psycopg2 sends those as ARRAY[…])."""
    parts: list[str] = []
    append = parts.append
    for v in values:
        kind = type(v)  # the common exact types first, in line: this runs for every value sent
        if kind is str:
            append(_quoted(v))
        elif kind is int:
            append(str(v))
        elif v is None:
            append("NULL")
        elif kind is dt.datetime:
            append(f'"{v.isoformat()}"')
        elif isinstance(v, bool):
            append("t" if v else "f")
        elif isinstance(v, int):
            append(str(int(v)))  # an IntEnum's number, not its name
        elif isinstance(v, Decimal):
            append(str(v))
        elif isinstance(v, float):
            append(repr(v) if v == v and abs(v) != float("inf") else _FLOAT_WORDS[repr(v)])
        elif isinstance(v, str):
            append(_quoted(str.__str__(v)))  # its text, whatever the subclass's __str__ says
        elif isinstance(v, dt.datetime | dt.date):
            append('"' + v.isoformat() + '"')
        else:
            return list(values)
    return "{" + ",".join(parts) + "}"


def _quoted(text: str) -> str:
    """`text` as one double-quoted element of an array's input text."""
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


_FLOAT_WORDS = {"nan": '"NaN"', "inf": '"Infinity"', "-inf": '"-Infinity"'}

"""What `ethhook` prints: JSON with --json, otherwise tables and `field: value` lines."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    if args.json:
        print(json.dumps(data, default=json_default, indent=2))
    else:
        print(human())


# A column of a list's table: the field it shows, or what it makes of an item.
Column = str | Callable[[dict[str, Any]], Any]


def emit_table(
    args: argparse.Namespace, data: list[dict[str, Any]], columns: Mapping[str, Column], empty: str
) -> None:
    """A list: JSON, or a table with a column per header (`empty` when there is no item)."""

    def cell(item: dict[str, Any], column: Column) -> Any:
        value = item[column] if isinstance(column, str) else column(item)
        return json_default(value) if isinstance(value, datetime) else value

    rows = [[cell(item, column) for column in columns.values()] for item in data]
    emit(args, data, lambda: table(rows, list(columns)) if rows else empty)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def describe(data: dict[str, Any]) -> str:
    lines = []
    for key, value in data.items():
        if key == "where":  # conditions hold commas of their own, and all of them must hold
            value = " and ".join(value) or "(none)"
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "(any)"
        elif isinstance(value, datetime):
            value = json_default(value)
        lines.append(f"{key + ':':<28} {'' if value is None else value}")
    return "\n".join(lines)

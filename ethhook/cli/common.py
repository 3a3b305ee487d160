"""What every `ethhook` command shares: the parser, how commands join it, argument types, output."""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NoReturn, TypeAlias

from ethhook.config import BIGINT_MAX, Settings

EXIT_USAGE = 2

# What a command runs: the parsed arguments and the settings in, the exit code out.
Handler = Callable[[argparse.Namespace, Settings], int]


class Schema(Enum):
    """What a command needs of the database's schema, checked before it runs (ethhook.db.schema)."""

    REQUIRED = "required"  # the current schema, or one line saying to run `ethhook db upgrade`
    IF_REACHABLE = "if reachable"  # the same, unless the database does not answer yet
    NONE = "none"  # nothing: the command makes the schema, or does not use the database


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


# What `add_subparsers()` returns: argparse names its type privately, and it is generic only to
# the type checker, hence the quotes.
Commands: TypeAlias = "argparse._SubParsersAction[Parser]"


def add_group(commands: Commands, name: str, help_text: str) -> Commands:
    """Add `ethhook NAME ACTION`: a command whose actions are commands of their own."""
    group = commands.add_parser(name, help=help_text)
    return group.add_subparsers(dest="cmd", required=True, metavar="ACTION")


def add_command(
    commands: Commands,
    name: str,
    handler: Handler,
    help_text: str,
    schema: Schema = Schema.REQUIRED,
) -> Parser:
    """Add a command that runs `handler`; like every command, it prints JSON with --json."""
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=handler, schema=schema)
    return parser


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    if args.json:
        print(json.dumps(data, default=json_default, indent=2))
    else:
        print(human())


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def since(text: str) -> datetime:
    from ethhook.service.times import parse_since

    return parse_since(text)


# What a command line may give as a number: ASCII digits only (int() and float() also take
# other scripts' digits, underscores and surrounding whitespace), and no NaN or infinity.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# More digits than int() converts (its guard against quadratic conversion times).
_MAX_DIGITS = 4300


def _integer(text: str, low: int, expected: str) -> int:
    """`text` as an integer from `low` to BIGINT_MAX: every id, block number and count a command
    takes fits the database's widest integer column, so none reaches it and overflows there."""
    match = _INTEGER.fullmatch(text)
    value = int(text) if match and len(text) <= _MAX_DIGITS else None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text[:40]!r}")
    if value > BIGINT_MAX:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is out of range (at most {BIGINT_MAX})")
    return value


def positive_int(text: str) -> int:
    """An id, a limit or a count."""
    return _integer(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """A block number or a number of confirmations."""
    return _integer(text, 0, "an integer of 0 or more")


def number(text: str) -> float:
    """A finite number: no option means infinity, and NaN compares false with every limit."""
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text[:40]!r}")
    return value


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

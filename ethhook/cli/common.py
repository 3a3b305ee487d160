"""What every `ethhook` command shares: the parser, how commands join it, argument types, output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeAlias

from ethhook.config import Settings
from ethhook.exceptions import InputError

EXIT_USAGE = 2

# What a command runs: the parsed arguments and the settings in, the exit code out.
Handler = Callable[[argparse.Namespace, Settings], int]


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


def add_command(commands: Commands, name: str, handler: Handler, help_text: str) -> Parser:
    """Add a command that runs `handler`; like every command, it prints JSON with --json."""
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=handler)
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
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(
            f"invalid --since {text!r}: expected ISO 8601, e.g. 2026-11-27T08:00:00Z"
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer of 0 or more, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer of 0 or more, got {text!r}")
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def describe(data: dict[str, Any]) -> str:
    lines = []
    for key, value in data.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "(any)"
        elif isinstance(value, datetime):
            value = json_default(value)
        lines.append(f"{key + ':':<28} {'' if value is None else value}")
    return "\n".join(lines)

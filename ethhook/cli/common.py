"""What every `ethhook` command shares: the parser, how commands join it, argument types, and
calling the service as the operator."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias, TypeVar

from ethhook.config import BIGINT_MAX, Settings

if TYPE_CHECKING:
    from ethhook.service.pages import Page

EXIT_USAGE = 2

# What a command runs: the parsed arguments and the settings in, the exit code out.
Handler = Callable[[argparse.Namespace, Settings], int]
T = TypeVar("T")


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


@dataclass(frozen=True)
class Arg:
    """An argument as argparse's add_argument takes it: its name or flags, then its options."""

    names: tuple[str, ...]
    options: dict[str, Any]


def arg(*names: str, **options: Any) -> Arg:
    return Arg(names, options)


class Group:
    """`ethhook NAME ACTION`: a command whose actions are commands of their own, each declared
    on its handler with `@group.command(...)`; `--help` lists them in that order."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text
        self.actions: list[tuple[str, Handler, str, tuple[Arg, ...]]] = []

    def command(self, name: str, help_text: str, *args: Arg) -> Callable[[Handler], Handler]:
        """Declare the decorated handler as the action `name`, taking `args`."""

        def declare(handler: Handler) -> Handler:
            self.actions.append((name, handler, help_text, args))
            return handler

        return declare

    def register(self, commands: Commands) -> None:
        actions = add_group(commands, self.name, self.help)
        for name, handler, help_text, args in self.actions:
            parser = add_command(actions, name, handler, help_text)
            for argument in args:
                parser.add_argument(*argument.names, **argument.options)


def as_operator(operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`operation(session, *args, scope=OPERATOR, **kwargs)` in one transaction, committed before
    it returns: the `ethhook` command acts as the operator."""
    from ethhook.db import session_scope
    from ethhook.service.scope import OPERATOR

    with session_scope() as session:
        return operation(session, *args, scope=OPERATOR, **kwargs)


def every_page(
    operation: Callable[..., Page[Any]], *args: Any, most: int | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    """The public fields of every item of a service's list (or of the first `most`), read a page
    of at most MAX_LIMIT at a time in one transaction."""
    from ethhook.db import session_scope
    from ethhook.service.pages import MAX_LIMIT
    from ethhook.service.public import to_public
    from ethhook.service.scope import OPERATOR

    items: list[dict[str, Any]] = []
    cursor: str | None = None
    with session_scope() as session:
        while most is None or len(items) < most:
            limit = MAX_LIMIT if most is None else min(MAX_LIMIT, most - len(items))
            page = operation(session, *args, scope=OPERATOR, cursor=cursor, limit=limit, **kwargs)
            items += [to_public(item) for item in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return items


def since(text: str, what: str = "--since") -> datetime:
    from ethhook.service.times import parse_since

    return parse_since(text, what)


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

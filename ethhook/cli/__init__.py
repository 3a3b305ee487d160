"""The `ethhook` command: database, applications, endpoints, deliveries, replays, statistics and
the long-running processes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from sqlalchemy.exc import DBAPIError, OperationalError

from ethhook import __version__
from ethhook.cli.common import EXIT_USAGE, Parser, Schema
from ethhook.config import Settings, get_settings
from ethhook.exceptions import ConfigError, EthHookError, InputError

# The modules of ethhook.cli that add commands, in `ethhook --help`'s order, with the commands each
# adds. A command line that names one of them builds that module's commands only: `ethhook
# listen` loads none of the endpoint, delivery, API or statistics code (18 MB of the listener's
# RSS, bench/RESULTS.md §15), and every command starts sooner.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "database": ("db",),
    "endpoints": ("endpoint",),
    "apps": ("app",),
    "deliveries": ("delivery",),
    "explain": ("explain",),
    "replays": ("replay",),
    "stats": ("stats",),
    "api": ("api",),
    "processes": ("listen", "up", "demo"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `ethhook` parser: with the commands of `command`'s module when it names one, else
    with every command (`ethhook --help`, or a word that is no command: the error lists them)."""
    parser = Parser(
        prog="ethhook",
        description="EthHook: on-chain EVM events delivered as signed, retried webhooks.",
        epilog="Settings come from ETHHOOK_* environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"ethhook {__version__}")
    commands = parser.add_subparsers(
        dest="group", required=True, metavar="COMMAND", parser_class=Parser
    )
    modules = [m for m, names in COMMAND_MODULES.items() if command in names] or COMMAND_MODULES
    for module in modules:
        import_module(f"ethhook.cli.{module}").register(commands)
    return parser


def named_command(argv: Sequence[str]) -> str | None:
    """The command a command line names: its first word, unless that is an option (`ethhook
    --help listen` lists every command, as `ethhook --help` does)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def check_schema(schema: Schema, settings: Settings) -> None:
    """Make the command raise SchemaError if it needs a schema the database does not have: a
    process now, a command when it first reaches the database (after checking its input)."""
    if schema is Schema.REQUIRED:
        from ethhook.db import check_schema_on_first_use

        check_schema_on_first_use()
    elif schema is Schema.IF_REACHABLE:
        from ethhook.db.schema import check_schema_at_start

        check_schema_at_start(settings.database_url)


def database_error(exc: DBAPIError) -> str | None:
    """One line for a database that is down, or lacks a table the check could not foresee."""
    from ethhook.db.schema import missing_relation_message

    missing = missing_relation_message(exc)
    if missing is not None:
        return missing
    if isinstance(exc, OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return (
            f"the database is unreachable or not migrated ({reason}); "
            "check ETHHOOK_DATABASE_URL and run `ethhook db upgrade`"
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(named_command(words)).parse_args(words)
    try:
        settings = get_settings()
        check_schema(args.schema, settings)
        return int(args.func(args, settings))
    except (InputError, ConfigError) as exc:
        print(f"ethhook: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DBAPIError as exc:
        line = database_error(exc)
        if line is None:
            raise  # a bug, not the database's state: the traceback is for us
        print(f"ethhook: error: {line}", file=sys.stderr)
        return 1
    except EthHookError as exc:
        print(f"ethhook: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

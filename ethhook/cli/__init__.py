"""The `ethhook` command: database, applications, endpoints, deliveries, replays, statistics and
the long-running processes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy.exc import DBAPIError, OperationalError

from ethhook import __version__
from ethhook.cli import (
    api,
    apps,
    database,
    deliveries,
    endpoints,
    explain,
    processes,
    replays,
    stats,
)
from ethhook.cli.common import EXIT_USAGE, Parser, Schema
from ethhook.config import Settings, get_settings
from ethhook.exceptions import ConfigError, EthHookError, InputError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ethhook",
        description="EthHook: on-chain EVM events delivered as signed, retried webhooks.",
        epilog="Settings come from ETHHOOK_* environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"ethhook {__version__}")
    commands = parser.add_subparsers(
        dest="group", required=True, metavar="COMMAND", parser_class=Parser
    )
    # Each module adds its own commands; `ethhook --help` lists them in this order.
    for module in (database, endpoints, apps, deliveries, explain, replays, stats, api, processes):
        module.register(commands)
    return parser


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
    parser = build_parser()
    args = parser.parse_args(argv)
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

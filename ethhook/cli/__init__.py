"""The `ethhook` command: database, applications, endpoints, deliveries, replays, statistics and
the long-running processes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError

from ethhook import __version__
from ethhook.cli import api, apps, database, deliveries, endpoints, processes, replays, stats
from ethhook.cli.common import EXIT_USAGE, Parser
from ethhook.config import get_settings
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
    for module in (database, endpoints, apps, deliveries, replays, stats, api, processes):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        return int(args.func(args, settings))
    except (InputError, ConfigError) as exc:
        print(f"ethhook: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        print(
            f"ethhook: error: the database is unreachable or not migrated ({reason}); "
            "check ETHHOOK_DATABASE_URL and run `ethhook db upgrade`",
            file=sys.stderr,
        )
        return 1
    except EthHookError as exc:
        print(f"ethhook: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

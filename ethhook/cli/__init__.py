"""The `ethhook` command: database, endpoints, deliveries and the long-running processes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import OperationalError

from ethhook import __version__
from ethhook.cli.admin import (
    cmd_db_upgrade,
    cmd_endpoint_add,
    cmd_endpoint_delete,
    cmd_endpoint_disable,
    cmd_endpoint_enable,
    cmd_endpoint_list,
    cmd_endpoint_rotate,
    cmd_endpoint_show,
)
from ethhook.cli.common import EXIT_USAGE, Parser, non_negative_int, number, positive_int
from ethhook.cli.deliveries import (
    cmd_delivery_list,
    cmd_delivery_retry,
    cmd_delivery_show,
    cmd_replay,
)
from ethhook.cli.processes import cmd_demo, cmd_listen, cmd_up
from ethhook.config import get_settings
from ethhook.exceptions import ConfigError, EthHookError, InputError


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")

    parser = Parser(
        prog="ethhook",
        description="EthHook: on-chain EVM events delivered as signed, retried webhooks.",
        epilog="Settings come from ETHHOOK_* environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"ethhook {__version__}")
    groups = parser.add_subparsers(
        dest="group", required=True, metavar="COMMAND", parser_class=Parser
    )

    def leaf(
        sub: Any, name: str, func: Callable[..., int], help_text: str
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name, parents=[common], help=help_text, description=help_text
        )
        p.set_defaults(func=func)
        return p

    db = groups.add_parser("db", help="database schema").add_subparsers(
        dest="cmd", required=True, metavar="ACTION"
    )
    leaf(db, "upgrade", cmd_db_upgrade, "apply database migrations (alembic upgrade head)")

    ep = groups.add_parser("endpoint", help="register and manage webhook endpoints").add_subparsers(
        dest="cmd", required=True, metavar="ACTION"
    )
    add = leaf(ep, "add", cmd_endpoint_add, "register an endpoint; prints its id and secret")
    add.add_argument("--url", required=True, help="http(s) URL that receives the webhooks")
    add.add_argument(
        "--chain",
        action="append",
        default=[],
        metavar="ID_OR_NAME",
        help="chain id or name (repeatable; default: every chain)",
    )
    add.add_argument(
        "--contract",
        action="append",
        default=[],
        metavar="ADDR",
        help="contract address (repeatable; default: every contract)",
    )
    add.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="SIGNATURE",
        help="Solidity event signature, e.g. 'Transfer(address indexed from, address "
        "indexed to, uint256 value)', or a topic0 (repeatable; default: every event)",
    )
    add.add_argument(
        "--confirmations",
        type=non_negative_int,
        default=0,
        help="blocks to wait before delivering (0 = instant, with event.removed on reorgs)",
    )
    add.add_argument(
        "--rate-limit",
        type=number,
        default=None,
        metavar="PER_SECOND",
        help="at most this many requests per second to this endpoint",
    )
    add.add_argument(
        "--retry-schedule",
        default=None,
        metavar="S,S,…",
        help="delays in seconds before each attempt, e.g. 0,5,300 (default: the global one)",
    )
    add.add_argument("--name", default=None, help="a label for humans")
    leaf(ep, "list", cmd_endpoint_list, "list endpoints")
    for name, handler, text in (
        ("show", cmd_endpoint_show, "show an endpoint, its secret and its delivery counts"),
        ("disable", cmd_endpoint_disable, "stop delivering to an endpoint (deliveries wait)"),
        ("enable", cmd_endpoint_enable, "resume an endpoint; the deliveries that waited are sent"),
        (
            "rotate-secret",
            cmd_endpoint_rotate,
            "new secret; the old one signs too for a grace period",
        ),
        ("delete", cmd_endpoint_delete, "delete an endpoint and its deliveries"),
    ):
        p = leaf(ep, name, handler, text)
        p.add_argument("id", type=positive_int, help="endpoint id")
        if name == "disable":
            p.add_argument("--reason", default=None, help="why (shown by endpoint show)")
        if name == "rotate-secret":
            p.add_argument(
                "--grace-s",
                type=number,
                default=None,
                help="seconds the old secret keeps signing (default ETHHOOK_SECRET_ROTATION_GRACE_S)",
            )

    dl = groups.add_parser("delivery", help="inspect and retry deliveries").add_subparsers(
        dest="cmd", required=True, metavar="ACTION"
    )
    statuses = ["waiting", "pending", "succeeded", "failed", "cancelled"]
    lst = leaf(dl, "list", cmd_delivery_list, "list deliveries, newest filters first")
    retry = leaf(
        dl,
        "retry",
        cmd_delivery_retry,
        "send deliveries again now: by ids, or every one matching --status/--endpoint/--since",
    )
    retry.add_argument("ids", nargs="*", type=positive_int, help="delivery ids")
    for p in (lst, retry):
        p.add_argument("--status", choices=statuses, default=None)
        p.add_argument("--endpoint", type=positive_int, default=None, metavar="ID")
        p.add_argument(
            "--since",
            default=None,
            metavar="ISO",
            help="created at or after, e.g. 2026-11-27T08:00Z",
        )
    lst.add_argument("--limit", type=positive_int, default=100)
    show = leaf(dl, "show", cmd_delivery_show, "show a delivery with every attempt")
    show.add_argument("id", type=positive_int, help="delivery id")

    rp = leaf(
        groups,
        "replay",
        cmd_replay,
        "re-read a block range from the chain and deliver it again (same webhook-ids)",
    )
    rp.add_argument("--chain", required=True, metavar="ID_OR_NAME", help="chain id or name")
    rp.add_argument("--from-block", type=non_negative_int, required=True, metavar="A")
    rp.add_argument("--to-block", type=non_negative_int, required=True, metavar="B")
    rp.add_argument(
        "--endpoint",
        type=positive_int,
        default=None,
        metavar="ID",
        help="deliver to this endpoint only (default: every matching endpoint)",
    )
    leaf(groups, "listen", cmd_listen, "run the chain listener (all configured chains)")
    up = leaf(
        groups,
        "up",
        cmd_up,
        "run the listener, a match worker, a deliver worker and beat together on this machine",
    )
    up.add_argument("--workdir", default=".ethhook", help="folder for beat's schedule file")
    up.add_argument("--deliver-pool", default="gevent", choices=["gevent", "threads", "prefork"])
    up.add_argument("--deliver-concurrency", type=positive_int, default=100)
    demo = leaf(
        groups,
        "demo",
        cmd_demo,
        "the whole pipeline on a local chain with a verifying receiver; nothing to set up",
    )
    demo.add_argument("--events", type=positive_int, default=1000, help="Transfer events to emit")
    demo.add_argument(
        "--workdir",
        default=".ethhook-demo",
        help="working folder (SQLite database, Redis socket, logs)",
    )
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="keep everything running after the summary, until Ctrl-C",
    )
    demo.add_argument(
        "--timeout-s",
        type=number,
        default=180.0,
        help="give up waiting for webhooks after this long",
    )
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

"""`ethhook endpoint`: register, inspect, pause, re-key and delete webhook endpoints."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from ethhook.cli.common import (
    Commands,
    Handler,
    Parser,
    add_command,
    add_group,
    describe,
    emit,
    non_negative_int,
    number,
    positive_int,
    table,
)
from ethhook.cli.endpoint_output import change_summary, secret_summary
from ethhook.config import Settings
from ethhook.service.endpoints import EndpointWithSecret
from ethhook.service.public import Endpoint, to_public
from ethhook.service.scope import OPERATOR


def register(commands: Commands) -> None:
    group = add_group(commands, "endpoint", "register and manage webhook endpoints")
    _register_add(group)
    _register_update(group)
    listing = add_command(group, "list", cmd_endpoint_list, "list endpoints")
    listing.add_argument(
        "--app", type=positive_int, default=None, metavar="ID", help="this application's only"
    )
    _by_id(
        group,
        "show",
        cmd_endpoint_show,
        "show an endpoint and its delivery counts (its secret: `endpoint secret`)",
    )
    _by_id(
        group,
        "secret",
        cmd_endpoint_secret,
        "print the secret that signs an endpoint's webhooks (and the previous one while it "
        "still signs)",
    )
    disable = _by_id(
        group, "disable", cmd_endpoint_disable, "stop delivering to an endpoint (deliveries wait)"
    )
    disable.add_argument("--reason", default=None, help="why (shown by endpoint show)")
    _by_id(
        group,
        "enable",
        cmd_endpoint_enable,
        "resume an endpoint; the deliveries that waited are sent",
    )
    rotate = _by_id(
        group,
        "rotate-secret",
        cmd_endpoint_rotate,
        "new secret; the old one signs too for a grace period",
    )
    rotate.add_argument(
        "--grace-s",
        type=number,
        default=None,
        help="seconds the old secret keeps signing (default ETHHOOK_SECRET_ROTATION_GRACE_S)",
    )
    _by_id(group, "delete", cmd_endpoint_delete, "delete an endpoint and its deliveries")


def _by_id(group: Commands, name: str, handler: Handler, help_text: str) -> Parser:
    """A command about one endpoint, named by its id."""
    parser = add_command(group, name, handler, help_text)
    parser.add_argument("id", type=positive_int, help="endpoint id")
    return parser


def _register_add(group: Commands) -> None:
    add = add_command(
        group, "add", cmd_endpoint_add, "register an endpoint; prints its id and secret"
    )
    add.add_argument("--url", required=True, help="http(s) URL that receives the webhooks")
    _endpoint_options(add, update=False)
    add.add_argument(
        "--app",
        type=positive_int,
        default=None,
        metavar="ID",
        help="the application it belongs to (default: the built-in `default`)",
    )


def _register_update(group: Commands) -> None:
    update = _by_id(
        group,
        "update",
        cmd_endpoint_update,
        "change an endpoint in place (same id, secret and deliveries); a --chain, --contract, "
        "--event or --where list replaces that list",
    )
    update.add_argument("--url", default=None, help="http(s) URL that receives the webhooks")
    _endpoint_options(update, update=True)
    update.add_argument(
        "--clear-where",
        action="store_true",
        help="remove every --where condition (the endpoint then gets every event it names)",
    )


def _endpoint_options(parser: Parser, *, update: bool) -> None:
    """The options `add` and `update` share; an update changes only the options given."""
    lists = "replaces the current list" if update else "default: every %s"
    parser.add_argument(
        "--chain",
        action="append",
        default=None if update else [],
        metavar="ID_OR_NAME",
        help=f"chain id or name (repeatable; {lists.replace('%s', 'chain')})",
    )
    parser.add_argument(
        "--contract",
        action="append",
        default=None if update else [],
        metavar="ADDR",
        help=f"contract address (repeatable; {lists.replace('%s', 'contract')})",
    )
    parser.add_argument(
        "--event",
        action="append",
        default=None if update else [],
        metavar="SIGNATURE",
        help="Solidity event signature, e.g. 'Transfer(address indexed from, address "
        f"indexed to, uint256 value)', or a topic0 (repeatable; {lists.replace('%s', 'event')})",
    )
    parser.add_argument(
        "--where",
        action="append",
        default=None if update else [],
        metavar="COND",
        help="a condition on the decoded arguments of the one --event, e.g. 'to == 0x…', "
        "'value >= 1000000', 'from in (0x…, 0x…)'; operators == != < <= > >= and in; values: "
        'addresses, decimal integers, true/false, 0x hex bytes, "strings" (repeatable; all '
        f"must hold; {'replaces the current conditions' if update else 'default: none'})",
    )
    parser.add_argument(
        "--confirmations",
        type=non_negative_int,
        default=None if update else 0,
        help="blocks to wait before delivering (0 = instant, with event.removed on reorgs)",
    )
    parser.add_argument(
        "--rate-limit",
        type=number,
        default=None,
        metavar="PER_SECOND",
        help="at most this many requests per second to this endpoint",
    )
    parser.add_argument(
        "--retry-schedule",
        default=None,
        metavar="S,S,…",
        help="delays in seconds before each attempt, e.g. 0,5,300 (default: the global one)",
    )
    parser.add_argument("--name", default=None, help="a label for humans")


def cmd_endpoint_add(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.endpoints import create_endpoint
    from ethhook.service.validation import build_spec

    spec = build_spec(
        url=args.url,
        chains=args.chain,
        contracts=args.contract,
        events=args.event,
        confirmations=args.confirmations,
        rate_limit_per_s=args.rate_limit,
        retry_schedule=args.retry_schedule,
        name=args.name,
        settings=settings,
        where=args.where,
    )
    with session_scope() as session:
        created = create_endpoint(session, spec, scope=OPERATOR, application_id=args.app)
        data = to_public(created.as_public())
    emit(args, data, lambda: describe(data))
    return 0


# `endpoint update` options, by the names the service's build_changes takes.
_UPDATE_OPTIONS = {
    "url": "url",
    "chain": "chains",
    "contract": "contracts",
    "event": "events",
    "confirmations": "confirmations",
    "rate_limit": "rate_limit_per_s",
    "retry_schedule": "retry_schedule",
    "name": "name",
    "where": "where",
}


def cmd_endpoint_update(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.exceptions import InputError
    from ethhook.service.endpoints import update_endpoint
    from ethhook.service.validation import build_changes

    given = {
        field: getattr(args, option)
        for option, field in _UPDATE_OPTIONS.items()
        if getattr(args, option) is not None
    }
    if args.clear_where:
        if "where" in given:
            raise InputError("give either --where or --clear-where, not both")
        given["where"] = []
    if not given:
        raise InputError(
            "nothing to change: give --url, --chain, --contract, --event, --where, "
            "--clear-where, --confirmations, --rate-limit, --retry-schedule or --name"
        )
    changes = build_changes(settings, **given)
    with session_scope() as session:
        data = to_public(update_endpoint(session, args.id, changes, scope=OPERATOR))
    emit(args, data, lambda: f"updated endpoint {args.id}\n" + describe(data))
    return 0


def cmd_endpoint_list(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.endpoints import list_endpoints
    from ethhook.service.pages import MAX_LIMIT

    data: list[dict[str, Any]] = []
    cursor: str | None = None
    with session_scope() as session:
        while True:
            page = list_endpoints(
                session, scope=OPERATOR, application_id=args.app, cursor=cursor, limit=MAX_LIMIT
            )
            data += [to_public(e) for e in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    rows = [
        (
            d["id"],
            "active" if d["active"] else "disabled",
            d["confirmations"],
            ",".join(map(str, d["chains"])) or "*",
            len(d["contracts"]) or "*",
            len(d["topics"]) or "*",
            d["url"],
        )
        for d in data
    ]
    headers = ("ID", "STATE", "CONF", "CHAINS", "CONTRACTS", "EVENTS", "URL")
    emit(args, data, lambda: table(rows, headers) if rows else "no endpoints")
    return 0


def cmd_endpoint_show(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.endpoints import breaker_state, show_endpoint

    with session_scope() as session:
        details = show_endpoint(session, args.id, scope=OPERATOR)
    data = to_public(details.as_public(breaker_state(args.id, settings)))
    emit(args, data, lambda: describe(data))
    return 0


def cmd_endpoint_secret(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.endpoints import endpoint_secrets

    with session_scope() as session:
        secrets = endpoint_secrets(session, args.id, scope=OPERATOR)
    data = to_public(secrets)
    emit(args, data, lambda: secret_summary(data))
    return 0


def cmd_endpoint_disable(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.endpoints import set_active

    reason = args.reason or "disabled by an operator"
    return _endpoint_change(
        args, lambda s: set_active(s, args.id, False, reason, scope=OPERATOR), "disabled"
    )


def cmd_endpoint_enable(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.endpoints import set_active

    return _endpoint_change(
        args, lambda s: set_active(s, args.id, True, None, scope=OPERATOR), "enabled"
    )


def cmd_endpoint_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.endpoints import rotate_secret

    grace = settings.secret_rotation_grace_s if args.grace_s is None else args.grace_s
    return _endpoint_change(
        args,
        lambda s: rotate_secret(s, args.id, grace, scope=OPERATOR),
        "rotated the secret of",
        reveal_secret=True,
    )


def _endpoint_change(
    args: argparse.Namespace,
    change: Callable[[Session], Endpoint | EndpointWithSecret],
    done: str,
    *,
    reveal_secret: bool = False,
) -> int:
    """Apply `change` to the endpoint, then say what was `done` (and the new secret if asked)."""
    from ethhook.db import session_scope

    with session_scope() as session:
        changed = change(session)
    if isinstance(changed, EndpointWithSecret):
        data = to_public(changed.as_public() if reveal_secret else changed.endpoint)
    else:
        data = to_public(changed)
    emit(args, data, lambda: change_summary(args.id, done, data, reveal_secret=reveal_secret))
    return 0


def cmd_endpoint_delete(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.endpoints import delete_endpoint

    with session_scope() as session:
        delete_endpoint(session, args.id, scope=OPERATOR)
    emit(args, {"deleted": args.id}, lambda: f"deleted endpoint {args.id} and its deliveries")
    return 0

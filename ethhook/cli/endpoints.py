"""`ethhook endpoint`: register, inspect, pause, re-key and delete webhook endpoints."""

from __future__ import annotations

import argparse

from ethhook.cli.common import (
    Arg,
    Group,
    arg,
    as_operator,
    every_page,
    non_negative_int,
    number,
    positive_int,
)
from ethhook.cli.endpoint_output import change_summary, secret_summary
from ethhook.cli.output import Column, describe, emit, emit_table, table
from ethhook.config import Settings
from ethhook.service.endpoints import EndpointWithSecret
from ethhook.service.public import Endpoint, to_public

GROUP = Group("endpoint", "register and manage webhook endpoints")
register = GROUP.register
ENDPOINT_ID = arg("id", type=positive_int, help="endpoint id")
URL_HELP = "http(s) URL that receives the webhooks"

# The list options of `add` and `update`: flag, metavar, what each item is, what a list names.
_LISTS = (
    ("--chain", "ID_OR_NAME", "chain id or name", "chain"),
    ("--contract", "ADDR", "contract address", "contract"),
    (
        "--event",
        "SIGNATURE",
        "Solidity event signature, e.g. 'Transfer(address indexed from, address indexed to, "
        "uint256 value)', or a topic0",
        "event",
    ),
)
WHERE_HELP = (
    "a condition on the decoded arguments of the one --event, e.g. 'to == 0x…', "
    "'value >= 1000000', 'from in (0x…, 0x…)'; operators == != < <= > >= and in; values: "
    'addresses, decimal integers, true/false, 0x hex bytes, "strings" (repeatable; all '
    "must hold; {})"
)


def _endpoint_options(*, update: bool) -> tuple[Arg, ...]:
    """The options `add` and `update` share; an update changes only the options given."""
    unset: list[str] | None = None if update else []
    listed = [
        arg(
            flag,
            action="append",
            default=unset,
            metavar=metavar,
            help=f"{what} (repeatable; "
            + ("replaces the current list" if update else f"default: every {noun}")
            + ")",
        )
        for flag, metavar, what, noun in _LISTS
    ]
    where = "replaces the current conditions" if update else "default: none"
    return (
        *listed,
        arg(
            "--where", action="append", default=unset, metavar="COND", help=WHERE_HELP.format(where)
        ),
        arg(
            "--confirmations",
            type=non_negative_int,
            default=None if update else 0,
            help="blocks to wait before delivering (0 = instant, with event.removed on reorgs)",
        ),
        arg(
            "--finality",
            default=None if update else "latest",
            metavar="latest|safe|finalized",
            help="when an event is confirmed: latest (after --confirmations blocks; the "
            "default), safe or finalized (once the chain's node reports that block tag at the "
            "event's block; --confirmations must then be 0)",
        ),
        arg(
            "--lifecycle",
            action=argparse.BooleanOptionalAction,
            default=None if update else False,
            help="each event as event.instant at once, then event.confirmed at its finality, "
            "or event.removed if a reorg takes it back first",
        ),
        arg(
            "--rate-limit",
            type=number,
            default=None,
            metavar="PER_SECOND",
            help="at most this many requests per second to this endpoint",
        ),
        arg(
            "--retry-schedule",
            default=None,
            metavar="S,S,…",
            help="delays in seconds before each attempt, e.g. 0,5,300 (default: the global one)",
        ),
        arg("--name", default=None, help="a label for humans"),
        arg(
            "--ordered",
            nargs="?",
            const="pause",
            default=None,
            metavar="pause|skip-dead|off",
            help="send its webhooks strictly in sequence order, one at a time: a failing one "
            "holds those after it; when one is dead-lettered, pause (the default) stops the "
            "endpoint until it is retried, skip-dead goes past it and records the skip"
            + ("; off: in parallel again" if update else ""),
        ),
    )


@GROUP.command(
    "add",
    "register an endpoint; prints its id and secret (ed25519: its public key)",
    arg("--url", required=True, help=URL_HELP),
    *_endpoint_options(update=False),
    arg(
        "--app",
        type=positive_int,
        default=None,
        metavar="ID",
        help="the application it belongs to (default: the built-in `default`)",
    ),
    arg(
        "--signing",
        default="hmac",
        metavar="hmac|ed25519",
        help="how its webhooks are signed: hmac (v1, with a whsec_ secret; the default) or "
        "ed25519 (Standard Webhooks v1a; receivers verify with its whpk_ public key)",
    ),
    arg(
        "--from-block",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="deliver its history first, from block N of its one --chain to the listener's "
        "head, oldest first (origin backfill, sequence from 1), then live events",
    ),
    arg(
        "--live-only",
        action="store_true",
        help="replays and backfills send it nothing: live events only",
    ),
)
def cmd_endpoint_add(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db.models import utcnow
    from ethhook.replay.backfill import add_endpoint
    from ethhook.service.validation import build_spec
    from ethhook.workqueue import enqueue_replays

    spec = build_spec(
        url=args.url,
        chains=args.chain,
        contracts=args.contract,
        events=args.event,
        confirmations=args.confirmations,
        finality=args.finality,
        lifecycle=args.lifecycle,
        rate_limit_per_s=args.rate_limit,
        retry_schedule=args.retry_schedule,
        name=args.name,
        settings=settings,
        where=args.where,
        signing=args.signing,
        from_block=args.from_block,
        live_only=args.live_only,
        ordered=_ordered(args.ordered),
    )
    made = as_operator(add_endpoint, settings, spec, utcnow(), application_id=args.app)
    if made.dispatch is not None:
        enqueue_replays([made.dispatch])
    data = to_public(made.as_public())
    emit(args, data, lambda: describe(data))
    return 0


# The options of `endpoint update` named for one item (--chain X --chain Y), by their fields.
_ONE_AT_A_TIME = {"chains": "chain", "contracts": "contract", "events": "event"}


def _ordered(value: str | None) -> str | None:
    """`--ordered=off` (or none given) is the service's None: not ordered."""
    return None if value == "off" else value


@GROUP.command(
    "update",
    "change an endpoint in place (same id, secret and deliveries); a --chain, --contract, "
    "--event or --where list replaces that list",
    ENDPOINT_ID,
    arg("--url", default=None, help=URL_HELP),
    *_endpoint_options(update=True),
    arg(
        "--clear-where",
        action="store_true",
        help="remove every --where condition (the endpoint then gets every event it names)",
    ),
)
def cmd_endpoint_update(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.exceptions import InputError
    from ethhook.service.changes import UPDATABLE, build_changes
    from ethhook.service.endpoints import update_endpoint

    options = {field: _ONE_AT_A_TIME.get(field, field) for field in UPDATABLE}
    given = {
        field: getattr(args, option)
        for field, option in options.items()
        if getattr(args, option) is not None
    }
    if args.clear_where:
        if "where" in given:
            raise InputError("give either --where or --clear-where, not both")
        given["where"] = []
    if "ordered" in given:
        given["ordered"] = _ordered(given["ordered"])
    if not given:
        raise InputError(
            "nothing to change: give --url, --chain, --contract, --event, --where, "
            "--clear-where, --confirmations, --finality, --[no-]lifecycle, --rate-limit, "
            "--retry-schedule, --name or --ordered"
        )
    changes = build_changes(settings, **given)
    data = to_public(as_operator(update_endpoint, args.id, changes))
    emit(args, data, lambda: f"updated endpoint {args.id}\n" + describe(data))
    return 0


# `endpoint list`'s table: a column's header, and the field it shows or what it makes of one.
COLUMNS: dict[str, Column] = {
    "ID": "id",
    "STATE": lambda d: "active" if d["active"] else "disabled",
    "CONF": lambda d: d["confirmations"] if d["finality"] == "latest" else d["finality"],
    "CHAINS": lambda d: ",".join(map(str, d["chains"])) or "*",
    "CONTRACTS": lambda d: len(d["contracts"]) or "*",
    "EVENTS": lambda d: len(d["topics"]) or "*",
    "URL": "url",
}


@GROUP.command(
    "list",
    "list endpoints",
    arg("--app", type=positive_int, default=None, metavar="ID", help="this application's only"),
)
def cmd_endpoint_list(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.endpoints import list_endpoints

    emit_table(args, every_page(list_endpoints, application_id=args.app), COLUMNS, "no endpoints")
    return 0


@GROUP.command(
    "show",
    "show an endpoint and its delivery counts (its secret: `endpoint secret`)",
    ENDPOINT_ID,
)
def cmd_endpoint_show(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.endpoints import breaker_state, show_endpoint

    details = as_operator(show_endpoint, args.id)
    data = to_public(details.as_public(breaker_state(args.id, settings)))
    paused = data["paused"] and data["paused"]["reason"]
    emit(args, data, lambda: describe({**data, "paused": paused}))
    return 0


@GROUP.command(
    "coverage",
    "per chain, the blocks scanned for an endpoint since it was made (or its --from-block) and "
    "where the part with its confirmations ends",
    ENDPOINT_ID,
)
def cmd_endpoint_coverage(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.coverage import endpoint_coverage

    data = to_public(as_operator(endpoint_coverage, args.id, settings))

    def human() -> str:
        rows = [
            (
                c["chain"],
                c["from_block"] if c["from_block"] is not None else "-",
                c["scanned_to"] if c["scanned_to"] is not None else "-",
                c["confirmed_to"] if c["confirmed_to"] is not None else "-",
                "backfilling" if c["backfilling"] else "",
            )
            for c in data["chains"]
        ]
        head = f"endpoint {data['endpoint_id']}" + ("" if data["active"] else " (disabled)")
        if not rows:
            return head + ": no chain read by the listener yet"
        return head + "\n" + table(rows, ("CHAIN", "FROM", "SCANNED TO", "CONFIRMED TO", ""))

    emit(args, data, human)
    return 0


@GROUP.command(
    "secret",
    "print the secret that signs an endpoint's webhooks (and the previous one while it "
    "still signs); for ed25519, the public keys that verify them",
    ENDPOINT_ID,
)
def cmd_endpoint_secret(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.endpoints import endpoint_secrets

    data = to_public(as_operator(endpoint_secrets, args.id))
    emit(args, data, lambda: secret_summary(data))
    return 0


@GROUP.command(
    "disable",
    "stop delivering to an endpoint (its deliveries, and the events that match it meanwhile, "
    "wait for `enable`, within retention)",
    ENDPOINT_ID,
    arg("--reason", default=None, help="why (shown by endpoint show)"),
    arg(
        "--discard",
        action="store_true",
        help="drop its unsent deliveries instead (recorded as discarded) and keep nothing "
        "until it is enabled",
    ),
)
def cmd_endpoint_disable(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.endpoints import set_active

    reason = args.reason or "disabled by an operator"
    changed = as_operator(set_active, args.id, False, reason, discard=args.discard)
    return _changed(args, changed, "disabled (backlog discarded)" if args.discard else "disabled")


@GROUP.command(
    "enable", "resume an endpoint; the deliveries that waited are sent, oldest first", ENDPOINT_ID
)
def cmd_endpoint_enable(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.endpoints import set_active

    return _changed(args, as_operator(set_active, args.id, True, None), "enabled")


@GROUP.command(
    "rotate-secret",
    "new secret (ed25519: key pair); the old one signs too for a grace period",
    ENDPOINT_ID,
    arg(
        "--grace-s",
        type=number,
        default=None,
        help="seconds the old secret keeps signing (default ETHHOOK_SECRET_ROTATION_GRACE_S)",
    ),
)
def cmd_endpoint_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.endpoints import rotate_secret

    grace = settings.secret_rotation_grace_s if args.grace_s is None else args.grace_s
    return _changed(args, as_operator(rotate_secret, args.id, grace), "rotated the secret of")


def _changed(args: argparse.Namespace, changed: Endpoint | EndpointWithSecret, done: str) -> int:
    """Say what was `done` to the endpoint (and its new secret, after a rotation)."""
    rotated = isinstance(changed, EndpointWithSecret)
    data = to_public(changed.as_public() if isinstance(changed, EndpointWithSecret) else changed)
    emit(args, data, lambda: change_summary(args.id, done, data, reveal_secret=rotated))
    return 0


@GROUP.command("delete", "delete an endpoint and its deliveries", ENDPOINT_ID)
def cmd_endpoint_delete(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.endpoints import delete_endpoint

    as_operator(delete_endpoint, args.id)
    emit(args, {"deleted": args.id}, lambda: f"deleted endpoint {args.id} and its deliveries")
    return 0

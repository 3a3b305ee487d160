"""The `ethhook` command: database, endpoints, deliveries and the long-running processes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ethhook import __version__
from ethhook.config import Settings, get_settings
from ethhook.exceptions import ConfigError, EthHookError, InputError, NotFoundError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    if args.json:
        print(json.dumps(data, default=_json_default, indent=2))
    else:
        print(human())


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(
            f"invalid --since {text!r}: expected ISO 8601, e.g. 2026-11-27T08:00:00Z"
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer of 0 or more, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer of 0 or more, got {text!r}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


# --- db -----------------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    command.upgrade(config, "head")
    _emit(args, {"upgraded": True}, lambda: "database is at the latest schema")
    return 0


# --- endpoints ----------------------------------------------------------------------------------


def _endpoint_json(endpoint: Any, with_secret: bool = False) -> dict[str, Any]:
    data = {
        "id": endpoint.id,
        "name": endpoint.name,
        "url": endpoint.url,
        "active": endpoint.active,
        "disabled_reason": endpoint.disabled_reason,
        "chains": endpoint.chain_ids,
        "contracts": endpoint.contracts,
        "events": endpoint.event_signatures,
        "topics": endpoint.topics,
        "confirmations": endpoint.confirmations,
        "rate_limit_per_s": endpoint.rate_limit_per_s,
        "retry_schedule_s": endpoint.retry_schedule_s,
        "created_at": endpoint.created_at,
    }
    if with_secret:
        data["secret"] = endpoint.secret
        data["previous_secret_expires_at"] = endpoint.previous_secret_expires_at
    return data


def _describe(data: dict[str, Any]) -> str:
    lines = []
    for key, value in data.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "(any)"
        elif isinstance(value, datetime):
            value = _json_default(value)
        lines.append(f"{key + ':':<28} {'' if value is None else value}")
    return "\n".join(lines)


def cmd_endpoint_add(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.endpoints import build_spec, create_endpoint

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
    )
    with session_scope() as session:
        endpoint = create_endpoint(session, spec)
        data = _endpoint_json(endpoint, with_secret=True)
    _emit(args, data, lambda: _describe(data))
    return 0


def cmd_endpoint_list(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.db.models import Endpoint

    with session_scope() as session:
        endpoints = session.scalars(select(Endpoint).order_by(Endpoint.id)).all()
        data = [_endpoint_json(e) for e in endpoints]
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
    _emit(args, data, lambda: _table(rows, headers) if rows else "no endpoints")
    return 0


def cmd_endpoint_show(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.db.models import Delivery
    from ethhook.endpoints import get_endpoint

    with session_scope() as session:
        endpoint = get_endpoint(session, args.id)
        data = _endpoint_json(endpoint, with_secret=True)
        counts = session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.endpoint_id == endpoint.id)
            .group_by(Delivery.status)
        ).all()
        data["deliveries"] = {status: count for status, count in counts}
        data["failing_since"] = endpoint.failing_since
    data["circuit_breaker"] = _breaker_state(args.id, settings)
    _emit(args, data, lambda: _describe(data))
    return 0


def _breaker_state(endpoint_id: int, settings: Settings) -> str:
    import redis

    from ethhook.deliver.breaker import EndpointBreaker
    from ethhook.deliver.shared import redis_client

    breaker = EndpointBreaker(
        redis_client(settings.redis_url),
        endpoint_id,
        settings.breaker_fail_max,
        settings.breaker_reset_timeout_s,
        1.0,
    )
    try:
        return breaker.state()
    except redis.RedisError as exc:
        return f"unknown (Redis unreachable: {exc})"


def _endpoint_change(args: argparse.Namespace, change: Callable[[Session], Any], verb: str) -> int:
    from ethhook.db import session_scope

    with session_scope() as session:
        endpoint = change(session)
        data = _endpoint_json(endpoint, with_secret=verb == "rotated the secret of")
    _emit(
        args,
        data,
        lambda: (
            f"{verb} endpoint {args.id}"
            + (
                f"\nsecret: {data['secret']}\nthe previous secret keeps signing until "
                f"{_json_default(data['previous_secret_expires_at'])}"
                if "secret" in data
                else ""
            )
        ),
    )
    return 0


def cmd_endpoint_disable(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.endpoints import set_active

    reason = args.reason or "disabled by an operator"
    return _endpoint_change(args, lambda s: set_active(s, args.id, False, reason), "disabled")


def cmd_endpoint_enable(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.endpoints import set_active

    return _endpoint_change(args, lambda s: set_active(s, args.id, True, None), "enabled")


def cmd_endpoint_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.endpoints import rotate_secret

    grace = settings.secret_rotation_grace_s if args.grace_s is None else args.grace_s
    if grace < 0:
        raise InputError(f"invalid --grace-s {grace:g}: expected 0 or more seconds")
    return _endpoint_change(
        args, lambda s: rotate_secret(s, args.id, grace), "rotated the secret of"
    )


def cmd_endpoint_delete(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.endpoints import get_endpoint

    with session_scope() as session:
        session.delete(get_endpoint(session, args.id))
    _emit(args, {"deleted": args.id}, lambda: f"deleted endpoint {args.id} and its deliveries")
    return 0


# --- deliveries ---------------------------------------------------------------------------------


def _delivery_json(delivery: Any) -> dict[str, Any]:
    from ethhook.types import webhook_id_for

    return {
        "id": delivery.id,
        "webhook_id": webhook_id_for(delivery.endpoint_id, delivery.event_id, delivery.kind),
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "kind": delivery.kind,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
    }


def _delivery_query(args: argparse.Namespace) -> Any:
    from ethhook.db.models import Delivery

    query = select(Delivery).order_by(Delivery.id)
    if args.status:
        query = query.where(Delivery.status == args.status)
    if args.endpoint:
        query = query.where(Delivery.endpoint_id == args.endpoint)
    if args.since:
        query = query.where(Delivery.created_at >= _since(args.since))
    return query


def cmd_delivery_list(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope

    with session_scope() as session:
        deliveries = session.scalars(_delivery_query(args).limit(args.limit)).all()
        data = [_delivery_json(d) for d in deliveries]
    rows = [
        (
            d["id"],
            d["endpoint_id"],
            d["kind"],
            d["status"],
            d["attempts"],
            d["last_status_code"],
            _json_default(d["created_at"]),
        )
        for d in data
    ]
    headers = ("ID", "ENDPOINT", "KIND", "STATUS", "ATTEMPTS", "LAST", "CREATED")
    _emit(args, data, lambda: _table(rows, headers) if rows else "no deliveries")
    return 0


def cmd_delivery_show(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.db.models import Delivery

    with session_scope() as session:
        delivery = session.get(Delivery, args.id)
        if delivery is None:
            raise NotFoundError(f"no delivery with id {args.id} (see `ethhook delivery list`)")
        data = _delivery_json(delivery)
        data["attempt_list"] = [
            {
                "attempt": a.attempt_number,
                "started_at": a.started_at,
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "error": a.error,
                "response_body": a.response_body,
            }
            for a in delivery.attempt_rows
        ]

    def human() -> str:
        head = {k: v for k, v in data.items() if k != "attempt_list"}
        rows = [
            (
                a["attempt"],
                _json_default(a["started_at"]),
                f"{a['duration_ms']:.1f}",
                a["status_code"],
                (a["error"] or "")[:60],
                (a["response_body"] or "")[:40],
            )
            for a in data["attempt_list"]
        ]
        table = (
            _table(rows, ("#", "STARTED", "MS", "STATUS", "ERROR", "BODY"))
            if rows
            else "no attempts yet"
        )
        return _describe(head) + "\n\n" + table

    _emit(args, data, human)
    return 0


def cmd_delivery_retry(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.db.models import Delivery
    from ethhook.deliver.manual import retry_deliveries
    from ethhook.match.dispatch import enqueue_groups

    if args.ids and (args.status or args.endpoint or args.since):
        raise InputError("give delivery ids or --status/--endpoint/--since, not both")
    if not args.ids and not args.status:
        raise InputError(
            "give delivery ids, or --status failed (with --endpoint/--since) to retry many"
        )
    with session_scope() as session:
        if args.ids:
            ids = list(dict.fromkeys(args.ids))
        else:
            ids = list(session.scalars(_delivery_query(args).with_only_columns(Delivery.id)))
        groups = retry_deliveries(session, ids)
    count = sum(len(g.delivery_ids) for g in groups)
    enqueued = enqueue_groups(groups)
    data = {"retried": count, "enqueued_tasks": enqueued}
    _emit(args, data, lambda: f"retrying {count} deliveries ({enqueued} tasks enqueued)")
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.config import ChainConfig
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.endpoints import get_endpoint, parse_chain
    from ethhook.listen.replay import fetch_range
    from ethhook.match.dispatch import enqueue_groups
    from ethhook.match.replay import redeliver

    if args.to_block < args.from_block:
        raise InputError(f"--to-block {args.to_block} is before --from-block {args.from_block}")
    chain_id = parse_chain(args.chain, settings)
    chain = settings.chain_by_id(chain_id) or ChainConfig(settings.chain_name(chain_id), chain_id)
    addresses: list[str] | None = None
    if args.endpoint is not None:
        with session_scope() as session:
            endpoint = get_endpoint(session, args.endpoint)
            if not endpoint.active:
                raise InputError(
                    f"endpoint {endpoint.id} is disabled; `ethhook endpoint enable` it first"
                )
            watched = {f.address for f in endpoint.filters if f.chain_id in (None, chain_id)}
            if not watched:
                raise InputError(f"endpoint {endpoint.id} does not watch chain {chain.name}")
            addresses = None if None in watched else sorted(a for a in watched if a)
    events, head = fetch_range(chain, args.from_block, args.to_block, addresses)
    with session_scope() as session:
        groups = redeliver(session, events, head, utcnow(), args.endpoint)
    count = sum(len(g.delivery_ids) for g in groups)
    enqueue_groups(groups)
    data = {"chain_id": chain_id, "events": len(events), "deliveries": count}
    _emit(
        args,
        data,
        lambda: (
            f"replaying {len(events)} events of {chain.name} blocks "
            f"{args.from_block}-{args.to_block}: {count} deliveries queued"
        ),
    )
    return 0


# --- processes ----------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from ethhook.supervise import Supervisor, run_until_signalled, standard_children

    if not any(chain.enabled for chain in settings.chains):
        raise InputError(
            "no chain to follow: set ETHEREUM_WS/ETHEREUM_HTTP (or ARBITRUM_, OPTIMISM_, BASE_), "
            "or add chains with ETHHOOK_CHAINS_FILE"
        )
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    pool = ["-P", args.deliver_pool, "-c", str(args.deliver_concurrency)]
    children = standard_children(Path(args.workdir) / "celerybeat-schedule", pool)
    env = dict(os.environ)
    if settings.worker_metrics_port:
        # Two workers on one machine: each serves /metrics on its own port.
        env_per_child = {
            "match": settings.worker_metrics_port,
            "deliver": settings.worker_metrics_port + 1,
        }
        for child in children:
            if child.name in env_per_child:
                child.args = [
                    "env",
                    f"ETHHOOK_WORKER_METRICS_PORT={env_per_child[child.name]}",
                    *child.args,
                ]
    print(f"ethhook up: {', '.join(c.name for c in children)} (Ctrl-C stops them all)", flush=True)
    return run_until_signalled(Supervisor(children, env))


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.demo.run import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            events=args.events,
            workdir=Path(args.workdir),
            keep_running=args.keep_running,
            timeout_s=args.timeout_s,
        )
    )


def cmd_listen(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.listen import run_listener

    return run_listener(settings)


# --- the parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")

    parser = _Parser(
        prog="ethhook",
        description="EthHook: on-chain EVM events delivered as signed, retried webhooks.",
        epilog="Settings come from ETHHOOK_* environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"ethhook {__version__}")
    groups = parser.add_subparsers(
        dest="group", required=True, metavar="COMMAND", parser_class=_Parser
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
        type=_non_negative_int,
        default=0,
        help="blocks to wait before delivering (0 = instant, with event.removed on reorgs)",
    )
    add.add_argument(
        "--rate-limit",
        type=_number,
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
        p.add_argument("id", type=_positive_int, help="endpoint id")
        if name == "disable":
            p.add_argument("--reason", default=None, help="why (shown by endpoint show)")
        if name == "rotate-secret":
            p.add_argument(
                "--grace-s",
                type=_number,
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
    retry.add_argument("ids", nargs="*", type=_positive_int, help="delivery ids")
    for p in (lst, retry):
        p.add_argument("--status", choices=statuses, default=None)
        p.add_argument("--endpoint", type=_positive_int, default=None, metavar="ID")
        p.add_argument(
            "--since",
            default=None,
            metavar="ISO",
            help="created at or after, e.g. 2026-11-27T08:00Z",
        )
    lst.add_argument("--limit", type=_positive_int, default=100)
    show = leaf(dl, "show", cmd_delivery_show, "show a delivery with every attempt")
    show.add_argument("id", type=_positive_int, help="delivery id")

    rp = leaf(
        groups,
        "replay",
        cmd_replay,
        "re-read a block range from the chain and deliver it again (same webhook-ids)",
    )
    rp.add_argument("--chain", required=True, metavar="ID_OR_NAME", help="chain id or name")
    rp.add_argument("--from-block", type=_non_negative_int, required=True, metavar="A")
    rp.add_argument("--to-block", type=_non_negative_int, required=True, metavar="B")
    rp.add_argument(
        "--endpoint",
        type=_positive_int,
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
    up.add_argument("--deliver-concurrency", type=_positive_int, default=100)
    demo = leaf(
        groups,
        "demo",
        cmd_demo,
        "the whole pipeline on a local chain with a verifying receiver; nothing to set up",
    )
    demo.add_argument("--events", type=_positive_int, default=1000, help="Transfer events to emit")
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
        type=_number,
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


if __name__ == "__main__":
    sys.exit(main())

"""`ethhook app`: applications (tenants), their API keys, and the operator key."""

from __future__ import annotations

import argparse
from typing import Any

from ethhook.cli.common import Group, arg, as_operator, every_page, positive_int
from ethhook.cli.output import describe, emit, emit_table
from ethhook.config import Settings
from ethhook.service.public import to_public

GROUP = Group("app", "manage applications (tenants) and their API keys")
register = GROUP.register
APP_ID = arg("id", type=positive_int, help="application id")


def _key_notice(key: str) -> str:
    return f"api key: {key}\n(shown once: store it now; only its hash is kept)"


@GROUP.command(
    "add",
    "create an application; prints its id and API key (once)",
    arg("name", help="the application's name (unique)"),
)
def cmd_app_add(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.apps import create_application

    created = as_operator(create_application, args.name)
    app = created.application
    human = f"created application {app.id} ({app.name})\n" + _key_notice(created.api_key)
    emit(args, to_public(created.as_public()), lambda: human)
    return 0


@GROUP.command("list", "list applications")
def cmd_app_list(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.apps import list_applications

    columns = {"ID": "id", "NAME": "name", "ENDPOINTS": "endpoints", "CREATED": "created_at"}
    emit_table(args, every_page(list_applications), columns, "no applications")
    return 0


@GROUP.command("show", "show an application", APP_ID)
def cmd_app_show(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.apps import get_application

    data = to_public(as_operator(get_application, args.id))
    emit(args, data, lambda: describe(data))
    return 0


@GROUP.command("rotate-key", "new API key, printed once; the old one stops working", APP_ID)
def cmd_app_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.apps import rotate_api_key

    rotated = as_operator(rotate_api_key, args.id)
    human = f"new API key for application {args.id}; the old one no longer works\n"
    emit(args, to_public(rotated.as_public()), lambda: human + _key_notice(rotated.api_key))
    return 0


@GROUP.command(
    "delete", "delete an application and its key (refused while it has endpoints)", APP_ID
)
def cmd_app_delete(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.apps import delete_application

    as_operator(delete_application, args.id)
    emit(args, {"deleted": args.id}, lambda: f"deleted application {args.id} and its API key")
    return 0


@GROUP.command(
    "operator-key",
    "create or replace the operator key (sees and manages every application); printed once",
)
def cmd_app_operator_key(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.apps import set_operator_key

    with session_scope() as session:
        key = set_operator_key(session)
    human = "operator key (any previous one no longer works)\n" + _key_notice(key)
    emit(args, {"operator_key": key}, lambda: human)
    return 0


@GROUP.command(
    "ops-endpoint",
    "set (--url), show or remove (--clear) the application's operational endpoint: signed "
    "endpoint.disabled, endpoint.failing, endpoint.recovered, replay.finished and chain.lagging "
    "webhooks",
    APP_ID,
    arg("--url", default=None, help="where the operational webhooks go; prints the secret"),
    arg("--clear", action="store_true", help="remove it (nothing more is sent)"),
    arg("--limit", type=positive_int, default=20, help="recent webhooks shown (default 20)"),
)
def cmd_app_ops_endpoint(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.exceptions import InputError
    from ethhook.service import ops

    if args.url is not None and args.clear:
        raise InputError("give --url URL or --clear, not both")
    if args.clear:
        as_operator(ops.clear_ops_endpoint, args.id)
        data = {"application_id": args.id, "cleared": True}
        emit(args, data, lambda: f"removed the ops endpoint of application {args.id}")
        return 0
    if args.url is not None:
        made = to_public(as_operator(ops.set_ops_endpoint, args.id, args.url))
        human = (
            f"ops endpoint of application {args.id}: {made['url']}\n"
            f"secret: {made['secret']}\n(verify its webhooks with it: Standard Webhooks v1)"
        )
        emit(args, made, lambda: human)
        return 0
    shown = to_public(as_operator(ops.get_ops_endpoint, args.id))
    messages = [to_public(m) for m in as_operator(ops.list_ops_messages, args.id, args.limit)]
    shown["messages"] = messages
    emit(args, shown, lambda: _ops_summary(shown, messages))
    return 0


def _ops_summary(shown: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    lines = [f"ops endpoint of application {shown['application_id']}: {shown['url']}"]
    if not messages:
        lines.append("no operational webhooks yet")
    for m in messages:
        about = m["data"].get("endpoint_id") or m["data"].get("replay_id") or ""
        lines.append(
            f"{m['id']:>6}  {m['created_at']:%Y-%m-%dT%H:%M:%SZ}  {m['type']:<19} {about!s:<6} "
            f"{m['status']} ({m['attempt_count']} attempts)"
        )
    return "\n".join(lines)

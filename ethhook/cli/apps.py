"""`ethhook app`: applications (tenants), their API keys, and the operator key."""

from __future__ import annotations

import argparse
from typing import Any

from ethhook.cli.common import (
    Commands,
    Handler,
    Parser,
    add_command,
    add_group,
    describe,
    emit,
    json_default,
    positive_int,
    table,
)
from ethhook.config import Settings
from ethhook.service.public import to_public
from ethhook.service.scope import OPERATOR


def register(commands: Commands) -> None:
    group = add_group(commands, "app", "manage applications (tenants) and their API keys")
    add = add_command(
        group, "add", cmd_app_add, "create an application; prints its id and API key (once)"
    )
    add.add_argument("name", help="the application's name (unique)")
    add_command(group, "list", cmd_app_list, "list applications")
    _by_id(group, "show", cmd_app_show, "show an application")
    _by_id(
        group,
        "rotate-key",
        cmd_app_rotate_key,
        "new API key, printed once; the old one stops working",
    )
    _by_id(
        group,
        "delete",
        cmd_app_delete,
        "delete an application and its key (refused while it has endpoints)",
    )
    add_command(
        group,
        "operator-key",
        cmd_app_operator_key,
        "create or replace the operator key (sees and manages every application); printed once",
    )


def _by_id(group: Commands, name: str, handler: Handler, help_text: str) -> Parser:
    parser = add_command(group, name, handler, help_text)
    parser.add_argument("id", type=positive_int, help="application id")
    return parser


def _key_notice(key: str) -> str:
    return f"api key: {key}\n(shown once: store it now; only its hash is kept)"


def cmd_app_add(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.apps import create_application

    with session_scope() as session:
        created = create_application(session, args.name, scope=OPERATOR)
    data = to_public(created.as_public())
    app = created.application
    emit(
        args,
        data,
        lambda: f"created application {app.id} ({app.name})\n" + _key_notice(created.api_key),
    )
    return 0


def cmd_app_list(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.apps import list_applications
    from ethhook.service.pages import MAX_LIMIT

    data: list[dict[str, Any]] = []
    cursor: str | None = None
    with session_scope() as session:
        while True:
            page = list_applications(session, scope=OPERATOR, cursor=cursor, limit=MAX_LIMIT)
            data += [to_public(a) for a in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    rows = [(d["id"], d["name"], d["endpoints"], json_default(d["created_at"])) for d in data]
    headers = ("ID", "NAME", "ENDPOINTS", "CREATED")
    emit(args, data, lambda: table(rows, headers) if rows else "no applications")
    return 0


def cmd_app_show(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.apps import get_application

    with session_scope() as session:
        data = to_public(get_application(session, args.id, scope=OPERATOR))
    emit(args, data, lambda: describe(data))
    return 0


def cmd_app_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.apps import rotate_api_key

    with session_scope() as session:
        rotated = rotate_api_key(session, args.id, scope=OPERATOR)
    data = to_public(rotated.as_public())
    human = f"new API key for application {args.id}; the old one no longer works\n"
    emit(args, data, lambda: human + _key_notice(rotated.api_key))
    return 0


def cmd_app_delete(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.apps import delete_application

    with session_scope() as session:
        delete_application(session, args.id, scope=OPERATOR)
    emit(args, {"deleted": args.id}, lambda: f"deleted application {args.id} and its API key")
    return 0


def cmd_app_operator_key(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import session_scope
    from ethhook.service.apps import set_operator_key

    with session_scope() as session:
        key = set_operator_key(session)
    human = "operator key (any previous one no longer works)\n" + _key_notice(key)
    emit(args, {"operator_key": key}, lambda: human)
    return 0

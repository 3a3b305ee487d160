"""`ethhook app`: applications (tenants), their API keys, and the operator key."""

from __future__ import annotations

import argparse

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

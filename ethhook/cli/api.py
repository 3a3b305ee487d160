"""`ethhook api`: serve the HTTP API and the console with uvicorn."""

from __future__ import annotations

import argparse
import dataclasses
import logging

from ethhook.cli.common import Commands, Schema, add_command, positive_int
from ethhook.config import MAX_PORT, Settings
from ethhook.exceptions import InputError
from ethhook.logs import configure


def register(commands: Commands) -> None:
    api = add_command(
        commands,
        "api",
        cmd_api,
        "serve the HTTP API (/v1, /openapi.json, /health, /metrics) and the console (/console/)",
        schema=Schema.IF_REACHABLE,  # /health reports a database that is down
    )
    api.add_argument(
        "--host", default=None, help="address to listen on (default ETHHOOK_API_HOST, 127.0.0.1)"
    )
    api.add_argument(
        "--port", type=positive_int, default=None, help="port (default ETHHOOK_API_PORT, 8080)"
    )


def serving_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings with --host and --port applied over ETHHOOK_API_HOST and ETHHOOK_API_PORT."""
    host = settings.api_host if args.host is None else args.host.strip()
    port = settings.api_port if args.port is None else args.port
    if not host:
        raise InputError("invalid --host: it is empty")
    if not 1 <= port <= MAX_PORT:
        raise InputError(f"invalid --port {port}: expected 1 to {MAX_PORT}")
    return dataclasses.replace(settings, api_host=host, api_port=port)


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.api.app import create_app
    from ethhook.api.serving import serve
    from ethhook.console import mount
    from ethhook.db.secrets import warn_if_plaintext

    settings = serving_settings(args, settings)
    configure(settings, "api")
    warn_if_plaintext(settings)
    app = create_app(settings)
    mount(app, settings)
    logging.getLogger(__name__).info(
        "api.started host=%s port=%s", settings.api_host, settings.api_port
    )
    serve(app, settings)
    return 0

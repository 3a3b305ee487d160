"""`ethhook db`: the database schema."""

from __future__ import annotations

import argparse
from pathlib import Path

from ethhook.cli.common import Commands, add_command, add_group, emit
from ethhook.config import Settings


def register(commands: Commands) -> None:
    group = add_group(commands, "db", "database schema")
    add_command(
        group, "upgrade", cmd_db_upgrade, "apply database migrations (alembic upgrade head)"
    )


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    command.upgrade(config, "head")
    emit(args, {"upgraded": True}, lambda: "database is at the latest schema")
    return 0

"""`ethhook db`: the database schema, the encryption of the secrets stored in it, and the history
tables' partitions (cli/history.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from ethhook.cli import history
from ethhook.cli.common import Commands, Schema, add_command, add_group
from ethhook.cli.output import emit
from ethhook.config import Settings


def register(commands: Commands) -> None:
    group = add_group(
        commands, "db", "database schema, secrets' encryption, history partitions and retention"
    )
    add_command(
        group,
        "upgrade",
        cmd_db_upgrade,
        "apply database migrations (alembic upgrade head)",
        schema=Schema.NONE,
    )
    reencrypt = add_command(
        group,
        "reencrypt",
        cmd_db_reencrypt,
        "rewrite every endpoint (and ops endpoint) secret under the newest ETHHOOK_SECRET_KEYS key",
    )
    reencrypt.add_argument(
        "--decrypt",
        action="store_true",
        help="store the secrets as plaintext instead (before removing ETHHOOK_SECRET_KEYS)",
    )
    new_key = add_command(
        group,
        "new-key",
        cmd_db_new_key,
        "print a new random key for ETHHOOK_SECRET_KEYS (it is stored nowhere)",
        schema=Schema.NONE,
    )
    new_key.epilog = (
        "Give it to every EthHook process as ETHHOOK_SECRET_KEYS (first, before any older key: "
        "NEW,OLD), restart them, then run `ethhook db reencrypt`. Keep it out of the database's "
        "backups: whoever has both reads every endpoint secret."
    )
    history.register(group)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    command.upgrade(config, "head")
    _partitions_ahead()
    emit(args, {"upgraded": True}, lambda: "database is at the latest schema")
    return 0


def _partitions_ahead() -> None:
    """The history tables' partitions for the intervals around now (PostgreSQL), as beat makes
    them: an upgrade run by a deployment's start-up leaves nothing for the first writes to make."""
    from ethhook.db import get_engine
    from ethhook.db.dialect import is_postgres
    from ethhook.db.models import utcnow
    from ethhook.db.partitions import ensure_ahead

    engine = get_engine()
    if is_postgres(engine):
        ensure_ahead(engine, utcnow())


def cmd_db_reencrypt(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db.reencrypt import reencrypt_endpoints, reencrypt_ops_endpoints

    read, rewritten = _reencrypt_all(reencrypt_endpoints, settings, args.decrypt)
    ops_read, ops_rewritten = _reencrypt_all(reencrypt_ops_endpoints, settings, args.decrypt)
    target = "as plaintext" if args.decrypt else "under the newest key"
    data = {
        "endpoints": read,
        "rewritten": rewritten,
        "ops_endpoints": ops_read,
        "ops_rewritten": ops_rewritten,
        "encrypted": not args.decrypt,
    }
    human = (
        f"rewrote the secrets of {rewritten} of {read} endpoints {target} "
        f"({read - rewritten} already were)"
    )
    if ops_read:
        human += f"; {ops_rewritten} of {ops_read} ops endpoints"
    emit(args, data, lambda: human)
    return 0


def _reencrypt_all(
    batch_of: Callable[..., tuple[int, int, int]], settings: Settings, decrypt: bool
) -> tuple[int, int]:
    """Every row `batch_of` rewrites, a batch per transaction (the work is idempotent, so an
    interrupted run is simply rerun); (read, rewritten)."""
    from ethhook.db import session_scope

    read = rewritten = last_id = 0
    while True:
        with session_scope() as session:
            batch, changed, last_id = batch_of(
                session, settings.secret_keys, to_plaintext=decrypt, after_id=last_id
            )
        read, rewritten = read + batch, rewritten + changed
        if batch == 0:
            return read, rewritten


def cmd_db_new_key(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db.secrets import new_key

    key = new_key()
    emit(args, {"key": key}, lambda: key)
    return 0

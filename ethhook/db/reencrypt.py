"""`ethhook db reencrypt`: rewrite the stored endpoint secrets (and the ops endpoints') under the
newest key, or as plaintext, a batch at a time (the codec is db/secrets.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import String, Table, select, type_coerce, update
from sqlalchemy.orm import Session

from ethhook.db.models import Endpoint, OpsEndpoint
from ethhook.db.secrets import decrypt, encrypt, is_current
from ethhook.exceptions import ConfigError


def reencrypt_endpoints(
    session: Session,
    keys: Sequence[str],
    *,
    to_plaintext: bool = False,
    after_id: int = 0,
    limit: int = 500,
) -> tuple[int, int, int]:
    """Rewrite the secrets of up to `limit` endpoints with ids above `after_id` under the newest
    of `keys` (or as plaintext); returns (endpoints read, endpoints rewritten, last id read).

    Reads and writes stored values as they are: one already under the newest key is left alone,
    so running it again rewrites nothing.
    """
    table = cast(Table, Endpoint.__table__)
    return _reencrypt(session, table, "id", _COLUMNS, keys, to_plaintext, after_id, limit)


def reencrypt_ops_endpoints(
    session: Session,
    keys: Sequence[str],
    *,
    to_plaintext: bool = False,
    after_id: int = 0,
    limit: int = 500,
) -> tuple[int, int, int]:
    """reencrypt_endpoints for the applications' ops endpoints (by application id)."""
    table = cast(Table, OpsEndpoint.__table__)
    return _reencrypt(
        session, table, "application_id", ("secret",), keys, to_plaintext, after_id, limit
    )


def _reencrypt(
    session: Session,
    table: Table,
    key_column: str,
    columns: Sequence[str],
    keys: Sequence[str],
    to_plaintext: bool,
    after_id: int,
    limit: int,
) -> tuple[int, int, int]:
    """reencrypt_endpoints for the secret `columns` of any table, in `key_column` order."""
    if not keys and not to_plaintext:
        raise ConfigError("set ETHHOOK_SECRET_KEYS (Fernet keys, newest first) to encrypt with")
    key = table.c[key_column]
    raw = {name: type_coerce(table.c[name], String) for name in columns}
    rows = session.execute(
        select(key, *raw.values())
        .where(key > after_id)
        .order_by(key)
        .limit(limit)
        # Locked until the batch commits: a rotation meanwhile waits instead of being overwritten.
        .with_for_update()
    ).all()
    rewritten = 0
    for row_id, *stored_values in rows:
        values = {
            name: type_coerce(_rewrap(stored, keys, to_plaintext), String)
            for name, stored in zip(columns, stored_values, strict=True)
            if stored is not None and not is_current(stored, keys, to_plaintext)
        }
        if values:
            session.execute(update(table).where(key == row_id).values(values))
            rewritten += 1
    return len(rows), rewritten, rows[-1][0] if rows else after_id


_COLUMNS = ("secret", "previous_secret")


def _rewrap(stored: str, keys: Sequence[str], to_plaintext: bool) -> str:
    plaintext = decrypt(stored, keys)
    return plaintext if to_plaintext else encrypt(plaintext, keys)

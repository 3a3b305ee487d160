"""Console sessions kept in PostgreSQL: every API process and restart sees a sign-out at once.

A session holds while its row is not revoked, not past `expires_at` (the lifetime from sign-in)
and was last used less than the idle timeout ago, and while the key that signed in still exists.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ethhook.config import Settings
from ethhook.db.models import ApiKey, ConsoleSessionRow
from ethhook.service.apps import Principal
from ethhook.service.keys import hash_key

# Rows past their lifetime deleted by each sign-in: each adds one, so the table stays bounded.
PURGE_BATCH = 100


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(db: Session, key: str, settings: Settings, now: datetime) -> str:
    """A new session for a key that authenticated; its id (for the cookie only)."""
    _purge_expired(db, now)
    session_id = secrets.token_urlsafe(32)
    lifetime = timedelta(seconds=settings.console_session_lifetime_s)
    db.add(
        ConsoleSessionRow(
            id=_digest(session_id),
            key_hash=hash_key(key),
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    db.flush()
    return session_id


def principal_of(
    db: Session, session_id: str, settings: Settings, now: datetime
) -> Principal | None:
    """Who the session is signed in as, or None when it ended; a session in use is kept alive."""
    idle = timedelta(seconds=settings.console_idle_timeout_s)
    row = ConsoleSessionRow
    key_hash = db.scalar(
        update(row)
        .where(
            row.id == _digest(session_id),
            row.revoked_at.is_(None),
            row.expires_at > now,
            row.last_seen_at > now - idle,
        )
        .values(last_seen_at=now)
        .returning(row.key_hash)
    )
    if key_hash is None:
        return None
    found = db.execute(select(ApiKey.application_id).where(ApiKey.key_hash == key_hash)).first()
    return None if found is None else Principal(found.application_id)


def revoke(db: Session, session_id: str, now: datetime) -> None:
    """End the session for good: every copy of its cookie is refused from now on."""
    row = ConsoleSessionRow
    db.execute(
        update(row)
        .where(row.id == _digest(session_id), row.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def _purge_expired(db: Session, now: datetime) -> None:
    row = ConsoleSessionRow
    oldest = select(row.id).where(row.expires_at <= now).limit(PURGE_BATCH)
    db.execute(delete(row).where(row.id.in_(oldest)))

"""Console sessions: one row per sign-in, so that signing out ends every copy of its cookie."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ethhook.db.base import Base


class ConsoleSessionRow(Base):
    """A signed-in console session: valid until it is revoked, expires, or goes unused too long.

    The cookie holds the session's random id; the row only its SHA-256, so that reading the table
    does not hand out sessions. The key is kept as its hash, the one `api_keys` stores: a key
    rotated or deleted leaves no row to match, and its sessions end with it.
    """

    __tablename__ = "console_sessions"
    __table_args__ = (Index(None, "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

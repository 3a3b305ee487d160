"""console_sessions: signing out of the console ends the session for good

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 12:00:00

One row per console sign-in (the SHA-256 of the cookie's session id). Sessions signed in before
the upgrade have no row and end: their visitors sign in again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ethhook.db.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = ethhook.db.models.UTCDateTime()
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("last_seen_at", utc, nullable=False),
        sa.Column("expires_at", utc, nullable=False),
        sa.Column("revoked_at", utc, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    op.create_index(
        op.f("ix_console_sessions_expires_at"), "console_sessions", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_console_sessions_expires_at"), table_name="console_sessions")
    op.drop_table("console_sessions")

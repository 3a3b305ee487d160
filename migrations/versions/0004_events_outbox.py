"""events are the matcher's outbox: matched_at and a lease per event

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ethhook.db.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = ethhook.db.models.UTCDateTime()
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("matched_at", utc, nullable=True))
        batch.add_column(sa.Column("lease_token", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", utc, nullable=True))
    # Events stored before this revision were stored by the matcher itself, already matched.
    op.execute("UPDATE events SET matched_at = created_at")
    op.create_index(
        "ix_events_unmatched",
        "events",
        ["chain_id", "block_number", "log_index"],
        unique=False,
        postgresql_where=sa.text("matched_at IS NULL"),
        sqlite_where=sa.text("matched_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_events_unmatched",
        table_name="events",
        postgresql_where=sa.text("matched_at IS NULL"),
        sqlite_where=sa.text("matched_at IS NULL"),
    )
    with op.batch_alter_table("events") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_token")
        batch.drop_column("matched_at")

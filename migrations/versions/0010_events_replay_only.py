"""events.replay_only: an event a replay stored before the listener read its block

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:00:00

A replay stores the events it reads as matched, for its own endpoints. When the listener had not
yet stored them, it found them stored and matched and never handed them to the matcher, so every
other endpoint lost them. Such events are now marked, and the listener matches them when it
reads their block. Existing rows cannot be told apart and stay as they are (false).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "events",
        sa.Column("replay_only", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("replay_only")

"""Finality by chain tag and lifecycle endpoints

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 07:30:00

`endpoints.finality` is `latest` (the default: every endpoint made before; `confirmations`
apply), `safe` or `finalized` (the node's block tag decides); `endpoints.lifecycle` sends one
event as `event.instant`, then `event.confirmed` (or `event.removed`). `deliveries.release_tag`
is the tag a waiting confirmed delivery waits for (NULL: `release_block` against the listener's
cursor, as before). `chain_tags` holds, per chain, what the listener learnt of its node's
`safe` and `finalized` blocks, and whether the node answers those tags at all. Every default is
a constant: PostgreSQL adds the columns without rewriting a table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ethhook.db.models

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "endpoints",
        sa.Column("finality", sa.String(9), server_default="latest", nullable=False),
    )
    op.add_column(
        "endpoints",
        sa.Column("lifecycle", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("deliveries", sa.Column("release_tag", sa.String(9), nullable=True))
    op.create_table(
        "chain_tags",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("supported", sa.Boolean(), nullable=False),
        sa.Column("safe_number", sa.BigInteger(), nullable=True),
        sa.Column("finalized_number", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", ethhook.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_chain_tags")),
    )


def downgrade() -> None:
    op.drop_table("chain_tags")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("release_tag")
    with op.batch_alter_table("endpoints") as batch:
        for column in ("lifecycle", "finality"):
            batch.drop_column(column)

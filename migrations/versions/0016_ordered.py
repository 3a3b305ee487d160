"""Ordered endpoints: `endpoints.ordered`, `deliveries.skipped_at`

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-07 07:15:00

`endpoints.ordered` is NULL (webhooks sent in parallel, every endpoint made before), `pause` or
`skip-dead` (`--ordered`: strictly in sequence order, one at a time). `deliveries.skipped_at`
records when a `skip-dead` endpoint went on past a dead-lettered delivery.
`ix_endpoints_ordered` (partial) gives the due scan the ordered endpoints without reading the
others. The columns are nullable without a default: PostgreSQL adds them without rewriting a
table (on `deliveries`, the partitioned parent passes the column to every partition).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("ordered", sa.String(9), nullable=True))
    op.create_index(
        "ix_endpoints_ordered",
        "endpoints",
        ["id"],
        postgresql_where=sa.text("ordered IS NOT NULL"),
        sqlite_where=sa.text("ordered IS NOT NULL"),
    )
    op.add_column("deliveries", sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("skipped_at")
    op.drop_index("ix_endpoints_ordered", table_name="endpoints")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("ordered")

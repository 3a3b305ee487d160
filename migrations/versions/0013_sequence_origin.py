"""Per-endpoint sequence numbers, a delivery's origin, endpoints that start from a block

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:30:00

`endpoints.last_sequence` is the endpoint's counter; `deliveries.sequence` the number a delivery
took from it when it became due to send (NULL for rows made before, and for confirmed deliveries
still waiting). `deliveries.origin` and `replay_jobs.origin` say why a delivery is sent: live,
replay or backfill. `endpoints.from_block`, `backfilling` and `live_only` serve `endpoint add
--from-block` and `--live-only`; `start_blocks` (per chain, the first block matched for it) serves
`endpoint coverage`. Every default is a constant: PostgreSQL adds the columns without
rewriting a table (the partitioned deliveries included).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "endpoints",
        sa.Column("last_sequence", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column("endpoints", sa.Column("from_block", sa.BigInteger(), nullable=True))
    op.add_column("endpoints", sa.Column("start_blocks", sa.JSON(), nullable=True))
    op.add_column(
        "endpoints",
        sa.Column("backfilling", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "endpoints",
        sa.Column("live_only", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("deliveries", sa.Column("sequence", sa.BigInteger(), nullable=True))
    op.add_column(
        "deliveries",
        sa.Column("origin", sa.String(8), server_default="live", nullable=False),
    )
    op.add_column(
        "replay_jobs",
        sa.Column("origin", sa.String(8), server_default="replay", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("replay_jobs") as batch:
        batch.drop_column("origin")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("origin")
        batch.drop_column("sequence")
    with op.batch_alter_table("endpoints") as batch:
        for column in ("live_only", "backfilling", "start_blocks", "from_block", "last_sequence"):
            batch.drop_column(column)

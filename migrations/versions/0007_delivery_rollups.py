"""delivery_rollups: attempt counts and latency buckets per endpoint per minute and per hour

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00

Starts empty: statistics cover attempts recorded from this revision on (attempts already stored
are not aggregated, so that the upgrade never scans the attempts table).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ethhook.db.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As they are in this revision (the models' constants may change later).
COUNTS = ("attempts", "succeeded", "client_errors", "server_errors", "no_response", "dead_lettered")
LATENCY = tuple(f"latency_{b}ms" for b in (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000))


def upgrade() -> None:
    op.create_table(
        "delivery_rollups",
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("period_s", sa.Integer(), nullable=False),
        sa.Column("period_start", ethhook.db.models.UTCDateTime(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("duration_ms_total", sa.Float(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (*LATENCY, "latency_inf")),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_delivery_rollups_endpoint_id_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "endpoint_id", "period_s", "period_start", name=op.f("pk_delivery_rollups")
        ),
    )
    op.create_index(
        op.f("ix_delivery_rollups_period_s_period_start"),
        "delivery_rollups",
        ["period_s", "period_start"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_delivery_rollups_period_s_period_start"), table_name="delivery_rollups"
    )
    op.drop_table("delivery_rollups")

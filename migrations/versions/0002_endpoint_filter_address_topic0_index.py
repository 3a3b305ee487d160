"""endpoint filter index on address and topic0

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 04:35:23.878836
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_endpoint_filters_address"), table_name="endpoint_filters")
    op.create_index(
        op.f("ix_endpoint_filters_address_topic0"),
        "endpoint_filters",
        ["address", "topic0"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_endpoint_filters_address_topic0"), table_name="endpoint_filters")
    op.create_index(
        op.f("ix_endpoint_filters_address"), "endpoint_filters", ["address"], unique=False
    )

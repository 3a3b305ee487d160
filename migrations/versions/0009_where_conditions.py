"""--where conditions: endpoints keep them as given; indexed equalities become topic keys

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:00:00

Filter rows of an endpoint with a topic key are `keyed` and leave the (address, topic0) and
(topic0) indexes, which become partial: the matcher reaches them through endpoint_topic_keys.
Existing endpoints have no conditions, so no row is keyed and the upgrade rewrites no data.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_KEYED = sa.text("NOT keyed")


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("conditions", sa.JSON(none_as_null=True), nullable=True))
    op.add_column(
        "endpoint_filters",
        sa.Column("keyed", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    _filter_indexes(partial=True)
    op.create_table(
        "endpoint_topic_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.String(length=66), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_endpoint_topic_keys_endpoint_id_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoint_topic_keys")),
    )
    op.create_index(op.f("ix_endpoint_topic_keys_value"), "endpoint_topic_keys", ["value"])
    op.create_index(
        op.f("ix_endpoint_topic_keys_endpoint_id"), "endpoint_topic_keys", ["endpoint_id"]
    )


def _filter_indexes(*, partial: bool) -> None:
    """Re-create the address and topic0 indexes of endpoint_filters, partial or whole."""
    where = {"postgresql_where": NOT_KEYED, "sqlite_where": NOT_KEYED} if partial else {}
    for name, columns in (
        ("ix_endpoint_filters_address_topic0", ["address", "topic0"]),
        ("ix_endpoint_filters_topic0", ["topic0"]),
    ):
        op.drop_index(op.f(name), table_name="endpoint_filters")
        op.create_index(op.f(name), "endpoint_filters", columns, unique=False, **where)


def downgrade() -> None:
    op.drop_index(op.f("ix_endpoint_topic_keys_endpoint_id"), table_name="endpoint_topic_keys")
    op.drop_index(op.f("ix_endpoint_topic_keys_value"), table_name="endpoint_topic_keys")
    op.drop_table("endpoint_topic_keys")
    _filter_indexes(partial=False)
    with op.batch_alter_table("endpoint_filters") as batch:
        batch.drop_column("keyed")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("conditions")

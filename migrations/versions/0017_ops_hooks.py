"""Operational webhooks, and disabled endpoints that keep (or discard) their backlog

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-07 08:00:00

`ops_endpoints` holds an application's one operational endpoint (its URL and `whsec_` secret,
encrypted at rest like endpoint secrets); `ops_messages` the operational webhooks sent to it
(`endpoint.disabled`, …), leased and retried like deliveries. They are few and about no event,
so a small plain table rather than the partitioned deliveries. `endpoints.discard_while_disabled`
marks an endpoint disabled with `--discard` (its backlog is not kept);
`endpoints.failing_notified_at` when `endpoint.failing` was sent for its current run of
failures; two small partial indexes let beat's looks for failing endpoints read only those. Every
default is a constant: PostgreSQL adds the columns without rewriting a table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "endpoints",
        sa.Column(
            "discard_while_disabled", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )
    op.add_column(
        "endpoints", sa.Column("failing_notified_at", sa.DateTime(timezone=True), nullable=True)
    )
    for name, column in (
        ("ix_endpoints_failing_since", "failing_since"),
        ("ix_endpoints_failing_notified", "failing_notified_at"),
    ):
        op.create_index(
            name,
            "endpoints",
            [column],
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
            sqlite_where=sa.text(f"{column} IS NOT NULL"),
        )
    op.create_table(
        "ops_endpoints",
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        # EncryptedSecret: 500 characters, 100 on SQLite (db/secrets.py).
        sa.Column(
            "secret",
            sa.String(length=500).with_variant(sa.String(length=100), "sqlite"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_ops_endpoints_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("application_id", name=op.f("pk_ops_endpoints")),
    )
    op.create_table(
        "ops_messages",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.String(length=36), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_ops_messages_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_messages")),
    )
    op.create_index(
        op.f("ix_ops_messages_application_id_id"), "ops_messages", ["application_id", "id"]
    )
    op.create_index(
        "ix_ops_messages_pending",
        "ops_messages",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_ops_messages_pending", table_name="ops_messages")
    op.drop_index(op.f("ix_ops_messages_application_id_id"), table_name="ops_messages")
    op.drop_table("ops_messages")
    op.drop_table("ops_endpoints")
    op.drop_index("ix_endpoints_failing_notified", table_name="endpoints")
    op.drop_index("ix_endpoints_failing_since", table_name="endpoints")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("failing_notified_at")
        batch.drop_column("discard_while_disabled")

"""applications (tenants) and API keys; every endpoint belongs to an application

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import ethhook.db.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPERATOR_ONLY = sa.text("role = 'operator'")


def upgrade() -> None:
    utc = ethhook.db.models.UTCDateTime(timezone=True)
    applications = op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("name", name=op.f("uq_applications_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.CheckConstraint(
            "(role = 'operator' AND application_id IS NULL) OR "
            "(role = 'application' AND application_id IS NOT NULL)",
            name="ck_api_keys_role",
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_api_keys_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_application_id"), "api_keys", ["application_id"])
    op.create_index(
        "uq_api_keys_operator",
        "api_keys",
        ["role"],
        unique=True,
        postgresql_where=OPERATOR_ONLY,
        sqlite_where=OPERATOR_ONLY,
    )
    # The built-in application; every endpoint registered so far joins it.
    op.bulk_insert(applications, [{"name": "default", "created_at": datetime.now(UTC)}])
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("application_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE endpoints SET application_id = "
        "(SELECT id FROM applications WHERE name = 'default')"
    )
    with op.batch_alter_table("endpoints") as batch:
        batch.alter_column("application_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(
            op.f("fk_endpoints_application_id_applications"),
            "applications",
            ["application_id"],
            ["id"],
        )
        batch.create_index(op.f("ix_endpoints_application_id"), ["application_id"])


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_index(op.f("ix_endpoints_application_id"))
        batch.drop_constraint(op.f("fk_endpoints_application_id_applications"), type_="foreignkey")
        batch.drop_column("application_id")
    op.drop_index(
        "uq_api_keys_operator",
        table_name="api_keys",
        postgresql_where=OPERATOR_ONLY,
        sqlite_where=OPERATOR_ONLY,
    )
    op.drop_index(op.f("ix_api_keys_application_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("applications")

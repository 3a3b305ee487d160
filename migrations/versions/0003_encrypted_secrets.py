"""endpoint secrets wide enough to hold Fernet tokens (ETHHOOK_SECRET_KEYS)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000

SQLite is left alone: it does not enforce VARCHAR lengths, and changing a declared type there
means rebuilding the table, which (foreign keys on) would cascade-delete every filter and delivery.
The model declares the same per dialect (ethhook/db/secrets.py, EncryptedSecret).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("secret", False), ("previous_secret", True))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for name, nullable in COLUMNS:
        op.alter_column(
            "endpoints",
            name,
            type_=sa.String(length=500),
            existing_type=sa.String(length=100),
            existing_nullable=nullable,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    encrypted = op.get_bind().scalar(
        sa.text(
            "SELECT count(*) FROM endpoints "
            "WHERE secret LIKE 'enc:%' OR previous_secret LIKE 'enc:%'"
        )
    )
    if encrypted:
        raise RuntimeError(
            f"{encrypted} endpoints have encrypted secrets that do not fit the old columns: "
            "run `ethhook db reencrypt --decrypt` first"
        )
    for name, nullable in COLUMNS:
        op.alter_column(
            "endpoints",
            name,
            type_=sa.String(length=100),
            existing_type=sa.String(length=500),
            existing_nullable=nullable,
        )

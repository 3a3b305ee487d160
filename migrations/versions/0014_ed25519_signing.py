"""Ed25519 signing (Standard Webhooks v1a) per endpoint

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 05:00:00

`endpoints.signing` is `hmac` (the default: every endpoint made before) or `ed25519`. An ed25519
endpoint keeps its `whsk_` private key where an hmac endpoint keeps its secret (`secret`, and
`previous_secret` during a rotation: encrypted at rest alike, rewritten by `ethhook db
reencrypt`); `public_key` and `previous_public_key` hold the `whpk_` public keys, shown to users
without reading the private ones. The default is a constant: PostgreSQL adds the column without
rewriting the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "endpoints", sa.Column("signing", sa.String(8), server_default="hmac", nullable=False)
    )
    op.add_column("endpoints", sa.Column("public_key", sa.String(60), nullable=True))
    op.add_column("endpoints", sa.Column("previous_public_key", sa.String(60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        for column in ("previous_public_key", "public_key", "signing"):
            batch.drop_column(column)

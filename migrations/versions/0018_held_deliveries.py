"""Ordered endpoints numbered in the chain's order: `ix_deliveries_held`

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 21:40:00

An `--ordered` endpoint's delivery that the matcher made before an earlier batch of its chain was
matched is held (`waiting`, release tag `order`, no release block) until that batch is, then
numbered in block and log order (workqueue.chainorder). Every match task looks for held
deliveries, so they get a partial index that holds them alone (none, or a few).

On PostgreSQL the index is made on the partitioned parent alone (ON ONLY, invalid until every
partition has one), then built CONCURRENTLY on each partition and attached: no partition's writes
wait for a build. A partition made meanwhile gets it from the parent. On SQLite (the demo) it is a
plain CREATE INDEX.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_deliveries_held"
HELD = "status = 'waiting' AND release_tag = 'order'"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(NAME, "deliveries", ["endpoint_id"], sqlite_where=sa.text(HELD))
        return
    op.execute(f"CREATE INDEX {NAME} ON ONLY deliveries (endpoint_id) WHERE {HELD}")
    partitions = op.get_bind().scalars(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'deliveries'::regclass AND NOT EXISTS ("
            # (one made since the parent's index has its own already)
            "  SELECT 1 FROM pg_inherits a JOIN pg_index x ON x.indexrelid = a.inhrelid"
            f"  WHERE a.inhparent = '{NAME}'::regclass AND x.indrelid = c.oid"
            ") ORDER BY 1"
        )
    )
    names = list(partitions)
    with op.get_context().autocommit_block():
        for partition in names:
            index = f"{partition}_held"[:63]
            op.execute(f"DROP INDEX IF EXISTS {index}")  # an INVALID one a failed build left
            op.execute(
                f"CREATE INDEX CONCURRENTLY {index} ON {partition} (endpoint_id) WHERE {HELD}"
            )
            op.execute(f"ALTER INDEX {NAME} ATTACH PARTITION {index}")


def downgrade() -> None:
    op.drop_index(NAME, table_name="deliveries")

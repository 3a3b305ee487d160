"""statistics: a partial index of the open deliveries, and day rows in delivery_rollups

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:00:00

`ix_deliveries_open_endpoint_id_status` lets statistics count the waiting, pending and failed
deliveries per endpoint from a small index instead of reading `deliveries` (bench/RESULTS.md §7).
On PostgreSQL it is built CONCURRENTLY, outside the migration's transaction: it does not block
reads or writes of a big table (it takes a SHARE UPDATE EXCLUSIVE lock, waits for the
transactions already running, then reads the table twice). If the build fails, PostgreSQL leaves
an INVALID index behind: drop it and upgrade again. On SQLite (the demo) it is a plain CREATE
INDEX.

Day rows (period_s 86400, UTC days) are added up from the hour rows already stored, in one
INSERT … SELECT that reads only hour rows and takes no lock beyond the rows it writes; from this
revision on, record() writes them with the minute and hour rows. Run it with the deliver workers
stopped, as any upgrade: attempts recorded by the previous version's workers after this
statement would be missing from their day's row. On the bench's 10,000,000-attempt database
(360,500 hour rows) the whole upgrade took 8.8 s.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As they are in this revision (the models' constants may change later).
OPEN = sa.text("status IN ('waiting', 'pending', 'failed')")
ADDED = (
    "attempts, succeeded, client_errors, server_errors, no_response, dead_lettered,"
    " duration_ms_total, "
    + ", ".join(f"latency_{b}ms" for b in (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000))
    + ", latency_inf"
)
DAY_OF_HOUR = {
    "postgresql": "date_trunc('day', period_start, 'UTC')",
    "sqlite": "strftime('%Y-%m-%d 00:00:00.000000', period_start)",  # SQLAlchemy's format
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    names = [name.strip() for name in ADDED.split(",")]
    sums = ", ".join(f"sum({name})" for name in names)
    replaced = ", ".join(f"{name} = excluded.{name}" for name in names)
    op.execute(
        f"INSERT INTO delivery_rollups (endpoint_id, period_s, period_start, {ADDED})"
        f" SELECT endpoint_id, 86400, {DAY_OF_HOUR[dialect]}, {sums} FROM delivery_rollups"
        " WHERE period_s = 3600 GROUP BY 1, 3"
        # The hour rows are the truth for their day (a day row written since is replaced).
        f" ON CONFLICT (endpoint_id, period_s, period_start) DO UPDATE SET {replaced}"
    )
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_deliveries_open_endpoint_id_status",
            "deliveries",
            ["endpoint_id", "status"],
            unique=False,
            postgresql_where=OPEN,
            sqlite_where=OPEN,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_deliveries_open_endpoint_id_status",
            table_name="deliveries",
            postgresql_concurrently=True,
        )
    op.execute("DELETE FROM delivery_rollups WHERE period_s = 86400")

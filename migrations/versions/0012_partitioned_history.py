"""history partitioned by the event's time: events, deliveries and delivery_attempts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 02:00:00

Each of the three tables gets `event_at`, the block time of the event a row is about, and on
PostgreSQL becomes a table range-partitioned on it (ethhook/db/partitions.py), so retention drops
whole partitions. Every unique key includes event_at; the foreign keys between the history tables
and to endpoints are gone (dropping a partition must not lock or scan another table); the indexes
nothing needs are dropped (ARCHITECTURE.md lists each index with its query).

An empty database gets the partitioned tables at once. One with history keeps its rows without
copying them and without a long lock (ops/runbooks/partitions.md): event_at is filled in batches
while the old processes keep running (a trigger fills the rows they insert meanwhile), the unique
indexes the partitioned tables need are built CONCURRENTLY, a validated CHECK constrains event_at
below a cutover time; then, in one short transaction, each table is renamed `<table>_legacy` and
attached as the partition of every time before the cutover (the CHECK spares the attach a scan),
under a new partitioned parent. Retention drops the legacy partitions when the cutover is past
retention and they hold no unsent delivery. SQLite (the demo) keeps plain tables.
"""

import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from ethhook.config import get_settings
from ethhook.db.partition_plan import EPOCH, LATEST_EVENT_AT, interval_start, sql_time, times_ahead
from ethhook.db.partitions import make_partitions

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("events", "deliveries", "delivery_attempts")
BATCH_ROWS = 50_000
_LATEST_S = int((LATEST_EVENT_AT - EPOCH).total_seconds())
# partition_plan.event_time in SQL.
EVENT_TIME = f"to_timestamp(LEAST(GREATEST(block_timestamp, 0), {_LATEST_S}))"
OPEN = "status IN ('waiting', 'pending', 'failed')"
UNSENT = "status IN ('waiting', 'pending')"

PARENTS = {
    "events": """CREATE TABLE events (
        id VARCHAR(40) NOT NULL, event_at TIMESTAMP WITH TIME ZONE NOT NULL,
        chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash VARCHAR(66) NOT NULL,
        block_timestamp BIGINT NOT NULL, transaction_hash VARCHAR(66) NOT NULL,
        transaction_index INTEGER NOT NULL, log_index INTEGER NOT NULL,
        address VARCHAR(42) NOT NULL, topics JSON NOT NULL, data TEXT NOT NULL,
        removed BOOLEAN NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL,
        matched_at TIMESTAMP WITH TIME ZONE, lease_token VARCHAR(36),
        lease_expires_at TIMESTAMP WITH TIME ZONE, replay_only BOOLEAN DEFAULT false NOT NULL,
        CONSTRAINT pk_events PRIMARY KEY (id, event_at),
        CONSTRAINT uq_events_chain_id_block_hash_log_index_event_at
            UNIQUE (chain_id, block_hash, log_index, event_at)
    ) PARTITION BY RANGE (event_at)""",
    "deliveries": """CREATE TABLE deliveries (
        id BIGSERIAL NOT NULL, event_at TIMESTAMP WITH TIME ZONE NOT NULL,
        endpoint_id INTEGER NOT NULL, event_id VARCHAR(40) NOT NULL, kind VARCHAR(20) NOT NULL,
        status VARCHAR(12) NOT NULL, attempts INTEGER NOT NULL,
        next_attempt_at TIMESTAMP WITH TIME ZONE, release_block BIGINT,
        lease_token VARCHAR(36), lease_expires_at TIMESTAMP WITH TIME ZONE,
        last_status_code INTEGER, last_error VARCHAR(500),
        created_at TIMESTAMP WITH TIME ZONE NOT NULL, updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
        CONSTRAINT pk_deliveries PRIMARY KEY (id, event_at),
        CONSTRAINT uq_deliveries_event_id_endpoint_id_kind_event_at
            UNIQUE (event_id, endpoint_id, kind, event_at)
    ) PARTITION BY RANGE (event_at)""",
    "delivery_attempts": """CREATE TABLE delivery_attempts (
        id BIGSERIAL NOT NULL, event_at TIMESTAMP WITH TIME ZONE NOT NULL,
        delivery_id BIGINT NOT NULL, attempt_number INTEGER NOT NULL,
        started_at TIMESTAMP WITH TIME ZONE NOT NULL, duration_ms FLOAT NOT NULL,
        status_code INTEGER, error VARCHAR(500), response_body TEXT,
        CONSTRAINT pk_delivery_attempts PRIMARY KEY (id, event_at)
    ) PARTITION BY RANGE (event_at)""",
}
# (name, table, columns and predicate): the indexes of the partitioned tables.
INDEXES = (
    ("ix_events_chain_id_block_number", "events", "(chain_id, block_number)"),
    (
        "ix_events_unmatched",
        "events",
        "(chain_id, block_number, log_index) WHERE matched_at IS NULL",
    ),
    ("ix_deliveries_endpoint_id_status", "deliveries", "(endpoint_id, status)"),
    ("ix_deliveries_open_endpoint_id_status", "deliveries", f"(endpoint_id, status) WHERE {OPEN}"),
    ("ix_deliveries_unsent", "deliveries", f"(status, next_attempt_at) WHERE {UNSENT}"),
    ("ix_delivery_attempts_delivery_id", "delivery_attempts", "(delivery_id)"),
)
# Indexes of the old tables that the partitioned ones keep, as the legacy partitions' names.
KEPT = {
    "ix_events_chain_id_block_number": "events_legacy_chain_block",
    "ix_events_unmatched": "events_legacy_unmatched",
    "ix_deliveries_endpoint_id_status": "deliveries_legacy_endpoint_status",
    "ix_deliveries_open_endpoint_id_status": "deliveries_legacy_open",
    "ix_delivery_attempts_delivery_id": "delivery_attempts_legacy_delivery",
}
# Built CONCURRENTLY on the old tables before the cutover: (name, table, definition).
BUILT = (
    ("events_legacy_pkey", "events", "UNIQUE INDEX", "(id, event_at)"),
    ("events_legacy_key", "events", "UNIQUE INDEX", "(chain_id, block_hash, log_index, event_at)"),
    ("deliveries_legacy_pkey", "deliveries", "UNIQUE INDEX", "(id, event_at)"),
    (
        "deliveries_legacy_key",
        "deliveries",
        "UNIQUE INDEX",
        "(event_id, endpoint_id, kind, event_at)",
    ),
    (
        "deliveries_legacy_unsent",
        "deliveries",
        "INDEX",
        f"(status, next_attempt_at) WHERE {UNSENT}",
    ),
    ("delivery_attempts_legacy_pkey", "delivery_attempts", "UNIQUE INDEX", "(id, event_at)"),
)
OLD_FOREIGN_KEYS = (
    ("deliveries", "fk_deliveries_endpoint_id_endpoints"),
    ("deliveries", "fk_deliveries_event_id_events"),
    ("delivery_attempts", "fk_delivery_attempts_delivery_id_deliveries"),
)
OLD_KEYS = {
    "events": ("pk_events", "uq_events_chain_id_block_hash_log_index"),
    "deliveries": ("pk_deliveries", "uq_deliveries_endpoint_id_event_id_kind"),
    "delivery_attempts": ("pk_delivery_attempts",),
}
OLD_INDEXES = (
    "ix_events_created_at",
    "ix_deliveries_event_id",
    "ix_deliveries_status_next_attempt_at",
    "ix_deliveries_updated_at",
)
# What fills event_at in rows the old processes insert while the upgrade runs.
FILL = {
    "events": f"NEW.event_at := {EVENT_TIME.replace('block_timestamp', 'NEW.block_timestamp')};",
    "deliveries": f"SELECT {EVENT_TIME} INTO NEW.event_at FROM events WHERE id = NEW.event_id;",
    "delivery_attempts": (
        f"SELECT {EVENT_TIME.replace('block_timestamp', 'e.block_timestamp')} INTO NEW.event_at"
        " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = NEW.delivery_id;"
    ),
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _upgrade_sqlite()
        return
    conn = op.get_bind()
    for table in TABLES:
        conn.execute(sa.text(f"LOCK TABLE {table} IN SHARE MODE"))
    if not any(conn.scalar(sa.text(f"SELECT EXISTS (SELECT 1 FROM {t})")) for t in TABLES):
        for table in reversed(TABLES):
            op.execute(f"DROP TABLE {table}")
        _create_parents()
        _partitions_ahead(None)
        return
    started = time.monotonic()
    _prepare(conn)
    with op.get_context().autocommit_block():
        _backfill(conn)
    _say(started, "event_at filled")
    cutover = _cutover_time(conn)
    _constrain(cutover)
    with op.get_context().autocommit_block():
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT ck_{table}_legacy_event_at")
        _say(started, f"event_at checked below the cutover, {cutover:%Y-%m-%d %H:%M} UTC")
        for name, table, kind, definition in BUILT:
            valid = conn.scalar(
                sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:n)"),
                {"n": name},
            )
            if valid is False:  # left by an interrupted run
                op.execute(f"DROP INDEX CONCURRENTLY {name}")
            if not valid:
                op.execute(f"CREATE {kind} CONCURRENTLY {name} ON {table} {definition}")
        _say(started, "the partitions' unique indexes built")
    _switch(conn, cutover)
    _say(started, "the old tables are the legacy partitions")


def _say(started: float, what: str) -> None:
    """Progress of a long upgrade, on stderr."""
    print(f"0012: {what} ({time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)


def _prepare(conn: sa.Connection) -> None:
    """event_at on the old tables, filled by a trigger in the rows inserted from now on."""
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS event_at TIMESTAMP WITH TIME ZONE"
        )
        op.execute(
            f"CREATE OR REPLACE FUNCTION ethhook_0012_{table}_event_at() RETURNS trigger"
            f" LANGUAGE plpgsql AS $$ BEGIN IF NEW.event_at IS NULL THEN {FILL[table]} END IF;"
            " RETURN NEW; END $$"
        )
        op.execute(f"DROP TRIGGER IF EXISTS ethhook_0012_event_at ON {table}")
        op.execute(
            f"CREATE TRIGGER ethhook_0012_event_at BEFORE INSERT ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION ethhook_0012_{table}_event_at()"
        )


def _backfill(conn: sa.Connection) -> None:
    """event_at of every existing row, BATCH_ROWS rows per transaction: no long lock."""
    last = ""
    while True:
        upper = conn.scalar(
            sa.text(
                "SELECT max(id) FROM (SELECT id FROM events WHERE id > :last ORDER BY id"
                f" LIMIT {BATCH_ROWS}) AS batch"
            ),
            {"last": last},
        )
        if upper is None:
            break
        conn.execute(
            sa.text(
                f"UPDATE events SET event_at = {EVENT_TIME}"
                " WHERE id > :last AND id <= :upper AND event_at IS NULL"
            ),
            {"last": last, "upper": upper},
        )
        last = upper
    for table, source in (
        ("deliveries", "events s WHERE s.id = t.event_id"),
        ("delivery_attempts", "deliveries s WHERE s.id = t.delivery_id"),
    ):
        low, high = conn.execute(sa.text(f"SELECT min(id), max(id) FROM {table}")).one()
        for start in range(low or 0, (high or -1) + 1, BATCH_ROWS):
            conn.execute(
                sa.text(
                    f"UPDATE {table} t SET event_at = s.event_at FROM {source}"
                    " AND t.id >= :start AND t.id < :end AND t.event_at IS NULL"
                ),
                {"start": start, "end": start + BATCH_ROWS},
            )


def _cutover_time(conn: sa.Connection) -> datetime:
    """Where the legacy partitions end: an interval after the newest event time stored or now."""
    interval_s = get_settings().partition_interval_s
    newest = conn.scalar(sa.text("SELECT max(event_at) FROM events"))
    latest = max(datetime.now(UTC), newest or EPOCH)
    return interval_start(latest, interval_s) + timedelta(seconds=2 * interval_s)


def _constrain(cutover: datetime) -> None:
    """The CHECK that lets each old table be attached without a scan (validated later, online)."""
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS ck_{table}_legacy_event_at")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT ck_{table}_legacy_event_at CHECK"
            f" (event_at IS NOT NULL AND event_at < {sql_time(cutover)}) NOT VALID"
        )


def _switch(conn: sa.Connection, cutover: datetime) -> None:
    """One short transaction: the old tables become the legacy partitions of new parents."""
    for table in TABLES:
        op.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    for table, constraint in OLD_FOREIGN_KEYS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}")
    for table in TABLES:
        for constraint in OLD_KEYS[table]:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}")
        op.execute(f"DROP TRIGGER ethhook_0012_event_at ON {table}")
        op.execute(f"DROP FUNCTION ethhook_0012_{table}_event_at()")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN event_at SET NOT NULL")  # by the CHECK
        op.execute(f"ALTER TABLE {table} ADD PRIMARY KEY USING INDEX {table}_legacy_pkey")
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_legacy")
    for table in ("events", "deliveries"):
        op.execute(f"ALTER TABLE {table}_legacy ADD UNIQUE USING INDEX {table}_legacy_key")
    for name in OLD_INDEXES:
        op.execute(f"DROP INDEX {name}")
    for old, new in KEPT.items():
        op.execute(f"ALTER INDEX {old} RENAME TO {new}")
    for table in ("deliveries", "delivery_attempts"):
        op.execute(f"ALTER TABLE {table}_legacy ALTER COLUMN id DROP DEFAULT")
        op.execute(f"ALTER SEQUENCE {table}_id_seq RENAME TO {table}_legacy_id_seq")
    _create_parents()
    for table in ("deliveries", "delivery_attempts"):
        old = conn.execute(
            sa.text(f"SELECT last_value, is_called FROM {table}_legacy_id_seq")
        ).one()
        conn.execute(
            sa.text(f"SELECT setval('{table}_id_seq', :value, :called)"),
            {"value": old.last_value, "called": old.is_called},
        )
        op.execute(f"DROP SEQUENCE {table}_legacy_id_seq")
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {table}_legacy"
            f" FOR VALUES FROM (MINVALUE) TO ({sql_time(cutover)})"
        )
    _partitions_ahead(cutover)


def _create_parents() -> None:
    for table in TABLES:
        op.execute(PARENTS[table])
    for name, table, definition in INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} {definition}")


def _partitions_ahead(cutover: datetime | None) -> None:
    interval_s = get_settings().partition_interval_s
    times = times_ahead(datetime.now(UTC), interval_s)
    if cutover is not None:
        times = [t for t in times if t >= cutover] or [cutover]
    make_partitions(op.get_bind(), times, interval_s)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _downgrade_sqlite()
        return
    # Every row is copied into plain tables: as slow as the history is large.
    for table in TABLES:
        op.execute(f"CREATE TABLE {table}_plain (LIKE {table} INCLUDING DEFAULTS)")
        op.execute(f"INSERT INTO {table}_plain SELECT * FROM {table}")
    for table in ("deliveries", "delivery_attempts"):
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY NONE")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE {table}")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table}_plain RENAME TO {table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN event_at")
    for table in ("deliveries", "delivery_attempts"):
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    _old_keys()


def _old_keys() -> None:
    """The keys and indexes of revision 0011."""
    op.create_primary_key("pk_events", "events", ["id"])
    op.create_unique_constraint(
        "uq_events_chain_id_block_hash_log_index", "events", ["chain_id", "block_hash", "log_index"]
    )
    op.create_primary_key("pk_deliveries", "deliveries", ["id"])
    op.create_unique_constraint(
        "uq_deliveries_endpoint_id_event_id_kind", "deliveries", ["endpoint_id", "event_id", "kind"]
    )
    op.create_primary_key("pk_delivery_attempts", "delivery_attempts", ["id"])
    for name, table, columns in (
        ("ix_events_chain_id_block_number", "events", ["chain_id", "block_number"]),
        ("ix_events_created_at", "events", ["created_at"]),
        ("ix_deliveries_endpoint_id_status", "deliveries", ["endpoint_id", "status"]),
        ("ix_deliveries_event_id", "deliveries", ["event_id"]),
        ("ix_deliveries_status_next_attempt_at", "deliveries", ["status", "next_attempt_at"]),
        ("ix_deliveries_updated_at", "deliveries", ["updated_at"]),
        ("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"]),
    ):
        op.create_index(name, table, columns)
    op.create_index(
        "ix_events_unmatched",
        "events",
        ["chain_id", "block_number", "log_index"],
        postgresql_where=sa.text("matched_at IS NULL"),
    )
    op.create_index(
        "ix_deliveries_open_endpoint_id_status",
        "deliveries",
        ["endpoint_id", "status"],
        postgresql_where=sa.text(OPEN),
    )
    op.create_foreign_key(
        "fk_deliveries_endpoint_id_endpoints", "deliveries", "endpoints", ["endpoint_id"], ["id"],
        ondelete="CASCADE",
    )  # fmt: skip
    op.create_foreign_key(
        "fk_deliveries_event_id_events", "deliveries", "events", ["event_id"], ["id"],
        ondelete="CASCADE",
    )  # fmt: skip
    op.create_foreign_key(
        "fk_delivery_attempts_delivery_id_deliveries", "delivery_attempts", "deliveries",
        ["delivery_id"], ["id"], ondelete="CASCADE",
    )  # fmt: skip


# --- SQLite: plain tables ------------------------------------------------------------------------

# SQLAlchemy's text form of a datetime in SQLite.
_SQLITE_TIME = (
    f"strftime('%Y-%m-%d %H:%M:%S.000000', MIN(MAX(block_timestamp, 0), {_LATEST_S}), 'unixepoch')"
)


def _upgrade_sqlite() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("event_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(f"UPDATE events SET event_at = {_SQLITE_TIME}")
    op.execute(
        "UPDATE deliveries SET event_at = (SELECT event_at FROM events"
        " WHERE events.id = deliveries.event_id)"
    )
    op.execute(
        "UPDATE delivery_attempts SET event_at = (SELECT event_at FROM deliveries"
        " WHERE deliveries.id = delivery_attempts.delivery_id)"
    )
    with op.batch_alter_table("events") as batch:
        batch.alter_column("event_at", nullable=False)
        batch.drop_constraint("uq_events_chain_id_block_hash_log_index", type_="unique")
        batch.create_unique_constraint(
            "uq_events_chain_id_block_hash_log_index_event_at",
            ["chain_id", "block_hash", "log_index", "event_at"],
        )
        batch.drop_index("ix_events_created_at")
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("event_at", nullable=False)
        batch.drop_constraint("fk_deliveries_endpoint_id_endpoints", type_="foreignkey")
        batch.drop_constraint("fk_deliveries_event_id_events", type_="foreignkey")
        batch.drop_constraint("uq_deliveries_endpoint_id_event_id_kind", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_event_id_endpoint_id_kind_event_at",
            ["event_id", "endpoint_id", "kind", "event_at"],
        )
        for name in ("ix_deliveries_event_id", "ix_deliveries_status_next_attempt_at"):
            batch.drop_index(name)
        batch.drop_index("ix_deliveries_updated_at")
        batch.create_index(
            "ix_deliveries_unsent",
            ["status", "next_attempt_at"],
            sqlite_where=sa.text(UNSENT),
        )
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.alter_column("event_at", nullable=False)
        batch.drop_constraint("fk_delivery_attempts_delivery_id_deliveries", type_="foreignkey")


def _downgrade_sqlite() -> None:
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.create_foreign_key(
            "fk_delivery_attempts_delivery_id_deliveries", "deliveries", ["delivery_id"], ["id"],
            ondelete="CASCADE",
        )  # fmt: skip
        batch.drop_column("event_at")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_unsent")
        batch.drop_constraint("uq_deliveries_event_id_endpoint_id_kind_event_at", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_endpoint_id_event_id_kind", ["endpoint_id", "event_id", "kind"]
        )
        batch.create_foreign_key(
            "fk_deliveries_endpoint_id_endpoints", "endpoints", ["endpoint_id"], ["id"],
            ondelete="CASCADE",
        )  # fmt: skip
        batch.create_foreign_key(
            "fk_deliveries_event_id_events", "events", ["event_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_deliveries_event_id", ["event_id"])
        batch.create_index("ix_deliveries_status_next_attempt_at", ["status", "next_attempt_at"])
        batch.create_index("ix_deliveries_updated_at", ["updated_at"])
        batch.drop_column("event_at")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_chain_id_block_hash_log_index_event_at", type_="unique")
        batch.create_unique_constraint(
            "uq_events_chain_id_block_hash_log_index", ["chain_id", "block_hash", "log_index"]
        )
        batch.create_index("ix_events_created_at", ["created_at"])
        batch.drop_column("event_at")

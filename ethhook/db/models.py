"""The tables: applications and their API keys, endpoints and their filters, events, deliveries,
attempts, the listener's cursor; rollups, replay jobs and console sessions live in db/rollups.py,
db/replay_jobs.py and db/console_sessions.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ethhook.db.base import Base, BigId, UTCDateTime, utcnow
from ethhook.db.console_sessions import ConsoleSessionRow
from ethhook.db.partition_plan import event_time
from ethhook.db.replay_jobs import ReplayJob, ReplayState
from ethhook.db.rollups import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    ROLLUP_COUNTS,
    ROLLUP_DAY_S,
    ROLLUP_HOUR_S,
    ROLLUP_MINUTE_S,
    ROLLUP_PERIODS_S,
    delivery_rollups,
    latency_column,
)
from ethhook.db.secrets import EncryptedSecret

# One place to import every table and column type from, for migrations and callers, whichever
# of db/base.py, db/rollups.py and db/replay_jobs.py defines it.
__all__ = [
    "LATENCY_BOUNDS_MS",
    "LATENCY_COLUMNS",
    "ROLLUP_COUNTS",
    "ROLLUP_DAY_S",
    "ROLLUP_HOUR_S",
    "ROLLUP_MINUTE_S",
    "ROLLUP_PERIODS_S",
    "Base",
    "ConsoleSessionRow",
    "ReplayJob",
    "ReplayState",
    "BigId",
    "UTCDateTime",
    "delivery_rollups",
    "latency_column",
    "utcnow",
]


class DeliveryStatus:
    WAITING = "waiting"  # held until the block has the endpoint's confirmations
    PENDING = "pending"  # due at next_attempt_at
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every attempt failed; waits for `ethhook delivery retry`
    CANCELLED = "cancelled"  # the event was reorged out before it was sent

    ALL = (WAITING, PENDING, SUCCEEDED, FAILED, CANCELLED)
    TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
    OPEN = (WAITING, PENDING, FAILED)  # still to send, or waiting for a manual retry
    # Still to send: retention never drops a partition holding one (its retries are a promise).
    UNSENT = (WAITING, PENDING)


OPEN_DELIVERY = text(f"status IN ({', '.join(map(repr, DeliveryStatus.OPEN))})")
UNSENT_DELIVERY = text(f"status IN ({', '.join(map(repr, DeliveryStatus.UNSENT))})")


class EventKind:
    INSTANT = "event.instant"
    CONFIRMED = "event.confirmed"
    REMOVED = "event.removed"


# The application that endpoints registered without naming one join; created by migration 0005.
DEFAULT_APPLICATION = "default"


class Application(Base):
    """A tenant: it owns endpoints (and through them deliveries) and has an API key."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKeyRole:
    APPLICATION = "application"  # manages its application's resources
    OPERATOR = "operator"  # manages every application; one at most


class ApiKey(Base):
    """An API key, stored only as its SHA-256: one lookup by hash says whose it is.

    The operator key belongs to no application, so it is a row here (application_id NULL) rather
    than a column of one; a partial unique index keeps it to one.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        Index(None, "application_id"),
        Index(
            "uq_api_keys_operator",
            "role",
            unique=True,
            postgresql_where=text("role = 'operator'"),
            sqlite_where=text("role = 'operator'"),
        ),
        CheckConstraint(
            "(role = 'operator' AND application_id IS NULL) OR "
            "(role = 'application' AND application_id IS NOT NULL)",
            name="ck_api_keys_role",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int | None] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Endpoint(Base):
    __tablename__ = "endpoints"
    __table_args__ = (Index(None, "application_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Deleting an application with endpoints is refused (service.apps), and by this key too.
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2048))
    # Encrypted at rest when ETHHOOK_SECRET_KEYS is set; read back as plaintext (db/secrets.py).
    secret: Mapped[str] = mapped_column(EncryptedSecret())
    previous_secret: Mapped[str | None] = mapped_column(EncryptedSecret())
    previous_secret_expires_at: Mapped[datetime | None]
    # Solidity signatures (normalised text) that the endpoint asked decoded arguments for.
    event_signatures: Mapped[list[str]] = mapped_column(JSON, default=list)
    # `--where` conditions as given, on the arguments of its one event; NULL when it has none
    # (the matcher reads this column for every filter row it finds: NULL costs nothing).
    conditions: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    confirmations: Mapped[int] = mapped_column(Integer, default=0)
    rate_limit_per_s: Mapped[float | None] = mapped_column(Float)
    retry_schedule_s: Mapped[list[float] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None]
    # Start of the current run of failed attempts (auto-disable); cleared by any success.
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    filters: Mapped[list[EndpointFilter]] = relationship(
        back_populates="endpoint", cascade="all, delete-orphan", passive_deletes=True
    )
    topic_keys: Mapped[list[EndpointTopicKey]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    def previous_secret_signs(self, now: datetime) -> bool:
        """Whether the previous secret still signs beside the current one (rotation grace)."""
        expires = self.previous_secret_expires_at
        return bool(self.previous_secret) and expires is not None and expires > now

    def _distinct(self, attr: str) -> list[Any]:
        return sorted({getattr(f, attr) for f in self.filters if getattr(f, attr) is not None})

    @property
    def chain_ids(self) -> list[int]:
        return self._distinct("chain_id")

    @property
    def contracts(self) -> list[str]:
        return self._distinct("address")

    @property
    def topics(self) -> list[str]:
        return self._distinct("topic0")


class EndpointFilter(Base):
    """One (chain, contract, topic0) combination an endpoint accepts; NULL matches anything.

    An endpoint's filter is the cross product of its chain, contract and event lists, stored as rows
    so that one indexed query finds the endpoints for a whole batch of events.

    The rows of an endpoint with a topic key (an indexed `--where` equality) are `keyed`: the
    matcher reaches them only through that key (EndpointTopicKey), so they are left out of the
    address and topic0 indexes, which then never hold a million rows for one busy contract.
    """

    __tablename__ = "endpoint_filters"
    __table_args__ = (
        # (address, topic0): the batched lookup narrows by contract and then by event in the index.
        Index(
            None,
            "address",
            "topic0",
            postgresql_where=text("NOT keyed"),
            sqlite_where=text("NOT keyed"),
        ),
        Index(None, "topic0", postgresql_where=text("NOT keyed"), sqlite_where=text("NOT keyed")),
        Index(None, "endpoint_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    address: Mapped[str | None] = mapped_column(String(42))
    topic0: Mapped[str | None] = mapped_column(String(66))
    keyed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    endpoint: Mapped[Endpoint] = relationship(back_populates="filters")


class EndpointTopicKey(Base):
    """A topic word an endpoint's log must carry at `position` (1-3): the values of its first
    `==` or `in` condition on an indexed argument. Found by value, through the index, by the
    batched query; the endpoint's filter rows then say which chains, contracts and event."""

    __tablename__ = "endpoint_topic_keys"
    __table_args__ = (Index(None, "value"), Index(None, "endpoint_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(SmallInteger)
    value: Mapped[str] = mapped_column(String(66))


def _event_at_of_block(context: Any) -> datetime:
    """An event's partition key when an insert does not give it: its block's time."""
    return event_time(context.get_current_parameters()["block_timestamp"])


def _event_at_of(table: str, id_column: str) -> Any:
    """A default for the partition key of a delivery (attempt) that an insert does not give: its
    event's (delivery's). EthHook's writers always give it; this serves rows made by hand."""

    def default(context: Any) -> datetime:
        parent_id = context.get_current_parameters()[id_column]
        parent = Base.metadata.tables[table]
        found = context.connection.scalar(select(parent.c.event_at).where(parent.c.id == parent_id))
        if found is None:
            raise ValueError(f"no row in {table} with id {parent_id!r} to take event_at from")
        return cast(datetime, found)

    return default


# The history tables are range-partitioned by event_at on PostgreSQL (db/partitions.py); the
# partitions are not models. A unique key includes the partition key, which every row about one
# event shares, so each means what it meant without it. No foreign keys join them: dropping a
# partition must not check or cascade into another table (ARCHITECTURE.md, "Invariants").
PARTITIONED = {"postgresql_partition_by": "RANGE (event_at)"}


class Event(Base):
    """A contract log the listener stored; until `matched_at` it is the matcher's outbox."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("chain_id", "block_hash", "log_index", "event_at"),
        Index(None, "chain_id", "block_number"),
        # The due scan for unmatched events reads only this (small) partial index.
        Index(
            "ix_events_unmatched",
            "chain_id",
            "block_number",
            "log_index",
            postgresql_where=text("matched_at IS NULL"),
            sqlite_where=text("matched_at IS NULL"),
        ),
        PARTITIONED,
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The block's time (partition_plan.event_time): the partition key.
    event_at: Mapped[datetime] = mapped_column(primary_key=True, default=_event_at_of_block)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    transaction_hash: Mapped[str] = mapped_column(String(66))
    transaction_index: Mapped[int] = mapped_column(Integer)
    log_index: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(42))
    topics: Mapped[list[str]] = mapped_column(JSON)
    data: Mapped[str] = mapped_column(Text)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Stored by a replay before the listener read its block: matched for the replay's endpoints
    # only, until the listener reads the block and hands it to the matcher (workqueue.events).
    replay_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the matcher created the event's deliveries; NULL while it waits for the matcher.
    matched_at: Mapped[datetime | None]
    # Which matcher message holds the unmatched event, until lease_expires_at.
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None]


def event_record_columns() -> tuple[Any, ...]:
    """The events columns that make a `types.ChainEvent` (all but removed), in its field order."""
    e = Event
    return (
        e.chain_id,
        e.block_number,
        e.block_hash,
        e.block_timestamp,
        e.transaction_hash,
        e.transaction_index,
        e.log_index,
        e.address,
        e.topics,
        e.data,
    )


class Delivery(Base):
    """One event (of one kind) for one endpoint; attempts hang off it."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # Leads with event_id: also the index of every lookup by event (reorgs, releases).
        UniqueConstraint("event_id", "endpoint_id", "kind", "event_at"),
        # An endpoint's deliveries (lists, its counts by status, deleting it).
        Index(None, "endpoint_id", "status"),
        # Statistics count the open deliveries per endpoint (a few among millions) from this alone.
        Index(
            "ix_deliveries_open_endpoint_id_status",
            "endpoint_id",
            "status",
            postgresql_where=OPEN_DELIVERY,
            sqlite_where=OPEN_DELIVERY,
        ),
        # The due scan, the release of confirmed deliveries, retention's hold check: unsent only.
        Index(
            "ix_deliveries_unsent",
            "status",
            "next_attempt_at",
            postgresql_where=UNSENT_DELIVERY,
            sqlite_where=UNSENT_DELIVERY,
        ),
        PARTITIONED,
    )
    # Ids come from one sequence: a delivery is found by its id alone (the API, the CLI).
    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Its event's event_at: the partition key.
    event_at: Mapped[datetime] = mapped_column(
        primary_key=True, default=_event_at_of("events", "event_id")
    )
    endpoint_id: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    # Block number at which a `waiting` delivery has its confirmations.
    release_block: Mapped[int | None] = mapped_column(BigInteger)
    # Who holds the delivery: a dispatched message or a worker, until lease_expires_at.
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Joined on the partition key too, so each reads one partition. Not foreign keys in the
    # database, but the ORM still inserts an event before its delivery, a delivery before its
    # attempts.
    endpoint: Mapped[Endpoint] = relationship(
        primaryjoin="foreign(Delivery.endpoint_id) == Endpoint.id"
    )
    event: Mapped[Event] = relationship(
        primaryjoin="and_(foreign(Delivery.event_id) == Event.id,"
        " foreign(Delivery.event_at) == Event.event_at)"
    )
    attempt_rows: Mapped[list[DeliveryAttempt]] = relationship(
        primaryjoin="and_(Delivery.id == foreign(DeliveryAttempt.delivery_id),"
        " Delivery.event_at == foreign(DeliveryAttempt.event_at))",
        order_by="DeliveryAttempt.attempt_number",
        passive_deletes=True,
    )


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    __table_args__ = (Index(None, "delivery_id"), PARTITIONED)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Its delivery's event_at: the partition key.
    event_at: Mapped[datetime] = mapped_column(
        primary_key=True, default=_event_at_of("deliveries", "delivery_id")
    )
    delivery_id: Mapped[int] = mapped_column(BigId)
    attempt_number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    response_body: Mapped[str | None] = mapped_column(Text)


class ChainCursor(Base):
    """The last block the listener fully processed on a chain."""

    __tablename__ = "chain_cursors"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    head_number: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChainBlock(Base):
    """Recent canonical block hashes per chain, to detect reorgs by parent hash."""

    __tablename__ = "chain_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))

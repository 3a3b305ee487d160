"""The history tables: events, their deliveries and the deliveries' attempts, range-partitioned
by the event's time on PostgreSQL (db/partitions.py), with the statuses and kinds they hold."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ethhook.db.base import Base, BigId, utcnow
from ethhook.db.partition_plan import event_time


class DeliveryStatus:
    WAITING = "waiting"  # held until the block has the endpoint's confirmations
    PENDING = "pending"  # due at next_attempt_at (NULL: held while its endpoint is disabled)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every attempt failed; waits for `ethhook delivery retry`
    CANCELLED = "cancelled"  # the event was reorged out before it was sent
    DISCARDED = "discarded"  # dropped by `endpoint disable --discard` (last_error says so)

    ALL = (WAITING, PENDING, SUCCEEDED, FAILED, CANCELLED, DISCARDED)
    TERMINAL = (SUCCEEDED, FAILED, CANCELLED, DISCARDED)
    OPEN = (WAITING, PENDING, FAILED)  # still to send, or waiting for a manual retry
    # Still to send: retention never drops a partition holding one (its retries are a promise).
    UNSENT = (WAITING, PENDING)


OPEN_DELIVERY = text(f"status IN ({', '.join(map(repr, DeliveryStatus.OPEN))})")
UNSENT_DELIVERY = text(f"status IN ({', '.join(map(repr, DeliveryStatus.UNSENT))})")
# The release_tag of a delivery held for its chain's order: an ordered endpoint's that the matcher
# made, released once no earlier event of the chain waits for the matcher (workqueue.chainorder).
# A value no statistics have seen, so PostgreSQL reads the held ones from their partial index
# alone (with `release_block IS NULL` it estimated every waiting delivery and read them all).
CHAIN_ORDER = "order"
HELD_DELIVERY = text(f"status = '{DeliveryStatus.WAITING}' AND release_tag = '{CHAIN_ORDER}'")


class Origin:
    """Why a delivery is sent (the webhook body's `origin`)."""

    LIVE = "live"  # the listener found the event
    REPLAY = "replay"  # `ethhook replay`, POST /v1/replays
    BACKFILL = "backfill"  # an endpoint's --from-block history

    ALL = (LIVE, REPLAY, BACKFILL)


class Finality:
    """What makes an endpoint's event confirmed: its confirmations (LATEST) or a chain tag."""

    LATEST = "latest"
    SAFE = "safe"
    FINALIZED = "finalized"

    ALL = (LATEST, SAFE, FINALIZED)
    TAGS = (SAFE, FINALIZED)


class EventKind:
    INSTANT = "event.instant"
    CONFIRMED = "event.confirmed"
    REMOVED = "event.removed"


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
        # Every match task looks for deliveries held for their chain's order: none, or a few.
        Index(
            "ix_deliveries_held",
            "endpoint_id",
            postgresql_where=HELD_DELIVERY,
            sqlite_where=HELD_DELIVERY,
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
    # The chain tag (`safe`, `finalized`) that must reach release_block; NULL: the cursor must;
    # CHAIN_ORDER (no release_block): the matcher must reach the event (workqueue.chainorder).
    release_tag: Mapped[str | None] = mapped_column(String(9))
    # Who holds the delivery: a dispatched message or a worker, until lease_expires_at.
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None]
    # The endpoint's counter when the delivery became due to send (workqueue.sequence): kept by
    # every retry and replay. NULL while a confirmed delivery waits, and for rows made before.
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    # Why it is sent: Origin.LIVE, REPLAY or BACKFILL.
    origin: Mapped[str] = mapped_column(String(8), default="live", server_default="live")
    # When an `--ordered=skip-dead` endpoint went on past this dead-lettered delivery (its
    # claim of a later one); cleared by a retry, which makes it the endpoint's head again.
    skipped_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Joined on the partition key too, so each reads one partition. Not foreign keys in the
    # database, but the ORM still inserts an event before its delivery, a delivery before its
    # attempts.
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

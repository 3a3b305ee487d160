"""The tables: applications and their API keys, endpoints and their filters, the listener's cursor;
the history (events, deliveries, attempts), rollups, replay jobs and console sessions live in
db/history.py, db/rollups.py, db/replay_jobs.py and db/console_sessions.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    false,
    or_,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ethhook.db.base import Base, BigId, UTCDateTime, utcnow
from ethhook.db.console_sessions import ConsoleSessionRow
from ethhook.db.history import (
    CHAIN_ORDER,
    HELD_DELIVERY,
    OPEN_DELIVERY,
    UNSENT_DELIVERY,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Event,
    EventKind,
    Finality,
    Origin,
    event_record_columns,
)
from ethhook.db.ops import OpsEndpoint, OpsEventType, OpsMessage, OpsStatus
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
# of db/base.py, db/history.py, db/rollups.py and db/replay_jobs.py defines it.
__all__ = [
    "CHAIN_ORDER",
    "HELD_DELIVERY",
    "OPEN_DELIVERY",
    "UNSENT_DELIVERY",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryStatus",
    "Event",
    "EventKind",
    "Finality",
    "Origin",
    "event_record_columns",
    "LATENCY_BOUNDS_MS",
    "LATENCY_COLUMNS",
    "ROLLUP_COUNTS",
    "ROLLUP_DAY_S",
    "ROLLUP_HOUR_S",
    "ROLLUP_MINUTE_S",
    "ROLLUP_PERIODS_S",
    "Base",
    "ConsoleSessionRow",
    "OpsEndpoint",
    "OpsEventType",
    "OpsMessage",
    "OpsStatus",
    "ReplayJob",
    "ReplayState",
    "BigId",
    "UTCDateTime",
    "delivery_rollups",
    "latency_column",
    "utcnow",
]


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
    __table_args__ = (
        Index(None, "application_id"),
        # The due scan's ordered endpoints (workqueue.ordered.due_heads), every second: the few
        # among all endpoints.
        Index(
            "ix_endpoints_ordered",
            "id",
            postgresql_where=text("ordered IS NOT NULL"),
            sqlite_where=text("ordered IS NOT NULL"),
        ),
        # Beat's looks for failing endpoints (auto_disable, watch_failing) read only those.
        Index(
            "ix_endpoints_failing_since",
            "failing_since",
            postgresql_where=text("failing_since IS NOT NULL"),
            sqlite_where=text("failing_since IS NOT NULL"),
        ),
        Index(
            "ix_endpoints_failing_notified",
            "failing_notified_at",
            postgresql_where=text("failing_notified_at IS NOT NULL"),
            sqlite_where=text("failing_notified_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Deleting an application with endpoints is refused (service.apps), and by this key too.
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2048))
    # Encrypted at rest when ETHHOOK_SECRET_KEYS is set; read back as plaintext (db/secrets.py).
    secret: Mapped[str] = mapped_column(EncryptedSecret())
    previous_secret: Mapped[str | None] = mapped_column(EncryptedSecret())
    previous_secret_expires_at: Mapped[datetime | None]
    # `hmac` (secret: `whsec_…`) or `ed25519` (secret: the `whsk_…` private key; the `whpk_…`
    # public keys kept beside it, to be shown without reading the private ones).
    signing: Mapped[str] = mapped_column(String(8), default="hmac", server_default="hmac")
    public_key: Mapped[str | None] = mapped_column(String(60))
    previous_public_key: Mapped[str | None] = mapped_column(String(60))
    # `--ordered`: NULL (webhooks in parallel), `pause` or `skip-dead` (strictly in sequence
    # order, one at a time; a dead-lettered head pauses the endpoint or is skipped:
    # workqueue.ordered).
    ordered: Mapped[str | None] = mapped_column(String(9))
    # Solidity signatures (normalised text) that the endpoint asked decoded arguments for.
    event_signatures: Mapped[list[str]] = mapped_column(JSON, default=list)
    # `--where` conditions as given, on the arguments of its one event; NULL when it has none
    # (the matcher reads this column for every filter row it finds: NULL costs nothing).
    conditions: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    confirmations: Mapped[int] = mapped_column(Integer, default=0)
    # `latest` (confirmations apply), `safe` or `finalized`: a confirmed delivery waits for the
    # chain's tag (ChainTags) to reach its block. `lifecycle`: instant, then confirmed (or removed).
    finality: Mapped[str] = mapped_column(String(9), default="latest", server_default="latest")
    lifecycle: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    rate_limit_per_s: Mapped[float | None] = mapped_column(Float)
    retry_schedule_s: Mapped[list[float] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None]
    # `endpoint disable --discard`: while disabled, its open deliveries were cancelled and the
    # events that match it are not kept (otherwise they wait as its backlog). Cleared on enable.
    discard_while_disabled: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # Start of the current run of failed attempts (auto-disable); cleared by any success.
    failing_since: Mapped[datetime | None]
    # When `endpoint.failing` went to the ops endpoint for the current run of failures; an
    # `endpoint.recovered` clears it once failing_since is cleared.
    failing_notified_at: Mapped[datetime | None]
    # The endpoint's counter: the sequence its last numbered delivery took (workqueue.sequence).
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # `--from-block`: its history from this block is a backfill job's; while `backfilling`, the
    # matcher leaves it out and the job delivers, until it reaches the listener's cursor.
    from_block: Mapped[int | None] = mapped_column(BigInteger)
    backfilling: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The first block scanned for it, per chain ("chain id" → block): the listener's cursor + 1
    # when it was made (or its --from-block). For `endpoint coverage`.
    start_blocks: Mapped[dict[str, int] | None] = mapped_column(JSON(none_as_null=True))
    # `--live-only`: replays and backfills send it nothing.
    live_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    filters: Mapped[list[EndpointFilter]] = relationship(
        back_populates="endpoint", cascade="all, delete-orphan", passive_deletes=True
    )
    topic_keys: Mapped[list[EndpointTopicKey]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    @classmethod
    def takes_events(cls) -> ColumnElement[bool]:
        """Endpoints that events are matched to: the active ones, and the disabled ones that keep
        their backlog (not disabled with --discard)."""
        return or_(cls.active.is_(True), cls.discard_while_disabled.is_(False))

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


class ChainCursor(Base):
    """The last block the listener fully processed on a chain."""

    __tablename__ = "chain_cursors"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    head_number: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChainTags(Base):
    """What the listener last learnt of a chain's node: whether it answers the `safe` and
    `finalized` block tags, and their block numbers (beat releases tag-final deliveries by them)."""

    __tablename__ = "chain_tags"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    supported: Mapped[bool] = mapped_column(Boolean)
    safe_number: Mapped[int | None] = mapped_column(BigInteger)
    finalized_number: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChainBlock(Base):
    """Recent canonical block hashes per chain, to detect reorgs by parent hash."""

    __tablename__ = "chain_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))

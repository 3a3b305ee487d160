"""Operational webhooks: an application's one ops endpoint and the messages sent to it.

Ops messages are few (an endpoint disabled, failing or recovered; a replay finished; a chain
lagging) and about no event: they live in a small plain table of their own, not in the
time-partitioned deliveries (whose rows reference events and are dropped by partition), and
are sent by deliver.ops with the deliver stage's signing, HTTP client and retry policy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ethhook.db.base import Base, BigId, utcnow
from ethhook.db.secrets import EncryptedSecret


class OpsEventType:
    """The `type` of an operational webhook."""

    ENDPOINT_DISABLED = "endpoint.disabled"
    ENDPOINT_FAILING = "endpoint.failing"
    ENDPOINT_RECOVERED = "endpoint.recovered"
    REPLAY_FINISHED = "replay.finished"
    CHAIN_LAGGING = "chain.lagging"

    ALL = (ENDPOINT_DISABLED, ENDPOINT_FAILING, ENDPOINT_RECOVERED, REPLAY_FINISHED, CHAIN_LAGGING)


class OpsStatus:
    PENDING = "pending"  # due at next_attempt_at
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every attempt of the retry schedule failed
    CANCELLED = "cancelled"  # the application cleared its ops endpoint before it was sent


class OpsEndpoint(Base):
    """An application's operational endpoint (at most one): where its ops webhooks go."""

    __tablename__ = "ops_endpoints"

    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    url: Mapped[str] = mapped_column(String(2048))
    # `whsec_…`, encrypted at rest like endpoint secrets (db/secrets.py).
    secret: Mapped[str] = mapped_column(EncryptedSecret())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OpsMessage(Base):
    """One operational webhook for one application, leased and retried like a delivery (the
    workqueue's lease columns and conditions, the deliver stage's retry policy)."""

    __tablename__ = "ops_messages"
    __table_args__ = (
        Index(None, "application_id", "id"),
        Index(
            "ix_ops_messages_pending",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    # The webhook body's `data`.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default=OpsStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def webhook_id(self) -> str:
        return ops_webhook_id(self.id)


def ops_webhook_id(message_id: int) -> str:
    """The `webhook-id` of an ops message: stable across its retries."""
    return f"ops_{message_id}"


__all__ = ["OpsEndpoint", "OpsEventType", "OpsMessage", "OpsStatus", "ops_webhook_id"]

"""Replay jobs: a block range re-read from the chain and delivered again, in chunks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ethhook.db.base import Base, BigId, utcnow


class ReplayState:
    QUEUED = "queued"  # created, no worker has read a chunk yet
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"  # `error` says why

    ALL = (QUEUED, RUNNING, DONE, CANCELLED, FAILED)
    ACTIVE = (QUEUED, RUNNING)


class ReplayJob(Base):
    """A block range re-read from the chain and delivered again, one committed chunk at a time."""

    __tablename__ = "replay_jobs"
    __table_args__ = (Index(None, "state", "lease_expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    from_block: Mapped[int] = mapped_column(BigInteger)
    to_block: Mapped[int] = mapped_column(BigInteger)
    # Deliver to this endpoint only; deleting the endpoint deletes its replays (never "all").
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(10))
    # What its deliveries carry as their origin: "replay", or "backfill" for --from-block.
    origin: Mapped[str] = mapped_column(String(8), default="replay", server_default="replay")
    # The first block not yet committed: the job resumes here.
    next_block: Mapped[int] = mapped_column(BigInteger)
    # Blocks the next chunk reads (adapts to the events per chunk).
    chunk_blocks: Mapped[int] = mapped_column(Integer)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    blocks_done: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    deliveries: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    # Who runs the job: the message carrying this token, until lease_expires_at.
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

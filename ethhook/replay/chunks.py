"""A replay job's chunks: lease due jobs to chunk messages, plan a message's next chunk, and commit
its deliveries together with the job's progress (the worker's side of replay.jobs; no views, so a
worker loads no pydantic model)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ethhook.config import Settings
from ethhook.db.models import Endpoint, OpsEventType, Origin, ReplayJob, ReplayState
from ethhook.exceptions import InputError
from ethhook.match.replay import redeliver
from ethhook.replay.plan import Chunk, next_chunk, next_chunk_size
from ethhook.replay.seam import reach_listener
from ethhook.service.rows import get_endpoint
from ethhook.service.scope import OPERATOR, Scope
from ethhook.types import ChainEvent
from ethhook.workqueue import DispatchGroup, ReplayDispatch, emit_ops, lease_free, new_token

# After a node error, beat runs the chunk again this soon (or at the lease's end, if sooner).
RETRY_AFTER_S = 15.0


def endpoint_addresses(
    session: Session, endpoint_id: int, chain_id: int, scope: Scope = OPERATOR
) -> list[str] | None:
    """The contracts an endpoint watches on a chain (None: every contract); refuses a disabled
    endpoint or one that does not watch the chain (another application's is NotFoundError)."""
    endpoint = get_endpoint(session, endpoint_id, scope=scope)
    if not endpoint.active:
        raise InputError(f"endpoint {endpoint.id} is disabled; `ethhook endpoint enable` it first")
    watched = {f.address for f in endpoint.filters if f.chain_id in (None, chain_id)}
    if not watched:
        raise InputError(f"endpoint {endpoint.id} does not watch chain {chain_id}")
    return None if None in watched else sorted(a for a in watched if a)


def dispatch_due_replays(
    session: Session, now: datetime, lease_s: float, limit: int = 100
) -> list[ReplayDispatch]:
    """Lease queued or running jobs whose lease expired (a killed worker, a lost message) to new
    tokens; the caller commits, then enqueues their chunks. An old message then finds its token
    replaced and stops."""
    ids = session.scalars(
        select(ReplayJob.id)
        .where(ReplayJob.state.in_(ReplayState.ACTIVE), lease_free(ReplayJob, now))
        .order_by(ReplayJob.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    dispatches = [ReplayDispatch(job_id, new_token()) for job_id in ids]
    for d in dispatches:
        session.execute(
            update(ReplayJob)
            .where(ReplayJob.id == d.job_id)
            .values(lease_token=d.token, lease_expires_at=now + timedelta(seconds=lease_s))
        )
    return dispatches


@dataclass(frozen=True)
class ChunkWork:
    """The chunk a message may read: the job is running and leased to `token`."""

    job_id: int
    token: str
    chain_id: int
    endpoint_id: int | None
    chunk: Chunk


def start_chunk(
    session: Session, job_id: int, token: str, now: datetime, lease_s: float
) -> ChunkWork | None:
    """Renew the lease of a job this message holds and plan its next chunk; None when the job
    was cancelled, finished, deleted or taken over by another message."""
    row = session.execute(
        update(ReplayJob)
        .where(
            ReplayJob.id == job_id,
            ReplayJob.lease_token == token,
            ReplayJob.state.in_(ReplayState.ACTIVE),
        )
        .values(
            state=ReplayState.RUNNING,
            lease_expires_at=now + timedelta(seconds=lease_s),
            updated_at=now,
        )
        .returning(
            ReplayJob.chain_id,
            ReplayJob.endpoint_id,
            ReplayJob.next_block,
            ReplayJob.to_block,
            ReplayJob.chunk_blocks,
            ReplayJob.origin,
        )
    ).one_or_none()
    if row is None:
        return None
    chunk = next_chunk(row.next_block, row.to_block, row.chunk_blocks)
    if chunk is None and row.origin == Origin.BACKFILL:
        # Read to its end, waiting to switch the endpoint live (replay.seam): no block to read.
        chunk = Chunk(row.next_block, row.next_block - 1)
    if chunk is None:
        return None
    return ChunkWork(job_id, token, row.chain_id, row.endpoint_id, chunk)


@dataclass(frozen=True)
class ChunkResult:
    groups: list[DispatchGroup]
    deliveries: int
    state: str  # the job's, after the chunk
    # Nothing to do until the job's lease ends (a backfill waiting to switch live).
    held: bool = False

    @property
    def finished(self) -> bool:
        return self.state not in ReplayState.ACTIVE


def commit_chunk(
    session: Session,
    work: ChunkWork,
    events: list[ChainEvent],
    head: int,
    now: datetime,
    settings: Settings,
) -> ChunkResult | None:
    """Store the chunk's events, make their deliveries due (as `redeliver` does) and advance the
    job, in the caller's one transaction; None (and nothing written) when the job is no longer
    this message's at this chunk: a cancelled job or a second message stops here."""
    job = session.scalars(
        select(ReplayJob).where(ReplayJob.id == work.job_id).with_for_update()
    ).one_or_none()
    if (
        job is None
        or job.lease_token != work.token
        or job.state != ReplayState.RUNNING
        or job.next_block != work.chunk.start
    ):
        return None
    groups = redeliver(session, events, head, now, job.endpoint_id, job.origin)
    count = sum(len(g.delivery_ids) for g in groups)
    job.next_block = work.chunk.end + 1
    job.blocks_done = job.next_block - job.from_block
    job.chunks_done += 1
    job.events += len(events)
    job.deliveries += count
    if work.chunk.blocks:
        job.chunk_blocks = next_chunk_size(
            work.chunk.blocks, len(events), settings.replay_chunk_blocks
        )
    job.error = None
    job.updated_at = now
    held_until = None
    if job.next_block > job.to_block and job.origin == Origin.BACKFILL:
        held_until = reach_listener(session, job, now)
    if held_until is not None:
        job.lease_expires_at = held_until  # beat runs it again then
    elif job.next_block > job.to_block:
        job.state = ReplayState.DONE
        job.lease_token = None
        job.lease_expires_at = None
        _tell_finished(session, job, now)
    else:
        job.lease_expires_at = now + timedelta(seconds=settings.replay_lease_s)
    return ChunkResult(groups, count, job.state, held=held_until is not None)


def _tell_finished(session: Session, job: ReplayJob, now: datetime) -> None:
    """`replay.finished` to the ops endpoint of the application whose endpoint it replayed (a
    replay for every endpoint is the operator's: no application is told)."""
    if job.endpoint_id is None:
        return
    application_id = session.scalar(
        select(Endpoint.application_id).where(Endpoint.id == job.endpoint_id)
    )
    if application_id is None:
        return
    data = {
        "replay_id": job.id,
        "endpoint_id": job.endpoint_id,
        "chain_id": job.chain_id,
        "from_block": job.from_block,
        "to_block": job.to_block,
        "origin": job.origin,
        "state": job.state,
        "events": job.events,
        "deliveries": job.deliveries,
    }
    emit_ops(session, application_id, OpsEventType.REPLAY_FINISHED, data, now)


def fail_replay(session: Session, work: ChunkWork, error: str, now: datetime) -> None:
    """The chunk cannot be read, ever (no node URL, a range past the head): the job failed."""
    _set_if_held(
        session,
        work,
        state=ReplayState.FAILED,
        error=error[:500],
        lease_token=None,
        lease_expires_at=None,
        updated_at=now,
    )


def note_error(
    session: Session, work: ChunkWork, error: str, now: datetime, lease_s: float
) -> None:
    """The node failed this time: record why and let beat run the chunk again soon."""
    retry_at = now + timedelta(seconds=min(lease_s, RETRY_AFTER_S))
    _set_if_held(session, work, error=error[:500], lease_expires_at=retry_at, updated_at=now)


def _set_if_held(session: Session, work: ChunkWork, **values: Any) -> None:
    session.execute(
        update(ReplayJob)
        .where(
            ReplayJob.id == work.job_id,
            ReplayJob.lease_token == work.token,
            ReplayJob.state == ReplayState.RUNNING,
        )
        .values(**values)
    )

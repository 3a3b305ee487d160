"""Replay jobs in the database: create, read and cancel them (for the CLI and the API), lease them
to chunk messages, and commit one chunk's deliveries together with the job's progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ethhook.config import Settings, variable
from ethhook.db.models import Endpoint, OpsEventType, Origin, ReplayJob, ReplayState
from ethhook.exceptions import InputError, NotFoundError, TooManyJobsError
from ethhook.match.replay import redeliver
from ethhook.replay.plan import (
    Chunk,
    Progress,
    blocks_total,
    first_chunk_blocks,
    next_chunk,
    next_chunk_size,
)
from ethhook.replay.seam import reach_listener
from ethhook.service import public
from ethhook.service.endpoints import get_endpoint
from ethhook.service.limits import lock_application
from ethhook.service.scope import OPERATOR, Scope
from ethhook.types import ChainEvent
from ethhook.workqueue import DispatchGroup, ReplayDispatch, emit_ops, lease_free, new_token

# After a node error, beat runs the chunk again this soon (or at the lease's end, if sooner).
RETRY_AFTER_S = 15.0


class Replay(public.ReplayBase):
    """A replay job as its callers see it (no lease)."""

    @property
    def progress(self) -> Progress:
        total = blocks_total(self.from_block, self.to_block)
        return Progress(self.blocks_done, total, self.events, self.deliveries)

    @property
    def finished(self) -> bool:
        return self.state not in ReplayState.ACTIVE

    def as_public(self, settings: Settings) -> public.Replay:
        """What users see of the job, with its chain's name."""
        chain = settings.chain_name(self.chain_id)
        return public.Replay(**dict(self), chain=chain, blocks_total=self.progress.blocks_total)


def _view(job: ReplayJob) -> Replay:
    return Replay.model_validate(job, from_attributes=True)


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


def check_takes_replays(endpoint: Endpoint) -> None:
    """Refuse a replay to an endpoint that has nothing to receive from one."""
    if endpoint.live_only:
        raise InputError(
            f"endpoint {endpoint.id} is --live-only: replays and backfills send it nothing"
        )
    if endpoint.backfilling:
        raise InputError(
            f"endpoint {endpoint.id} is still receiving its --from-block history; replay it "
            "once that backfill is done (`ethhook endpoint show` says `backfilling`)"
        )


def check_replay_range(
    settings: Settings,
    from_block: int,
    to_block: int,
    scope: Scope,
    names: tuple[str, str] = ("from_block", "to_block"),
) -> None:
    """Refuse an application's replay of more than `replay_max_blocks` blocks."""
    blocks = blocks_total(from_block, to_block)
    limit = settings.replay_max_blocks
    if scope is not None and blocks > limit:
        raise InputError(
            f"a replay covers at most {limit} blocks: {names[0]} {from_block} to {names[1]} "
            f"{to_block} is {blocks} ({variable('replay_max_blocks')}); split it into several"
        )


def check_active_replays(session: Session, application_id: int, limit: int) -> None:
    """Refuse another job for an application with `limit` jobs queued or running on its
    endpoints (its row stays locked until the commit: two requests cannot both pass)."""
    lock_application(session, application_id)
    active = session.scalar(
        select(func.count())
        .select_from(ReplayJob)
        .join(Endpoint, Endpoint.id == ReplayJob.endpoint_id)
        .where(Endpoint.application_id == application_id, ReplayJob.state.in_(ReplayState.ACTIVE))
    )
    if active is not None and active >= limit:
        raise TooManyJobsError(
            f"application {application_id} has {active} replay jobs queued or running, at most "
            f"{limit} ({variable('replay_max_active')}); start this one when one of them ends, "
            "or cancel one"
        )


def create_replay(
    session: Session,
    settings: Settings,
    chain_id: int,
    from_block: int,
    to_block: int,
    endpoint_id: int | None,
    now: datetime,
    scope: Scope = OPERATOR,
    origin: str = Origin.REPLAY,
) -> tuple[Replay, ReplayDispatch]:
    """A new job leased to its first chunk message; the caller commits, then enqueues it. An
    application's replay names one of its endpoints, covers at most `replay_max_blocks` blocks,
    and is refused while `replay_max_active` of its jobs are queued or running; the operator's
    may go to every endpoint, over any range. A replay never goes to a `--live-only` endpoint,
    nor to one whose backfill is running (`origin` backfill is that backfill)."""
    if to_block < from_block:
        raise InputError(f"to_block {to_block} is before from_block {from_block}")
    check_replay_range(settings, from_block, to_block, scope)
    if scope is not None and endpoint_id is None:
        raise InputError("a replay for an application names one of its endpoints")
    if endpoint_id is not None:
        endpoint_addresses(session, endpoint_id, chain_id, scope)
        if origin == Origin.REPLAY:
            check_takes_replays(get_endpoint(session, endpoint_id, scope=scope))
    if scope is not None:
        check_active_replays(session, scope, settings.replay_max_active)
    token = new_token()
    job = ReplayJob(
        chain_id=chain_id,
        from_block=from_block,
        to_block=to_block,
        endpoint_id=endpoint_id,
        state=ReplayState.QUEUED,
        origin=origin,
        next_block=from_block,
        chunk_blocks=first_chunk_blocks(settings.replay_chunk_blocks),
        chunks_done=0,
        blocks_done=0,
        events=0,
        deliveries=0,
        lease_token=token,
        lease_expires_at=now + timedelta(seconds=settings.replay_lease_s),
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    return _view(job), ReplayDispatch(job.id, token)


def _job(session: Session, job_id: int, scope: Scope, lock: bool = False) -> ReplayJob:
    """The job row; a missing one, or one outside the scope's endpoints, is NotFoundError."""
    job = session.get(ReplayJob, job_id, with_for_update=lock)
    if job is not None and scope is not None:
        if job.endpoint_id is None:
            job = None
        else:
            try:
                get_endpoint(session, job.endpoint_id, scope=scope)
            except NotFoundError:
                job = None
    if job is None:
        raise NotFoundError(f"no replay job with id {job_id}")
    return job


def get_replay(session: Session, job_id: int, scope: Scope = OPERATOR) -> Replay:
    return _view(_job(session, job_id, scope))


def cancel_replay(session: Session, job_id: int, now: datetime, scope: Scope = OPERATOR) -> Replay:
    """Stop a queued or running job: its next chunk sees the state and does nothing. Cancelling a
    cancelled job changes nothing; a finished one cannot be cancelled."""
    job = _job(session, job_id, scope, lock=True)
    if job.state in (ReplayState.DONE, ReplayState.FAILED):
        raise InputError(f"replay job {job_id} is already {job.state}")
    if job.state != ReplayState.CANCELLED:
        job.state = ReplayState.CANCELLED
        job.lease_token = None
        job.lease_expires_at = None
        job.updated_at = now
    return _view(job)


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
    replay: Replay
    # Nothing to do until the job's lease ends (a backfill waiting to switch live).
    held: bool = False


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
    return ChunkResult(groups, count, _view(job), held=held_until is not None)


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

"""Replay jobs in the database: create, read and cancel them (for the CLI, the API and the
console), as their pydantic view. A worker runs their chunks through replay.chunks."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ethhook.config import Settings, variable
from ethhook.db.models import Endpoint, Origin, ReplayJob, ReplayState
from ethhook.exceptions import InputError, NotFoundError, TooManyJobsError
from ethhook.replay.chunks import endpoint_addresses
from ethhook.replay.plan import Progress, blocks_total, first_chunk_blocks
from ethhook.service import public
from ethhook.service.limits import lock_application
from ethhook.service.rows import get_endpoint
from ethhook.service.scope import OPERATOR, Scope
from ethhook.workqueue import ReplayDispatch, new_token


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

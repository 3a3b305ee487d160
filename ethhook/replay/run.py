"""One chunk of a replay job: lease it, read its blocks from the node, commit them with the job's
progress; the task enqueues what this returns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from ethhook.config import ChainConfig, Settings
from ethhook.db.models import utcnow
from ethhook.exceptions import EthHookError, TransientError
from ethhook.replay.chunks import (
    ChunkWork,
    commit_chunk,
    endpoint_addresses,
    fail_replay,
    note_error,
    start_chunk,
)
from ethhook.replay.errors import node_failure
from ethhook.types import ChainEvent
from ethhook.workqueue import DispatchGroup, ReplayDispatch

log = logging.getLogger(__name__)

SessionScope = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class ChunkOutcome:
    """What to enqueue after the chunk's commit: its deliveries, and the next chunk if any."""

    groups: list[DispatchGroup] = field(default_factory=list)
    next: ReplayDispatch | None = None


def _read(
    session_scope: SessionScope, settings: Settings, work: ChunkWork
) -> tuple[list[ChainEvent], int]:
    if work.chunk.blocks == 0:  # a backfill's check of the seam (replay.seam): nothing to read
        return [], work.chunk.end
    addresses = None
    if work.endpoint_id is not None:
        with session_scope() as session:
            addresses = endpoint_addresses(session, work.endpoint_id, work.chain_id)
    chain = settings.chain_by_id(work.chain_id) or ChainConfig(
        settings.chain_name(work.chain_id), work.chain_id
    )
    # Imported here: the node client (aiohttp) is for the worker that runs replay chunks,
    # not for every worker that imports this task module (a deliver worker never runs one).
    from ethhook.listen.replay import fetch_range

    return fetch_range(chain, work.chunk.start, work.chunk.end, addresses)


def run_chunk(
    session_scope: SessionScope, settings: Settings, job_id: int, token: str
) -> ChunkOutcome:
    """Run the next chunk of a job this message holds; nothing when it lost the job."""
    with session_scope() as session:
        work = start_chunk(session, job_id, token, utcnow(), settings.replay_lease_s)
    if work is None:
        log.info("replay.chunk.skipped job=%s: cancelled, finished or taken over", job_id)
        return ChunkOutcome()
    try:
        events, head = _read(session_scope, settings, work)
    except TransientError as exc:
        with session_scope() as session:
            note_error(session, work, node_failure(exc), utcnow(), settings.replay_lease_s)
        log.warning("replay.chunk.retry job=%s from=%d error=%s", job_id, work.chunk.start, exc)
        return ChunkOutcome()
    except EthHookError as exc:
        with session_scope() as session:
            fail_replay(session, work, str(exc), utcnow())
        log.error("replay.failed job=%s from=%d error=%s", job_id, work.chunk.start, exc)
        return ChunkOutcome()
    with session_scope() as session:
        result = commit_chunk(session, work, events, head, utcnow(), settings)
    if result is None:
        log.info(
            "replay.chunk.dropped job=%s from=%d: no longer this message's",
            job_id,
            work.chunk.start,
        )
        return ChunkOutcome()
    log.info(
        "replay.chunk.committed job=%s blocks=%d-%d events=%d deliveries=%d state=%s",
        job_id,
        work.chunk.start,
        work.chunk.end,
        len(events),
        result.deliveries,
        result.state,
    )
    following = None if result.finished or result.held else ReplayDispatch(job_id, token)
    return ChunkOutcome(result.groups, following)

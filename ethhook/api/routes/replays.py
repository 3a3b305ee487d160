"""/v1/replays: re-read a block range and deliver it again, as a background job."""

from __future__ import annotations

from fastapi import APIRouter

from ethhook.api import schemas
from ethhook.api.routes.common import READ, WRITE, Caller, Id
from ethhook.db.models import utcnow
from ethhook.replay.jobs import cancel_replay, create_replay, get_replay
from ethhook.replay.start import replay_chain
from ethhook.workqueue import enqueue_replays

router = APIRouter(prefix="/v1/replays", tags=["replays"])


@router.post("", status_code=202, response_model=schemas.Replay, responses=WRITE)
def start_replay(caller: Caller, body: schemas.ReplayCreate) -> schemas.Replay:
    """Start a replay job; follow it at GET /v1/replays/{id}. An application's replay names one
    of its endpoints."""
    first, last = body.from_block, body.to_block
    names = ("from_block", "to_block")
    chain_id = replay_chain(
        caller.settings, str(body.chain), first, last, names, scope=caller.scope
    )
    job, dispatch = caller.run(
        create_replay, caller.settings, chain_id, first, last, body.endpoint_id, utcnow()
    )
    enqueue_replays([dispatch])
    return job.as_public(caller.settings)


@router.get("/{replay_id}", response_model=schemas.Replay, responses=READ)
def show_replay(replay_id: Id, caller: Caller) -> schemas.Replay:
    """The job's state and progress: blocks done of the total, events, deliveries."""
    return caller.run(get_replay, replay_id).as_public(caller.settings)


@router.post("/{replay_id}/cancel", response_model=schemas.Replay, responses=WRITE)
def cancel(replay_id: Id, caller: Caller) -> schemas.Replay:
    """Stop a queued or running job (its next chunk does nothing)."""
    return caller.run(cancel_replay, replay_id, utcnow()).as_public(caller.settings)

"""/v1/replays: re-read a block range and deliver it again, as a background job."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ethhook.api import schemas
from ethhook.api.routes.common import READ, WRITE, Caller, Id, in_session, settings_of
from ethhook.config import Settings
from ethhook.db.models import utcnow
from ethhook.replay import Replay, cancel_replay, create_replay, get_replay
from ethhook.replay.start import replay_chain
from ethhook.workqueue import enqueue_replays

router = APIRouter(prefix="/v1/replays", tags=["replays"])


def replay_json(job: Replay, settings: Settings) -> schemas.Replay:
    return job.as_public(settings)


@router.post("", status_code=202, response_model=schemas.Replay, responses=WRITE)
def start_replay(
    principal: Caller,
    body: schemas.ReplayCreate,
    request: Request,
) -> schemas.Replay:
    """Start a replay job; follow it at GET /v1/replays/{id}. An application's replay names one
    of its endpoints."""
    settings = settings_of(request)
    chain_id = replay_chain(
        settings,
        str(body.chain),
        body.from_block,
        body.to_block,
        ("from_block", "to_block"),
        scope=principal.scope,
    )
    job, dispatch = in_session(
        create_replay,
        settings,
        chain_id,
        body.from_block,
        body.to_block,
        body.endpoint_id,
        utcnow(),
        scope=principal.scope,
    )
    enqueue_replays([dispatch])
    return replay_json(job, settings)


@router.get("/{replay_id}", response_model=schemas.Replay, responses=READ)
def show_replay(
    replay_id: Id,
    principal: Caller,
    request: Request,
) -> schemas.Replay:
    """The job's state and progress: blocks done of the total, events, deliveries."""
    job = in_session(get_replay, replay_id, scope=principal.scope)
    return replay_json(job, settings_of(request))


@router.post("/{replay_id}/cancel", response_model=schemas.Replay, responses=WRITE)
def cancel(
    replay_id: Id,
    principal: Caller,
    request: Request,
) -> schemas.Replay:
    """Stop a queued or running job (its next chunk does nothing)."""
    job = in_session(cancel_replay, replay_id, utcnow(), scope=principal.scope)
    return replay_json(job, settings_of(request))

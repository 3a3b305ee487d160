"""The console's replays: start one from an endpoint's page (chain, from block, to block), follow
its progress (a small JSON route the replay page polls), cancel it.

The same calls as the API's /v1/replays: replay_chain checks the range against the node's head
and the application's limit, create_replay makes the job in the visitor's scope, and its first
chunk is enqueued after the commit.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from ethhook.console.form_fields import number
from ethhook.console.web import (
    ConsoleRoute,
    as_visitor,
    check_id,
    console_of,
    flash,
    form,
    redirect,
    render,
    shown_again_when_refused,
    signed_in,
)
from ethhook.db.models import utcnow
from ethhook.exceptions import InputError, NotFoundError, TransientError
from ethhook.replay.jobs import cancel_replay, create_replay, get_replay
from ethhook.replay.start import replay_chain
from ethhook.service.endpoints import view
from ethhook.service.rows import get_endpoint
from ethhook.workqueue import enqueue_replays

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

FIELDS = ("chain", "from_block", "to_block")


def _form_page(
    request: Request,
    endpoint_id: int,
    values: dict[str, str],
    error: InputError | TransientError | None = None,
    status_code: int = 400,
) -> Response:
    """The replay form with `values`; a refused one with the error beside its field (at the top
    when it names none)."""
    with signed_in(request) as (db, visitor):
        endpoint = view(get_endpoint(db, endpoint_id, scope=visitor.principal.scope))
    field = getattr(error, "field", None) or "form"
    errors = {} if error is None else {field: str(error)}
    return render(
        request,
        "replay_form.html",
        status_code if error else 200,
        endpoint=endpoint,
        values=values,
        errors=errors,
    )


@router.get("/endpoints/{endpoint_id:int}/replay")
def replay_form(request: Request, endpoint_id: int) -> Response:
    check_id(endpoint_id, "endpoint")
    return _form_page(request, endpoint_id, {k: request.query_params.get(k, "") for k in FIELDS})


def _refused(request: Request, values: dict[str, str], message: str) -> Response:
    endpoint_id = check_id(int(request.path_params["endpoint_id"]), "endpoint")
    typed = {k: values.get(k, "").strip() for k in FIELDS}
    return _form_page(request, endpoint_id, typed, InputError(message), 403)


@router.post("/endpoints/{endpoint_id:int}/replay")
@shown_again_when_refused(_refused)
def start(request: Request, endpoint_id: int) -> Response:
    check_id(endpoint_id, "endpoint")
    settings = console_of(request).settings
    values = {k: form(request).get(k, "").strip() for k in FIELDS}
    try:
        first = number(values["from_block"], "from_block", int, "a block number")
        last = number(values["to_block"], "to_block", int, "a block number")
        if first is None or last is None:
            missing = "from_block" if first is None else "to_block"
            error = InputError(f"give the {missing.replace('_', ' ')} to replay")
            error.field = missing
            raise error
        with signed_in(request) as (db, visitor):
            scope = visitor.principal.scope
            get_endpoint(db, endpoint_id, scope=scope)  # another application's: the 404 page
            names = ("from_block", "to_block")
            chain_id = replay_chain(settings, values["chain"], first, last, names, scope=scope)
            job, dispatch = create_replay(
                db, settings, chain_id, first, last, endpoint_id, utcnow(), scope=scope
            )
    except NotFoundError:
        raise  # another application's endpoint: the 404 page
    except (InputError, TransientError) as exc:
        return _form_page(request, endpoint_id, values, exc)
    enqueue_replays([dispatch])
    return redirect(f"/replays/{job.id}")


@router.get("/replays/{job_id:int}/progress")
def progress(request: Request, job_id: int) -> Response:
    """What the replay page updates itself with, every second until the job has finished."""
    check_id(job_id, "replay job")
    job = as_visitor(request, get_replay, job_id)
    done = job.progress
    return JSONResponse(
        {
            "state": job.state,
            "finished": job.finished,
            "blocks_done": done.blocks_done,
            "blocks_total": done.blocks_total,
            "chunks_done": job.chunks_done,
            "events": job.events,
            "deliveries": job.deliveries,
            "line": done.line(),
            "error": job.error,
        }
    )


@router.post("/replays/{job_id:int}/cancel")
def cancel(request: Request, job_id: int) -> Response:
    check_id(job_id, "replay job")
    as_visitor(request, cancel_replay, job_id, utcnow())
    flash(request, f"Replay {job_id} cancelled: its next chunk does nothing.")
    return redirect(f"/replays/{job_id}")

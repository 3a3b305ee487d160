"""The console's search box: explain a transaction for the signed-in application (the same
answer as `ethhook explain` and GET /v1/explain)."""

from __future__ import annotations

from functools import partial

import anyio
from fastapi import APIRouter, Request, Response

from ethhook.console.web import (
    ConsoleRoute,
    as_visitor,
    console_of,
    parse_id,
    render,
    signed_in,
)
from ethhook.exceptions import InputError, TransientError
from ethhook.service.explain import explain_transaction

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def _signed_in_only(request: Request) -> None:
    with signed_in(request):  # SignInRequired otherwise
        pass


@router.get("/explain")
async def explain_page(request: Request) -> Response:
    settings = console_of(request).settings
    chain = request.query_params.get("chain", "").strip()[:100]
    tx = request.query_params.get("tx", "").strip()[:100]
    endpoint = request.query_params.get("endpoint", "").strip()[:30]
    explanation, error = None, None
    # It may wait for the chain's node: on the API's explain threads, never the shared pool.
    threads = request.app.state.explain_threads
    if not tx:  # the empty search box, for the signed-in only
        await anyio.to_thread.run_sync(_signed_in_only, request, limiter=threads)
    else:
        try:
            endpoint_id = parse_id(endpoint or None, "endpoint")
            run = partial(
                as_visitor,
                request,
                explain_transaction,
                settings,
                chain or "ethereum",
                tx,
                endpoint_id=endpoint_id,
            )
            explanation = await anyio.to_thread.run_sync(run, limiter=threads)
        except (InputError, TransientError) as exc:
            error = str(exc)
    return render(
        request,
        "explain.html",
        chain=chain,
        tx=tx,
        endpoint=endpoint,
        explanation=explanation,
        error=error,
        chain_label=settings.chain_name(explanation.chain_id) if explanation else None,
        chains=sorted({c.name for c in settings.chains} | {"ethereum"}),
    )

"""/v1/explain: why a transaction's logs did or did not reach the caller's endpoints."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request

from ethhook.api import schemas
from ethhook.api.routes.common import READ, Caller, OptionalId
from ethhook.service.explain import explain_transaction

router = APIRouter(prefix="/v1/explain", tags=["explain"])

Chain = Annotated[str, Query(max_length=100, description="a chain id or name, e.g. 1 or ethereum")]
TxHash = Annotated[str, Query(max_length=100, description="the transaction hash (0x…)")]


@router.get("", response_model=schemas.Explanation, responses=READ)
async def explain(
    caller: Caller, request: Request, chain: Chain, tx: TxHash, endpoint_id: OptionalId = None
) -> schemas.Explanation:
    """For every log of the transaction: whether EthHook stored it, and for each of the caller's
    endpoints whether it matched, the first check that failed (`reason`), and its deliveries
    with every attempt. The logs come from the database, or, when it stored none, from the
    chain's node (`source`). `endpoint_id` narrows it to one endpoint: an answer of more than
    20,000 (log, endpoint) pairs is refused (422) without it."""
    run = partial(
        caller.run, explain_transaction, caller.settings, chain, tx, endpoint_id=endpoint_id
    )
    # It may wait for the chain's node (a receipt and a header, 10 s each at most): on threads
    # of its own, never on the pool every other sync route (and authentication) shares.
    return await anyio.to_thread.run_sync(run, limiter=request.app.state.explain_threads)

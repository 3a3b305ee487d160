"""/v1/explain: why a transaction's logs did or did not reach the caller's endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ethhook.api import schemas
from ethhook.api.routes.common import READ, Caller, OptionalId
from ethhook.service.explain import explain_transaction

router = APIRouter(prefix="/v1/explain", tags=["explain"])

Chain = Annotated[str, Query(max_length=100, description="a chain id or name, e.g. 1 or ethereum")]
TxHash = Annotated[str, Query(max_length=100, description="the transaction hash (0x…)")]


@router.get("", response_model=schemas.Explanation, responses=READ)
def explain(
    caller: Caller, chain: Chain, tx: TxHash, endpoint_id: OptionalId = None
) -> schemas.Explanation:
    """For every log of the transaction: whether EthHook stored it, and for each of the caller's
    endpoints whether it matched, the first check that failed (`reason`), and its deliveries
    with every attempt. The logs come from the database, or, when it stored none, from the
    chain's node (`source`). `endpoint_id` narrows it to one endpoint: an answer of more than
    20,000 (log, endpoint) pairs is refused (422) without it."""
    return caller.run(explain_transaction, caller.settings, chain, tx, endpoint_id=endpoint_id)

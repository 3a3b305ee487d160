"""/v1/stats: delivery statistics per endpoint, from the rollups."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from ethhook.api import schemas
from ethhook.api.routes.common import READ, Caller, Since
from ethhook.db.models import utcnow
from ethhook.service.stats import scoped_stats
from ethhook.service.times import parse_since

router = APIRouter(prefix="/v1/stats", tags=["stats"])

DEFAULT_WINDOW = timedelta(hours=24)


@router.get("", response_model=schemas.Stats, responses=READ)
def stats(caller: Caller, since: Since = None) -> dict[str, Any]:
    """Per endpoint since `since` (default: the last 24 hours): attempts by outcome, success
    rate, latency P50/P95, and its deliveries waiting, pending and failed now."""
    now = utcnow()
    start = parse_since(since, "since") if since is not None else now - DEFAULT_WINDOW
    rows = caller.run(scoped_stats, start, now=now)
    return {"since": start, "until": now, "endpoints": [dataclasses.asdict(r) for r in rows]}

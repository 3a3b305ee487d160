"""GET /health, without auth: 200 while the database answers (503 when it does not); Redis is
reported but not required (rate limits fail open without it)."""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ethhook.api import schemas
from ethhook.db import session_scope
from ethhook.deliver.protect import redis_client

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


def database_state() -> str:
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
    except DBAPIError as exc:
        log.warning("api.health.database_unreachable error=%s", type(exc).__name__)
        return "unreachable"
    return "ok"


def redis_state(url: str) -> str:
    try:
        redis_client(url).ping()
    except redis.RedisError as exc:
        log.warning("api.health.redis_unreachable error=%s", type(exc).__name__)
        return "unreachable"
    return "ok"


@router.get(
    "/health",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Health, "description": "the database is unreachable"}},
)
def health(request: Request) -> Any:
    database = database_state()
    body = {
        "status": "ok" if database == "ok" else "unavailable",
        "database": database,
        "redis": redis_state(request.app.state.settings.redis_url),
    }
    if database != "ok":
        return JSONResponse(body, status_code=503)
    return body

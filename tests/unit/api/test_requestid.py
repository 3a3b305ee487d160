"""x-request-id: the caller's when well formed, else a fresh one, on every answer (Starlette's own
500 included), and on every line logged while answering."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi import FastAPI

from ethhook.api import requestid
from ethhook.logs import fields_of

log = logging.getLogger("ethhook.test.requestid")


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc", True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("lb.trace_1-2", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("bad id", False),
        ("a\nb", False),
        ("é", False),
        ("a/b", False),
        (None, False),
    ],
)
def test_a_well_formed_id_is_kept_anything_else_replaced(incoming, kept):
    got = requestid.request_id_for(incoming)
    assert (got == incoming) is kept
    if not kept:
        assert len(got) == 32 and int(got, 16) >= 0


def make_app(seen: list[dict[str, object]]) -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    def ok() -> dict[str, str]:  # a sync route: it runs on the thread pool
        record = logging.LogRecord("x", logging.INFO, "", 0, "m", None, None)
        seen.append(fields_of(record))
        return {"ok": "yes"}

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    requestid.install(app)
    return app


def test_every_answer_carries_the_id_and_the_lines_meanwhile_too():
    seen: list[dict[str, object]] = []
    transport = httpx.ASGITransport(make_app(seen), raise_app_exceptions=False)

    async def calls() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return [
                await client.get("/ok", headers={"x-request-id": "trace-1"}),
                await client.get("/ok", headers={"x-request-id": "not well formed!"}),
                await client.get("/bug", headers={"x-request-id": "trace-2"}),
                await client.get("/nowhere"),
            ]

    kept, fresh, failed, missing = asyncio.run(calls())

    assert kept.headers["x-request-id"] == "trace-1"
    assert len(fresh.headers["x-request-id"]) == 32
    assert (failed.status_code, failed.headers["x-request-id"]) == (500, "trace-2")
    assert missing.status_code == 404 and len(missing.headers["x-request-id"]) == 32
    assert seen == [{"request_id": "trace-1"}, {"request_id": fresh.headers["x-request-id"]}]

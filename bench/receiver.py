"""A fast loopback webhook receiver for benchmarks (aiohttp, own process).

Verifies every Standard Webhooks signature for paths it has a secret for, counts requests, distinct
webhook-ids and bad signatures, and keeps (arrival time, transaction hash, path) of the paths under `/lat` for latency figures.
A path `/delay/<ms>/…` answers after <ms> milliseconds (a receiver's own latency); on a path with
`/ord` in it, a webhook whose `sequence` is below the last one seen on that path counts in
`out_of_order`.
Control endpoints: POST /_secrets {path: secret}, POST /_reset, GET /_stats, GET /_arrivals.
Usage: python -m bench.receiver PORT
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
from typing import Any

from aiohttp import web

state: dict[str, Any] = {}
keys: dict[str, bytes] = {}


def reset() -> None:
    state.update(
        count=0,
        bad=0,
        unverified=0,
        ids=set(),
        arrivals=[],
        first=None,
        last=None,
        max_in=0,
        out_of_order=0,
        last_sequence={},
    )


def verify(key: bytes, headers: Any, body: bytes) -> bool:
    msg = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(sig.split(",", 1)[-1], expected)
        for sig in headers["webhook-signature"].split()
    )


async def hook(request: web.Request) -> web.Response:
    body = await request.read()
    now = time.time()
    key = keys.get(request.path)
    if key is None:
        state["unverified"] += 1
    elif not verify(key, request.headers, body):
        state["bad"] += 1
    state["count"] += 1
    state["ids"].add(request.headers.get("webhook-id"))
    if state["first"] is None:
        state["first"] = now
    state["last"] = now
    if request.path.startswith("/lat"):
        tx = json.loads(body)["data"]["transaction_hash"]
        state["arrivals"].append((now, tx, request.path))
    if "/ord" in request.path:
        sequence = json.loads(body)["sequence"]
        if sequence < state["last_sequence"].get(request.path, 0):
            state["out_of_order"] += 1
        state["last_sequence"][request.path] = sequence
    if request.path.startswith("/delay/"):
        await asyncio.sleep(int(request.path.split("/")[2]) / 1000)
    return web.Response(text="ok")


async def set_secrets(request: web.Request) -> web.Response:
    for path, secret in (await request.json()).items():
        keys[path] = base64.b64decode(secret.split("_", 1)[1])
    return web.json_response({"ok": True})


async def do_reset(request: web.Request) -> web.Response:
    reset()
    return web.json_response({"ok": True})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "count": state["count"],
            "distinct": len(state["ids"]),
            "bad_signatures": state["bad"],
            "unverified": state["unverified"],
            "first": state["first"],
            "last": state["last"],
            "out_of_order": state["out_of_order"],
        }
    )


async def arrivals(request: web.Request) -> web.Response:
    return web.json_response(state["arrivals"])


def main() -> None:
    reset()
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/_secrets", set_secrets)
    app.router.add_post("/_reset", do_reset)
    app.router.add_get("/_stats", stats)
    app.router.add_get("/_arrivals", arrivals)
    app.router.add_post("/{tail:.*}", hook)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()

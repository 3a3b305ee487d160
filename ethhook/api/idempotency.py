"""`Idempotency-Key` on POST: the first answer is kept in Redis for 24 hours, per caller and key.

* the same key with the same request (method, path, query, body) → the kept answer, replayed
  (same status and body, with `Idempotent-Replayed: true`);
* the same key with another request → 422;
* the same key while the first request is still being answered → 409.

A 5xx or 429 answer is not kept (the request may be tried again with the same key). Without Redis a
request carrying a key is refused with 503 rather than risk doing the work twice; requests
without a key go on as usual.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import anyio
import redis
from anyio import CapacityLimiter
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ethhook.api.auth import STATE_KEY, principal_tag
from ethhook.api.guard import is_api_path, read_body, replaying
from ethhook.api.problems import send_problem
from ethhook.service.apps import Principal

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
TTL_S = 24 * 3600
# How long a request may hold its key unanswered (a crashed process frees it after this).
IN_FLIGHT_TTL_S = 300
MAX_KEY_LENGTH = 255
KEPT_HEADERS = ("content-type", "location", "retry-after")


@dataclass(frozen=True)
class Kept:
    """What a key holds: the request's fingerprint and, once answered, the answer."""

    fingerprint: str
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def dumps(self) -> str:
        return json.dumps(
            {
                "fingerprint": self.fingerprint,
                "status": self.status,
                "headers": list(self.headers),
                "body": base64.b64encode(self.body).decode(),
            }
        )

    @classmethod
    def loads(cls, raw: bytes | str) -> Kept:
        data = json.loads(raw)
        return cls(
            data["fingerprint"],
            data["status"],
            tuple((k, v) for k, v in data["headers"]),
            base64.b64decode(data["body"]),
        )


class IdempotencyStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def claim(self, key: str, fingerprint: str) -> Kept | None:
        """None when this request now holds the key, else what the key holds already."""
        for _ in range(3):  # the key may expire between SET NX and GET
            if self.client.set(key, Kept(fingerprint).dumps(), nx=True, ex=IN_FLIGHT_TTL_S):
                return None
            raw = self.client.get(key)
            if raw is not None:
                return Kept.loads(raw)
        raise redis.RedisError("idempotency key kept changing")

    def keep(self, key: str, kept: Kept) -> None:
        self.client.set(key, kept.dumps(), ex=TTL_S)

    def release(self, key: str) -> None:
        self.client.delete(key)


def fingerprint(scope: Scope, body: bytes) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    digest = hashlib.sha256(f"{scope['method']} {scope['path']}?{query}\n".encode())
    digest.update(body)
    return digest.hexdigest()


class Idempotency:
    """Redis is called on `threads`, the guard's own pool (see guard.Guard)."""

    def __init__(
        self, app: ASGIApp, store: IdempotencyStore, max_body_bytes: int, threads: CapacityLimiter
    ) -> None:
        self.app = app
        self.store = store
        self.max_body_bytes = max_body_bytes
        self.threads = threads

    async def _call(self, function: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(function, *args, limiter=self.threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        value = Headers(scope=scope).get(HEADER) if scope["type"] == "http" else None
        principal = scope.get("state", {}).get(STATE_KEY)
        if (
            value is None
            or scope["method"] != "POST"
            or not is_api_path(scope["path"])
            or not isinstance(principal, Principal)
        ):
            await self.app(scope, receive, send)
            return
        if not 1 <= len(value) <= MAX_KEY_LENGTH or not value.isprintable():
            detail = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters"
            await send_problem(scope, receive, send, 400, "invalid-idempotency-key", detail)
            return
        body = await read_body(receive, self.max_body_bytes)  # BodyLimit bounded it already
        digest = hashlib.sha256(value.encode()).hexdigest()
        key = f"ethhook:api:idempotency:{principal_tag(principal)}:{digest}"
        mine = fingerprint(scope, body)
        try:
            held = await self._call(self.store.claim, key, mine)
        except redis.RedisError as exc:
            log.error("api.idempotency.unavailable error=%s", exc)
            detail = "requests with an Idempotency-Key cannot be taken now (Redis is unreachable)"
            await send_problem(
                scope, receive, send, 503, "idempotency-unavailable", detail, {"Retry-After": "5"}
            )
            return
        if held is not None:
            await self._answer_held(scope, receive, send, held, mine)
            return
        await self._run_and_keep(scope, replaying(body, receive), send, key, mine)

    async def _answer_held(
        self, scope: Scope, receive: Receive, send: Send, held: Kept, mine: str
    ) -> None:
        if held.fingerprint != mine:
            detail = "this Idempotency-Key was used with a different request; use a new key"
            await send_problem(scope, receive, send, 422, "idempotency-key-reused", detail)
        elif held.status is None:
            detail = "a request with this Idempotency-Key is still being answered; retry later"
            await send_problem(
                scope, receive, send, 409, "idempotency-in-flight", detail, {"Retry-After": "1"}
            )
        else:
            headers = [(k.encode(), v.encode()) for k, v in held.headers]
            headers += [
                (b"content-length", str(len(held.body)).encode()),
                (b"idempotent-replayed", b"true"),
            ]
            await send({"type": "http.response.start", "status": held.status, "headers": headers})
            await send({"type": "http.response.body", "body": held.body})

    async def _run_and_keep(
        self, scope: Scope, receive: Receive, send: Send, key: str, mine: str
    ) -> None:
        answer: dict[str, Any] = {"status": 500, "headers": (), "chunks": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = tuple(
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", ())
                    if k.decode("latin-1").lower() in KEPT_HEADERS
                )
            elif message["type"] == "http.response.body":
                answer["chunks"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            kept = Kept(mine, answer["status"], answer["headers"], b"".join(answer["chunks"]))
            try:
                # A 5xx failed and a 429 said "not now": the same key may be sent again.
                if kept.status is not None and kept.status < 500 and kept.status != 429:
                    await self._call(self.store.keep, key, kept)
                else:
                    await self._call(self.store.release, key)
            except redis.RedisError as exc:
                log.error("api.idempotency.keep_failed error=%s", exc)

"""`Idempotency-Key` on POST: the first answer is kept in Redis for 24 hours, per caller and key.

* the same key with the same request (method, path, query, body) → the kept answer, replayed
  (same status and body, with `Idempotent-Replayed: true`);
* the same key with another request → 422;
* the same key while the first request is still being answered → 409.

A kept answer may carry a new endpoint secret or API key: it is sealed (`sealing`) under a key
derived from the Idempotency-Key itself and ETHHOOK_SECRET_KEYS, and Redis holds only the
Idempotency-Key's SHA-256. A 5xx or 429 answer is not kept (the request may be tried again with
the same key). Without Redis a request carrying a key is refused with 503 rather than risk doing
the work twice; requests without a key go on as usual.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Sequence
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
from ethhook.api.sealing import answer_keys, seal, unseal
from ethhook.service.apps import Principal

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
TTL_S = 24 * 3600
# How long a request may hold its key unanswered (a crashed process frees it after this).
IN_FLIGHT_TTL_S = 300
MAX_KEY_LENGTH = 255
# Printable ASCII, as an HTTP structured-field string (what the Idempotency-Key draft names).
_KEY_FORMAT = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")
KEPT_HEADERS = ("content-type", "location", "retry-after")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def dumps(self) -> bytes:
        return json.dumps(
            {"headers": list(self.headers), "body": base64.b64encode(self.body).decode()}
        ).encode()

    @classmethod
    def loads(cls, status: int, raw: bytes) -> Answer:
        data = json.loads(raw)
        headers = tuple((str(k), str(v)) for k, v in data["headers"])
        return cls(status, headers, base64.b64decode(data["body"]))


@dataclass(frozen=True)
class Kept:
    """What a key holds: the request's fingerprint and, once answered, its status and the
    answer's headers and body, sealed."""

    fingerprint: str
    status: int | None = None
    sealed: bytes = b""

    def dumps(self) -> str:
        return json.dumps(
            {
                "fingerprint": self.fingerprint,
                "status": self.status,
                "sealed": base64.b64encode(self.sealed).decode(),
            }
        )

    @classmethod
    def loads(cls, raw: bytes | str) -> Kept:
        """What Redis holds; a value of another shape (another version's, or one tampered with)
        reads as a key used for another request: the caller is told to use a new key."""
        try:
            data = json.loads(raw)
            status = data["status"]
            return cls(
                str(data["fingerprint"]),
                status if isinstance(status, int) else None,
                base64.b64decode(data.get("sealed", ""), validate=True),
            )
        except (ValueError, KeyError, TypeError):
            return cls("", 0)


@dataclass(frozen=True)
class Sealing:
    """The keys that seal and open one Idempotency-Key's answer, bound to its Redis name."""

    keys: list[bytes]
    bound_to: bytes

    def close(self, fingerprint: str, answer: Answer) -> Kept:
        return Kept(fingerprint, answer.status, seal(answer.dumps(), self.keys[0], self.bound_to))

    def open(self, status: int, sealed: bytes) -> Answer | None:
        plaintext = unseal(sealed, self.keys, self.bound_to)
        return None if plaintext is None else Answer.loads(status, plaintext)


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
        self,
        app: ASGIApp,
        store: IdempotencyStore,
        max_body_bytes: int,
        server_keys: Sequence[str],
        threads: CapacityLimiter,
    ) -> None:
        self.app = app
        self.store = store
        self.max_body_bytes = max_body_bytes
        self.server_keys = tuple(server_keys)
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
        if not _KEY_FORMAT.fullmatch(value):
            detail = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
            await send_problem(scope, receive, send, 400, "invalid-idempotency-key", detail)
            return
        body = await read_body(receive, self.max_body_bytes)  # BodyLimit read it already
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
        sealing = Sealing(answer_keys(value, self.server_keys), key.encode())
        if held is not None:
            await self._answer_held(scope, receive, send, held, mine, sealing)
            return
        await self._run_and_keep(scope, replaying(body, receive), send, key, mine, sealing)

    async def _answer_held(
        self, scope: Scope, receive: Receive, send: Send, held: Kept, mine: str, sealing: Sealing
    ) -> None:
        if held.fingerprint != mine:
            detail = "this Idempotency-Key was used with a different request; use a new key"
            await send_problem(scope, receive, send, 422, "idempotency-key-reused", detail)
            return
        if held.status is None:
            detail = "a request with this Idempotency-Key is still being answered; retry later"
            await send_problem(
                scope, receive, send, 409, "idempotency-in-flight", detail, {"Retry-After": "1"}
            )
            return
        answer = sealing.open(held.status, held.sealed)
        if answer is None:
            detail = (
                "the answer kept for this Idempotency-Key can no longer be read (the server's "
                "ETHHOOK_SECRET_KEYS changed); use a new key"
            )
            await send_problem(scope, receive, send, 422, "idempotency-key-unreadable", detail)
            return
        headers = [(k.encode(), v.encode()) for k, v in answer.headers]
        headers += [
            (b"content-length", str(len(answer.body)).encode()),
            (b"idempotent-replayed", b"true"),
        ]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _run_and_keep(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        key: str,
        mine: str,
        sealing: Sealing,
    ) -> None:
        answer: dict[str, Any] = {"status": 500, "headers": (), "chunks": [], "settled": False}

        async def settle() -> None:
            """Keep the answer, or free the key: before the client has the answer's end, so
            that the same request sent again at once finds it kept (never a 409)."""
            answer["settled"] = True
            status: int = answer["status"]
            try:
                # A 5xx failed and a 429 said "not now": the same key may be sent again.
                if status < 500 and status != 429:
                    done = Answer(status, answer["headers"], b"".join(answer["chunks"]))
                    await self._call(self.store.keep, key, sealing.close(mine, done))
                else:
                    await self._call(self.store.release, key)
            except redis.RedisError as exc:
                log.error("api.idempotency.keep_failed error=%s", exc)

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
                if not message.get("more_body", False):
                    await settle()
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if not answer["settled"]:
                answer["status"] = 500  # no whole answer: nothing to keep
                await settle()

"""ASGI middleware in front of every route: a bounded request body read within a deadline, then
for /v1 the limits on callers (requests without a valid key per client address, requests per
key) and authentication (a missing or wrong key is 401, never a route's business)."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import TypeVar

import anyio
from anyio import CapacityLimiter
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ethhook.api.auth import STATE_KEY, bearer_token, resolve, token_fingerprint, unauthorized
from ethhook.api.problems import send_problem
from ethhook.api.ratelimit import ApiRateLimiter
from ethhook.logs import bind_fields

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A Content-Length as RFC 9110 writes it: ASCII digits only (h11 checks the same; this does not
# rely on it), and no more of them than any real length has.
_CONTENT_LENGTH = re.compile(r"[0-9]{1,20}")

T = TypeVar("T")


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client closed the connection before its body was in."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, read chunk by chunk; BodyTooLarge as soon as it passes `limit`,
    ClientGone if the client leaves first (a part of a body is never taken for all of it)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then waits on the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodyLimit:
    """413 for a body over `max_bytes`: by its Content-Length before reading it, else while
    reading it (chunked), never holding more than `max_bytes` of it; 408 for a body that is not
    all in `timeout_s` after the headers."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and not _CONTENT_LENGTH.fullmatch(declared):
            await send_problem(scope, receive, send, 400, "bad-request", "invalid Content-Length")
            return
        close = {"Connection": "close"}
        try:
            if declared is not None and int(declared) > self.max_bytes:
                raise BodyTooLarge
            with anyio.fail_after(self.timeout_s):
                body = await read_body(receive, self.max_bytes)
        except BodyTooLarge:
            detail = f"the request body is larger than {self.max_bytes} bytes"
            await send_problem(scope, receive, send, 413, "body-too-large", detail, close)
            return
        except TimeoutError:
            detail = f"the request body did not arrive within {self.timeout_s:g}s of its headers"
            await send_problem(scope, receive, send, 408, "body-timeout", detail, close)
            return
        except ClientGone:
            return  # nobody is left to answer
        await self.app(scope, replaying(body, receive), send)


class Guard:
    """For /v1 paths: the address's failed authentications, the rate limit of the key
    presented, then authentication; the Principal is left in the request's state.

    Requests without a valid key (none, malformed, unknown or replaced) count against the client
    address; an address over its limit is answered 429 before any key is looked up, valid or
    not. Redis and the database are called on `threads`, a pool of the guard's own: sync routes
    busy on the shared pool never hold authentication up.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: ApiRateLimiter,
        failures: ApiRateLimiter,
        threads: CapacityLimiter,
        authenticate: Callable[[str], object] = resolve,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.failures = failures
        self.threads = threads
        self.authenticate = authenticate

    async def _call(self, function: Callable[[str], T], argument: str) -> T:
        return await anyio.to_thread.run_sync(function, argument, limiter=self.threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope))
        address = f"auth-failures:{(scope.get('client') or ('unknown', 0))[0]}"
        wait_s = await self._call(self.failures.peek, address)
        if wait_s > 0:
            detail = "too many requests without a valid API key from this address"
            await too_many(scope, receive, send, "too-many-auth-failures", detail, wait_s)
            return
        principal = None
        if token:
            wait_s = await self._call(self.limiter.acquire, token_fingerprint(token))
            if wait_s > 0:
                detail = "too many requests for this key"
                await too_many(scope, receive, send, "rate-limited", detail, wait_s)
                return
            try:
                principal = await self._call(self.authenticate, token)
            except (DBAPIError, PoolTimeout) as exc:
                log.error("api.auth.database_unavailable error=%s", type(exc).__name__)
                detail = "the database is unreachable or busy; try again later"
                await send_problem(scope, receive, send, 503, "database-unavailable", detail)
                return
        if principal is None:
            await self._call(self.failures.acquire, address)
            problem = unauthorized(token is not None)
            await send_problem(
                scope, receive, send, 401, problem.kind, problem.detail, problem.headers
            )
            return
        scope.setdefault("state", {})[STATE_KEY] = principal
        bind_fields(app_id=getattr(principal, "application_id", None))  # the request's lines
        await self.app(scope, receive, send)


async def too_many(
    scope: Scope, receive: Receive, send: Send, kind: str, detail: str, wait_s: float
) -> None:
    retry = {"Retry-After": str(max(1, math.ceil(wait_s)))}
    await send_problem(scope, receive, send, 429, kind, f"{detail}; retry in {wait_s:.2f}s", retry)

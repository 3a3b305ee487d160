"""The one hardened HTTP POST: timeouts, no redirects, a capped body, and a typed outcome."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ethhook.deliver.ssrf import GUARDED_POOLS

MAX_READ_BYTES = 64 * 1024
STORED_BODY_BYTES = 1024
POOL_SIZE = 256


@dataclass(frozen=True)
class HttpOutcome:
    """What happened to one POST; never an exception for a status code."""

    status_code: int | None
    duration_ms: float
    error: str | None = None
    body: str | None = None
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_sessions: dict[tuple[int, bool], requests.Session] = {}
_sessions_lock = threading.Lock()


def _session(guarded: bool) -> requests.Session:
    """One pooled session per process and guard setting, shared by every thread and greenlet.

    urllib3's pools are thread-safe; sharing them means connections to an endpoint are reused
    across tasks (a session per greenlet kept 200 pools and opened connections again and again).
    Keyed by pid too, so a forked pool process never uses its parent's sockets.
    """
    key = (os.getpid(), guarded)
    session = _sessions.get(key)
    if session is None:
        with _sessions_lock:
            session = _sessions.get(key)
            if session is None:
                session = requests.Session()
                session.trust_env = False  # no proxy from the environment may bypass the guard
                # Cookies one receiver sets are never sent to it (or anyone) again.
                session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
                adapter = HTTPAdapter(pool_connections=64, pool_maxsize=POOL_SIZE, max_retries=0)
                if guarded:
                    adapter.poolmanager.pool_classes_by_scheme = GUARDED_POOLS
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                _sessions[key] = session
    return session


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    connect_timeout_s: float,
    read_timeout_s: float,
    allow_private: bool = False,
) -> HttpOutcome:
    """POST `body`; read at most 64 KiB of the answer and stop reading at the read timeout."""
    started = time.perf_counter()

    def elapsed_ms() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        response = _session(not allow_private).post(
            url,
            data=body,
            headers=headers,
            timeout=(connect_timeout_s, read_timeout_s),
            allow_redirects=False,
            stream=True,
        )
    except requests.exceptions.ConnectTimeout:
        return HttpOutcome(
            None, elapsed_ms(), error=f"connect timeout after {connect_timeout_s:g}s"
        )
    except requests.exceptions.ReadTimeout:
        return HttpOutcome(None, elapsed_ms(), error=f"read timeout after {read_timeout_s:g}s")
    except requests.exceptions.ConnectionError as exc:
        return HttpOutcome(None, elapsed_ms(), error=f"connection error: {_reason(exc)}")
    except requests.exceptions.RequestException as exc:
        return HttpOutcome(None, elapsed_ms(), error=f"request failed: {_reason(exc)}")
    with response:
        chunks: list[bytes] = []
        size = 0
        error = None
        # The whole answer must arrive within the read timeout: a receiver trickling bytes is cut
        # off, not waited on byte after byte.
        deadline = time.perf_counter() + read_timeout_s
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        try:
            while size < MAX_READ_BYTES:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    error = f"response body still arriving after {read_timeout_s:g}s; cut off"
                    break
                if sock is not None:
                    sock.settimeout(remaining)
                chunk = response.raw.read1(8192)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if time.perf_counter() >= deadline:
                error = f"response body still arriving after {read_timeout_s:g}s; cut off"
            else:
                error = f"reading the response failed: {_reason(exc)}"
        text = b"".join(chunks)[:STORED_BODY_BYTES].decode("utf-8", "replace")
        if 300 <= response.status_code < 400:
            location = response.headers.get("location", "")
            error = f"redirect {response.status_code} to {location[:200]!r} not followed"
        return HttpOutcome(
            response.status_code,
            elapsed_ms(),
            error=error,
            body=text,
            retry_after=response.headers.get("retry-after"),
        )


def _reason(exc: BaseException) -> str:
    """The innermost useful message of a requests/urllib3 error, without pool boilerplate."""
    inner: object = exc.args[0] if exc.args else exc
    inner = getattr(inner, "reason", None) or inner  # urllib3's MaxRetryError wraps the cause
    text = str(inner)
    if "): " in text and text.split("(", 1)[0].endswith(("Connection", "ConnectionPool")):
        text = text.split("): ", 1)[1]
    return text[:300]

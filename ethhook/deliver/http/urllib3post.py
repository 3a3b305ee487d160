"""The hardened POST on urllib3's pools, for processes whose sockets gevent has not patched.

Threads (the CLI's endpoint test, the demo, prefork and solo workers) keep urllib3's pools
directly: geventhttpclient's sockets belong to one gevent hub, and `requests` on top of urllib3
cost more CPU per POST than the rest of a delivery (bench/RESULTS.md) while none of what it adds
may apply to a webhook anyway. Unless private targets are allowed, every connection is opened
through the SSRF guard, on the address the socket connects to.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.connection import create_connection

from ethhook.deliver.http.outcome import MAX_READ_BYTES, STORED_BODY_BYTES, HttpOutcome, Request
from ethhook.deliver.http.ssrf import ForbiddenTarget, checked_addresses

# Idle connections kept per host, and hosts kept pooled, per process (geventpost keeps as many).
POOL_SIZE = 256
HOSTS_POOLED = 64

_pools: dict[tuple[int, bool], urllib3.PoolManager] = {}
_pools_lock = threading.Lock()


def _pool_manager(guarded: bool) -> urllib3.PoolManager:
    """One pool manager per process and guard setting, shared by every thread and greenlet.

    urllib3's pools are thread-safe; sharing them means connections to an endpoint are reused
    across tasks. Keyed by pid too, so a forked pool process never uses its parent's sockets.
    """
    key = (os.getpid(), guarded)
    manager = _pools.get(key)
    if manager is None:
        with _pools_lock:
            manager = _pools.get(key)
            if manager is None:
                manager = urllib3.PoolManager(num_pools=HOSTS_POOLED, maxsize=POOL_SIZE)
                if guarded:
                    manager.pool_classes_by_scheme = GUARDED_POOLS
                _pools[key] = manager
    return manager


def post(request: Request) -> HttpOutcome:
    """POST `body`; read at most 64 KiB of the answer and stop reading at the read timeout.
    Safe from any thread."""
    url, body, headers, connect_timeout_s, read_timeout_s, allow_private = request
    started = time.perf_counter()

    def elapsed_ms() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        response = _pool_manager(not allow_private).request(
            "POST",
            url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            retries=False,  # no retry, no redirect followed: errors and 3xx come back as they are
            redirect=False,
            preload_content=False,
        )
    except NewConnectionError as exc:  # before ConnectTimeoutError: it is a subclass of it
        return HttpOutcome(None, elapsed_ms(), error=f"connection error: {_reason(exc)}")
    except ConnectTimeoutError:
        return HttpOutcome(
            None, elapsed_ms(), error=f"connect timeout after {connect_timeout_s:g}s"
        )
    except ReadTimeoutError:
        return HttpOutcome(None, elapsed_ms(), error=f"read timeout after {read_timeout_s:g}s")
    except ProtocolError as exc:
        return HttpOutcome(None, elapsed_ms(), error=f"connection error: {_reason(exc)}")
    except (HTTPError, OSError) as exc:
        return HttpOutcome(None, elapsed_ms(), error=f"request failed: {_reason(exc)}")
    chunks, error = _read_capped(response, read_timeout_s)
    text = b"".join(chunks)[:STORED_BODY_BYTES].decode("utf-8", "replace")
    if 300 <= response.status < 400:
        location = response.headers.get("location", "")
        error = f"redirect {response.status} to {location[:200]!r} not followed"
    return HttpOutcome(
        response.status,
        elapsed_ms(),
        error=error,
        body=text,
        retry_after=response.headers.get("retry-after"),
    )


def _read_capped(
    response: urllib3.BaseHTTPResponse, read_timeout_s: float
) -> tuple[list[bytes], str | None]:
    """Read at most MAX_READ_BYTES of the answer; returns the chunks and an error, if any."""
    chunks: list[bytes] = []
    size = 0
    error = None
    complete = False
    # The whole answer must arrive within the read timeout: a receiver trickling bytes is cut
    # off, not waited on byte after byte.
    deadline = time.perf_counter() + read_timeout_s
    sock = getattr(response.connection, "sock", None)
    try:
        while size < MAX_READ_BYTES:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                error = f"response body still arriving after {read_timeout_s:g}s; cut off"
                break
            if sock is not None:
                sock.settimeout(remaining)
            chunk = response.read1(8192)
            if not chunk:
                complete = True
                break
            chunks.append(chunk)
            size += len(chunk)
    except (HTTPError, OSError) as exc:
        if time.perf_counter() >= deadline:
            error = f"response body still arriving after {read_timeout_s:g}s; cut off"
        else:
            error = f"reading the response failed: {_reason(exc)}"
    finally:
        if not complete:
            response.close()  # unread bytes left: the connection cannot be reused
        response.release_conn()
    return chunks, error


def _reason(exc: BaseException) -> str:
    """The innermost useful message of a urllib3 error, without pool boilerplate."""
    inner: object = exc.args[0] if exc.args else exc
    inner = getattr(inner, "reason", None) or inner
    text = str(inner)
    if "): " in text and text.split("(", 1)[0].endswith(("Connection", "ConnectionPool")):
        text = text.split("): ", 1)[1]
    return text[:300]


class _GuardMixin:
    """urllib3's `_new_conn`, with the resolved address checked before the socket connects."""

    _dns_host: str
    port: int
    host: str
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            return self._connect_checked()
        except ForbiddenTarget as exc:
            raise NewConnectionError(self, str(exc)) from exc  # type: ignore[arg-type]
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc  # type: ignore[arg-type]

    def _connect_checked(self) -> socket.socket:
        error: OSError | None = None
        for ip in checked_addresses(self.host, self._dns_host, self.port):
            try:
                return create_connection(
                    (str(ip), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                error = exc
        raise error or OSError(f"no address for {self.host}")


class GuardedHTTPConnection(_GuardMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


GUARDED_POOLS = {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}

"""The hardened POST on geventhttpclient, for processes whose sockets gevent has patched.

geventhttpclient parses answers in C and sends gevent-native sockets: it costs less CPU per POST
than urllib3 (bench/http_client_bench.py), and CPU per POST bounds the deliver worker. Its sockets
and pools belong to one gevent hub, so threads without gevent keep urllib3 (`client.post` chooses).
Every guarantee of urllib3post holds here too: the SSRF check on the address the socket connects
to, connect and read timeouts, no redirect followed, 64 KiB read at most, the whole answer within
the read timeout, TLS verified against the system's certificates.
"""

from __future__ import annotations

import os
import re
import select
import socket
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote, urlsplit

import gevent
import gevent.monkey
import gevent.socket
import gevent.ssl
from geventhttpclient.response import HTTPParseError, HTTPSocketPoolResponse

from ethhook.deliver.http import ssrf
from ethhook.deliver.http.outcome import MAX_READ_BYTES, STORED_BODY_BYTES, HttpOutcome, Request
from ethhook.deliver.http.urllib3post import HOSTS_POOLED, POOL_SIZE

_PATH_SAFE = "/%!$&'()*+,;=:@-._~"  # RFC 3986 pchar and "/", with "%" to keep escapes as they are
# A header value carrying these would let it write its own header or request.
_UNSAFE_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tab allowed


class Target(NamedTuple):
    scheme: str
    host: str  # as in the URL, without brackets: what TLS verifies and messages name
    port: int
    host_header: str
    request_target: str


@lru_cache(maxsize=4096)
def parse_target(url: str) -> Target:
    """The parts of an endpoint URL a request needs, parsed once per URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url[:200]!r}")
    default = 443 if parts.scheme == "https" else 80
    port = default if parts.port is None else parts.port
    host = parts.hostname
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == default else f"{bracketed}:{port}"
    # Percent-encode what may not stand in a request line (spaces, control characters), as
    # urllib3 does, and keep existing escapes: a URL can never write its own request line.
    request_target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        request_target += "?" + quote(parts.query, safe=_PATH_SAFE + "?")
    return Target(parts.scheme, host, port, host_header, request_target)


class Pool:
    """Keep-alive connections to one host, shared by every greenlet; the guarded connection
    classes of urllib3post, for gevent.

    Like urllib3's pools (block=False), a request never waits for a connection: with none idle it
    opens one, and at most POOL_SIZE idle ones are kept. (geventhttpclient's own pool blocks at its
    size: a host that hangs would hold every connection and stall the host's other endpoints.)
    Every connection is opened through the SSRF guard unless private targets are allowed.
    """

    def __init__(self, target: Target, connect_timeout_s: float, guarded: bool) -> None:
        self.host, self.port = target.host, target.port
        self.connect_timeout_s = connect_timeout_s
        self.guarded = guarded
        # The system's trust store and the host name checked, as urllib3 does (load_default_certs).
        self.tls = gevent.ssl.create_default_context() if target.scheme == "https" else None
        self.idle: deque[gevent.socket.socket] = deque()
        self.closed = False

    def get_socket(self) -> gevent.socket.socket:
        while self.idle:
            sock = self.idle.pop()  # the most recently used: the least likely to be timed out
            if _still_open(sock):
                return sock
            sock.close()
        return self._connect()

    def return_socket(self, sock: gevent.socket.socket) -> None:
        if self.closed or len(self.idle) >= POOL_SIZE:
            sock.close()
        else:
            self.idle.append(sock)

    def release_socket(self, sock: gevent.socket.socket) -> None:
        sock.close()

    def close(self) -> None:
        self.closed = True
        while self.idle:
            self.idle.pop().close()

    def _addresses(self) -> Iterator[ssrf.IPAddress]:
        if self.guarded:
            return ssrf.checked_addresses(self.host, self.host, self.port)
        return ssrf.addresses(self.host, self.port)

    def _connect(self) -> gevent.socket.socket:
        """Connect (and shake hands) within the connect timeout, to the first address that
        answers; the guard judges each address just before it is tried."""
        error: OSError | None = None
        for ip in self._addresses():
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            sock = gevent.socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(self.connect_timeout_s)
                sock.connect((str(ip), self.port))
                if self.tls is None:
                    return sock
                return self.tls.wrap_socket(sock, server_hostname=self.host)
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        raise error or OSError(f"no address for {self.host}")


def _still_open(sock: gevent.socket.socket) -> bool:
    """An idle keep-alive connection is readable only when the server closed it (or broke it)."""
    try:
        poller = _poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


# The real poll, not gevent's: a zero-timeout check needs no trip through the hub.
_poll = gevent.monkey.get_original("select", "poll")


PoolKey = tuple[str, str, int, float, bool]
_pools: OrderedDict[PoolKey, Pool] = OrderedDict()
# A forked child must not share its parent's sockets.
os.register_at_fork(after_in_child=_pools.clear)


def _pool(target: Target, connect_timeout_s: float, guarded: bool) -> Pool:
    """One bounded pool per host, shared by every greenlet; the least recently used of more
    than HOSTS_POOLED hosts is closed. No lock: greenlets switch only on I/O, none happens here."""
    key = (target.scheme, target.host, target.port, connect_timeout_s, guarded)
    pool = _pools.get(key)
    if pool is not None:
        _pools.move_to_end(key)
        return pool
    pool = _pools[key] = Pool(target, connect_timeout_s, guarded)
    if len(_pools) > HOSTS_POOLED:
        _pools.popitem(last=False)[1].close()
    return pool


class _Answer(HTTPSocketPoolResponse):
    """An answer that keeps the first STORED_BODY_BYTES of its body as they arrive, so an answer
    cut off at the read deadline still shows how it began."""

    def __init__(self, sock: gevent.socket.socket, pool: Pool) -> None:
        self.body_start = bytearray()
        # geventhttpclient hands the socket back through pool.return_socket / release_socket.
        super().__init__(sock, pool, block_size=16384, method="POST")  # type: ignore[arg-type]

    def _on_body(self, buf: bytearray) -> None:
        if len(self.body_start) < STORED_BODY_BYTES:
            self.body_start += buf[: STORED_BODY_BYTES - len(self.body_start)]
        super()._on_body(buf)

    def header(self, name: str) -> str | None:
        value = self.get(name)
        return value[0] if isinstance(value, list) else value


def _head(target: Target, headers: dict[str, str], length: int) -> bytes:
    if _UNSAFE_HEADER.search("".join(headers) + "".join(headers.values())):
        raise ValueError("control character in a header")
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        f"POST {target.request_target} HTTP/1.1\r\nHost: {target.host_header}\r\n"
        f"Accept-Encoding: identity\r\nContent-Length: {length}\r\n{lines}\r\n"
    ).encode("latin-1")


def post(request: Request) -> HttpOutcome:
    """POST the request's body; read at most 64 KiB of the answer and stop reading at the read
    timeout. Only in a process whose sockets gevent patched."""
    url, body, headers, connect_timeout_s, read_timeout_s, allow_private = request
    started = time.perf_counter()

    def failed(error: str) -> HttpOutcome:
        return HttpOutcome(None, (time.perf_counter() - started) * 1000, error=error)

    try:
        target = parse_target(url)
        message = _head(target, headers, len(body)) + body
    except (ValueError, UnicodeEncodeError) as exc:
        return failed(f"request failed: {exc}")
    pool = _pool(target, connect_timeout_s, not allow_private)
    try:
        sock = pool.get_socket()
    except TimeoutError:
        return failed(f"connect timeout after {connect_timeout_s:g}s")
    except OSError as exc:
        return failed(_connect_error(target, exc))
    try:
        sock.settimeout(read_timeout_s)
        # One send() takes a webhook whole into the socket's buffer, as a rule; gevent's
        # sendall() first asks the kernel for the buffer's size (a system call per request).
        sent = sock.send(message)
        if sent < len(message):
            sock.sendall(memoryview(message)[sent:])
    except BaseException as exc:
        pool.release_socket(sock)
        if isinstance(exc, TimeoutError):
            return failed(f"read timeout after {read_timeout_s:g}s")
        if isinstance(exc, OSError):
            return failed(f"connection error: {exc}")
        raise
    try:
        answer = _Answer(sock, pool)  # reads the status line and headers; releases on error
    except TimeoutError:
        return failed(f"read timeout after {read_timeout_s:g}s")
    except (HTTPParseError, OSError) as exc:
        return failed(f"connection error: {_closed_reason(exc)}")
    error = _read_capped(answer, read_timeout_s)
    status = answer.status_code
    if 300 <= status < 400:
        location = answer.header("location") or ""
        error = f"redirect {status} to {location[:200]!r} not followed"
    return HttpOutcome(
        status,
        (time.perf_counter() - started) * 1000,
        error=error,
        body=bytes(answer.body_start).decode("utf-8", "replace"),
        retry_after=answer.header("retry-after"),
    )


def _read_capped(answer: _Answer, read_timeout_s: float) -> str | None:
    """Read at most MAX_READ_BYTES of the body, all of it within the read timeout (a receiver
    trickling bytes is cut off, not waited on byte after byte); returns an error, if any."""
    size = 0
    deadline = gevent.Timeout(read_timeout_s)
    deadline.start()
    try:
        while size < MAX_READ_BYTES:
            chunk = answer.read(MAX_READ_BYTES - size)
            if not chunk:
                break
            size += len(chunk)
    except gevent.Timeout as exc:
        if exc is not deadline:
            raise
        return f"response body still arriving after {read_timeout_s:g}s; cut off"
    except (HTTPParseError, OSError) as exc:
        return f"reading the response failed: {exc}"
    finally:
        deadline.close()
        answer.release()  # back to the pool when read to its end, else closed
    return None


def _connect_error(target: Target, exc: BaseException) -> str:
    """The message urllib3's path gives for the same failure to connect."""
    if isinstance(exc, ssrf.ForbiddenTarget):
        return f"connection error: {exc}"
    if isinstance(exc, socket.gaierror):
        return f"connection error: Failed to resolve {target.host!r} ({exc})"
    if isinstance(exc, ssl.SSLError):
        return f"request failed: {exc.reason or exc}"
    return f"connection error: Failed to establish a new connection: {exc}"


def _closed_reason(exc: BaseException) -> str:
    text = str(exc)
    if text in ("connection closed.", ""):
        return "Remote end closed connection without response"
    return text[:300]

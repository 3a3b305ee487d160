"""The one hardened HTTP POST: timeouts, no redirects, a capped body, and a typed outcome.

Two clients keep the same guarantees and error messages. Under gevent (the deliver worker),
geventhttpclient (geventpost): it costs ~3x less CPU per POST than urllib3
(bench/http_client_bench.py), and CPU per POST bounds that worker. Without gevent (threads: the
CLI's endpoint test, the demo, prefork and solo workers), urllib3's pools (urllib3post).
"""

from __future__ import annotations

from collections.abc import Callable

from ethhook.deliver.beside import green
from ethhook.deliver.http import urllib3post
from ethhook.deliver.http.outcome import HttpOutcome, Request

Client = Callable[[Request], HttpOutcome]


def this_process() -> Client:
    """geventhttpclient in a process whose sockets gevent patched, urllib3 anywhere else."""
    return gevent_client if green() else urllib3post.post


def gevent_client(request: Request) -> HttpOutcome:
    """geventpost.post, imported on first use: a process without gevent never loads it."""
    from ethhook.deliver.http import geventpost

    return geventpost.post(request)


class Post:
    """`post(url, body, headers, connect_timeout_s, read_timeout_s, allow_private=False)`, sent
    by the client `choose` returns when it is called."""

    def __init__(self, name: str, choose: Callable[[], Client]) -> None:
        self.__name__ = name
        self._choose = choose

    def __call__(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        connect_timeout_s: float,
        read_timeout_s: float,
        allow_private: bool = False,
    ) -> HttpOutcome:
        """POST `body`; read at most 64 KiB of the answer and stop reading at the read timeout."""
        request = Request(url, body, headers, connect_timeout_s, read_timeout_s, allow_private)
        return self._choose()(request)


post = Post("post", this_process)
# One client whatever the process, for the tests and benchmarks that compare them.
post_urllib3 = Post("post_urllib3", lambda: urllib3post.post)
post_gevent = Post("post_gevent", lambda: gevent_client)

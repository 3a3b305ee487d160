"""`ethhook up`: the whole pipeline under one supervisor; SIGTERM stops every process, loses nothing."""

from __future__ import annotations

import os
import signal
import socket
import time

import psutil
import pytest

from tests.support.chain import Token
from tests.support.cli import start_up
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER
from tests.support.listener import cursor_of
from tests.support.waiting import free_port, stop_process, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("db", "redis_server", "without_session_worker"),
]


def test_up_under_sigterm_leaves_no_process_and_loses_no_event(receiver, start_anvil):
    node = start_anvil(chain_id=1)
    token = Token(node)
    endpoint_id, secret = add_endpoint(
        receiver.url("/up"), contracts=[token.address], events=[TRANSFER]
    )
    receiver.secrets["/up"] = secret
    env = {
        **os.environ,
        "ETHEREUM_HTTP": node.http_url,
        "ETHEREUM_WS": node.ws_url,
        "ETHHOOK_METRICS_PORT": str(free_port()),
        "ETHHOOK_WORKER_METRICS_PORT": "0",
        "ETHHOOK_API_PORT": str(free_port()),
    }

    up, log = start_up(env, "first")
    try:
        wait_until(
            lambda: len(psutil.Process(up.pid).children(recursive=True)) >= 4, 30, 0.2, "children"
        )
        # The listener follows from the head it finds first: mine only once it has a cursor.
        wait_until(lambda: cursor_of(1) is not None, 30, 0.2, "the listener's cursor")
        for k in range(10):
            token.emit_transfers(20, 5000 + k * 20)
        wait_until(lambda: len(receiver.on("/up")) >= 50, 60, 0.2, "the first webhooks")
        family = psutil.Process(up.pid).children(recursive=True)
        assert len(family) >= 4
        up.send_signal(signal.SIGTERM)
        assert up.wait(40) == 0
        gone, alive = psutil.wait_procs(family, timeout=5)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        stop_process(up)
        log.close()

    # Events mined while nothing runs are picked up from the saved cursor by the next `up`.
    for k in range(5):
        token.emit_transfers(20, 9000 + k * 20)
    up, log = start_up(env, "second")
    try:
        wait_until(
            lambda: len({r.webhook_id for r in receiver.on("/up")}) >= 300,
            90,
            0.5,
            "every webhook after the restart",
        )
        time.sleep(1)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(40)
        log.close()
    ids = [r.webhook_id for r in receiver.on("/up") if r.status == 200]
    assert len(set(ids)) == 300
    assert all(r.verified for r in receiver.on("/up"))
    assert endpoint_id


def free_port_pair() -> int:
    """A free port whose next one is free too (`up` gives its two workers port and port + 1)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two consecutive free ports")


def listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket listening in the process tree under `pid`."""
    root = psutil.Process(pid)
    found = set()
    for proc in [root, *root.children(recursive=True)]:
        try:
            connections = proc.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue  # exited meanwhile
        found |= {
            (c.laddr.ip, c.laddr.port)
            for c in connections
            if c.status == psutil.CONN_LISTEN and c.type == socket.SOCK_STREAM
        }
    return found


def test_up_listens_on_loopback_only_unless_told_otherwise(start_anvil):
    node = start_anvil(chain_id=1)
    metrics_port, worker_port, api_port = free_port(), free_port_pair(), free_port()
    env = {
        **os.environ,
        "ETHEREUM_HTTP": node.http_url,
        "ETHEREUM_WS": node.ws_url,
        "ETHHOOK_METRICS_PORT": str(metrics_port),
        # Not the suite's 0: the match and deliver workers serve /metrics on these two ports.
        "ETHHOOK_WORKER_METRICS_PORT": str(worker_port),
        "ETHHOOK_API_PORT": str(api_port),
    }
    env.pop("ETHHOOK_METRICS_HOST", None)
    env.pop("ETHHOOK_API_HOST", None)
    servers = {metrics_port, worker_port, worker_port + 1, api_port}

    def every_server_listens() -> set[tuple[str, int]] | None:
        found = listening_sockets(up.pid)
        return found if servers <= {port for _, port in found} else None

    up, log = start_up(env, "loopback")
    try:
        sockets = wait_until(
            every_server_listens, 60, 0.5, "the listener's, both workers' and the API's servers"
        )
        time.sleep(2)  # anything that starts listening a little later is counted too
        sockets |= listening_sockets(up.pid)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(40)
        log.close()
    assert servers <= {port for _, port in sockets}
    assert {ip for ip, _ in sockets} <= {"127.0.0.1", "::1"}, sorted(sockets)

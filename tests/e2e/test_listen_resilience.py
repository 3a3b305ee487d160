"""Acceptance 3, 4 and 7, and SIGTERM: the listener loses no event and sends none twice when it is
killed, stopped, cut off from its node, or fed garbage by a faulty RPC provider."""

from __future__ import annotations

import threading
import time

import pytest

from ethhook.demo.devchain import events_in
from tests.support.chain import Token
from tests.support.endpoints import add_endpoint
from tests.support.fakes import FakeRpc, TcpProxy, wait_quiet
from tests.support.listener import cursor_of, python_launcher, wait_for_cursor
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]


def values(receiver, path: str = "/a") -> list[int]:
    return [int(r.json["data"]["decoded"]["args"]["value"]) for r in receiver.on(path)]


def assert_exactly(receiver, expected: set[int], path: str = "/a", settle: float = 2.0) -> None:
    """Wait for `expected` transfer values at `path`, then check nothing else or twice came."""
    wait_until(
        lambda: len(receiver.on(path)) >= len(expected),
        90,
        0.2,
        f"{len(expected)} webhooks at {path}",
    )
    time.sleep(settle)
    got = values(receiver, path)
    assert sorted(got) == sorted(expected)
    ids = [r.webhook_id for r in receiver.on(path)]
    assert len(set(ids)) == len(ids)


def emit(token, txs: int, per_tx: int, base: int, pause: float = 0.0) -> set[int]:
    sent = set()
    for k in range(txs):
        start = base + k * per_tx
        token.emit_transfers(per_tx, start, wait=pause > 0)
        sent |= {start + i for i in range(per_tx)}
        if pause:
            time.sleep(pause)
    if not pause:
        # Every transaction mined, and the chain holds exactly the events counted here.
        assert events_in(token.node.confirm_sent()) == len(sent)
    return sent


def setup_token(start_anvil, receiver, **anvil_kw):
    node = start_anvil(chain_id=1, **anvil_kw)
    token = Token(node)
    _, secret = add_endpoint(
        receiver.url("/a"),
        contracts=[token.address],
        events=["Transfer(address indexed from, address indexed to, uint256 value)"],
    )
    receiver.secrets["/a"] = secret
    return node, token


def test_sigkill_mid_stream_then_restart_loses_nothing_and_duplicates_nothing(
    start_anvil, start_listener, receiver
):
    # Given a listener following a stream of 2,000 Transfers (100 transactions, ~40 ms apart)
    node, token = setup_token(start_anvil, receiver)
    chains = {"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url}
    first = start_listener(chains)
    first.wait_started(1)
    sent: set[int] = set()
    streamer = threading.Thread(target=lambda: sent.update(emit(token, 100, 20, 10_000, 0.03)))
    streamer.start()

    # When it is killed with SIGKILL in the middle of the stream and started again
    wait_until(lambda: len(receiver.on("/a")) >= 300, 30, 0.05, "the stream to be flowing")
    first.kill()
    cursor_at_kill = cursor_of(1)
    delivered_at_kill = len(receiver.on("/a"))
    time.sleep(0.5)
    second = start_listener(chains)
    streamer.join(60)

    # Then every event arrives exactly once
    assert len(sent) == 2000
    assert cursor_at_kill is not None and cursor_at_kill < node.block_number()
    assert delivered_at_kill < 2000
    assert_exactly(receiver, sent)
    assert all(r.verified for r in receiver.on("/a"))
    assert second.terminate() == 0


def logged_at(log: str, event: str) -> float:
    """When a process's text log first says `event`, as a Unix time (its lines start with the
    local time to the millisecond)."""
    line = next(line for line in log.splitlines() if event in line)
    stamp, millis = line[:23].split(",")
    return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000


def test_sigterm_publishes_what_it_holds_saves_the_cursor_and_exits_0_quickly(
    start_anvil, start_listener, receiver
):
    # Given a listener catching up on 40 blocks of 20 events
    node, token = setup_token(start_anvil, receiver)
    chains = {"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url}
    listener = start_listener(chains)
    listener.wait_started(1)
    sent = emit(token, 40, 20, 1)
    wait_until(lambda: len(receiver.on("/a")) >= 20, 30, 0.02, "first webhooks")

    # When it gets SIGTERM mid-stream
    signalled, started = time.time(), time.monotonic()
    code = listener.terminate(timeout=30)
    took = time.monotonic() - started

    # Then it stops within a few seconds (what it holds published, its cursor saved) and exits 0,
    # and a restart finishes the job. The process's exit after its last line waits for the cores
    # like everything else: 7.6 s after the signal in a clean-clone run on a starved host.
    assert code == 0
    assert logged_at(listener.log(), "listen.stopped") - signalled < 5
    assert took < 15, f"took {took:.1f}s to exit"
    assert cursor_of(1) is not None
    start_listener(chains)
    assert_exactly(receiver, sent)


def test_node_restarted_from_saved_state_reconnects_and_catches_up(
    start_anvil, start_listener, receiver
):
    # Given a listener on a node's WebSocket that delivered 100 events
    node, token = setup_token(start_anvil, receiver)
    listener = start_listener({"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url})
    listener.wait_started(1)
    sent = emit(token, 10, 10, 1)
    wait_until(lambda: len(receiver.on("/a")) >= 100, 30, 0.1, "100 webhooks")

    # When the node stops (dumping its state) and starts again from it, on the same port
    node.stop()
    time.sleep(2)
    node.start(load_state=True)
    sent |= emit(token, 10, 10, 1000)

    # Then the listener reconnects and every event arrives exactly once
    assert_exactly(receiver, sent)
    assert "listen.ws.disconnected chain=ethereum" in listener.log()
    # (It may have caught up over HTTP while its WebSocket was still backing off.)
    wait_until(
        lambda: listener.log().count("listen.ws.subscribed chain=ethereum") >= 2,
        30,
        0.2,
        "the listener to subscribe again on the restarted node",
    )
    assert listener.terminate() == 0


def test_severed_connections_catch_up_blocks_mined_meanwhile(start_anvil, start_listener, receiver):
    # Given a listener reaching its node through a loopback proxy (WebSocket and HTTP)
    node, token = setup_token(start_anvil, receiver)
    proxy = TcpProxy(node.port)
    try:
        listener = start_listener({"ETHEREUM_WS": proxy.ws_url, "ETHEREUM_HTTP": proxy.http_url})
        listener.wait_started(1)
        sent = emit(token, 5, 10, 1)
        wait_until(lambda: len(receiver.on("/a")) >= 50, 30, 0.1, "50 webhooks")

        # When every connection is cut for 3 s while 100 more events are mined
        proxy.sever()
        sent |= emit(token, 10, 10, 1000)
        time.sleep(3)
        assert len(receiver.on("/a")) == 50
        proxy.restore()
        sent |= emit(token, 5, 10, 5000)

        # Then the listener reconnects and catches up with no gap and no duplicate
        assert_exactly(receiver, sent)
        assert "listen.ws.disconnected chain=ethereum" in listener.log()
        assert listener.terminate() == 0
    finally:
        proxy.close()


def test_faulty_rpc_provider_logs_each_problem_keeps_running_and_never_skips_a_block(
    start_anvil, start_listener, receiver
):
    # Given an HTTP-only listener behind a provider that refuses ranges over 5 blocks
    node, token = setup_token(start_anvil, receiver)
    fake = FakeRpc(node.http_url, max_range=5, timeout_s=2.5)
    try:
        listener = start_listener(
            {"ETHEREUM_HTTP": fake.url},
            launcher=python_launcher(**{
                "ethhook.listen.rpc.RPC_TIMEOUT_S": 1.0,
                "ethhook.listen.follower.BACKOFF_CAP_S": 1.0,
            }),
        )
        listener.wait_started(1)

        # When 20 blocks of 10 events are mined at once
        sent = emit(token, 20, 10, 1)
        # Then the listener shrinks its ranges until the provider takes them, and gets them all
        assert_exactly(receiver, sent, settle=0.5)
        assert "query exceeds max block range 5" in listener.log()

        # When the provider then answers once each with garbage, an error, a timeout, a malformed
        # log, garbage to eth_blockNumber and HTTP 500, while 20 more blocks are mined
        for method, fault in [("eth_getLogs", "garbage"), ("eth_getLogs", "error"),
                              ("eth_getLogs", "timeout"), ("eth_getLogs", "bad_log"),
                              ("eth_blockNumber", "garbage"), ("eth_getBlockByNumber", "http_500")]:
            fake.inject(method, fault)
        sent |= emit(token, 20, 10, 500)

        # Then all of them arrive exactly once, every fault having been met
        assert_exactly(receiver, sent, settle=0.5)
        assert fake.pending_faults() == 0

        # When the provider fails every range holding one block, for 4 seconds
        head = node.block_number()
        held = head + 3
        fake.hold_block(held)
        sent |= emit(token, 6, 10, 1000)
        # Then the cursor reaches the block before it and stays there, the listener running
        wait_for_cursor(1, held - 1, timeout=20)
        wait_quiet(lambda: cursor_of(1) == held - 1, 4)
        assert listener.proc.poll() is None
        fake.release()
        assert_exactly(receiver, sent, settle=1.0)

        # And each problem got one clear line in the log, with no traceback
        log = listener.log()
        assert "Traceback" not in log
        problems = [line for line in log.splitlines() if "listen.rpc." in line]
        assert sum("answer is not JSON" in line for line in problems) == 2
        assert sum("header not found" in line for line in problems) == 1
        assert sum("no answer within 1s" in line for line in problems) == 1
        assert sum("log blockHash is not" in line for line in problems) == 1
        assert sum("HTTP 500" in line for line in problems) == 1
        held_lines = [line for line in problems if "backend unavailable" in line]
        assert held_lines and all(
            "listen.rpc." in line and "chain=ethereum" in line for line in held_lines
        )
        assert listener.terminate() == 0
    finally:
        fake.close()


def test_broker_down_stores_the_events_and_moves_on_for_beat_to_publish(
    start_anvil, start_listener
):
    # Given a listener whose broker is not running, and a token everyone watches
    from datetime import timedelta

    from sqlalchemy import select

    from ethhook.config import get_settings
    from ethhook.db import session_scope
    from ethhook.db.models import Event, utcnow
    from ethhook.maintenance.jobs import dispatch_unmatched
    from tests.support.waiting import free_port

    node = start_anvil(chain_id=1)
    token = Token(node)
    add_endpoint("http://127.0.0.1:9/unused", contracts=[token.address])
    listener = start_listener({"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url},
                              extra_env={"ETHHOOK_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    listener.wait_started(1)
    start = cursor_of(1)

    # When a block with 10 events is mined while the broker is down
    token.emit_transfers(10, 1)

    # Then the events are stored and the cursor moves past them; the failed publish is logged
    wait_for_cursor(1, start + 1, timeout=30)
    wait_until(lambda: "dispatch.enqueue.failed task=ethhook.match.match_events" in listener.log(),
               30, 0.2, "the failed publish in the log")
    with session_scope() as session:
        stored = session.scalars(select(Event.id)).all()
        matched = set(session.scalars(select(Event.id).where(Event.matched_at.is_not(None))))
    assert len(stored) == 10
    # And once their lease is over, the beat job hands every one of them to the matcher (the
    # session's worker, when an earlier test started it, may have done so already)
    later = utcnow() + timedelta(seconds=get_settings().dispatch_lease_s + 1)
    with session_scope() as session:
        groups = dispatch_unmatched(session, later, 1000)
    assert sorted(matched | {i for g in groups for i in g.event_ids}) == sorted(stored)
    assert listener.terminate() == 0


def test_a_second_listener_on_the_same_chain_waits_until_the_first_is_gone(
    start_anvil, start_listener, receiver
):
    # Given a listener following a chain, and a second one started by mistake
    node, token = setup_token(start_anvil, receiver)
    chains = {"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url}
    first = start_listener(chains)
    first.wait_started(1)
    second = start_listener(chains)
    wait_until(lambda: "listen.chain.locked chain=ethereum" in second.log(), 20, 0.1,
               "the second listener to find the chain taken")
    sent = emit(token, 5, 10, 1)
    wait_until(lambda: len(receiver.on("/a")) >= 50, 30, 0.1, "50 webhooks")

    # When the first one stops, the second takes over from its cursor
    assert first.terminate() == 0
    sent |= emit(token, 5, 10, 1000)

    # Then every event arrives once, and the second read only what the first had not
    assert_exactly(receiver, sent)
    assert second.log().count("listen.chain.locked chain=ethereum") == 1  # said once
    assert "listen.chain.taken_over chain=ethereum" in second.log()
    assert second.terminate() == 0

"""The listener's node failing under a steady stream of events: its WebSocket dropped for 10 s, the
node silent for 30 s (connections open, not a byte answered), and the listener killed with SIGKILL
during a reorg. Every event of the final chain arrives, each webhook-id once; the listener rides
out the first two without a restart of its own."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.support.chain import replace_last_blocks
from tests.support.faults_pipeline import PATH
from tests.support.faults_rig import Rig
from tests.support.faults_stream import arrived, settle
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

Key = tuple[str, int]  # (transaction hash, log index)


@pytest.fixture()
def rig(proxied_rig: Rig) -> Iterator[Rig]:
    """The module's proxied rig, its proxies passing everything again whatever the test did."""
    yield proxied_rig
    for proxy in (proxied_rig.ws_proxy, proxied_rig.http_proxy):
        assert proxy is not None
        proxy.restore()
        proxy.release()


def cursor(rig: Rig) -> int | None:
    """The listener's saved cursor on the chain (the highest block it stored)."""
    engine = create_engine(rig.postgres.url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT block_number FROM chain_cursors WHERE chain_id = 1")
            ).scalar()
    finally:
        engine.dispose()


class ListenerWatch:
    """What the listener logged from now on, and whether it is still the same process."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.proc = rig.pipeline.procs["listener"]
        self.offset = len(rig.pipeline.log("listener"))

    def log(self) -> str:
        return self.rig.pipeline.log("listener")[self.offset :]

    def assert_carried_on(self) -> None:
        """No restart: the same process, alive, and no chain task crashed inside it."""
        assert self.rig.pipeline.procs["listener"] is self.proc
        assert self.proc.poll() is None
        assert "listen.chain.crashed" not in self.log()
        assert "listen.started" not in self.log()


def test_a_websocket_drop_of_10_seconds_loses_nothing(rig):
    # Given the listener following a stream of events, its newHeads subscription live
    watch = ListenerWatch(rig)
    stream = rig.stream()
    try:
        time.sleep(3)

        # When its WebSocket is cut (every connection dropped, new ones refused) for 10 s
        rig.ws_proxy.sever()
        time.sleep(1)
        cursor_cut = cursor(rig)
        time.sleep(9)
        cursor_restored = cursor(rig)
        rig.ws_proxy.restore()
        # ... and it subscribes again by itself while the stream goes on
        wait_until(
            lambda: "listen.ws.subscribed chain=ethereum" in watch.log(), 30, 0.2, "a resubscribe"
        )
        time.sleep(2)
    finally:
        expected = stream.stop()

    # Then every event arrives, each webhook-id once
    outcome = settle(rig.receiver, expected, 60, "listener WebSocket dropped 10 s")
    assert outcome.lost == 0 and outcome.repeated_ids == 0
    # ... it kept reading over HTTP while the WebSocket was down, and never restarted
    assert cursor_cut is not None and cursor_restored is not None and cursor_restored > cursor_cut
    assert "listen.ws.disconnected chain=ethereum" in watch.log()
    watch.assert_carried_on()


def test_a_node_silent_for_30_seconds_loses_nothing(rig):
    # Given the listener following a stream of events
    watch = ListenerWatch(rig)
    stream = rig.stream()
    try:
        time.sleep(3)

        # When its node stops answering for 30 s (no heads, no replies, connections kept open)
        # while transactions are still mined
        rig.ws_proxy.hold()
        rig.http_proxy.hold()
        time.sleep(3)  # a pass whose answers were already on their way finishes
        cursor_stalled = cursor(rig)
        time.sleep(27)
        cursor_at_release = cursor(rig)
        head_at_release = rig.node.block_number()
        rig.ws_proxy.release()
        rig.http_proxy.release()
    finally:
        expected = stream.stop()

    # Then everything mined meanwhile arrives, each webhook-id once (settled_s: the catch-up)
    outcome = settle(rig.receiver, expected, 50, "node stalled 30 s (no heads, no answers)")
    assert outcome.lost == 0 and outcome.repeated_ids == 0
    # ... the stall was real: nothing was stored during it while the chain grew
    assert cursor_stalled is not None and cursor_at_release == cursor_stalled
    assert head_at_release > cursor_stalled + 20
    assert "no answer within" in watch.log()
    # ... and the listener rode it out without a restart
    watch.assert_carried_on()


def canonical(rig: Rig, from_block: int) -> set[Key]:
    """(transaction hash, log index) of every token event from `from_block`, per anvil now."""
    logs = rig.node.rpc(
        "eth_getLogs",
        {"fromBlock": hex(from_block), "toBlock": "latest", "address": rig.token.address},
    )
    return {(log["transactionHash"].lower(), int(log["logIndex"], 16)) for log in logs}


def kill_when_logged(rig: Rig, line: str, offset: int, within_s: float) -> bool:
    """SIGKILL the listener as soon as its log shows `line` past `offset`, or after `within_s`;
    True when the line had come."""
    deadline = time.monotonic() + within_s
    seen = False
    with open(rig.pipeline.log_path("listener"), errors="replace") as log:
        log.seek(offset)
        written = ""
        while not seen and time.monotonic() < deadline:
            written += log.read()
            seen = line in written
            if not seen:
                time.sleep(0.002)
    rig.pipeline.kill("listener", signal.SIGKILL)
    return seen


def test_the_listener_killed_during_a_reorg_loses_nothing_and_repeats_nothing(rig):
    # Given 6 blocks of 10 Transfers, each delivered instantly (no Stream: a transaction the
    # reorg orphans has no receipt to confirm afterwards)
    first = rig.node.block_number() + 1
    for k in range(6):
        rig.token.emit_transfers(10, 7_000_000 + 1000 * k)
    before = canonical(rig, first)
    assert len(before) == 60
    wait_until(lambda: before <= arrived(rig.receiver), 30, 0.2, "the 60 events delivered")
    starts = rig.pipeline.log("listener").count("listen.started")

    # When the last 3 blocks are replaced by 3 blocks holding two other transactions (3 events
    # each), the listener is killed with SIGKILL as soon as it logs the reorg (at most 0.2 s
    # later: in the middle of marking the orphaned events removed, or of reading the new
    # blocks), and started again
    offset = rig.pipeline.log_path("listener").stat().st_size
    replace_last_blocks(rig.node, rig.token, depth=3, txs=2, base=8_000_000)
    seen = kill_when_logged(rig, "listen.reorg.detected", offset, within_s=0.2)
    print(f"listener killed {'as it logged' if seen else 'before it logged'} the reorg")
    rig.pipeline.start("listener")
    wait_until(
        lambda: rig.pipeline.log("listener").count("listen.started") > starts,
        30,
        0.2,
        "the listener to start again",
    )
    # ... and the chain goes on
    for k in range(2):
        rig.token.emit_transfers(10, 9_000_000 + 1000 * k)

    # Then every event of the final chain arrives (as anvil has it now), each webhook-id once
    after = canonical(rig, first)
    orphaned = before - after
    assert len(orphaned) == 30 and len(after - before) == 6 + 20
    outcome = settle(rig.receiver, after, 60, "listener SIGKILL during a reorg of depth 3")
    assert outcome.lost == 0 and outcome.repeated_ids == 0

    # ... and each orphaned event, delivered before the reorg, was withdrawn by `event.removed`
    def removed() -> set[Key]:
        return {
            (r.json["data"]["transaction_hash"].lower(), int(r.json["data"]["log_index"]))
            for r in rig.receiver.on(PATH)
            if r.status == 200 and r.json["type"] == "event.removed"
        }

    wait_until(lambda: orphaned <= removed(), 30, 0.2, "event.removed for the 30 orphaned")
    assert removed() & after == set()
    # ... the withdrawals as well as the deliveries, each webhook-id once
    ours = [
        r.webhook_id
        for r in rig.receiver.on(PATH)
        if r.status == 200
        and (r.json["data"]["transaction_hash"].lower(), int(r.json["data"]["log_index"]))
        in before | after
    ]
    assert [i for i, n in Counter(ours).items() if n > 1] == []

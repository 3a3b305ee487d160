"""`ethhook replay` as a background job: re-reads a block range from a real chain in chunks on the
maintenance queue, re-delivers it with the same webhook-ids, survives a SIGKILLed worker, cancels."""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from typing import Any

import psutil
import pytest

from ethhook.db import session_scope
from ethhook.db.models import ReplayJob
from tests.support.chain import Token, build_chain
from tests.support.cli import ethhook
from tests.support.db import job_row
from tests.support.endpoints import add_endpoint
from tests.support.env import TMP
from tests.support.factories import TRANSFER
from tests.support.listener import cursor_of, wait_for_cursor
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]

MB = 1024 * 1024
# Mining 10,000 blocks in about a second: anvil 1.7's per-block cost grows with the chain under
# Prague (EIP-2935's history contract) and with the state history it keeps (foundry#15715).
FAST_MINING = ["--hardfork", "cancun", "--prune-history"]
COMMITTED = re.compile(r"replay\.chunk\.committed job=(\d+) blocks=(\d+)-(\d+)")


def committed_chunks(log: str) -> list[tuple[int, int]]:
    return [(int(m[2]), int(m[3])) for m in COMMITTED.finditer(log)]


def test_replay_redelivers_a_block_range_to_one_endpoint_with_the_same_webhook_ids(
    receiver, start_anvil, start_listener, start_replay_worker
):
    node = start_anvil(chain_id=1)
    token = Token(node)
    endpoint_one, _ = add_endpoint(
        receiver.url("/one"), contracts=[token.address], events=[TRANSFER]
    )
    add_endpoint(receiver.url("/other"), chains=["1"])
    chain = {"ETHEREUM_HTTP": node.http_url}
    start_replay_worker(chain)
    listener = start_listener(chain)
    listener.wait_started()
    for k in range(3):
        token.emit_transfers(10, 1000 + k * 10)
    wait_until(
        lambda: len(receiver.on("/one")) >= 30 and len(receiver.on("/other")) >= 30,
        60,
        0.2,
        "the first deliveries",
    )
    listener.stop()
    time.sleep(1)
    first = {r.json["data"]["event_id"]: r for r in receiver.on("/one")}
    blocks = sorted({r.json["data"]["block_number"] for r in first.values()})
    assert len(blocks) == 3
    middle = blocks[1]
    wanted = {r.webhook_id for r in first.values() if r.json["data"]["block_number"] == middle}
    assert len(wanted) == 10
    before_one, before_other = len(receiver.on("/one")), len(receiver.on("/other"))

    args = ("--chain", "ethereum", "--from-block", str(middle), "--to-block", str(middle))
    result = ethhook("replay", *args, "--endpoint", str(endpoint_one), "--json", env=chain)
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert (job["state"], job["blocks_done"], job["blocks_total"]) == ("done", 1, 1)
    assert (job["events"], job["deliveries"], job["endpoint_id"]) == (10, 10, endpoint_one)

    wait_until(
        lambda: len(receiver.on("/one")) >= before_one + 10, 30, 0.2, "the replayed deliveries"
    )
    time.sleep(1.5)
    replayed = receiver.on("/one")[before_one:]
    assert {r.webhook_id for r in replayed} == wanted and len(replayed) == 10
    assert all(r.json["data"]["decoded"]["event"] == "Transfer" for r in replayed)
    assert len(receiver.on("/other")) == before_other

    # Not a terminal and no --json: plain lines until the job ends.
    plain = ethhook("replay", *args, "--endpoint", str(endpoint_one), env=chain)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip().splitlines()[-1] == (
        f"replay {job['id'] + 1} done: 1/1 blocks (100%), 10 events, 10 deliveries"
    )
    past = ethhook("replay", "--chain", "1", "--from-block", "1", "--to-block", "99999", env=chain)
    assert past.returncode == 2 and "is past the chain's head" in past.stderr


def start_job(
    first_block: int, last_block: int, env: dict[str, str], json_output: bool = True
) -> int:
    """`ethhook replay --detach` on chain 1; the job's id (from its JSON or its one line)."""
    result = ethhook(
        "replay",
        *("--chain", "1", "--from-block", str(first_block), "--to-block", str(last_block)),
        "--detach",
        *(["--json"] if json_output else []),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["id"] if json_output else result.stdout.strip())


def assert_delivered_once(receiver: Any, paths: tuple[str, ...], events: int) -> None:
    """Every path received `events` webhook-ids, each once, each signed by its endpoint."""
    for path in paths:
        wait_until(lambda p=path: len(receiver.on(p)) >= events, 60, 0.2, f"{path} deliveries")
    time.sleep(2)
    for path in paths:
        seen = collections.Counter(r.webhook_id for r in receiver.on(path))
        assert len(seen) == events and set(seen.values()) == {1}, path
        assert all(r.verified for r in receiver.on(path)), path


class RssSampler:
    """A process's RSS every 50 ms, in a thread; the first sample is its idle baseline."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.samples: list[int] = [self.process.memory_info().rss]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.samples.append(self.process.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    def stop(self) -> tuple[int, int]:
        """(the idle RSS before the replay ran here, the peak RSS while it did)."""
        self._stop.set()
        self._thread.join(5)
        return self.samples[0], max(self.samples)


def test_a_replay_of_10000_blocks_runs_in_chunks_in_flat_memory_and_survives_a_sigkill(
    receiver, start_anvil, start_replay_worker
):
    node = start_anvil(chain_id=1, extra=FAST_MINING)
    token = Token(node)
    first_block = node.block_number() + 1
    events = build_chain(node, token, transactions=20, per_tx=15, gap=499)
    last_block = first_block + 9_999
    if node.block_number() < last_block:
        node.mine(last_block - node.block_number())
    for path in ("/a", "/b"):
        _, receiver.secrets[path] = add_endpoint(
            receiver.url(path), contracts=[token.address], events=[TRANSFER]
        )
    env = {"ETHEREUM_HTTP": node.http_url, "ETHHOOK_REPLAY_CHUNK_BLOCKS": "100"}
    victim = start_replay_worker(env)
    time.sleep(2)  # warm: beat's scans have connected it to PostgreSQL and Redis
    sampler = RssSampler(victim.proc.pid)
    started = time.monotonic()
    job_id = start_job(first_block, last_block, env)

    wait_until(lambda: job_row(job_id).blocks_done >= 3_000, 60, 0.02, "3,000 blocks replayed")
    victim.proc.kill()  # SIGKILL, mid-job: no chance to finish a chunk or release the lease
    victim.proc.wait(10)
    first_rss = sampler.stop()
    at_kill = job_row(job_id)
    assert at_kill.state == "running" and 3_000 <= at_kill.blocks_done < 10_000

    survivor = start_replay_worker(env)
    sampler = RssSampler(survivor.proc.pid)
    wait_until(lambda: job_row(job_id).state == "done", 90, 0.2, "the job to finish")
    second_rss = sampler.stop()
    elapsed = time.monotonic() - started
    job = job_row(job_id)
    assert (job.blocks_done, job.next_block, job.events) == (10_000, last_block + 1, events)
    assert job.deliveries == 2 * events

    # Resumed at its last committed chunk, and no chunk committed twice.
    resumed = committed_chunks(survivor.log())
    assert resumed[0][0] == first_block + at_kill.blocks_done
    assert committed_chunks(victim.log())[-1][1] < resumed[0][0]
    chunks = job.chunks_done
    assert chunks >= 100 and len(resumed) < chunks

    assert_delivered_once(receiver, ("/a", "/b"), events)

    figures = {
        "chunks": chunks,
        "chunks_after_kill": len(resumed),
        "blocks_done_at_kill": at_kill.blocks_done,
        "seconds": round(elapsed, 1),
        "killed_worker_rss_mb": [round(v / MB, 1) for v in first_rss],
        "resumed_worker_rss_mb": [round(v / MB, 1) for v in second_rss],
    }
    print(f"replay-10000: {json.dumps(figures)}")
    (TMP.parent / "ethhook-replay-10000.json").write_text(json.dumps(figures))
    for base, peak in (first_rss, second_rss):
        assert peak - base < 30 * MB, figures


def test_a_cancelled_replay_stops_and_reports_cancelled(receiver, start_anvil, start_replay_worker):
    node = start_anvil(chain_id=1)
    token = Token(node)
    first_block = node.block_number() + 1
    build_chain(node, token, transactions=10, per_tx=5, gap=299)
    last_block = node.block_number()
    add_endpoint(receiver.url("/c"), contracts=[token.address], events=[TRANSFER])
    env = {"ETHEREUM_HTTP": node.http_url, "ETHHOOK_REPLAY_CHUNK_BLOCKS": "20"}
    start_replay_worker(env)
    job_id = start_job(first_block, last_block, env, json_output=False)
    wait_until(lambda: job_row(job_id).blocks_done > 0, 30, 0.05, "the first chunk")

    cancel = ethhook("replay", "cancel", str(job_id))
    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stdout.startswith(f"replay {job_id} cancelled: ")
    at_cancel = job_row(job_id).blocks_done
    time.sleep(3)
    status = ethhook("replay", "status", str(job_id), "--json")
    data = json.loads(status.stdout)
    assert data["state"] == "cancelled" and data["blocks_done"] == at_cancel
    assert 0 < at_cancel < data["blocks_total"] == last_block - first_block + 1
    again = ethhook("replay", "cancel", str(job_id), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["state"] == "cancelled"


def test_replay_refuses_bad_ranges_and_jobs_with_one_line():
    for args, message in (
        (("--chain", "1", "--from-block", "5", "--to-block", "2"), "is before --from-block"),
        (("--chain", "nowhere", "--from-block", "1", "--to-block", "2"), "unknown chain"),
        (("--chain", "1", "--from-block", "1", "--to-block", "2"), "has no node URL"),
        (("--chain", "1", "--from-block", "1"), "replay needs --chain, --from-block and"),
        (("status", "424242"), "no replay job with id 424242"),
        (("cancel", "424242"), "no replay job with id 424242"),
    ):
        result = ethhook("replay", *args)
        assert result.returncode in (1, 2), result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with session_scope() as session:
        assert session.query(ReplayJob).count() == 0


def test_a_tenants_replay_behind_at_or_ahead_of_the_listener_costs_no_other_endpoint_an_event(
    receiver, start_anvil, start_listener, start_replay_worker
):
    """Tenants A and B watch one contract. A replays, over the API, blocks the listener stored
    (behind its cursor), blocks on both sides of its cursor (at it) and blocks it has not read
    (ahead of it). B (ordered) receives every event once, in the chain's order; A gets its
    replays and nothing twice else."""
    from ethhook.service import apps
    from ethhook.service.scope import OPERATOR
    from tests.support.api import ApiServer

    node = start_anvil(chain_id=1)
    token = Token(node)
    endpoints, keys = {}, {}
    for name in ("A", "B"):
        with session_scope() as session:
            created = apps.create_application(session, f"tenant {name}", scope=OPERATOR)
        path = "/" + name.lower()
        endpoints[name], receiver.secrets[path] = add_endpoint(
            receiver.url(path),
            contracts=[token.address],
            events=[TRANSFER],
            application_id=created.application.id,
            ordered="pause" if name == "B" else None,  # B's webhooks must follow the chain
        )
        keys[name] = created.api_key
    chain = {"ETHEREUM_HTTP": node.http_url}
    start_replay_worker(chain)
    api = ApiServer({**chain, "ETHHOOK_API_RATE_LIMIT": "0"})
    try:

        def replay(first: int, last: int) -> None:
            body = {
                "chain": 1,
                "from_block": first,
                "to_block": last,
                "endpoint_id": endpoints["A"],
            }
            started = api.call("POST", "/v1/replays", keys["A"], json=body)
            assert started.status_code == 202, started.text
            job = f"/v1/replays/{started.json()['id']}"
            wait_until(
                lambda: api.call("GET", job, keys["A"]).json()["state"] == "done",
                60,
                0.2,
                f"replay of {first}..{last}",
            )

        def emit(transactions: int, base: int) -> list[int]:
            """Blocks of `transactions` transactions of 2 Transfers each."""
            blocks = []
            for k in range(transactions):
                token.emit_transfers(2, base + 2 * k)
                blocks.append(node.block_number())
            return blocks

        listener = start_listener(chain)
        listener.wait_started(1)
        early = emit(3, 100)
        wait_for_cursor(1, early[-1])
        # Sent and done with: a delivery still leased to a deliver task is not made due again.
        wait_until(settled, 60, 0.2, "the listener's deliveries")
        replay(early[0], early[1])  # behind the cursor
        listener.stop()
        cursor = cursor_of(1)
        assert cursor == early[-1]
        late = emit(4, 200)  # the listener has read none of these
        replay(early[2], late[0])  # at the cursor: one stored block, one not
        replay(late[1], late[3])  # ahead of the cursor
        start_listener(chain).wait_started(1)
        wait_for_cursor(1, late[-1])

        events = 2 * (len(early) + len(late))
        wait_until(lambda: len(receiver.on("/b")) >= events, 60, 0.2, "B's webhooks")
        wait_until(settled, 60, 0.2, "every delivery to be sent")
        to_b = collections.Counter(r.json["data"]["event_id"] for r in receiver.on("/b"))
        assert len(to_b) == events and set(to_b.values()) == {1}
        # In the chain's order, numbered 1..N, whatever A's replays stored ahead of the listener.
        got_b = [r.json for r in receiver.on("/b")]
        assert [g["sequence"] for g in got_b] == list(range(1, events + 1))
        places = [(g["data"]["block_number"], g["data"]["log_index"]) for g in got_b]
        assert places == sorted(places)
        to_a = collections.Counter(
            (r.json["data"]["block_number"], r.webhook_id) for r in receiver.on("/a")
        )
        replayed_twice = set(early)  # the listener's delivery, then the replay's
        for (block, _), count in to_a.items():
            assert count == (2 if block in replayed_twice else 1), (block, count)
        assert len(to_a) == events
        assert all(r.verified for r in receiver.on("/a") + receiver.on("/b"))
    finally:
        api.stop()


def settled() -> bool:
    """No delivery left to send and no event left to match."""
    from sqlalchemy import func, select

    from ethhook.db.models import Delivery, Event

    with session_scope() as session:
        open_ = session.scalar(
            select(func.count()).where(Delivery.status.in_(("pending", "waiting")))
        )
        unmatched = session.scalar(select(func.count()).where(Event.matched_at.is_(None)))
    return open_ == 0 and unmatched == 0

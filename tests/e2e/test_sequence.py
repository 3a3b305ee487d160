"""Acceptance 2 of issue 23 on a real chain: an endpoint's webhooks carry `sequence` 1..N with no
gap and `origin` "live"; a retried delivery (a failing receiver, then `ethhook delivery retry`)
keeps its number; a replay carries the original numbers and `origin` "replay", and an endpoint
that never had the replayed events gets new ones."""

from __future__ import annotations

import collections
import json

import pytest

from tests.support.chain import Token
from tests.support.cli import ethhook
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]


def distinct(requests) -> dict[str, dict]:  # noqa: ANN001
    """The last body received for each webhook-id."""
    return {r.webhook_id: r.json for r in requests}


def numbers(requests) -> list[int]:  # noqa: ANN001
    return sorted(body["sequence"] for body in distinct(requests).values())


def test_webhooks_carry_a_gapless_sequence_kept_by_retries_and_replays(
    receiver, start_anvil, start_listener, start_replay_worker
):
    node = start_anvil(chain_id=1)
    token = Token(node)
    endpoint_id, secret = add_endpoint(
        receiver.url("/seq"), contracts=[token.address], events=[TRANSFER], retry_schedule="0,1"
    )
    receiver.secrets["/seq"] = secret
    # The 4th request fails once: its delivery is retried.
    receiver.responders["/seq"] = lambda i: (500, {}, b"down") if i == 3 else (200, {}, b"ok")
    chain = {"ETHEREUM_HTTP": node.http_url, "ETHEREUM_WS": node.ws_url}
    start_replay_worker(chain)
    listener = start_listener(chain)
    listener.wait_started()
    for k in range(3):
        token.emit_transfers(10, 1000 + k * 10)
    wait_until(lambda: len(distinct(receiver.on("/seq"))) >= 30, 60, 0.2, "30 webhooks")
    wait_until(lambda: len(receiver.on("/seq")) >= 31, 30, 0.2, "the failed one's retry")

    # A stream: 1..30, no gap, every one live, every one signed.
    requests = receiver.on("/seq")
    assert numbers(requests) == list(range(1, 31))
    assert all(r.json["origin"] == "live" for r in requests)
    assert all(r.verified for r in requests)
    # Every attempt of one delivery carries its number: the failed request and its retry too.
    by_id = collections.defaultdict(set)
    for r in requests:
        by_id[r.webhook_id].add(r.json["sequence"])
    assert all(len(seqs) == 1 for seqs in by_id.values())
    failed = next(r for r in requests if r.status == 500)
    again = [r for r in requests if r.webhook_id == failed.webhook_id]
    assert len(again) == 2 and again[0].body == again[1].body

    # The CLI lists the numbers; `delivery retry` sends one again with its number.
    listed = ethhook("delivery", "list", "--endpoint", str(endpoint_id), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(row["sequence"] for row in rows) == list(range(1, 31))
    assert {row["origin"] for row in rows} == {"live"}
    table = ethhook("delivery", "list", "--endpoint", str(endpoint_id))
    assert "SEQ" in table.stdout.splitlines()[0] and "ORIGIN" in table.stdout.splitlines()[0]
    fifth = next(row for row in rows if row["sequence"] == 5)
    before = len(receiver.on("/seq"))
    retried = ethhook("delivery", "retry", str(fifth["id"]))
    assert retried.returncode == 0, retried.stderr
    wait_until(lambda: len(receiver.on("/seq")) > before, 30, 0.2, "the retried delivery")
    resent = receiver.on("/seq")[before]
    assert resent.webhook_id == fifth["webhook_id"]
    assert (resent.json["sequence"], resent.json["origin"]) == (5, "live")

    # A replay of the middle block: the same deliveries, their numbers, origin "replay"…
    middle = sorted({b["data"]["block_number"] for b in distinct(requests).values()})[1]
    original = {
        wid: body["sequence"]
        for wid, body in distinct(requests).items()
        if body["data"]["block_number"] == middle
    }
    late_id, _ = add_endpoint(receiver.url("/late"), contracts=[token.address], events=[TRANSFER])
    before = len(receiver.on("/seq"))
    block = ("--chain", "ethereum", "--from-block", str(middle), "--to-block", str(middle))
    for endpoint in (endpoint_id, late_id):
        replay = ethhook("replay", *block, "--endpoint", str(endpoint), "--json", env=chain)
        assert replay.returncode == 0, replay.stderr
    wait_until(lambda: len(receiver.on("/seq")) >= before + 10, 30, 0.2, "the replay on /seq")
    wait_until(lambda: len(receiver.on("/late")) >= 10, 30, 0.2, "the replay on /late")
    replayed = receiver.on("/seq")[before:]
    assert {r.webhook_id: r.json["sequence"] for r in replayed} == original
    assert {r.json["origin"] for r in replayed} == {"replay"}
    # …and an endpoint that never had these events numbers them as new ones.
    assert numbers(receiver.on("/late")) == list(range(1, 11))
    assert {r.json["origin"] for r in receiver.on("/late")} == {"replay"}

    # Live again: each endpoint goes on from its own counter.
    token.emit_transfers(1, 5000)
    wait_until(lambda: len(distinct(receiver.on("/late"))) >= 11, 30, 0.2, "a live event")
    wait_until(lambda: len(distinct(receiver.on("/seq"))) >= 31, 30, 0.2, "a live event")
    assert max(numbers(receiver.on("/seq"))) == 31
    assert numbers(receiver.on("/late")) == list(range(1, 12))
    assert receiver.on("/late")[-1].json["origin"] == "live"
    listener.stop()

"""Killed workers under a steady stream of events: nothing is lost; a repeated webhook-id only where
a deliver worker died between a POST and its record."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.support.faults_pipeline import PATH
from tests.support.faults_stream import settle

pytestmark = pytest.mark.slow

ORDERED_PATH = "/faults/ordered"


def slow_ok(_: int) -> tuple[int, dict[str, str], bytes]:
    time.sleep(0.3)  # POSTs are in flight when the worker dies
    return 200, {}, b"ok"


def test_a_deliver_worker_killed_twice_loses_no_event(rig):
    rig.receiver.responders[PATH] = slow_ok
    stream = rig.stream()
    for _ in range(2):
        time.sleep(3)
        rig.pipeline.kill("deliver", signal.SIGKILL)
        time.sleep(1)
        rig.pipeline.start("deliver")
    time.sleep(2)
    expected = stream.stop()

    # Lingering past the delivery lease (20 s here) counts the POSTs sent again.
    outcome = settle(rig.receiver, expected, 120, "deliver worker SIGKILL x2", linger_s=25)
    del rig.receiver.responders[PATH]

    # Repeats are allowed here, and only here: a POST answered after its worker died is sent
    # again, with the same webhook-id, when the lease expires.
    assert outcome.lost == 0 and outcome.unverified == 0


def test_a_match_worker_killed_loses_no_event_and_repeats_none(rig):
    # An --ordered endpoint beside the plain one: the batch the killed worker held is matched
    # again after its lease, later batches meanwhile; its webhooks still follow the chain.
    ordered = json.loads(
        rig.pipeline.ethhook(
            "endpoint", "add", "--url", rig.receiver.url(ORDERED_PATH),
            "--contract", rig.token.address, "--ordered", "--json",
        )
    )  # fmt: skip
    rig.receiver.secrets[ORDERED_PATH] = ordered["secret"]
    stream = rig.stream()
    time.sleep(3)
    rig.pipeline.kill("match", signal.SIGKILL)
    time.sleep(2)
    rig.pipeline.start("match")
    time.sleep(2)
    expected = stream.stop()

    outcome = settle(rig.receiver, expected, 120, "match worker SIGKILL")
    in_order = settle(rig.receiver, expected, 120, "match worker SIGKILL, ordered", ORDERED_PATH)

    assert outcome.lost == 0 and outcome.repeated_ids == 0
    assert in_order.lost == 0 and in_order.repeated_ids == 0
    got = [r.json for r in rig.receiver.on(ORDERED_PATH) if r.status == 200 and r.verified]
    assert [g["sequence"] for g in got] == list(range(1, len(got) + 1))
    places = [(g["data"]["block_number"], g["data"]["log_index"]) for g in got]
    assert places == sorted(places)

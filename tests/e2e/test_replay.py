"""`ethhook replay` re-reads a block range from a real chain and re-delivers it, same webhook-ids."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_until
from tests.e2e.conftest import Token
from tests.factories import TRANSFER
from tests.integration.helpers import add_endpoint, ethhook

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]


def test_replay_redelivers_a_block_range_to_one_endpoint_with_the_same_webhook_ids(
    receiver, start_anvil, start_listener
):
    node = start_anvil(chain_id=1)
    token = Token(node)
    endpoint_one, _ = add_endpoint(
        receiver.url("/one"), contracts=[token.address], events=[TRANSFER]
    )
    add_endpoint(receiver.url("/other"), chains=["1"])
    chain = {"ETHEREUM_HTTP": node.http_url}
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

    result = ethhook(
        "replay",
        "--chain",
        "ethereum",
        "--from-block",
        str(middle),
        "--to-block",
        str(middle),
        "--endpoint",
        str(endpoint_one),
        "--json",
        env=chain,
    )
    assert result.returncode == 0, result.stderr
    assert '"deliveries": 10' in result.stdout

    wait_until(
        lambda: len(receiver.on("/one")) >= before_one + 10, 30, 0.2, "the replayed deliveries"
    )
    time.sleep(1.5)
    replayed = receiver.on("/one")[before_one:]
    assert {r.webhook_id for r in replayed} == wanted and len(replayed) == 10
    assert all(r.json["data"]["decoded"]["event"] == "Transfer" for r in replayed)
    assert len(receiver.on("/other")) == before_other


def test_replay_refuses_bad_ranges_with_one_line():
    for args, message in (
        (("--chain", "1", "--from-block", "5", "--to-block", "2"), "is before --from-block"),
        (("--chain", "nowhere", "--from-block", "1", "--to-block", "2"), "unknown chain"),
        (("--chain", "1", "--from-block", "1", "--to-block", "2"), "has no node URL"),
    ):
        result = ethhook("replay", *args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1

"""Acceptance 3 of issue 23 on a real chain: `endpoint add --from-block N` receives the history
from N oldest first, marked `backfill` and numbered from 1, then live events (sent while the
backfill ran too) with none missing or repeated at the seam; `--live-only` endpoints get nothing
from replays, and a replay says so."""

from __future__ import annotations

import collections
import json
import threading

import pytest

from tests.support.chain import Token
from tests.support.cli import assert_refused, ethhook
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER
from tests.support.listener import wait_for_cursor
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]


def positions(requests) -> set[tuple[int, int]]:  # noqa: ANN001
    return {(r.json["data"]["block_number"], r.json["data"]["log_index"]) for r in requests}


def test_an_endpoint_from_a_block_gets_its_history_then_live_events_with_no_gap_or_repeat(
    receiver, start_anvil, start_listener, start_replay_worker
):
    node = start_anvil(chain_id=1)
    token = Token(node)
    # Another endpoint on the token: the listener stores its events, and it receives them all.
    add_endpoint(receiver.url("/all"), contracts=[token.address], events=[TRANSFER])
    # A --live-only endpoint on another token, made before the listener starts.
    other = Token(node)
    live_only = ethhook(
        "endpoint", "add", "--url", receiver.url("/live"), "--contract", other.address,
        "--live-only", "--json",
    )  # fmt: skip
    assert live_only.returncode == 0, live_only.stderr
    live_id = json.loads(live_only.stdout)["id"]
    assert json.loads(live_only.stdout)["live_only"] is True
    chain = {"ETHEREUM_HTTP": node.http_url, "ETHEREUM_WS": node.ws_url}
    start_replay_worker(chain)
    listener = start_listener(chain)
    listener.wait_started()
    first = node.block_number() + 1
    for k in range(3):
        token.emit_transfers(5, 1000 + k * 10)
    wait_for_cursor(1, node.block_number())
    wait_until(lambda: len(receiver.on("/all")) >= 15, 60, 0.2, "the history, live")

    # Live events keep coming while the endpoint is added and its backfill runs.
    def live_traffic() -> None:
        for k in range(6):
            token.emit_transfers(4, 2000 + k * 10)

    traffic = threading.Thread(target=live_traffic)
    added = ethhook(
        "endpoint", "add", "--url", receiver.url("/bf"), "--chain", "ethereum",
        "--contract", token.address, "--event", TRANSFER, "--from-block", str(first), "--json",
    )  # fmt: skip
    traffic.start()
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)
    assert (made["from_block"], made["backfilling"]) == (first, True)
    assert made["backfill_replay_id"] is not None
    receiver.secrets["/bf"] = made["secret"]
    traffic.join(60)
    wait_until(lambda: len(receiver.on("/all")) >= 15 + 24, 60, 0.2, "every event on /all")
    wait_until(lambda: len(receiver.on("/bf")) >= 15 + 24, 60, 0.2, "every event on /bf")
    wait_until(
        lambda: (
            json.loads(ethhook("endpoint", "show", str(made["id"]), "--json").stdout)["backfilling"]
            is False
        ),
        30,
        0.2,
        "the endpoint to be live",
    )

    # And after the switch, live.
    for k in range(2):
        token.emit_transfers(3, 4000 + k * 10)
    wait_until(lambda: len(receiver.on("/all")) >= 45, 60, 0.2, "every event on /all")
    wait_until(lambda: len(receiver.on("/bf")) >= 45, 60, 0.2, "every event on /bf")

    bf = receiver.on("/bf")
    # Exactly the chain's events, each once, signed.
    assert positions(bf) == positions(receiver.on("/all")) and len(bf) == 45
    assert set(collections.Counter(r.webhook_id for r in bf).values()) == {1}
    assert all(r.verified for r in bf)
    # Numbered 1..45: the history first (with what was sent while it was read) in chain order,
    # then the live events (numbered as the matcher's batches commit, which may run side by
    # side: not always in block order).
    by_number = sorted(bf, key=lambda r: r.json["sequence"])
    assert [r.json["sequence"] for r in by_number] == list(range(1, 46))
    order = [(r.json["data"]["block_number"], r.json["data"]["log_index"]) for r in by_number]
    origins = [r.json["origin"] for r in by_number]
    backfilled = origins.count("backfill")
    assert 15 <= backfilled <= 39
    assert origins == ["backfill"] * backfilled + ["live"] * (45 - backfilled)
    assert order[:backfilled] == sorted(order[:backfilled])
    assert max(order[:backfilled]) < min(order[backfilled:])
    # Coverage: scanned from its --from-block to the listener's cursor, all of it confirmed
    # (no confirmations asked).
    wait_for_cursor(1, node.block_number())
    coverage = json.loads(ethhook("endpoint", "coverage", str(made["id"]), "--json").stdout)
    (covered,) = coverage["chains"]
    assert (covered["chain"], covered["from_block"], covered["backfilling"]) == (
        "ethereum",
        first,
        False,
    )
    assert covered["scanned_to"] == covered["confirmed_to"] >= max(b for b, _ in order)
    shown = ethhook("endpoint", "coverage", str(made["id"])).stdout.splitlines()
    assert shown[1].split()[:4] == ["CHAIN", "FROM", "SCANNED", "TO"]
    assert shown[-1].split()[:2] == ["ethereum", str(first)]
    job = json.loads(ethhook("replay", "status", str(made["backfill_replay_id"]), "--json").stdout)
    assert (job["origin"], job["state"], job["from_block"]) == ("backfill", "done", first)

    # A --live-only endpoint gets live events; a replay naming it is refused, and one to every
    # endpoint sends it nothing, and says so.
    other.emit_transfers(2, 3000)
    block = node.block_number()
    wait_until(lambda: len(receiver.on("/live")) >= 2, 30, 0.2, "live events on /live")
    span = ("--chain", "ethereum", "--from-block", str(block), "--to-block", str(block))
    refused = assert_refused(ethhook("replay", *span, "--endpoint", str(live_id), env=chain))
    assert "--live-only" in refused
    everyone = ethhook("replay", *span, env=chain)
    assert everyone.returncode == 0, everyone.stderr
    assert "nothing to send" in everyone.stdout.strip().splitlines()[-1]
    assert len(receiver.on("/live")) == 2
    listener.stop()

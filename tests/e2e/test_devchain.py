"""The demo's chain confirms every transaction it sends, nudging anvil with evm_mine when one stays
pending (foundry-rs/foundry#10122), and counts emitted events from receipts, not from calls."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ethhook.demo import run
from ethhook.demo.devchain import (
    ANVIL_VERSION,
    NUDGE_AFTER_S,
    DevChain,
    confirm_receipts,
    events_in,
)
from ethhook.exceptions import EthHookError

pytestmark = pytest.mark.slow


@pytest.fixture()
def chain(tmp_path: Path) -> Iterator[DevChain]:
    node = DevChain(tmp_path, run.DEMO_CHAIN_ID)
    try:
        yield node
    finally:
        node.stop()


def head(chain: DevChain) -> int:
    return int(chain.rpc("eth_blockNumber"), 16)


def leave_pending(chain: DevChain) -> None:
    """From now on a sent transaction stays pending, as anvil's automine sometimes leaves one."""
    chain.rpc("evm_setAutomine", False)


def test_confirm_mines_a_pending_transaction_with_evm_mine_and_returns_its_receipt(
    chain: DevChain,
) -> None:
    # Given a token, and a transaction of 5 Transfers that anvil left pending
    token = chain.deploy_token()
    leave_pending(chain)
    before = head(chain)
    tx = chain.emit_transfers(token, 5, 1)
    time.sleep(0.3)
    assert chain.rpc("eth_getTransactionReceipt", tx) is None
    assert head(chain) == before

    # When the demo confirms it
    started = time.monotonic()
    receipt = chain.confirm(tx)
    took = time.monotonic() - started

    # Then one evm_mine, after a second's wait, mined it into the next block, receipt and all
    assert receipt["transactionHash"].lower() == tx.lower()
    assert receipt["status"] == "0x1"
    assert int(receipt["blockNumber"], 16) == before + 1
    assert head(chain) == before + 1
    assert len(receipt["logs"]) == 5
    assert NUDGE_AFTER_S <= took < NUDGE_AFTER_S + 2


def test_the_demo_counts_emitted_events_from_receipts_not_from_calls(
    chain: DevChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a token, anvil leaving every transaction pending, and 100,000 events a transaction:
    # more than a block's gas, so that transaction reverts and emits nothing
    token = chain.deploy_token()
    leave_pending(chain)
    before = head(chain)
    monkeypatch.setattr(run, "EVENTS_PER_TX", 100_000)

    # When the demo emits 100,050 events (2 transactions)
    emission = run.emit_events(chain, token, 100_050, threading.Event())

    # Then both were mined (one block each) and only the 50 events in their receipts count
    assert len(emission.sent_at) == 2
    assert head(chain) == before + 2
    receipts = chain.confirm_all(list(emission.sent_at))
    assert [r["status"] for r in receipts] == ["0x0", "0x1"]
    assert emission.events == events_in(receipts) == 50


def test_confirm_gives_up_after_its_timeout_with_a_one_line_error(chain: DevChain) -> None:
    # Given a transaction hash the node never saw
    unknown = "0x" + "ab" * 32
    before = head(chain)

    # When it is confirmed with a 1 s timeout, nudging every 0.3 s
    with pytest.raises(EthHookError) as caught:
        confirm_receipts(chain.rpc, [unknown], timeout_s=1.0, nudge_after_s=0.3)

    # Then the error is one line naming the transaction, after the nudges it made
    message = str(caught.value)
    assert "\n" not in message
    match = re.fullmatch(
        rf"1 of 1 transactions not mined in 1 s despite (\d+) evm_mine nudges "
        rf"\(first: {unknown}\); is the chain node stuck\?",
        message,
    )
    assert match is not None, message
    assert int(match.group(1)) == head(chain) - before >= 3


def test_processes_started_together_on_an_empty_cache_install_anvil_once_and_all_run_it(
    tmp_path: Path,
):
    # Given three processes that need anvil at once, with nothing in their cache yet
    script = (
        "import subprocess; from ethhook.demo.devchain import anvil_binary; "
        "print(subprocess.run([str(anvil_binary()), '--version'], capture_output=True, "
        "text=True, check=True).stdout.splitlines()[0])"
    )
    env = {**os.environ, "ETHHOOK_ANVIL_CACHE": str(tmp_path / "cache")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outcomes = [(p.wait(300), *(s.decode() for s in p.communicate())) for p in procs]

    # Then each ran the one binary installed (none ran it while npm was writing it)
    assert [(code, out.strip()) for code, out, _ in outcomes] == [
        (0, f"anvil Version: {ANVIL_VERSION}")
    ] * 3, outcomes
    assert len(list((tmp_path / "cache").glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))) == 1

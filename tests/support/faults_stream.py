"""A steady stream of events for fault tests and the soak, and the count of what arrived: every
event expected from the receipts, what was lost, which webhook-ids arrived more than once."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ethhook.demo.devchain import confirm_receipts
from tests.support.faults_pipeline import PATH
from tests.support.receiver import Receiver


@dataclass
class Stream:
    """Sends `emitTransfers` transactions at a steady rate until stopped; every one is confirmed
    and counted from its receipt."""

    node: Any  # tests.support.chain.Anvil
    token: Any  # tests.support.chain.Token
    events_per_tx: int = 10
    tx_per_s: float = 2.0
    sent: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Stream:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        base = 1_000_000 * (len(self.sent) + 1)
        interval = 1.0 / self.tx_per_s
        next_at = time.monotonic()
        while not self._stop.is_set():
            data = self.token.emit_tx_data(self.events_per_tx, base + len(self.sent) * 1000)
            tx = {"from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "to": self.token.address,
                  "data": data, "gas": hex(8_000_000)}  # fmt: skip
            self.sent.append(self.node.rpc("eth_sendTransaction", tx))
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def wait_and_stop(self, seconds: float) -> set[tuple[str, int]]:
        time.sleep(seconds)
        return self.stop()

    def stop(self) -> set[tuple[str, int]]:
        """Stop sending; (transaction hash, log index) of every event in the mined receipts."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        receipts = confirm_receipts(self.node.rpc, self.sent)
        return {
            (r["transactionHash"].lower(), int(log["logIndex"], 16))
            for r in receipts
            for log in r["logs"]
        }


@dataclass
class Outcome:
    expected: int
    received: int
    lost: int
    repeated_ids: int
    unverified: int

    def __str__(self) -> str:
        return (
            f"expected={self.expected} received={self.received} lost={self.lost} "
            f"repeated_ids={self.repeated_ids} unverified={self.unverified}"
        )


def complete(request: Any) -> bool:
    """The whole body arrived (a deliver worker killed mid-send leaves a truncated request,
    which no receiver would accept: it is neither a delivery nor a signature failure)."""
    return len(request.body) == int(request.headers.get("content-length", -1))


def arrived(receiver: Receiver, path: str = PATH) -> set[tuple[str, int]]:
    """(transaction hash, log index) of every event that arrived verified at `path`."""
    keys = set()
    for request in receiver.on(path):
        if request.verified and request.status == 200:
            data = request.json["data"]
            keys.add((data["transaction_hash"].lower(), int(data["log_index"])))
    return keys


def settle(
    receiver: Receiver,
    expected: Iterable[tuple[str, int]],
    timeout_s: float,
    fault: str,
    path: str = PATH,
    linger_s: float = 1.0,
) -> Outcome:
    """Wait until every expected event arrived (or the timeout), then count, over these events
    only: what was lost, and how many webhook-ids arrived more than once (`linger_s` after the
    last one arrived: a delivery whose worker died is sent again when its lease expires). The
    outcome is printed
    and, when ETHHOOK_FAULT_REPORT names a file, appended to it as one JSON line."""
    wanted = set(expected)
    started = time.monotonic()
    deadline = started + timeout_s
    while time.monotonic() < deadline and not wanted <= arrived(receiver, path):
        time.sleep(0.25)
    recovered_s = time.monotonic() - started
    time.sleep(linger_s)  # anything still in flight (or due again) lands in the counts
    ours = [
        r
        for r in receiver.on(path)
        if r.status == 200
        and r.verified
        and (r.json["data"]["transaction_hash"].lower(), int(r.json["data"]["log_index"])) in wanted
    ]
    per_id = Counter(r.webhook_id for r in ours)
    outcome = Outcome(
        expected=len(wanted),
        received=len(per_id),
        lost=len(wanted - arrived(receiver, path)),
        repeated_ids=sum(1 for n in per_id.values() if n > 1),
        unverified=sum(1 for r in receiver.on(path) if r.verified is False and complete(r)),
    )
    print(f"FAULT {fault}: {outcome} settled_s={recovered_s:.1f}")
    report = os.environ.get("ETHHOOK_FAULT_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(json.dumps({"fault": fault, **outcome.__dict__,
                                  "settled_s": round(recovered_s, 1)}) + "\n")  # fmt: skip
    return outcome


class _SendClock:
    """A node whose `eth_sendTransaction` calls note when each transaction was sent."""

    def __init__(self, node: Any, sent_at: dict[str, float]) -> None:
        self.node = node
        self.sent_at = sent_at

    def rpc(self, method: str, *params: Any) -> Any:
        at = time.time()
        result = self.node.rpc(method, *params)
        if method == "eth_sendTransaction":
            self.sent_at[result.lower()] = at
        return result


@dataclass
class TimedStream(Stream):
    """A Stream that also keeps when each transaction was sent (wall clock, like `Received.at`;
    anvil mines a transaction as it arrives), for latencies from sent to webhook received."""

    sent_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.node = _SendClock(self.node, self.sent_at)

    @property
    def alive(self) -> bool:
        """Still sending (a failed `eth_sendTransaction` ends the thread)."""
        return self._thread is not None and self._thread.is_alive()


class Arrivals:
    """When the first verified webhook of each event arrived, read incrementally from a receiver
    (each request parsed once: the soak's receiver holds hundreds of thousands)."""

    def __init__(self, receiver: Receiver, path: str = PATH) -> None:
        self.receiver = receiver
        self.path = path
        self.first: dict[tuple[str, int], float] = {}
        self._read = 0

    def update(self) -> dict[tuple[str, int], float]:
        """(transaction hash, log index) → arrival of its first verified webhook, so far."""
        for request in self.receiver.requests[self._read :]:
            if request.status is None:
                break  # still being answered: read again next time
            self._read += 1
            if request.path == self.path and request.verified and request.status == 200:
                data = request.json["data"]
                key = (data["transaction_hash"].lower(), int(data["log_index"]))
                self.first[key] = min(self.first.get(key, request.at), request.at)
        return self.first

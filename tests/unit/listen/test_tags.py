"""The follower learns its node's `safe` and `finalized` blocks: once per new head at most every
TAGS_POLL_S, saved only when they change, and a node without them is said once, in one line."""

from __future__ import annotations

import logging

import pytest

from ethhook.listen.store import ChainState
from ethhook.listen.tags import TAGS_POLL_S, TagState
from tests.support.fakechain import FakeChain, Recorder, make, run


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def following(chain: FakeChain) -> tuple[Recorder, object, Clock]:
    recorder = Recorder(ChainState(cursor=(0, chain.blocks[0]["hash"]), blocks={}))
    follower = make(chain, recorder)
    clock = Clock()
    follower.tags.clock = clock
    return recorder, follower, clock


def tag_calls(chain: FakeChain) -> list[str]:
    return [
        p[0]
        for m, p in chain.calls
        if m == "eth_getBlockByNumber" and p[0] in ("safe", "finalized")
    ]


def test_a_node_with_tags_has_them_saved_once_per_change_and_asked_at_most_every_interval():
    chain = FakeChain(100)
    chain.tag_depths = (32, 64)
    recorder, follower, clock = following(chain)
    run(follower.sync())
    assert recorder.tags == [TagState(True, safe=68, finalized=36)]
    assert tag_calls(chain) == ["safe", "finalized"]  # one batch
    # A new head within the interval: not asked now, but owed before the interval ends
    chain.extend(1)
    clock.now += 0.5
    run(follower.sync())
    assert len(tag_calls(chain)) == 2
    assert follower.tags.due_in() == pytest.approx(TAGS_POLL_S - 0.5)
    # Once it is due, the next pass asks and saves what changed
    clock.now += TAGS_POLL_S
    run(follower.sync())
    assert recorder.tags[-1] == TagState(True, safe=69, finalized=37)
    assert follower.tags.due_in() == float("inf")
    # The same head again: nothing asked; new tags equal to the saved ones: nothing saved
    clock.now += TAGS_POLL_S
    run(follower.sync())
    assert len(tag_calls(chain)) == 4 and len(recorder.tags) == 2


def test_a_node_without_tags_is_recorded_so_and_said_in_one_line(caplog):
    chain = FakeChain(10)
    recorder, follower, clock = following(chain)
    with caplog.at_level(logging.INFO, logger="ethhook.listen.tags"):
        for _ in range(3):
            run(follower.sync())
            chain.extend(1)
            clock.now += TAGS_POLL_S
    assert recorder.tags == [TagState(False)]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "listen.chain.no_finality_tags chain=ethereum: the node does not answer "
        'eth_getBlockByNumber("safe"/"finalized"); endpoints there can use only --finality '
        "latest (with --confirmations), and safe or finalized ones wait"
    ]
    assert caplog.records[0].levelno == logging.WARNING
    # When the node starts answering them, that is said too, and stored
    chain.tag_depths = (32, 64)
    with caplog.at_level(logging.INFO, logger="ethhook.listen.tags"):
        run(follower.sync())
    assert recorder.tags[-1].supported is True
    assert caplog.records[-1].getMessage().startswith("listen.chain.finality_tags chain=ethereum")


class Answers:
    """A transport answering each tag batch with the given results."""

    def __init__(self, safe: object, finalized: object) -> None:
        self.results = (safe, finalized)

    async def send(self, payload, label):  # noqa: ANN001, ANN201
        return [
            {"jsonrpc": "2.0", "id": call["id"], "result": result}
            for call, result in zip(payload, self.results, strict=True)
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("safe", "finalized"),
    [(None, None), ({"number": "0x1"}, None), ("0x10", "0x8"), ({"number": "0x1"}, [])],
)
def test_a_node_answering_no_block_or_not_a_block_lacks_the_tags(safe, finalized):
    from ethhook.listen.rpc import RpcClient
    from ethhook.listen.tags import UNSUPPORTED, ask_tags

    assert run(ask_tags(RpcClient(Answers(safe, finalized)))) == UNSUPPORTED

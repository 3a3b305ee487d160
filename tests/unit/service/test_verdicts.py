"""service.verdicts: each endpoint's `matched` and reason for one log, from the facts alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ethhook.config import get_settings
from ethhook.match.service import FilterRow
from ethhook.service.public import ExplainAttempt, ExplainDelivery
from ethhook.service.verdicts import ChainFacts, EndpointFacts, LogFacts, verdict
from ethhook.workqueue import Head
from tests.support.factories import address, transfer

TOKEN = address(9)
EVENT = transfer(contract=TOKEN, block=100, log_index=0, value=7)
BLOCK_TIME = datetime.fromtimestamp(EVENT.block_timestamp, UTC)
STORED = LogFacts(EVENT, stored=True, matched_at=BLOCK_TIME + timedelta(seconds=2))
CHAIN = ChainFacts(1, "ethereum", cursor=103, head=103)
ENDPOINT = EndpointFacts(
    id=5,
    active=True,
    disabled_reason=None,
    confirmations=0,
    created_at=BLOCK_TIME - timedelta(days=1),
    signatures=[],
    rows=[FilterRow(5, None, TOKEN, None, 0)],
)
chain_name = get_settings().chain_name


def delivery(status: str) -> ExplainDelivery:
    return ExplainDelivery(
        id=1, webhook_id="msg_1", kind="event.confirmed", status=status, sequence=None, attempts=[]
    )


def explain(item=STORED, endpoint=ENDPOINT, deliveries=(), chain=CHAIN):  # noqa: ANN001, ANN201
    found = verdict(item, endpoint, list(deliveries), chain, chain_name)
    return found.matched, found.reason


@pytest.mark.parametrize(
    ("item", "endpoint", "chain", "reason"),
    [
        (
            STORED,
            replace(ENDPOINT, active=False, disabled_reason="410 Gone"),
            CHAIN,
            "disabled: the endpoint is disabled (410 Gone); its deliveries are kept as backlog "
            "(within retention) and sent by `ethhook endpoint enable 5`",
        ),
        (
            STORED,
            replace(ENDPOINT, active=False),
            CHAIN,
            "disabled: the endpoint is disabled; its deliveries are kept as backlog (within "
            "retention) and sent by `ethhook endpoint enable 5`",
        ),
        (
            STORED,
            replace(ENDPOINT, active=False, discard=True, disabled_reason="by hand"),
            CHAIN,
            "disabled: the endpoint is disabled with --discard (by hand); events that match it "
            "are discarded until `ethhook endpoint enable 5`",
        ),
        (
            STORED,
            replace(ENDPOINT, created_at=BLOCK_TIME + timedelta(seconds=1)),
            CHAIN,
            "created after the block: the endpoint was created at "
            f"{(BLOCK_TIME + timedelta(seconds=1)):%Y-%m-%dT%H:%M:%SZ}, block 100 at "
            f"{BLOCK_TIME:%Y-%m-%dT%H:%M:%SZ} (`ethhook replay` sends it)",
        ),
        (
            replace(STORED, event=replace(EVENT, removed=True)),
            ENDPOINT,
            CHAIN,
            "removed: a reorg removed the log before it was sent",
        ),
        (
            replace(STORED, matched_at=None),
            ENDPOINT,
            CHAIN,
            "not matched yet: the event waits for the matcher",
        ),
        (
            STORED,
            ENDPOINT,
            CHAIN,
            f"no delivery: when the event was matched at {STORED.matched_at:%Y-%m-%dT%H:%M:%SZ} "
            "the endpoint was disabled or its filters did not accept it (`ethhook replay` sends it)",
        ),
        (
            LogFacts(EVENT, stored=False, matched_at=None),
            ENDPOINT,
            replace(CHAIN, cursor=98),
            "not stored: the listener has not read block 100 yet (it is at block 98)",
        ),
        (
            LogFacts(EVENT, stored=False, matched_at=None),
            ENDPOINT,
            replace(CHAIN, cursor=None, head=None),
            "not stored: the listener has not read ethereum yet",
        ),
        (
            LogFacts(EVENT, stored=False, matched_at=None),
            ENDPOINT,
            CHAIN,
            "not stored: no endpoint watched the log's contract when the listener read block 100 "
            "(`ethhook replay` sends it)",
        ),
    ],
)
def test_a_log_the_filters_accept_without_a_delivery_says_what_kept_it(
    item, endpoint, chain, reason
):
    assert explain(item, endpoint, chain=chain) == (False, reason)


def test_a_match_check_comes_before_the_endpoints_state():
    # A disabled endpoint created after the block, on another contract: the contract is named
    other = replace(
        ENDPOINT,
        active=False,
        created_at=BLOCK_TIME + timedelta(days=1),
        rows=[FilterRow(5, None, address(10), None, 0)],
    )
    matched, reason = explain(endpoint=other)
    assert matched is False and reason.startswith("contract: ")


@pytest.mark.parametrize(
    ("status", "endpoint", "head", "reason"),
    [
        ("succeeded", ENDPOINT, 103, None),
        (
            "failed",
            ENDPOINT,
            103,
            "failed: dead-lettered; `ethhook delivery retry 1` sends it again",
        ),
        ("pending", ENDPOINT, 103, None),
        (
            "waiting",
            replace(ENDPOINT, confirmations=12),
            103,
            "confirmations: 9 more blocks to go (the endpoint waits for 12: block 112; "
            "the chain is at block 103)",
        ),
        (
            "waiting",
            replace(ENDPOINT, confirmations=4),
            103,
            "confirmations: 1 more block to go (the endpoint waits for 4: block 104; "
            "the chain is at block 103)",
        ),
        (
            "pending",
            replace(ENDPOINT, active=False, disabled_reason="by hand"),
            103,
            "disabled: the endpoint is disabled (by hand); its deliveries are kept as backlog "
            "(within retention) and sent by `ethhook endpoint enable 5`",
        ),
        ("succeeded", replace(ENDPOINT, active=False), 103, None),
        (
            "discarded",
            replace(ENDPOINT, active=False, discard=True),
            103,
            "discarded: `endpoint disable --discard` dropped the delivery before it was sent "
            "(`ethhook delivery retry` sends it again)",
        ),
    ],
)
def test_a_matched_log_says_what_holds_its_delivery_back(status, endpoint, head, reason):
    chain = replace(CHAIN, head=head)
    assert explain(endpoint=endpoint, deliveries=[delivery(status)], chain=chain) == (True, reason)


NEXT_TRY = BLOCK_TIME + timedelta(minutes=10)
ORDERED = replace(ENDPOINT, ordered="pause")


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        (
            replace(ORDERED, head=Head(41, 17, "failed", 4, None)),
            "ordered: delivery 41 (sequence 17) is dead-lettered and the deliveries after it "
            "wait: retry it (`ethhook delivery retry 41`) or skip past it (`ethhook endpoint "
            "update 5 --ordered=skip-dead`)",
        ),
        (
            replace(ORDERED, head=Head(41, 17, "pending", 2, NEXT_TRY)),
            "ordered: waits for delivery 41 (sequence 17), sent first: the endpoint's webhooks "
            f"go one at a time; it failed 2 attempts, next at {NEXT_TRY:%Y-%m-%dT%H:%M:%SZ}",
        ),
        (
            replace(ORDERED, ordered="skip-dead", head=Head(41, 17, "pending", 0, BLOCK_TIME)),
            "ordered: waits for delivery 41 (sequence 17), sent first: the endpoint's webhooks "
            "go one at a time",
        ),
        (
            replace(ORDERED, head=Head(41, 17, "pending", 2, None)),  # its next try is due
            "ordered: waits for delivery 41 (sequence 17), sent first: the endpoint's webhooks "
            "go one at a time; it failed 2 attempts, the next is due now",
        ),
        (replace(ORDERED, head=Head(1, 17, "pending", 2, NEXT_TRY)), None),  # it is the head
        (ORDERED, None),  # nothing open ahead of it
        (
            replace(ORDERED, active=False, head=Head(41, 17, "failed", 4, None)),
            "disabled: the endpoint is disabled; its deliveries are kept as backlog (within "
            "retention) and sent by `ethhook endpoint enable 5`",
        ),
    ],
)
def test_a_pending_delivery_of_an_ordered_endpoint_names_the_head_it_waits_for(endpoint, reason):
    assert explain(endpoint=endpoint, deliveries=[delivery("pending")]) == (True, reason)


def test_a_sent_delivery_of_an_ordered_endpoint_waits_for_nothing():
    endpoint = replace(ORDERED, head=Head(41, 17, "failed", 4, None))
    assert explain(endpoint=endpoint, deliveries=[delivery("succeeded")]) == (True, None)


def test_a_delivery_held_for_the_chains_order_says_so_whatever_else_the_endpoint_waits_for():
    held = delivery("waiting").model_copy(update={"kind": "event.instant"})
    confirmed = delivery("waiting")
    reason = (
        "ordered: held until the matcher has every earlier event of the chain, so that its "
        "sequence number follows the chain's order (an earlier batch of blocks is being matched)"
    )
    lifecycle = replace(ORDERED, finality="safe")
    assert explain(endpoint=ORDERED, deliveries=[held]) == (True, reason)
    assert explain(endpoint=lifecycle, deliveries=[held, confirmed]) == (True, reason)
    # Released and sent: the confirmed one waits for its finality.
    sent = held.model_copy(update={"status": "succeeded"})
    assert explain(endpoint=lifecycle, deliveries=[sent, confirmed])[1].startswith("finality: ")


def tried(status: str, *answers: int | str) -> ExplainDelivery:
    """A delivery with one attempt per answer: a status code, or an error without one."""
    attempts = [
        ExplainAttempt(
            attempt_number=n,
            status_code=a if isinstance(a, int) else None,
            error=f"HTTP {a}" if isinstance(a, int) else a,
            started_at=BLOCK_TIME,
            duration_ms=5.0,
        )
        for n, a in enumerate(answers, start=1)
    ]
    return delivery(status).model_copy(update={"attempts": attempts})


@pytest.mark.parametrize(
    ("found", "next_at", "reason"),
    [
        (
            tried("pending", 500, 503),
            {1: NEXT_TRY},
            "retrying: 2 attempts failed (the last: HTTP 503); the next at "
            f"{NEXT_TRY:%Y-%m-%dT%H:%M:%SZ}",
        ),
        (
            tried("pending", "timed out after 3 s"),
            {},
            "retrying: 1 attempt failed (the last: timed out after 3 s); the next is due now",
        ),
        (
            tried("failed", 500, 500, 410),
            {},
            "failed: dead-lettered after 3 attempts (the last: HTTP 410); "
            "`ethhook delivery retry 1` sends it again",
        ),
        (tried("succeeded", 500, 200), {}, None),
        (tried("pending"), {1: NEXT_TRY}, None),  # not tried yet
    ],
)
def test_a_delivery_that_failed_says_how_often_with_what_and_what_comes_next(
    found, next_at, reason
):
    got = verdict(STORED, ENDPOINT, [found], CHAIN, chain_name, next_at)
    assert (got.matched, got.reason) == (True, reason)

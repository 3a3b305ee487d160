"""Pairing a batch's events with the filter rows its one query found: every filter field, as a table."""

from __future__ import annotations

import pytest

from ethhook.match.service import Match, pair_with_filters
from ethhook.types import ChainEvent

TOKEN = "0x" + "aa" * 20
OTHER = "0x" + "bb" * 20
TRANSFER = "0x" + "dd" * 32
APPROVAL = "0x" + "8c" * 32


def event(address: str = TOKEN, topic0: str | None = TRANSFER, chain_id: int = 1, index: int = 0):
    return ChainEvent(
        chain_id=chain_id,
        block_number=10,
        block_hash="0x" + "11" * 32,
        block_timestamp=1_700_000_000,
        transaction_hash="0x" + "22" * 32,
        transaction_index=0,
        log_index=index,
        address=address,
        topics=[topic0] if topic0 else [],
        data="0x",
    )


@pytest.mark.parametrize(
    ("row", "matches"),
    [
        # (endpoint, chain, address, topic0, confirmations): the filter, then whether it matches
        ((7, None, None, None, 0), True),  # everything
        ((7, 1, None, None, 0), True),
        ((7, 10, None, None, 0), False),  # another chain
        ((7, None, TOKEN, None, 0), True),
        ((7, None, OTHER, None, 0), False),  # another contract
        ((7, None, TOKEN, TRANSFER, 0), True),
        ((7, None, TOKEN, APPROVAL, 0), False),  # another event on the same contract
        ((7, None, None, TRANSFER, 12), True),  # an event on any contract
        ((7, 1, TOKEN, TRANSFER, 3), True),
        ((7, 1, TOKEN, TRANSFER, None), False),  # the endpoint is disabled
    ],
)
def test_each_filter_field_narrows_the_match(row, matches):
    e = event()

    found = pair_with_filters([e], [row])

    expected = {e.event_id: [Match(7, row[4])]} if matches else {}
    assert found == expected


def test_an_endpoint_with_several_matching_filters_gets_the_event_once():
    e = event()
    rows = [(7, None, TOKEN, None, 0), (7, 1, None, TRANSFER, 0), (3, None, None, None, 5)]

    found = pair_with_filters([e], rows)

    assert found == {e.event_id: [Match(3, 5), Match(7, 0)]}


def test_each_event_of_a_batch_gets_only_its_own_endpoints():
    transfer, approval, elsewhere = event(index=0), event(topic0=APPROVAL, index=1), event(OTHER)
    rows = [(1, None, TOKEN, TRANSFER, 0), (2, None, TOKEN, APPROVAL, 0), (3, None, OTHER, None, 0)]

    found = pair_with_filters([transfer, approval, elsewhere], rows)

    assert found == {
        transfer.event_id: [Match(1, 0)],
        approval.event_id: [Match(2, 0)],
        elsewhere.event_id: [Match(3, 0)],
    }


def test_a_log_without_topics_matches_only_filters_without_an_event():
    anonymous = event(topic0=None)

    found = pair_with_filters(
        [anonymous], [(1, None, TOKEN, TRANSFER, 0), (2, None, TOKEN, None, 0)]
    )

    assert found == {anonymous.event_id: [Match(2, 0)]}

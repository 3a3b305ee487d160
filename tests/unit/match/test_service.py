"""Pairing a batch's events with the filter rows its one query found: every filter field, as a table."""

from __future__ import annotations

import pytest

from ethhook.match.service import Match, pair_with_filters
from ethhook.types import ChainEvent
from tests.support.factories import TRANSFER_TOPIC, address, transfer, word_address

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


# --- topic keys and --where conditions ---------------------------------------------------------

SIG = "Transfer(address indexed from, address indexed to, uint256 value)"


def transfer_to(to: int, value: int, index: int = 0) -> ChainEvent:
    return transfer(contract=TOKEN, block=10, log_index=index, value=value, sender=1, to=to)


def keyed_row(endpoint_id: int, to: int, *conditions: str) -> tuple:
    """A row the keyed branch of the query returns: keyed on `to` (topic 2), with conditions."""
    where = [f"to == {address(to)}", *conditions]
    return (endpoint_id, 1, TOKEN, TRANSFER_TOPIC, 0, 2, word_address(address(to)), where, [SIG])


@pytest.mark.parametrize(
    ("to", "value", "conditions", "matches"),
    [
        (5, 1, (), True),
        (6, 1, (), False),  # the log's topic 2 is not the endpoint's key
        (5, 10**18, ("value >= 1000000000000000000",), True),
        (5, 10**18 - 1, ("value >= 1000000000000000000",), False),
        (5, 2**256 - 1, (f"value > {2**256 - 2}",), True),
        (5, 2**256 - 2, (f"value > {2**256 - 2}",), False),
        (5, 3, ("value in (1, 2)",), False),
        (5, 2, ("value in (1, 2)", "value != 2"), False),  # every condition must hold
    ],
)
def test_a_keyed_row_matches_on_its_topic_word_and_every_condition(to, value, conditions, matches):
    e = transfer_to(to, value)

    found = pair_with_filters([e], [keyed_row(7, 5, *conditions)])

    assert found == ({e.event_id: [Match(7, 0)]} if matches else {})


def test_conditions_on_an_unkeyed_row_are_checked_after_the_query():
    small, large, other = transfer_to(5, 10, 0), transfer_to(5, 5000, 1), transfer_to(6, 9999, 2)
    rows = [
        (1, None, TOKEN, TRANSFER_TOPIC, 0, None, None, ["value >= 1000"], [SIG]),
        (2, None, TOKEN, TRANSFER_TOPIC, 0, None, None, [f"to != {address(5)}"], [SIG]),
        (3, None, TOKEN, None, 0),  # no conditions: everything on the token
    ]

    found = pair_with_filters([small, large, other], rows)

    assert found == {
        small.event_id: [Match(3, 0)],
        large.event_id: [Match(1, 0), Match(3, 0)],
        other.event_id: [Match(1, 0), Match(2, 0), Match(3, 0)],
    }


def test_a_log_that_does_not_fit_the_signature_never_matches_a_condition():
    e = event()  # topic0 only, no data: not a decodable Transfer
    rows = [(1, None, TOKEN, None, 0, None, None, ["value >= 0"], [SIG])]

    assert pair_with_filters([e], rows) == {}


def test_each_event_is_decoded_once_per_signature(monkeypatch):
    import ethhook.match.service as service

    calls = []
    real = service.decode_log_values
    monkeypatch.setattr(service, "decode_log_values", lambda *a: calls.append(a) or real(*a))
    events = [transfer_to(5, v, i) for i, v in enumerate((1, 2000, 3000))]
    rows = [
        (n, None, TOKEN, TRANSFER_TOPIC, 0, None, None, [f"value >= {n}"], [SIG])
        for n in range(1, 51)
    ]

    found = pair_with_filters(events, rows)

    assert len(calls) == 3
    assert [len(found[e.event_id]) for e in events] == [1, 50, 50]

"""Range planning: the next range, the log filter, headers that must chain onto the cursor."""

from __future__ import annotations

import pytest

from ethhook.listen.errors import ChainMoved
from ethhook.listen.plan import LogQuery, linked_headers, log_query, next_range, too_many_logs
from ethhook.listen.records import BlockHeader

A = "0x" + "0a" * 20
B = "0x" + "0b" * 20
C = "0x" + "0c" * 20


def hash_of(number: int, fork: int = 0) -> str:
    return "0x" + f"{fork:02x}" * 30 + f"{number:04x}"


def header(number: int, fork: int = 0, parent_fork: int | None = None) -> BlockHeader:
    parent = hash_of(number - 1, fork if parent_fork is None else parent_fork)
    return BlockHeader(number, hash_of(number, fork), parent, 1000 + number)


@pytest.mark.parametrize(
    ("cursor", "head", "size", "expected"),
    [
        (10, 10, 100, None),  # at the head
        (12, 10, 100, None),  # a node behind the cursor
        (10, 11, 100, (11, 11)),
        (10, 500, 100, (11, 110)),  # the size caps the range
        (10, 50, 100, (11, 50)),  # the head caps the range
        (0, 5, 1, (1, 1)),
    ],
)
def test_next_range(cursor, head, size, expected):
    assert next_range(cursor, head, size) == expected


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        (None, LogQuery(needed=True, addresses=None)),  # some endpoint watches every contract
        (frozenset(), LogQuery(needed=False)),  # nobody watches this chain: no eth_getLogs at all
        (frozenset({C, A, B}), LogQuery(needed=True, addresses=(A, B, C))),  # sorted
        (frozenset({A, B}), LogQuery(needed=True, addresses=(A, B))),
    ],
)
def test_log_query(addresses, expected):
    assert log_query(addresses, max_addresses=3) == expected


def test_more_addresses_than_providers_take_ask_for_every_log():
    assert log_query(frozenset({A, B, C}), max_addresses=2) == LogQuery(needed=True)


T1, T2, T3 = ("0x" + c * 64 for c in "123")


@pytest.mark.parametrize(
    ("addresses", "topics", "expected"),
    [
        # every endpoint names its events: the node is asked for those topic0s only
        (frozenset({B, A}), frozenset({T2, T1}), LogQuery(True, (A, B), (T1, T2))),
        (None, frozenset({T1}), LogQuery(True, None, (T1,))),  # one event on every contract
        (frozenset({A}), None, LogQuery(True, (A,), None)),  # some endpoint takes any event
        (frozenset(), frozenset({T1}), LogQuery(needed=False)),  # nobody watches the chain
        (frozenset({A}), frozenset({T1, T2, T3}), LogQuery(True, (A,), None)),  # above the cap
        (frozenset({A, B, C}), frozenset({T1}), LogQuery(True, None, (T1,))),  # addresses capped
    ],
)
def test_log_query_filters_by_topic0_when_every_endpoint_names_its_events(
    addresses, topics, expected
):
    assert log_query(addresses, max_addresses=2, topics=topics, max_topics=2) == expected


def test_headers_that_chain_onto_the_cursor_are_returned_in_order():
    headers = [header(5), header(6), header(7)]
    assert linked_headers(5, headers, cursor_hash=hash_of(4)) == headers


def test_a_first_header_not_on_the_cursor_block_means_a_reorg():
    assert linked_headers(5, [header(5, 1, parent_fork=1), header(6, 1)], hash_of(4)) is None


def test_a_missing_header_means_the_node_has_not_got_the_block_yet():
    with pytest.raises(ChainMoved, match="block 6 is not available yet"):
        linked_headers(5, [header(5), None, header(7)], hash_of(4))


def test_a_missing_header_is_reported_before_a_reorg():
    with pytest.raises(ChainMoved):
        linked_headers(5, [header(5, 1, parent_fork=1), None], hash_of(4))


def test_neighbours_that_do_not_link_mean_the_chain_moved_while_answering():
    with pytest.raises(ChainMoved, match="block 7 does not follow 6"):
        linked_headers(5, [header(5), header(6), header(7, 1, parent_fork=1)], hash_of(4))


@pytest.mark.parametrize(
    ("log_count", "start", "end", "expected"),
    [
        (1001, 1, 10, True),
        (1000, 1, 10, False),  # at the limit: fine
        (5000, 7, 7, False),  # one block cannot be split
        (0, 1, 100, False),
    ],
)
def test_too_many_logs(log_count, start, end, expected):
    assert too_many_logs(log_count, start, end, max_logs=1000) is expected

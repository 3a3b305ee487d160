"""Pure pieces of the listener: backoff, range sizing, answer validation, the watch list."""

from __future__ import annotations

import logging

import pytest

from ethhook.listen.backoff import Backoff
from ethhook.listen.chunks import ChunkSizer
from ethhook.listen.errors import ChainMoved, RpcBadResponse
from ethhook.listen.records import BlockHeader, logs_to_events, parse_header, parse_log
from ethhook.listen.store import WatchList
from ethhook.listen.sync import range_log_level
from tests.support.rawlogs import H1, H2, TOKEN, raw_log

OTHER = "0x" + "cd" * 20
WATCH_EVERYTHING = WatchList(rows=frozenset({(None, None)}))


# --- backoff --------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half():
    backoff = Backoff(base_s=0.5, cap_s=4.0, rand=lambda low, high: high)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    low = Backoff(base_s=0.5, cap_s=4.0, rand=lambda low, high: low)
    assert [low.next_delay() for _ in range(4)] == [0.25, 0.5, 1.0, 2.0]


def test_backoff_reset_starts_again_from_the_base():
    backoff = Backoff(base_s=1.0, cap_s=30.0, rand=lambda low, high: high)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_backoff_survives_thousands_of_failures():
    backoff = Backoff(base_s=0.5, cap_s=30.0)
    for _ in range(5000):
        delay = backoff.next_delay()
    assert 15.0 <= delay <= 30.0


# --- chunk sizing -------------------------------------------------------------------------------


def test_a_refused_range_halves_down_to_one_block():
    sizer = ChunkSizer(initial=100, maximum=1000)
    assert [sizer.shrink(sizer.size) for _ in range(8)] == [50, 25, 12, 6, 3, 1, 1, 1]


def test_shrinking_uses_the_size_that_failed_not_a_larger_current_size():
    sizer = ChunkSizer(initial=100, maximum=1000)
    assert sizer.shrink(10) == 5  # a 10-block tail of the range failed


def test_the_size_grows_back_after_successes_up_to_the_maximum():
    sizer = ChunkSizer(initial=4, maximum=10, grow_after=2)
    sizes = []
    for _ in range(8):
        sizer.succeeded()
        sizes.append(sizer.size)
    assert sizes == [4, 8, 8, 10, 10, 10, 10, 10]


def test_after_a_refusal_the_size_grows_only_to_what_worked_until_the_refusal_is_forgotten():
    sizer = ChunkSizer(initial=100, maximum=100, grow_after=2, forget_after=10)
    sizer.shrink(100)
    sizer.shrink(50)  # 25 works
    sizer.shrink(12)  # a dense stretch: 6 works; the ceiling is now 6
    sizes = []
    for _ in range(12):
        sizer.succeeded()
        sizes.append(sizer.size)
    assert sizes == [6] * 9 + [12, 12, 24]


def test_chunk_sizer_rejects_nonsense():
    with pytest.raises(ValueError):
        ChunkSizer(initial=0)


# --- answers --------------------------------------------------------------------------------------


def test_header_is_parsed_and_lowercased():
    header = parse_header(
        {
            "number": "0x10",
            "hash": H1.upper().replace("0X", "0x"),
            "parentHash": H2,
            "timestamp": "0x5",
        }
    )
    assert header == BlockHeader(16, H1, H2, 5)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "0x1",
        [],
        {"number": "16", "hash": H1, "parentHash": H2, "timestamp": "0x1"},
        {"number": "0x10", "hash": "0x12", "parentHash": H2, "timestamp": "0x1"},
        {"number": "0x10", "hash": H1, "parentHash": H2},
    ],
)
def test_malformed_headers_are_bad_responses(raw):
    with pytest.raises(RpcBadResponse):
        parse_header(raw)


def test_log_becomes_a_lowercase_chain_event():
    event = parse_log(raw_log(blockTimestamp="0x64"), chain_id=10)
    assert event.chain_id == 10 and event.block_number == 5 and event.log_index == 0
    assert event.address == TOKEN and event.topics == [H2] and event.block_timestamp == 100
    assert event.data.endswith("07")


@pytest.mark.parametrize(
    "override",
    [
        {"address": "0x12"},
        {"topics": "nope"},
        {"topics": [H1] * 5},
        {"topics": ["0x12"]},
        {"data": "0x123"},
        {"data": None},
        {"blockHash": "0xnothex"},
        {"logIndex": None},
        {"blockNumber": "5"},
    ],
)
def test_malformed_logs_are_bad_responses(override):
    with pytest.raises(RpcBadResponse):
        parse_log(raw_log(**override), chain_id=1)


def test_logs_take_their_timestamp_from_the_header_and_come_in_chain_order():
    headers = {5: BlockHeader(5, H1, H2, 1000), 6: BlockHeader(6, H2, H1, 1012)}
    logs = [raw_log(6, H2, 0), raw_log(5, H1, 3), raw_log(5, H1, 1, address=OTHER)]
    events = logs_to_events(logs, 1, headers, addresses=None)
    assert [(e.block_number, e.log_index, e.block_timestamp) for e in events] == [
        (5, 1, 1000),
        (5, 3, 1000),
        (6, 0, 1012),
    ]


def test_logs_of_contracts_nobody_watches_are_dropped():
    headers = {5: BlockHeader(5, H1, H2, 1000)}
    logs = [raw_log(5, H1, 0), raw_log(5, H1, 1, address=OTHER)]
    assert [e.address for e in logs_to_events(logs, 1, headers, frozenset({OTHER}))] == [OTHER]


def test_a_log_from_another_block_hash_means_the_chain_moved():
    headers = {5: BlockHeader(5, H2, H1, 1000)}
    with pytest.raises(ChainMoved):
        logs_to_events([raw_log(5, H1, 0)], 1, headers, None)


def test_a_log_outside_the_range_is_a_bad_response():
    with pytest.raises(RpcBadResponse):
        logs_to_events([raw_log(9, H1, 0)], 1, {5: BlockHeader(5, H1, H2, 1)}, None)


def test_removed_logs_are_ignored():
    headers = {5: BlockHeader(5, H1, H2, 1000)}
    assert logs_to_events([raw_log(5, H1, 0, removed=True)], 1, headers, None) == []


# --- watch list ---------------------------------------------------------------------------


def test_watch_list_per_chain():
    watch = WatchList(frozenset({(1, TOKEN), (None, OTHER), (10, None)}))
    assert watch.addresses_for(1) == frozenset({TOKEN, OTHER})
    assert watch.addresses_for(8453) == frozenset({OTHER})
    assert watch.addresses_for(10) is None  # an endpoint watches every contract on chain 10
    assert WatchList(frozenset()).addresses_for(1) == frozenset()
    assert WATCH_EVERYTHING.addresses_for(42161) is None


def test_the_watch_list_names_topics_only_when_every_endpoint_of_the_chain_names_its_events():
    t1, t2 = "0x" + "11" * 32, "0x" + "22" * 32
    watch = WatchList(frozenset(), frozenset({(1, t1), (None, t2), (10, None)}))
    assert watch.topics_for(1) == frozenset({t1, t2})
    assert watch.topics_for(8453) == frozenset({t2})
    assert watch.topics_for(10) is None  # an endpoint on chain 10 takes every event
    assert WATCH_EVERYTHING.topics_for(1) is None


@pytest.mark.parametrize(
    ("start", "end", "events", "level"),
    [
        (10, 10, 0, logging.DEBUG),  # a new block, nothing watched in it
        (10, 13, 0, logging.DEBUG),  # a few blocks at once (a fast chain, a poll): still routine
        (10, 10, 1, logging.INFO),  # events: something to say
        (10, 108, 0, logging.DEBUG),
        (10, 109, 0, logging.INFO),  # catching up (CATCH_UP_BLOCKS)
    ],
)
def test_a_range_without_events_is_logged_at_info_only_when_catching_up(start, end, events, level):
    assert range_log_level(start, end, events) == level

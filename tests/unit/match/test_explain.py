"""match.explain: the first failing check in words, and never a verdict the matcher disagrees with."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from ethhook.abi import checksum, parse_event_signature
from ethhook.conditions import compiled, topic_key
from ethhook.config import get_settings
from ethhook.match.explain import first_miss
from ethhook.match.service import FilterRow, pair_with_filters
from tests.support.factories import (
    APPROVAL,
    APPROVAL_TOPIC,
    TRANSFER,
    TRANSFER_TOPIC,
    address,
    transfer,
)

TOKEN, OTHER = address(1), address(2)
EVENT = transfer(contract=TOKEN, block=10, log_index=0, value=7, sender=3, to=4)
chain_name = get_settings().chain_name


def rows(
    endpoint_id: int = 1,
    chains: tuple[int | None, ...] = (None,),
    contracts: tuple[str | None, ...] = (None,),
    topics: tuple[str | None, ...] = (None,),
    where: tuple[str, ...] = (),
    signature: str = TRANSFER,
) -> list[FilterRow]:
    """An endpoint's filter rows as the matcher's query returns them (unkeyed: cross product)."""
    return [
        FilterRow(
            endpoint_id,
            chain,
            contract,
            topic,
            0,
            conditions=list(where) or None,
            signatures=[signature] if where else None,
        )
        for chain, contract, topic in itertools.product(chains, contracts, topics)
    ]


@pytest.mark.parametrize(
    ("filters", "reason"),
    [
        (rows(), None),
        (rows(chains=(1,), contracts=(TOKEN,), topics=(TRANSFER_TOPIC,)), None),
        (
            rows(chains=(10, 8453)),
            "chain: the log is on ethereum (1); the endpoint watches optimism (10), base (8453)",
        ),
        (
            rows(contracts=(OTHER,)),
            f"contract: the log's contract is {checksum(TOKEN)}; "
            f"the endpoint watches {checksum(OTHER)}",
        ),
        (
            rows(topics=(APPROVAL_TOPIC,)),
            f"event: the log's topic0 is {TRANSFER_TOPIC}; "
            "the endpoint watches Approval(address,address,uint256)",
        ),
        (rows(where=("value >= 1000000",)), "where: value >= 1000000 is false (value = 7)"),
        (
            rows(where=("value > 1", f"to == {address(5)}")),
            f"where: to == {address(5)} is false (to = {checksum(address(4))})",
        ),
        (rows(where=("value in (7, 8)", f"from == {address(3)}")), None),
        (
            rows(where=("value >= 1",), signature="Transfer(address indexed from, uint256 value)"),
            "where: the log does not decode as Transfer(address,uint256)",
        ),
    ],
)
def test_the_first_failing_check_is_named_with_what_the_log_carries(filters, reason):
    assert first_miss(EVENT, filters, [APPROVAL, TRANSFER], chain_name) == reason


def test_the_checks_go_in_the_matchers_order_chain_contract_event_where():
    # Given an endpoint that fails every check: the chain is the one named
    everything = rows(
        chains=(10,), contracts=(OTHER,), topics=(APPROVAL_TOPIC,), where=("value > 9",)
    )
    assert first_miss(EVENT, everything, [APPROVAL], chain_name).startswith("chain:")
    # With the chain right, the contract; then the event; then the condition
    right_chain = [replace_row(r, chain_id=1) for r in everything]
    assert first_miss(EVENT, right_chain, [APPROVAL], chain_name).startswith("contract:")
    right_contract = [replace_row(r, address=TOKEN) for r in right_chain]
    assert first_miss(EVENT, right_contract, [APPROVAL], chain_name).startswith("event:")
    right_event = [
        replace_row(r, topic0=TRANSFER_TOPIC, signatures=[TRANSFER]) for r in right_contract
    ]
    assert first_miss(EVENT, right_event, [TRANSFER], chain_name) == (
        "where: value > 9 is false (value = 7)"
    )


def test_an_anonymous_log_is_named_so():
    anonymous = replace(EVENT, topics=[])
    assert first_miss(anonymous, rows(topics=(TRANSFER_TOPIC,)), [TRANSFER], chain_name) == (
        "event: the log's topic0 is none (an anonymous log); "
        "the endpoint watches Transfer(address,address,uint256)"
    )


def replace_row(row: FilterRow, **changes: object) -> FilterRow:
    return row._replace(**changes)


def keyed(filters: list[FilterRow]) -> list[FilterRow]:
    """The rows as the query's keyed branch returns them: one per topic word of the key."""
    first = filters[0]
    if not first.conditions:
        return filters
    signature = parse_event_signature(TRANSFER)
    key = topic_key(compiled(TRANSFER, tuple(first.conditions)), signature)
    if key is None:
        return filters
    position, words = key
    return [replace_row(r, position=position, value=w) for r in filters for w in words]


def test_explain_and_the_matcher_agree_on_every_endpoint_and_event():
    # Given endpoints over every combination of chain, contract, event and condition…
    wheres = [
        (),
        ("value >= 8",),
        ("value <= 8",),
        (f"to == {address(4)}",),
        (f"to == {address(5)}", "value > 0"),
    ]
    endpoints = {}
    combos = itertools.product(
        [(None,), (1,), (10,)],
        [(None,), (TOKEN,), (OTHER,), (TOKEN, OTHER)],
        [(None,), (TRANSFER_TOPIC,), (APPROVAL_TOPIC,)],
        wheres,
    )
    for n, (chains, contracts, topics, where) in enumerate(combos, start=1):
        if where and topics != (TRANSFER_TOPIC,):
            continue  # conditions need the one event they decode
        endpoints[n] = rows(n, chains, contracts, topics, where)
    # …and events that differ in each of them
    events = [
        EVENT,
        replace(EVENT, chain_id=10, block_hash="0x" + "11" * 32),
        replace(EVENT, address=OTHER, log_index=1),
        replace(EVENT, topics=[APPROVAL_TOPIC, *EVENT.topics[1:]], log_index=2),
        transfer(contract=TOKEN, block=10, log_index=3, value=9, sender=3, to=5),
    ]
    # When the matcher pairs them (keyed rows as its query returns them) and explain checks each
    all_rows = [r for filters in endpoints.values() for r in keyed(filters)]
    matched = pair_with_filters(events, [tuple(r) for r in all_rows])
    # Then an endpoint matches exactly when explain finds no failing check
    verdicts = []
    for event in events:
        got = {m.endpoint_id for m in matched.get(event.event_id, [])}
        for n, filters in endpoints.items():
            miss = first_miss(event, filters, [TRANSFER, APPROVAL], chain_name)
            assert (miss is None) == (n in got), (event.log_index, n, miss)
            verdicts.append(miss.split(":")[0] if miss else "matched")
    counts = {v: verdicts.count(v) for v in set(verdicts)}
    assert counts == {"matched": 108, "chain": 140, "contract": 70, "event": 54, "where": 48}

"""--where on the database: registration stores conditions and topic keys; the batched query
finds keyed endpoints through the key index; conditions are checked after it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import Delivery, Endpoint, EndpointFilter, EndpointTopicKey, utcnow
from ethhook.exceptions import InputError
from ethhook.match.service import find_matches, match_query
from ethhook.service.changes import build_changes
from ethhook.service.endpoints import update_endpoint
from ethhook.service.scope import OPERATOR
from tests.support.cli import assert_refused, ethhook
from tests.support.db import database_state, explained, store_and_match
from tests.support.endpoints import add_endpoint, seed_keyed_endpoints, watched_address
from tests.support.factories import TRANSFER, TRANSFER_TOPIC, address, transfer, word_address

TOKEN = address(500)


def keys_of(endpoint_id: int) -> tuple[list[tuple[int, str]], list[bool], list[str] | None]:
    with session_scope() as session:
        keys = session.execute(
            select(EndpointTopicKey.position, EndpointTopicKey.value)
            .where(EndpointTopicKey.endpoint_id == endpoint_id)
            .order_by(EndpointTopicKey.value)
        ).all()
        keyed = session.scalars(
            select(EndpointFilter.keyed).where(EndpointFilter.endpoint_id == endpoint_id)
        ).all()
        conditions = session.get(Endpoint, endpoint_id).conditions  # type: ignore[union-attr]
        return [tuple(k) for k in keys], list(keyed), conditions


@pytest.mark.usefixtures("db")
def test_registration_keeps_the_conditions_and_keys_the_first_indexed_equality():
    a, b = address(1), address(2)
    where = ["value >= 5", f"to in ({a}, {b.upper().replace('0X', '0x')})", "from != " + a]

    endpoint_id = add_endpoint(
        "http://127.0.0.1:1/w", contracts=[TOKEN], events=[TRANSFER], where=where
    )[0]

    keys, keyed, conditions = keys_of(endpoint_id)
    assert conditions == where
    assert keys == sorted([(2, word_address(a)), (2, word_address(b))], key=lambda k: k[1])
    assert keyed == [True]


@pytest.mark.usefixtures("db")
def test_only_ordering_conditions_leave_the_filter_rows_unkeyed():
    endpoint_id = add_endpoint("http://127.0.0.1:1/w", events=[TRANSFER], where=["value > 1"])[0]

    assert keys_of(endpoint_id) == ([], [False], ["value > 1"])


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "--where needs exactly one --event"),
        (
            [TRANSFER, "Approval(address indexed owner, address indexed spender, uint256 value)"],
            "--where needs exactly one --event",
        ),
        (["0x" + "dd" * 32], "--where needs exactly one --event, given as a Solidity signature"),
    ],
)
@pytest.mark.usefixtures("db")
def test_a_condition_without_exactly_one_event_signature_is_refused(events, message):
    with pytest.raises(InputError, match=message):
        add_endpoint("http://127.0.0.1:1/w", events=events, where=["value > 1"])
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Endpoint)) == 0


@pytest.mark.usefixtures("db")
def test_update_replaces_clears_and_rechecks_the_conditions():
    endpoint_id = add_endpoint(
        "http://127.0.0.1:1/w", events=[TRANSFER], where=["to == " + address(1)]
    )[0]

    def update(**fields):  # noqa: ANN003, ANN202
        with session_scope() as session:
            return update_endpoint(
                session, endpoint_id, build_changes(get_settings(), **fields), scope=OPERATOR
            )

    assert update(where=["value < 3"]).where == ["value < 3"]
    assert keys_of(endpoint_id) == ([], [False], ["value < 3"])
    assert update(where=["from == " + address(3)]).where == ["from == " + address(3)]
    assert keys_of(endpoint_id)[:2] == ([(1, word_address(address(3)))], [True])
    with pytest.raises(InputError, match="Approval has no argument 'from'"):
        update(events=["Approval(address indexed owner, address indexed spender, uint256 value)"])
    assert keys_of(endpoint_id)[2] == [
        "from == " + address(3)
    ]  # the refused update changed nothing
    assert update(where=[]).where == []
    assert keys_of(endpoint_id) == ([], [False], None)


@pytest.mark.usefixtures("db")
def test_each_endpoint_receives_only_the_events_that_satisfy_its_conditions():
    a, b, c = address(1), address(2), address(3)
    wallet = add_endpoint(
        "http://127.0.0.1:1/wallet", contracts=[TOKEN], events=[TRANSFER], where=[f"to == {a}"]
    )[0]
    treasury = add_endpoint(
        "http://127.0.0.1:1/big", events=[TRANSFER], where=[f"value >= {2**255}"]
    )[0]
    exchange = add_endpoint(
        "http://127.0.0.1:1/hot",
        contracts=[TOKEN],
        events=[TRANSFER],
        where=[f"to in ({b}, {c})", "value > 10"],
    )[0]
    plain = add_endpoint("http://127.0.0.1:1/all", contracts=[TOKEN], events=[TRANSFER])[0]
    events = [
        transfer(contract=TOKEN, block=1, log_index=0, value=5, to=1),  # wallet
        transfer(
            contract=TOKEN, block=1, log_index=1, value=2**256 - 1, to=2
        ),  # treasury, exchange
        transfer(contract=TOKEN, block=1, log_index=2, value=10, to=3),  # nobody with conditions
        transfer(contract=TOKEN, block=1, log_index=3, value=11, to=3),  # exchange
        transfer(contract=address(9), block=1, log_index=4, value=2**255, to=1),  # treasury
    ]
    with session_scope() as session:
        store_and_match(session, events, utcnow())
        pairs = set(session.execute(select(Delivery.endpoint_id, Delivery.event_id)).all())
    e = [x.event_id for x in events]
    expected = {
        (wallet, e[0]),
        (treasury, e[1]),
        (exchange, e[1]),
        (exchange, e[3]),
        (treasury, e[4]),
    }
    expected |= {(plain, x) for x in e[:4]}
    assert pairs == expected


def plan_of(events) -> str:  # noqa: ANN001
    """PostgreSQL's EXPLAIN of the batch's query, exactly as the matcher sends it."""

    def find() -> None:
        with session_scope() as session:
            session.execute(match_query(events)).all()

    return explained(find)[1]


SEEDED = 1_000_000


@pytest.mark.usefixtures("db")
def test_a_million_keyed_endpoints_are_found_through_the_topic_index():
    seed_keyed_endpoints(1, SEEDED, TOKEN, TRANSFER)
    # Even events go to addresses endpoints watch (ids 1, 20,001, …), odd ones to unwatched ones.
    events = []
    for i in range(100):
        to = watched_address(1 + i * 10_000) if i % 2 == 0 else address(10_000 + i)
        log = transfer(contract=TOKEN, block=2, log_index=i, value=i)
        events.append(replace(log, topics=[*log.topics[:2], word_address(to)]))

    plan = plan_of(events)
    with session_scope() as session:
        found = find_matches(session, events)

    assert "ix_endpoint_topic_keys_value" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert sorted(m.endpoint_id for ms in found.values() for m in ms) == [
        1 + i * 10_000 for i in range(0, 100, 2)
    ]


# --- the command line --------------------------------------------------------------------------


@pytest.mark.usefixtures("db")
def test_the_cli_registers_shows_replaces_and_clears_conditions():
    hot = [address(1), address(2)]
    where = [f"to in ({hot[0]}, {hot[1]})", "value >= 1000000"]
    added = ethhook(
        "endpoint", "add", "--url", "http://127.0.0.1:1/x", "--event", TRANSFER,
        "--where", where[0], "--where", where[1], "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    eid = str(json.loads(added.stdout)["id"])

    shown = json.loads(ethhook("endpoint", "show", eid, "--json").stdout)
    listed = json.loads(ethhook("endpoint", "list", "--json").stdout)
    human = ethhook("endpoint", "show", eid).stdout
    replaced = json.loads(
        ethhook("endpoint", "update", eid, "--where", "value < 5", "--json").stdout
    )
    cleared = json.loads(ethhook("endpoint", "update", eid, "--clear-where", "--json").stdout)

    assert shown["where"] == listed[0]["where"] == where
    assert f"where:                       {where[0]} and {where[1]}" in human
    assert replaced["where"] == ["value < 5"]
    assert cleared["where"] == []
    assert "--clear-where" in ethhook("endpoint", "update", "--help").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--event", TRANSFER, "--where", "valu > 1"],
         "invalid --where 'valu > 1' at column 1: Transfer has no argument 'valu'"),
        (["--event", TRANSFER, "--where", "to < 0x" + "aa" * 20],
         "at column 4: < compares integers; to is address"),
        (["--where", "value > 1"], "--where needs exactly one --event"),
    ],
)  # fmt: skip
@pytest.mark.usefixtures("db")
def test_the_cli_refuses_a_bad_condition_in_one_line(args, message):
    line = assert_refused(ethhook("endpoint", "add", "--url", "http://127.0.0.1:1/x", *args))

    assert message in line
    assert database_state() == [[], [], []]


@pytest.mark.usefixtures("db")
def test_a_replay_honours_conditions_as_live_matching_does():
    from ethhook.match.replay import redeliver

    keyed = add_endpoint(
        "http://127.0.0.1:1/k", events=[TRANSFER], where=[f"to == {address(2)}", "value > 1"]
    )[0]
    big = add_endpoint("http://127.0.0.1:1/b", events=[TRANSFER], where=["value >= 3"])[0]
    events = [
        transfer(contract=TOKEN, block=1, log_index=i, value=i, to=2 + i % 2) for i in range(5)
    ]
    with session_scope() as session:
        redeliver(session, events, head=100, now=utcnow())
        pairs = set(session.execute(select(Delivery.endpoint_id, Delivery.event_id)).all())
    e = [x.event_id for x in events]
    assert pairs == {(keyed, e[2]), (keyed, e[4]), (big, e[3]), (big, e[4])}


@pytest.mark.usefixtures("db")
def test_the_listener_asks_for_the_events_every_endpoint_names():
    from ethhook.listen.store import load_watch_list

    add_endpoint(
        "http://127.0.0.1:1/k", contracts=[TOKEN], events=[TRANSFER], where=[f"to == {address(2)}"]
    )
    assert load_watch_list().topics_for(1) == frozenset({TRANSFER_TOPIC})
    add_endpoint("http://127.0.0.1:1/any", contracts=[TOKEN])
    assert load_watch_list().topics_for(1) is None

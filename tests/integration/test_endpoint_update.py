"""`ethhook endpoint update`: an endpoint changed in place keeps its id, secret and deliveries, and
the matcher uses its new filters from then on."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import Delivery, utcnow
from tests.support.cli import assert_refused, ethhook
from tests.support.db import database_state, store_and_match
from tests.support.factories import TRANSFER, address, transfer

pytestmark = pytest.mark.usefixtures("db")

URL = "https://hooks.example.com/eth"
APPROVAL = "Approval(address indexed owner, address indexed spender, uint256 value)"


def deliveries() -> list[tuple[int, int, str]]:
    with session_scope() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.endpoint_id, Delivery.event_id).order_by(Delivery.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_update_keeps_id_secret_and_deliveries_and_the_matcher_uses_the_new_filters():
    add = ethhook(
        "endpoint", "add", "--url", URL, "--chain", "1", "--contract", address(1),
        "--event", TRANSFER, "--name", "before", "--json",
    )  # fmt: skip
    created = json.loads(add.stdout)
    eid = str(created["id"])
    first = transfer(contract=address(1), block=1, log_index=0, value=1)
    with session_scope() as session:
        store_and_match(session, [first], utcnow())
    before = deliveries()
    assert [(d[1], d[2]) for d in before] == [(created["id"], first.event_id)]

    result = ethhook(
        "endpoint", "update", eid, "--contract", address(2), "--contract", address(3),
        "--name", "after", "--rate-limit", "5", "--url", URL + "/v2", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    updated = json.loads(result.stdout)
    assert updated["id"] == created["id"] and "secret" not in updated
    assert updated["contracts"] == sorted([address(2), address(3)])
    assert (updated["chains"], updated["events"]) == ([1], [TRANSFER])  # not given: kept
    assert (updated["name"], updated["rate_limit"], updated["url"]) == (
        "after",
        5.0,
        URL + "/v2",
    )
    secret = json.loads(ethhook("endpoint", "secret", eid, "--json").stdout)
    assert (secret["secret"], secret["previous_secret"]) == (created["secret"], None)
    assert deliveries() == before

    old_filter = transfer(contract=address(1), block=2, log_index=0, value=2)
    new_filter = transfer(contract=address(3), block=2, log_index=1, value=3)
    other_chain = transfer(chain_id=10, contract=address(2), block=2, log_index=2, value=4)
    with session_scope() as session:
        store_and_match(session, [old_filter, new_filter, other_chain], utcnow())
    assert [d[2] for d in deliveries()] == [first.event_id, new_filter.event_id]

    human = ethhook(
        "endpoint",
        "update",
        eid,
        "--chain",
        "optimism",
        "--event",
        APPROVAL,
    )
    assert human.returncode == 0 and human.stdout.startswith(f"updated endpoint {eid}\n")
    shown = json.loads(ethhook("endpoint", "show", eid, "--json").stdout)
    assert shown["chains"] == [10] and shown["events"] == [APPROVAL]
    assert shown["contracts"] == sorted([address(2), address(3)])


@pytest.mark.parametrize(
    "options",
    [
        ("--url", "ftp://hooks.example.com"),
        ("--contract", address(2), "--contract", "0x1234"),
        ("--chain", "dogecoin"),
        ("--event", "Transfer(address from"),
        ("--confirmations", "10001"),
        ("--rate-limit", "0"),
        ("--retry-schedule", "0,-5"),
        ("--name", "two\nlines"),
        (),
    ],
    ids=lambda o: " ".join(o)[:40] or "nothing",
)
def test_a_bad_update_is_refused_like_add_and_changes_nothing(options):
    eid = json.loads(ethhook("endpoint", "add", "--url", URL, "--json").stdout)["id"]
    before = database_state()
    assert_refused(ethhook("endpoint", "update", str(eid), *options))
    assert database_state() == before

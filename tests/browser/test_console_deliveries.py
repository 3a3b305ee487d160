"""The deliveries search (plain HTTP, the session's console): by transaction hash, status, event
type, time range and endpoint, another application's never found; a bad field said beside it;
a bulk retry of what a search found after a page that counts them, CSRF-checked."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select, update

from ethhook.db import session_scope
from ethhook.db.models import Delivery, DeliveryStatus, utcnow
from tests.support.console import csrf_token, signed_in_client
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER, address, transfer

TOKEN = address(52)


def seeded(tenant, other_tenant) -> tuple[int, str, str]:
    """An endpoint of each application on TOKEN's Transfers, five events (two in one
    transaction); the application's two deliveries of the first transaction failed. Its id and
    the two hashes."""
    mine, _ = add_endpoint(
        "http://127.0.0.1:9/mine",
        contracts=[TOKEN],
        events=[TRANSFER],
        application_id=tenant.application_id,
    )
    add_endpoint(
        "http://127.0.0.1:9/theirs",
        contracts=[TOKEN],
        events=[TRANSFER],
        application_id=other_tenant.application_id,
    )
    events = [transfer(contract=TOKEN, block=7, log_index=i, value=i) for i in range(5)]
    events[1] = replace(events[1], transaction_hash=events[0].transaction_hash)
    with session_scope() as session:
        store_and_match(session, events, utcnow())
        assert len(list(session.scalars(select(Delivery).where(Delivery.endpoint_id == mine)))) == 5
    with session_scope() as session:
        session.execute(
            update(Delivery)
            .where(
                Delivery.endpoint_id == mine,
                Delivery.event_id.in_([e.event_id for e in events[:2]]),
            )
            .values(status=DeliveryStatus.FAILED, lease_token=None, lease_expires_at=None)
        )
    return mine, events[0].transaction_hash, events[2].transaction_hash


def found_ids(page: str) -> int:
    return page.count('<tr data-delivery-id="')


def test_search_by_transaction_status_type_and_time_and_retry_what_it_found(
    console, tenant, other_tenant
):
    mine, tx, other_tx = seeded(tenant, other_tenant)
    client, token = signed_in_client(console.url, tenant.key)
    by_tx = client.get("/console/deliveries", params={"tx": tx.upper().replace("0X", "0x")})
    assert by_tx.status_code == 200
    assert found_ids(by_tx.text) == 2 and "<strong>2</strong> deliveries found" in by_tx.text
    assert f'href="/console/explain?tx={tx.upper().replace("0X", "0x")}"' in by_tx.text
    assert found_ids(client.get("/console/deliveries", params={"tx": other_tx}).text) == 1
    assert found_ids(client.get("/console/deliveries").text) == 5  # never the other application's
    failed = client.get("/console/deliveries", params={"status": "failed"}).text
    assert found_ids(failed) == 2
    removed = client.get("/console/deliveries", params={"kind": "event.removed"}).text
    assert found_ids(removed) == 0 and "<strong>0</strong> deliveries found" in removed
    now = utcnow()
    window = {
        "since": (now - timedelta(minutes=5)).isoformat(),
        "until": (now + timedelta(minutes=5)).isoformat(),
    }
    assert found_ids(client.get("/console/deliveries", params=window).text) == 5
    later = {"since": (now + timedelta(minutes=5)).isoformat()}
    assert found_ids(client.get("/console/deliveries", params=later).text) == 0
    assert found_ids(client.get("/console/deliveries", params={"endpoint": mine}).text) == 5

    # A bulk retry: the count, then the confirmation; without the CSRF token nothing is sent.
    assert 'id="bulk-retry"' in failed and "Retry these 2" in failed
    confirm = client.get("/console/deliveries/retry", params={"status": "failed", "tx": tx})
    assert confirm.status_code == 200 and "Retry 2 deliveries?" in confirm.text
    fields = {"status": "failed", "tx": tx, "since": "", "until": "", "kind": "", "endpoint": ""}
    assert client.post("/console/deliveries/retry", data=fields).status_code == 403
    assert _statuses(mine).count(DeliveryStatus.FAILED) == 2
    done = client.post(
        "/console/deliveries/retry", data={**fields, "csrf_token": csrf_token(confirm.text)}
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith("/console/deliveries?status=failed&tx=")
    assert "Retrying 2 deliveries" in client.get(done.headers["location"]).text
    assert _statuses(mine).count(DeliveryStatus.FAILED) == 0


def _statuses(endpoint_id: int) -> list[str]:
    with session_scope() as session:
        query = select(Delivery.status).where(Delivery.endpoint_id == endpoint_id)
        return list(session.scalars(query))


def test_a_bad_search_field_is_said_beside_it(console, tenant, other_tenant):
    seeded(tenant, other_tenant)
    client, _ = signed_in_client(console.url, tenant.key)
    for params, field, message in [
        ({"tx": "0x12"}, "tx", "invalid transaction hash"),
        ({"since": "yesterday"}, "since", "invalid from"),
        ({"status": "lost"}, "status", "invalid status"),
        ({"endpoint": "x"}, "endpoint", "invalid endpoint"),
    ]:
        page = client.get("/console/deliveries", params=params).text
        assert f'id="{field}-error"' in page and message in page, (params, page[-2000:])
        assert f'value="{params[field]}"' in page or f'<option value="{params[field]}"' not in page
    # another application's endpoint is not found
    theirs = client.get("/console/deliveries", params={"endpoint": "999999"})
    assert theirs.status_code == 404

"""A disabled endpoint keeps its backlog (issue 24): a 410 disables it and tells the
application's ops endpoint, events matched while it is disabled wait, and `endpoint enable`
sends every one of them once; `disable --discard` drops them instead, recorded. Real Celery
worker with beat, Redis, PostgreSQL and loopback receivers."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import Delivery, DeliveryStatus, Endpoint, Event
from ethhook.workqueue import DISCARDED_REASON
from tests.support.cli import ethhook
from tests.support.db import publish_events
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer
from tests.support.ops import default_application_id, ops_of, set_ops_endpoint
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("db", "worker")


def rows(endpoint_id: int) -> list[Delivery]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Delivery).where(Delivery.endpoint_id == endpoint_id).order_by(Delivery.id)
            )
        )


def endpoint_row(endpoint_id: int) -> Endpoint:
    with session_scope() as session:
        found = session.get(Endpoint, endpoint_id)
        assert found is not None
        return found


def all_matched(events: list) -> bool:
    with session_scope() as session:
        ids = [e.event_id for e in events]
        matched = session.scalars(select(Event.matched_at).where(Event.id.in_(ids))).all()
        return len(matched) == len(ids) and all(m is not None for m in matched)


def test_a_410_disables_the_endpoint_tells_the_ops_endpoint_and_enable_sends_the_whole_backlog(
    receiver,
):
    # Given an application with an ops endpoint, and an endpoint whose receiver answers 410
    secret = set_ops_endpoint(receiver, default_application_id())
    answer = {"status": 410}
    receiver.responders["/gone"] = lambda n: (answer["status"], {}, b"")
    endpoint_id, endpoint_secret = add_endpoint(receiver.url("/gone"), contracts=[address(41)])
    receiver.secrets["/gone"] = endpoint_secret
    before = [transfer(contract=address(41), block=10, log_index=i, value=i) for i in range(3)]

    # When its first webhooks are answered 410
    publish_events(before)

    # Then it is disabled, and `endpoint.disabled` reaches the ops endpoint, signed with its secret
    wait_until(lambda: not endpoint_row(endpoint_id).active, 30, 0.1, "disabled by the 410")
    (told,) = wait_until(
        lambda: ops_of(receiver, "endpoint.disabled", endpoint_id=endpoint_id), 30, 0.1, "ops"
    )
    assert told.verified is True and secret
    assert told.headers["webhook-id"].startswith("ops_")
    data = told.json["data"]
    assert data["trigger"] == "automatic" and data["backlog"] == "kept"
    assert data["reason"] == "the endpoint answered 410 Gone" and data["active"] is False
    # …and none of its deliveries is dropped: they wait, held, not due
    assert len(rows(endpoint_id)) == 3
    assert all(d.status == DeliveryStatus.PENDING for d in rows(endpoint_id))
    gone_answers = len(receiver.on("/gone"))
    assert 1 <= gone_answers <= 3

    # When events match it while it is disabled
    during = [transfer(contract=address(41), block=11, log_index=i, value=10 + i) for i in range(4)]
    publish_events(during)

    # Then they are kept as held deliveries, numbered after the earlier ones, and nothing is sent
    wait_until(lambda: len(rows(endpoint_id)) == 7, 30, 0.1, "the backlog of 7")
    held = rows(endpoint_id)
    assert all(d.status == DeliveryStatus.PENDING for d in held)
    assert all(d.next_attempt_at is None for d in held[3:])
    assert sorted(d.sequence for d in held) == list(range(1, 8))
    assert len(receiver.on("/gone")) == gone_answers

    # When the receiver is back and the endpoint is enabled
    answer["status"] = 200
    enabled = ethhook("endpoint", "enable", str(endpoint_id))
    assert enabled.returncode == 0, enabled.stderr

    # Then the earlier deliveries and those events all arrive, once each, signed
    wait_until(
        lambda: all(d.status == DeliveryStatus.SUCCEEDED for d in rows(endpoint_id)),
        30,
        0.1,
        "the backlog sent",
    )
    accepted = [r for r in receiver.on("/gone") if r.status == 200]
    got = sorted(r.json["data"]["event_id"] for r in accepted)
    assert got == sorted(e.event_id for e in before + during)
    assert all(r.verified for r in accepted)
    assert sorted(r.json["sequence"] for r in accepted) == list(range(1, 8))
    assert len(ops_of(receiver, "endpoint.disabled")) == 1


def test_disable_discard_drops_the_backlog_records_it_and_keeps_nothing_until_enabled(receiver):
    # Given an endpoint waiting for confirmations the chain never reaches here: its deliveries wait
    endpoint_id, _ = add_endpoint(
        receiver.url("/later"), contracts=[address(42)], confirmations=100
    )
    first = [transfer(contract=address(42), block=20, log_index=i, value=i) for i in range(2)]
    publish_events(first)
    wait_until(lambda: len(rows(endpoint_id)) == 2, 30, 0.1, "two waiting deliveries")

    # When it is disabled with --discard
    result = ethhook("endpoint", "disable", str(endpoint_id), "--discard", "--json")

    # Then its unsent deliveries end `discarded`, with the reason; none is deleted
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["active"] is False and shown["backlog"] == "discarded"
    dropped = rows(endpoint_id)
    assert [d.status for d in dropped] == [DeliveryStatus.DISCARDED] * 2
    assert all(d.last_error == DISCARDED_REASON for d in dropped)
    assert endpoint_row(endpoint_id).discard_while_disabled is True

    # And events that match it meanwhile are not kept
    meanwhile = [transfer(contract=address(42), block=21, log_index=0, value=5)]
    publish_events(meanwhile)
    wait_until(lambda: all_matched(meanwhile), 30, 0.1, "the event matched")
    assert len(rows(endpoint_id)) == 2

    # When it is enabled again, it takes new events as before (and keeps its backlog from now)
    assert ethhook("endpoint", "enable", str(endpoint_id)).returncode == 0
    assert endpoint_row(endpoint_id).discard_while_disabled is False
    after = [transfer(contract=address(42), block=22, log_index=0, value=6)]
    publish_events(after)
    wait_until(lambda: len(rows(endpoint_id)) == 3, 30, 0.1, "a delivery after enable")
    assert rows(endpoint_id)[-1].status == DeliveryStatus.WAITING
    assert receiver.on("/later") == []


def test_a_disabled_endpoint_without_discard_keeps_waiting_deliveries_and_says_so(receiver):
    endpoint_id, _ = add_endpoint(receiver.url("/paused"), contracts=[address(43)])
    result = ethhook("endpoint", "disable", str(endpoint_id), "--reason", "maintenance", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["backlog"] == "kept"
    events = [transfer(contract=address(43), block=30, log_index=i, value=i) for i in range(2)]
    publish_events(events)
    wait_until(lambda: len(rows(endpoint_id)) == 2, 30, 0.1, "kept as backlog")
    assert all(d.next_attempt_at is None for d in rows(endpoint_id))
    # A later --discard drops what it kept
    assert ethhook("endpoint", "disable", str(endpoint_id), "--discard").returncode == 0
    assert [d.status for d in rows(endpoint_id)] == [DeliveryStatus.DISCARDED] * 2
    assert endpoint_row(endpoint_id).disabled_reason == "disabled by an operator"
    assert receiver.on("/paused") == []


def test_enabling_an_active_endpoint_leaves_its_retries_on_their_schedule(receiver):
    receiver.responders["/slow"] = lambda n: (500, {}, b"")
    endpoint_id, _ = add_endpoint(
        receiver.url("/slow"), contracts=[address(44)], retry_schedule="0,3600"
    )
    publish_events([transfer(contract=address(44), block=40, log_index=0, value=1)])
    wait_until(lambda: (d := rows(endpoint_id)) and d[0].attempts == 1, 30, 0.1, "one attempt")
    later = rows(endpoint_id)[0].next_attempt_at
    assert ethhook("endpoint", "enable", str(endpoint_id)).returncode == 0
    assert rows(endpoint_id)[0].next_attempt_at == later


def test_the_listener_still_reads_the_contract_of_a_disabled_endpoint_that_keeps_its_backlog():
    # Who else could lose a disabled endpoint's backlog: the listener, which asks the node only
    # for the contracts that endpoints watch. Events of a contract that only a disabled endpoint
    # watches must still be read and stored while it keeps its backlog (a 410 disables it as
    # its webhooks fail, and the next events went unread), and need not be once it discards.
    from ethhook.listen.store import load_watch_list

    kept, _ = add_endpoint("http://127.0.0.1:9/kept", contracts=[address(45)])
    dropped, _ = add_endpoint("http://127.0.0.1:9/dropped", contracts=[address(46)])
    add_endpoint("http://127.0.0.1:9/active", contracts=[address(47)])
    assert ethhook("endpoint", "disable", str(kept)).returncode == 0
    assert ethhook("endpoint", "disable", str(dropped), "--discard").returncode == 0

    assert load_watch_list().addresses_for(1) == frozenset({address(45), address(47)})

    assert ethhook("endpoint", "enable", str(dropped)).returncode == 0
    assert load_watch_list().addresses_for(1) == frozenset({address(45), address(46), address(47)})

"""Stored events to a real Celery worker on real Redis; signed webhooks at loopback receivers."""

from __future__ import annotations

import itertools
import time

import pytest
import redis
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import Delivery, DeliveryAttempt, DeliveryStatus
from ethhook.types import ChainEvent
from tests.support.cli import ethhook
from tests.support.db import publish_events
from tests.support.endpoints import add_endpoint
from tests.support.factories import (
    APPROVAL,
    APPROVAL_TOPIC,
    TRANSFER,
    TRANSFER_TOPIC,
    address,
    transfer,
)
from tests.support.fixtures import session_worker_without
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("db", "worker")


def mixed_events(n: int) -> list[ChainEvent]:
    """n events over three chains, four contracts and two event types."""
    chains = [1, 10, 8453]
    contracts = [address(i) for i in range(1, 5)]
    topics = [TRANSFER_TOPIC, APPROVAL_TOPIC]
    combos = itertools.cycle(itertools.product(chains, contracts, topics))
    events = []
    for i in range(n):
        chain_id, contract, topic0 = next(combos)
        events.append(
            transfer(
                chain_id=chain_id,
                contract=contract,
                block=1000 + i // 10,
                log_index=i % 10,
                value=i,
                topic0=topic0,
            )
        )
    return events


def test_1000_events_reach_exactly_the_matching_endpoints_once_each_and_signed(receiver):
    c1, c2, c3 = address(1), address(2), address(3)
    filters = {
        "/one": dict(chains=["1"], contracts=[c1, c2]),
        "/two": dict(chains=["ethereum", "optimism"], events=[TRANSFER]),
        "/three": dict(contracts=[c2, c3], events=[TRANSFER, APPROVAL]),
    }
    for path, kw in filters.items():
        _, secret = add_endpoint(receiver.url(path), **kw)
        receiver.secrets[path] = secret
    events = mixed_events(1000)

    def wanted(path: str, e: ChainEvent) -> bool:
        if path == "/one":
            return e.chain_id == 1 and e.address in (c1, c2)
        if path == "/two":
            return e.chain_id in (1, 10) and e.topic0 == TRANSFER_TOPIC
        return e.address in (c2, c3)

    expected = {(p, e.event_id) for p in filters for e in events if wanted(p, e)}
    assert 600 < len(expected) < 3000

    publish_events(events)
    wait_until(lambda: len(receiver.requests) >= len(expected), 120, 0.2, "all webhooks")
    time.sleep(2)  # anything extra (a duplicate) would arrive now
    got = [(r.path, r.json["data"]["event_id"]) for r in receiver.requests]
    assert len(got) == len(expected)
    assert set(got) == expected
    assert all(r.verified for r in receiver.requests)
    ids = [r.webhook_id for r in receiver.requests]
    assert len(set(ids)) == len(ids)
    sample = next(r for r in receiver.requests if r.path == "/two")
    body = sample.json
    assert body["type"] == "event.instant"
    assert body["data"]["decoded"]["event"] == "Transfer"
    assert set(body["data"]["decoded"]["args"]) == {"from", "to", "value"}
    assert isinstance(body["data"]["decoded"]["args"]["value"], str)
    assert next(r for r in receiver.requests if r.path == "/one").json["data"]["decoded"] is None
    assert sample.headers["user-agent"].startswith("EthHook/")


def test_failed_attempts_follow_the_schedule_then_dead_letter_and_manual_retry_sends_again(
    receiver,
):
    answers = {"status": 500}
    receiver.responders["/down"] = lambda n: (
        answers["status"],
        {},
        b"boom: database is on fire" * 100,
    )
    endpoint_id, secret = add_endpoint(receiver.url("/down"), retry_schedule="0,1,2")
    receiver.secrets["/down"] = secret
    publish_events([transfer(contract=address(5), block=1, log_index=0, value=1)])

    def delivery() -> Delivery | None:
        with session_scope() as session:
            return session.scalars(
                select(Delivery).where(Delivery.endpoint_id == endpoint_id)
            ).first()

    wait_until(
        lambda: (d := delivery()) and d.status == DeliveryStatus.FAILED, 60, 0.2, "dead letter"
    )
    d = delivery()
    assert d is not None and d.attempts == 3 and d.last_status_code == 500
    with session_scope() as session:
        attempts = session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == d.id)
            .order_by(DeliveryAttempt.attempt_number)
        ).all()
    assert [a.attempt_number for a in attempts] == [1, 2, 3]
    assert all(a.status_code == 500 and a.duration_ms > 0 for a in attempts)
    assert all(a.response_body.startswith("boom: database is on fire") for a in attempts)
    assert all(len(a.response_body) == 1024 for a in attempts)
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.8, gaps
    requests = receiver.on("/down")
    assert len(requests) == 3 and len({r.webhook_id for r in requests}) == 1

    answers["status"] = 200
    result = ethhook("delivery", "retry", str(d.id))
    assert result.returncode == 0, result.stderr
    wait_until(lambda: delivery().status == DeliveryStatus.SUCCEEDED, 30, 0.2, "manual retry")
    requests = receiver.on("/down")
    assert len(requests) == 4 and requests[-1].verified
    assert requests[-1].webhook_id == requests[0].webhook_id


def test_retry_by_filter_resends_every_failed_delivery_of_an_endpoint(receiver):
    answers = {"status": 503}
    receiver.responders["/flaky"] = lambda n: (answers["status"], {}, b"")
    endpoint_id, _ = add_endpoint(receiver.url("/flaky"), retry_schedule="0")
    publish_events([transfer(contract=address(6), block=2, log_index=i, value=i) for i in range(5)])

    def statuses() -> list[str]:
        with session_scope() as session:
            return list(
                session.scalars(select(Delivery.status).where(Delivery.endpoint_id == endpoint_id))
            )

    wait_until(lambda: statuses() == ["failed"] * 5, 30, 0.2, "five dead letters")
    answers["status"] = 204
    result = ethhook(
        "delivery", "retry", "--status", "failed", "--endpoint", str(endpoint_id), "--json"
    )
    assert result.returncode == 0, result.stderr
    assert '"count": 5' in result.stdout
    wait_until(lambda: statuses() == ["succeeded"] * 5, 30, 0.2, "five retried")
    assert len(receiver.on("/flaky")) == 10


def test_flushing_redis_before_workers_ran_loses_no_delivery(receiver, worker, redis_server):
    endpoint_id, secret = add_endpoint(receiver.url("/durable"))
    receiver.secrets["/durable"] = secret
    events = [
        transfer(contract=address(8), block=5 + i // 50, log_index=i % 50, value=i)
        for i in range(200)
    ]
    with session_worker_without("deliver"):
        publish_events(events)

        def created() -> int:
            with session_scope() as session:
                return len(
                    session.scalars(
                        select(Delivery.id).where(Delivery.endpoint_id == endpoint_id)
                    ).all()
                )

        wait_until(lambda: created() == 200, 60, 0.2, "deliveries created")
        assert receiver.requests == []
        redis.Redis.from_url(redis_server).flushall()
    wait_until(lambda: len(receiver.on("/durable")) >= 200, 90, 0.2, "every webhook after FLUSHALL")
    time.sleep(1)
    got = receiver.on("/durable")
    assert len(got) == 200 and len({r.webhook_id for r in got}) == 200
    assert all(r.verified for r in got)


def test_an_auto_disabled_endpoint_holds_its_deliveries_until_enabled(receiver):
    answers = {"status": 500}
    receiver.responders["/dead"] = lambda n: (answers["status"], {}, b"")
    endpoint_id, _ = add_endpoint(receiver.url("/dead"), retry_schedule="0,2,2,2,2,2")
    publish_events(
        [transfer(contract=address(11), block=9, log_index=i, value=i) for i in range(10)]
    )
    wait_until(lambda: len(receiver.on("/dead")) >= 10, 30, 0.1, "the first attempts")

    from ethhook.db.models import utcnow
    from ethhook.maintenance import jobs

    with session_scope() as session:
        assert jobs.auto_disable(session, utcnow(), after_s=0.001) == [endpoint_id]
    answers["status"] = 200

    def none_held() -> bool:  # tasks that claimed deliveries before the disable have finished
        with session_scope() as session:
            return not session.scalars(
                select(Delivery.id).where(
                    Delivery.endpoint_id == endpoint_id, Delivery.lease_token.is_not(None)
                )
            ).first()

    wait_until(none_held, 30, 0.1, "the tasks in flight at the disable to finish")
    seen = len(receiver.on("/dead"))
    time.sleep(4)  # past the retry delay: nothing is sent to a disabled endpoint
    assert len(receiver.on("/dead")) == seen

    assert ethhook("endpoint", "enable", str(endpoint_id)).returncode == 0
    wait_until(
        lambda: len({r.webhook_id for r in receiver.on("/dead") if r.status == 200}) == 10,
        30,
        0.2,
        "the deliveries that waited",
    )

    def statuses() -> list[str]:  # a window's attempts are recorded after its answers arrived
        with session_scope() as session:
            return list(
                session.scalars(select(Delivery.status).where(Delivery.endpoint_id == endpoint_id))
            )

    wait_until(
        lambda: statuses() == [DeliveryStatus.SUCCEEDED] * 10, 30, 0.2, "the 10 recorded sent"
    )

"""Circuit breakers and rate limits in real Redis, the SSRF guard, secret rotation, beat jobs."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select, update
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
    Event,
    utcnow,
)
from ethhook.deliver.http import ssrf
from ethhook.deliver.protect.breaker import CLOSED, HALF_OPEN, OPEN, EndpointBreaker
from ethhook.deliver.protect.ratelimit import RateLimiter
from ethhook.deliver.service import deliver
from ethhook.maintenance import jobs
from ethhook.service.endpoints import rotate_secret
from tests.support.cli import ethhook
from tests.support.db import row_counts, store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer
from tests.support.waiting import wait_until


@pytest.fixture()
def r(redis_server):
    client = redis.Redis.from_url(redis_server + "/1")
    client.flushdb()
    yield client
    client.close()


# --- circuit breaker ----------------------------------------------------------------------------


def test_breaker_state_is_shared_between_processes_objects_and_has_one_trial(r):
    a = EndpointBreaker(r, 1, fail_max=3, reset_timeout_s=1, trial_ttl_s=5)
    b = EndpointBreaker(r, 1, fail_max=3, reset_timeout_s=1, trial_ttl_s=5)
    assert a.before_request() == 0 and a.state() == CLOSED
    assert not a.record_failure() and not b.record_failure()
    assert b.record_failure() is True  # the third failure, counted across both objects
    assert a.state() == OPEN and 0 < a.before_request() <= 1
    time.sleep(1.1)
    trials = [a.before_request(), b.before_request()]
    assert sorted(trials)[0] == 0 and sorted(trials)[1] > 0  # exactly one gets the trial
    assert a.state() == HALF_OPEN
    winner = a if trials[0] == 0 else b
    winner.record_success()
    assert a.state() == CLOSED and b.before_request() == 0


def test_the_reset_timeout_counts_from_the_opening_to_the_millisecond(r):
    # pybreaker stores the opening in whole seconds: opened at x.7 s, a 0.5 s reset would end at
    # x.5 s, before the breaker even opened.
    br = EndpointBreaker(r, 3, fail_max=1, reset_timeout_s=0.5, trial_ttl_s=5)
    while not 0.6 <= time.time() % 1 < 0.8:
        time.sleep(0.01)
    assert br.record_failure() and br.state() == OPEN
    assert 0.3 < br.before_request() <= 0.5
    time.sleep(0.55)
    assert br.before_request() == 0 and br.state() == HALF_OPEN


def test_a_failed_trial_reopens_the_breaker(r):
    br = EndpointBreaker(r, 2, fail_max=1, reset_timeout_s=1, trial_ttl_s=5)
    assert br.record_failure() and br.state() == OPEN
    time.sleep(1.1)
    assert br.before_request() == 0 and br.state() == HALF_OPEN
    assert br.record_failure() and br.state() == OPEN
    assert br.before_request() > 0


# --- rate limit ---------------------------------------------------------------------------------


def test_rate_limit_spaces_requests_across_limiter_objects(r):
    limiters = [RateLimiter(r), RateLimiter(r)]
    sent: list[float] = []
    deadline = time.monotonic() + 3
    i = 0
    while time.monotonic() < deadline:
        wait = limiters[i % 2].acquire(7, 5.0)
        i += 1
        if wait == 0:
            sent.append(time.monotonic())
        else:
            assert wait <= 0.2 + 1e-3
            time.sleep(wait)
    assert 14 <= len(sent) <= 16
    worst = max(sum(1 for t in sent if start <= t < start + 1) for start in sent)
    assert worst <= 6


# --- SSRF ---------------------------------------------------------------------------------------

PRIVATE_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]:8080/hook",
    "http://localhost:8080/hook",  # a host name that resolves to a private address
    "http://100.64.0.1/hook",
]


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_targets_are_refused_at_registration_unless_allowed(url):
    refused = ethhook(
        "endpoint", "add", "--url", url, env={"ETHHOOK_ALLOW_PRIVATE_TARGETS": "false"}
    )
    assert refused.returncode == 2
    assert (
        "refused URL" in refused.stderr and "ETHHOOK_ALLOW_PRIVATE_TARGETS=true" in refused.stderr
    )
    assert row_counts()["endpoints"] == 0
    allowed = ethhook(
        "endpoint", "add", "--url", url, env={"ETHHOOK_ALLOW_PRIVATE_TARGETS": "true"}
    )
    assert allowed.returncode == 0, allowed.stderr


def _deliver_now(endpoint_id: int, settings=None) -> None:  # noqa: ANN001
    """Create one delivery for the endpoint and run the delivery code in this process."""
    contract = address(50)
    with session_scope() as session:
        groups = store_and_match(
            session, [transfer(contract=contract, block=1, log_index=0, value=1)], utcnow()
        )
    for group in groups:
        if group.endpoint_id == endpoint_id:
            deliver(
                session_scope,
                settings or get_settings(),
                endpoint_id,
                group.delivery_ids,
                group.token,
            )


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_targets_are_refused_at_connect_time_unless_allowed(receiver, host):
    endpoint_id, _ = add_endpoint(receiver.url("/guarded").replace("127.0.0.1", host))
    guarded = get_settings().__class__(
        **{**get_settings().__dict__, "allow_private_targets": False}
    )
    _deliver_now(endpoint_id, guarded)
    with session_scope() as session:
        attempt = session.scalars(select(DeliveryAttempt)).one()
    assert attempt.status_code is None and "refused to connect" in (attempt.error or "")
    assert receiver.on("/guarded") == []
    _deliver_again(endpoint_id)  # with the test settings: private targets allowed
    assert len(receiver.on("/guarded")) == 1


def _deliver_again(endpoint_id: int) -> None:
    with session_scope() as session:
        ids = session.scalars(select(Delivery.id).where(Delivery.endpoint_id == endpoint_id)).all()
        session.execute(
            update(Delivery).values(
                status=DeliveryStatus.PENDING,
                next_attempt_at=utcnow(),
                lease_token=None,
                lease_expires_at=None,
            )
        )
    deliver(session_scope, get_settings(), endpoint_id, ids, "none")


@pytest.mark.usefixtures("db")
def test_a_dns_answer_that_changes_after_registration_is_refused_at_connect_time(
    receiver, monkeypatch
):
    answers = iter([[(2, 1, 6, "", ("93.184.216.34", 80))]])  # public at registration time

    def resolve(host, port):  # noqa: ANN001
        try:
            return next(answers)
        except StopIteration:
            return [(2, 1, 6, "", ("127.0.0.1", port))]  # …then it points inside

    monkeypatch.setattr(ssrf, "resolve", resolve)
    guarded = get_settings().__class__(
        **{**get_settings().__dict__, "allow_private_targets": False}
    )
    spec_url = f"http://rebinding.test:{receiver.port}/rebind"
    ssrf.check_url(spec_url)  # passes: the first answer is public
    endpoint_id, _ = add_endpoint(spec_url)
    _deliver_now(endpoint_id, guarded)
    with session_scope() as session:
        attempt = session.scalars(select(DeliveryAttempt)).one()
    # A host name's address is not told to the endpoint's owner (the log has it).
    refused = "refused to connect to rebinding.test: rebinding.test resolves to an address that"
    assert refused in attempt.error and "127.0.0.1" not in attempt.error
    assert receiver.requests == []


# --- secret rotation ----------------------------------------------------------------------------


@pytest.mark.usefixtures("db")
def test_during_the_grace_period_either_secret_verifies_and_after_it_only_the_new(receiver):
    endpoint_id, old = add_endpoint(receiver.url("/rot"))
    with session_scope() as session:
        new = rotate_secret(session, endpoint_id, grace_s=2, scope=None).secret
    _deliver_now(endpoint_id)
    during = receiver.on("/rot")[-1]
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)
    assert len(during.headers["webhook-signature"].split()) == 2
    time.sleep(2.1)
    _deliver_again(endpoint_id)
    after = receiver.on("/rot")[-1]
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)
    assert len(after.headers["webhook-signature"].split()) == 1


# --- beat jobs ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("db")
def test_cleanup_removes_only_rows_past_retention_in_batches_and_never_pending():
    endpoint_id, _ = add_endpoint("http://127.0.0.1:1/x", contracts=[address(60)])
    now = utcnow()
    events = [transfer(contract=address(60), block=1, log_index=i, value=i) for i in range(30)]
    with session_scope() as session:
        store_and_match(session, events, now - timedelta(days=40))
        ids = session.scalars(select(Delivery.id).order_by(Delivery.id)).all()
        old_done, old_pending, recent_done = ids[:20], ids[20:25], ids[25:]
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(old_done))
            .values(status=DeliveryStatus.SUCCEEDED, updated_at=now - timedelta(days=31))
        )
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(old_pending))
            .values(status=DeliveryStatus.PENDING, updated_at=now - timedelta(days=31))
        )
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(recent_done))
            .values(status=DeliveryStatus.FAILED, updated_at=now - timedelta(days=29))
        )
        for i in ids:
            session.add(
                DeliveryAttempt(
                    delivery_id=i,
                    attempt_number=1,
                    started_at=now - timedelta(days=35),
                    duration_ms=1.0,
                    status_code=500,
                )
            )
    with session_scope() as session:
        counts = jobs.cleanup(session, now, retention_days=30, batch_size=7)
    assert counts == {"attempts": 30, "deliveries": 20, "events": 20, "rollups": 0}
    with session_scope() as session:
        left = set(session.scalars(select(Delivery.id)).all())
        assert left == set(old_pending) | set(recent_done)
        assert session.scalar(select(func.count()).select_from(Event)) == 10
    assert endpoint_id


@pytest.mark.usefixtures("db")
def test_auto_disable_only_after_the_failing_period_and_enable_resumes():
    failing, _ = add_endpoint("http://127.0.0.1:1/failing")
    recent, _ = add_endpoint("http://127.0.0.1:1/recent")
    healthy, _ = add_endpoint("http://127.0.0.1:1/healthy")
    now = utcnow()
    with session_scope() as session:
        session.execute(
            update(Endpoint)
            .where(Endpoint.id == failing)
            .values(failing_since=now - timedelta(days=6))
        )
        session.execute(
            update(Endpoint)
            .where(Endpoint.id == recent)
            .values(failing_since=now - timedelta(days=1))
        )
    with session_scope() as session:
        assert jobs.auto_disable(session, now, after_s=5 * 86400) == [failing]
    with session_scope() as session:
        states = dict(session.execute(select(Endpoint.id, Endpoint.active)).all())
        reason = session.get(Endpoint, failing).disabled_reason
    assert states == {failing: False, recent: True, healthy: True}
    assert reason == "every delivery attempt failed for 5 days"
    assert ethhook("endpoint", "enable", str(failing)).returncode == 0
    with session_scope() as session:
        endpoint = session.get(Endpoint, failing)
        assert endpoint.active and endpoint.failing_since is None


def test_a_success_resets_failures_counted_by_other_workers(r):
    # Given failures recorded by other workers' breaker objects, below fail_max, after this
    # task's breaker last read the shared counter
    others = [
        EndpointBreaker(r, 3, fail_max=3, reset_timeout_s=30, trial_ttl_s=5) for _ in range(2)
    ]
    mine = EndpointBreaker(
        r, 3, fail_max=3, reset_timeout_s=30, trial_ttl_s=5, shared_count_read_s=0.3
    )
    assert mine.before_request() == 0  # the counter is 0 when this task starts
    read_at = time.monotonic()
    assert not others[0].record_failure() and not others[1].record_failure()
    # When this task's request succeeds once its breaker may read the counter again
    wait_until(lambda: time.monotonic() - read_at >= 0.3, 5, 0.05, "the counter's next read")
    mine.record_success()
    # Then the shared counter starts again from zero
    assert not others[0].record_failure() and not others[1].record_failure()
    assert mine.state() == CLOSED


class CountingRedis(redis.Redis):
    """A Redis client counting the commands it sends."""

    commands = 0

    def execute_command(self, *args, **options):
        self.commands += 1
        return super().execute_command(*args, **options)


def test_a_success_reads_other_workers_failures_at_most_once_an_interval(r):
    # Given a task's breaker that read the shared counter at its start, and two failures of
    # other workers since
    other = EndpointBreaker(r, 4, fail_max=3, reset_timeout_s=30, trial_ttl_s=5)
    client = CountingRedis(connection_pool=r.connection_pool)
    mine = EndpointBreaker(
        client, 4, fail_max=3, reset_timeout_s=30, trial_ttl_s=5, shared_count_read_s=60
    )
    assert mine.before_request() == 0
    assert not other.record_failure() and not other.record_failure()
    # When its requests succeed within the interval, Redis is not asked after each window
    asked = client.commands
    mine.record_success()
    mine.record_success()
    assert client.commands == asked
    # Then the others' failures still count, and a failure of its own resets them all at its
    # next success
    assert mine.record_failure() is True  # the third failure opens the breaker
    assert mine.state() == OPEN
    mine.record_success()
    assert mine.state() == CLOSED
    assert not other.record_failure() and not other.record_failure()

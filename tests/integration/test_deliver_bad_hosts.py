"""An endpoint whose host name cannot even be looked up (an empty or too long label): each attempt
is recorded as a failure and follows its retry schedule; the task does not crash on it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ethhook.db import session_scope
from ethhook.db.models import DeliveryStatus, Endpoint
from tests.support.db import deliveries, publish_events
from tests.support.endpoints import SCHEDULE, add_endpoint
from tests.support.factories import address, transfer
from tests.support.fixtures import session_worker_without
from tests.support.services import Worker
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]


@pytest.fixture(params=["threads", "gevent"])
def guarded_deliver_worker(request: pytest.FixtureRequest) -> Iterator[None]:
    """A deliver worker with the SSRF guard on (each pool has its own client) instead of the
    session worker, which allows private targets for the suite's loopback receivers."""
    with session_worker_without("deliver"):  # consuming again even when this one did not start
        worker = Worker(
            f"deliver-guarded-{request.param}-{os.getpid()}",
            {"ETHHOOK_ALLOW_PRIVATE_TARGETS": "false"},
            beat=False,
            pool=request.param,
            queues="deliver",
        )
        yield
        worker.stop()


@pytest.mark.usefixtures("guarded_deliver_worker")
@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".example"])
def test_a_host_name_that_cannot_be_looked_up_fails_each_attempt_on_schedule(host):
    contract = address(84)
    endpoint_id, _ = add_endpoint(
        f"http://{host}/hook", contracts=[contract], retry_schedule=SCHEDULE
    )
    publish_events([transfer(contract=contract, block=9, log_index=i, value=i) for i in range(2)])

    def all_failed() -> bool:
        rows = deliveries(endpoint_id)
        return len(rows) == 2 and all(d.status == DeliveryStatus.FAILED for d, _ in rows.values())

    wait_until(all_failed, 30, 0.2, "both deliveries to be failed")
    for delivery, attempts in deliveries(endpoint_id).values():
        assert [(a.attempt_number, a.status_code) for a in attempts] == [
            (1, None),
            (2, None),
            (3, None),
        ]
        expected = f"connection error: Failed to resolve '{host}' ("
        errors = [a.error for a in attempts]
        assert all(e and e.startswith(expected) for e in errors), errors
        assert delivery.last_error == attempts[-1].error
    with session_scope() as session:
        endpoint = session.get(Endpoint, endpoint_id)
        assert endpoint is not None and endpoint.failing_since is not None

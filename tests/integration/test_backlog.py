"""A deliver queue whose backlog outlasts the dispatch lease drains, and its messages do work.

The pipeline here runs on a database and broker databases of its own (the session's worker and
its beat would otherwise lease these rows too), with a 4 s dispatch lease and a deliver worker of
two threads (10 deliveries a task), so 1,500 deliveries wait in the queue for several lease
periods while beat scans every 0.5 s. Before the fix, beat leased the queued deliveries to new
messages every lease period and the queued messages found them taken: 58 % of deliver tasks
claimed nothing here, 97 % with 2,000 deliveries and a 3 s lease (ops/RELIABILITY.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from ethhook.config import get_settings
from ethhook.db.models import Delivery, DeliveryAttempt, DeliveryStatus, utcnow
from ethhook.service.endpoints import create_endpoint
from ethhook.service.scope import OPERATOR
from ethhook.service.validation import build_spec
from tests.support.db import add_pending_deliveries
from tests.support.env import BIN, PG_ADMIN_URL, REDIS_PORT
from tests.support.factories import address, transfer
from tests.support.services import Worker

DELIVERIES = 1500
PER_TASK = 10
DRAIN_BOUND_S = 60
DATABASE = f"ethhook_backlog_{uuid.uuid4().hex[:8]}"
TASK_DONE = re.compile(
    r"deliver\.task\.done endpoint=\d+ sent=(\d+) .* released=(\d+) skipped=(\d+)"
)


@pytest.fixture(scope="module")
def private_url(redis_server: str) -> Iterator[str]:
    """A migrated database that only this module's workers scan."""
    admin = create_engine(f"{PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    url = f"{PG_ADMIN_URL}/{DATABASE}"
    env = {**os.environ, "ETHHOOK_DATABASE_URL": url}
    subprocess.run(
        [str(BIN / "ethhook"), "db", "upgrade"], check=True, env=env, capture_output=True
    )
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    admin.dispose()


def _queue_backlog(session: Session, url: str) -> int:
    """One endpoint at `url` and DELIVERIES pending deliveries to it, due now, leased to nobody."""
    spec = build_spec(
        url=url,
        chains=[],
        contracts=[],
        events=[],
        confirmations=0,
        rate_limit_per_s=None,
        retry_schedule=None,
        name="backlog",
        settings=get_settings(),
    )
    endpoint_id = create_endpoint(session, spec, scope=OPERATOR).endpoint.id
    now = utcnow()
    events = [
        transfer(contract=address(50), block=100 + i // 100, log_index=i % 100, value=i)
        for i in range(DELIVERIES)
    ]
    add_pending_deliveries(session, endpoint_id, events, now)
    return endpoint_id


def _task_counts(log: str) -> tuple[int, int]:
    """(deliver tasks run, tasks that claimed nothing) from the deliver worker's log."""
    done = [tuple(map(int, m.groups())) for m in TASK_DONE.finditer(log)]
    return len(done), sum(1 for sent, released, _ in done if sent == 0 and released == 0)


def test_a_backlog_longer_than_the_dispatch_lease_drains_with_few_useless_tasks(
    private_url, receiver
):
    env = {
        "ETHHOOK_DATABASE_URL": private_url,
        "ETHHOOK_BROKER_URL": f"redis://127.0.0.1:{REDIS_PORT}/4",
        "ETHHOOK_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/5",
        "ETHHOOK_DISPATCH_LEASE_S": "4",
        "ETHHOOK_DELIVERIES_PER_TASK": str(PER_TASK),
    }
    deliverer = Worker("backlog-deliver", env, beat=False, concurrency=2, queues="deliver")
    beat = Worker("backlog-beat", env, beat=True, concurrency=1, queues="maintenance")
    engine = create_engine(private_url)
    try:
        with Session(engine) as session, session.begin():
            _queue_backlog(session, receiver.url("/backlog"))
        started = time.monotonic()

        def succeeded() -> int:
            with Session(engine) as session:
                return (
                    session.scalar(
                        select(func.count()).where(Delivery.status == DeliveryStatus.SUCCEEDED)
                    )
                    or 0
                )

        deadline = started + DRAIN_BOUND_S
        while (sent := succeeded()) < DELIVERIES and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        time.sleep(2)  # tasks still queued run (and find nothing) or are logged
        with Session(engine) as session:
            attempts = session.scalar(select(func.count()).select_from(DeliveryAttempt))
        tasks, empty = _task_counts(deliverer.log())
        logs = f"deliver log:\n{deliverer.log()[-2500:]}\nbeat log:\n{beat.log()[-2500:]}"
    finally:
        beat.stop()
        deliverer.stop()
        engine.dispose()
    got = receiver.on("/backlog")
    print(
        f"\nbacklog: {sent} of {DELIVERIES} deliveries sent in {elapsed:.1f} s "
        f"({sent / elapsed:.0f}/s), {tasks} deliver tasks, {empty} claimed nothing "
        f"({empty / max(tasks, 1):.0%})"
    )
    assert sent == DELIVERIES, f"the backlog did not drain within {DRAIN_BOUND_S} s\n{logs}"
    assert len(got) == DELIVERIES and len({r.webhook_id for r in got}) == DELIVERIES
    assert attempts == DELIVERIES
    assert empty <= 0.1 * tasks

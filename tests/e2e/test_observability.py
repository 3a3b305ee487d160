"""Issue 5, acceptance 3: /metrics counters agree with the database; /health turns unhealthy fast."""

from __future__ import annotations

import re
import time

import pytest
import requests
from sqlalchemy import func, select

from ethhook.db import session_scope
from ethhook.db.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from tests.support.chain import Token
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER
from tests.support.fixtures import session_worker_without
from tests.support.services import Worker
from tests.support.waiting import free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]


def sample(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def count(model, *where) -> int:  # noqa: ANN001
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_metrics_agree_with_the_database_and_health_follows_the_node(
    receiver, start_anvil, start_listener
):
    node = start_anvil(chain_id=1)
    token = Token(node)
    add_endpoint(receiver.url("/ok"), contracts=[token.address], events=[TRANSFER])
    receiver.responders["/flaky"] = lambda i: (500, {}, b"") if i % 4 == 0 else (200, {}, b"")
    # Requests go out several at a time, so which delivery meets a failing request is random:
    # enough attempts that none fails every one (150 × 0.25^10 ≈ 0.0001).
    add_endpoint(receiver.url("/flaky"), contracts=[token.address], retry_schedule="0" + ",1" * 9)
    listener_port, worker_port = free_port(), free_port()
    with session_worker_without("deliver"):
        observed = Worker(
            "observed",
            beat=False,
            queues="deliver",
            extra_env={"ETHHOOK_WORKER_METRICS_PORT": str(worker_port)},
        )
        try:
            listener = start_listener(
                {"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url},
                extra_env={"ETHHOOK_METRICS_PORT": str(listener_port)},
            )
            listener.wait_started(1)
            for k in range(6):
                token.emit_transfers(25, 100 + 25 * k)
            wait_until(
                lambda: count(Delivery, Delivery.status == DeliveryStatus.SUCCEEDED) == 300,
                60,
                0.3,
                "every delivery to succeed",
            )
            time.sleep(1)

            listener_text = requests.get(
                f"http://127.0.0.1:{listener_port}/metrics", timeout=10
            ).text
            worker_text = requests.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=10).text
            assert (
                sample(listener_text, "events_received_total", 'chain="ethereum"')
                == count(Event)
                == 150
            )
            assert sample(worker_text, "webhooks_delivered_total", 'status="success"') == 300
            attempts = count(DeliveryAttempt)
            failures = sample(worker_text, "webhooks_delivered_total", 'status="failure"')
            assert failures > 0 and 300 + failures == attempts
            assert re.search(r"^deliveries_pending 0\.0$", worker_text, re.M)

            node.stop()
            stopped = time.monotonic()

            def unhealthy() -> bool:
                return (
                    requests.get(f"http://127.0.0.1:{listener_port}/health", timeout=5).status_code
                    == 503
                )

            wait_until(unhealthy, 10, 0.2, "/health to turn unhealthy")
            assert time.monotonic() - stopped <= 10
        finally:
            observed.stop()

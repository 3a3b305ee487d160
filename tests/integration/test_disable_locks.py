"""Disabling an endpoint while a deliver task is recording its attempts: the disable must not
wait for the rows the task holds (the task then wants the endpoint's row, which the disable
holds: PostgreSQL would abort one of them as a deadlock). Two real transactions on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from ethhook.db import get_engine, session_scope
from ethhook.db.models import Delivery, utcnow
from ethhook.workqueue import DisableTrigger, disable_endpoints, settle_disabled
from tests.support.db import add_pending_deliveries
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer

pytestmark = pytest.mark.usefixtures("db", "without_session_worker")


def held(endpoint_id: int) -> list[bool]:
    with session_scope() as session:
        due = session.scalars(
            select(Delivery.next_attempt_at)
            .where(Delivery.endpoint_id == endpoint_id)
            .order_by(Delivery.id)
        )
        return [at is None for at in due]


def test_a_disable_leaves_the_rows_a_recording_task_holds_and_the_task_settles_them():
    endpoint_id, _ = add_endpoint("https://hooks.example.com/", contracts=[address(5)])
    events = [transfer(contract=address(5), block=3, log_index=i, value=i) for i in range(3)]
    with session_scope() as session:
        first, *_ = add_pending_deliveries(session, endpoint_id, events, utcnow())

    # Given a deliver task's transaction that has written its delivery's row (its record)
    with get_engine().connect() as task:
        task.execute(text("UPDATE deliveries SET updated_at = now() WHERE id = :id"), {"id": first})

        # When the endpoint is disabled meanwhile (auto-disable, a 410, an operator)
        outcome: list[object] = []

        def disable() -> None:
            try:
                with session_scope() as session:
                    outcome.append(
                        disable_endpoints(
                            session, [endpoint_id], "test", utcnow(), DisableTrigger.MANUAL
                        )
                    )
            except Exception as exc:  # noqa: BLE001 (the assertion below shows it)
                outcome.append(exc)

        disabling = threading.Thread(target=disable)
        disabling.start()
        disabling.join(10)

        # Then the disable did not wait for the task's row, and held the others
        assert outcome == [[endpoint_id]], outcome
        assert held(endpoint_id) == [False, True, True]

        # ... and the task goes on to the endpoint's row (its failing_since) and commits
        task.execute(
            text("UPDATE endpoints SET updated_at = now() WHERE id = :id"), {"id": endpoint_id}
        )
        task.commit()

    # ... and settles what it gave back once it finds the endpoint disabled
    with session_scope() as session:
        assert settle_disabled(session, endpoint_id, utcnow()) == 1
    assert held(endpoint_id) == [True, True, True]

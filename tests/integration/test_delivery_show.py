"""A delivery shown with its attempts is one moment of it, even while a worker records one more;
a retry never takes a delivery from the task sending it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, update

from ethhook.db import session_scope
from ethhook.db.models import Delivery, DeliveryAttempt, utcnow
from ethhook.service.deliveries import retry_deliveries, show_delivery
from ethhook.service.scope import OPERATOR
from ethhook.workqueue import new_claim_token, new_token
from tests.support.db import add_pending_deliveries
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer

pytestmark = pytest.mark.usefixtures("db")

URL = "http://127.0.0.1:9/hook"


def record_an_attempt(delivery_id: int) -> None:
    """What a deliver worker's flush commits: one attempt row and the delivery's count."""
    with session_scope() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        session.execute(
            insert(DeliveryAttempt).values(
                delivery_id=delivery_id,
                event_at=row.event_at,
                attempt_number=row.attempts + 1,
                started_at=utcnow(),
                duration_ms=5,
                status_code=500,
            )
        )
        session.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(attempts=row.attempts + 1)
        )


def test_an_attempt_recorded_while_a_delivery_is_read_is_in_both_its_count_and_list_or_neither():
    endpoint = add_endpoint(URL, contracts=[address(1)])[0]
    with session_scope() as session:
        made = transfer(contract=address(1), block=1, log_index=0, value=1)
        delivery_id = add_pending_deliveries(session, endpoint, [made], utcnow())[0]
    record_an_attempt(delivery_id)

    # A worker commits its flush right after show_delivery's first statement.
    statements: list[str] = []

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)
        if len(statements) == 1:
            record_an_attempt(delivery_id)

    with session_scope() as session:
        connection = session.connection()
        event.listen(connection, "after_cursor_execute", after)
        try:
            shown = show_delivery(session, delivery_id, scope=OPERATOR)
        finally:
            event.remove(connection, "after_cursor_execute", after)

    assert len(shown.attempts) == shown.delivery.attempt_count == 1, statements


def test_retrying_a_delivery_a_task_is_sending_leaves_it_to_that_task():
    endpoint = add_endpoint(URL, contracts=[address(1)])[0]
    made = [transfer(contract=address(1), block=1, log_index=i, value=1) for i in range(2)]
    with session_scope() as session:
        sending, queued = add_pending_deliveries(session, endpoint, made, utcnow())
    held_until = utcnow() + timedelta(minutes=1)
    tokens = {sending: new_claim_token(), queued: new_token()}
    with session_scope() as session:
        for delivery_id, token in tokens.items():
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(lease_token=token, lease_expires_at=held_until)
            )

    with session_scope() as session:
        plan = retry_deliveries(session, [sending, queued], scope=OPERATOR)

    # The one a worker claimed stays its; the one waiting for a queued message is leased anew.
    assert [g.delivery_ids for g in plan.groups] == [[queued]]
    with session_scope() as session:
        claimed = session.get(Delivery, sending)
        assert claimed is not None
        assert (claimed.lease_token, claimed.lease_expires_at) == (tokens[sending], held_until)
        again = session.get(Delivery, queued)
        assert again is not None and again.lease_token == plan.groups[0].token != tokens[queued]

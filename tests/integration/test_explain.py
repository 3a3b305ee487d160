"""service.explain on the database: each endpoint's verdict and reason for a stored transaction
(disabled, created after the block, confirmations, a delivery with its attempts), who sees what,
and one-line errors for an unknown chain or transaction."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import ChainCursor, Delivery, DeliveryStatus, Endpoint, utcnow
from ethhook.deliver.service import deliver
from ethhook.exceptions import InputError, NotFoundError
from ethhook.service import apps
from ethhook.service.explain import explain_transaction
from ethhook.service.public import Explanation
from ethhook.service.scope import OPERATOR, Scope
from tests.support.db import add_failed_attempt, store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER, address, transfer
from tests.support.receiver import Receiver

pytestmark = pytest.mark.usefixtures("db")

TOKEN = address(700)
URL = "http://127.0.0.1:9/hooks"


def explain(tx: str, scope: Scope = OPERATOR, chain: str = "ethereum") -> Explanation:
    with session_scope() as session:
        return explain_transaction(session, get_settings(), chain, tx, scope=scope)


def verdicts(found: Explanation) -> dict[int, tuple[bool, str | None]]:
    (log,) = found.logs
    return {e.endpoint_id: (e.matched, e.reason) for e in log.endpoints}


def now_event(block: int = 50, value: int = 7):  # noqa: ANN201
    return replace(
        transfer(contract=TOKEN, block=block, log_index=0, value=value),
        block_timestamp=int(time.time()),
    )


def test_each_endpoint_gets_its_verdict_and_the_deliveries_with_every_attempt():
    # Given a matching endpoint, one waiting for 5 confirmations, and one disabled, all watching
    # the token, and one more created after the block's time
    sent, _ = add_endpoint(URL, contracts=[TOKEN], events=[TRANSFER])
    waits, _ = add_endpoint(URL, contracts=[TOKEN], confirmations=5)
    off, _ = add_endpoint(URL, contracts=[TOKEN])
    with session_scope() as session:
        session.execute(
            update(Endpoint)
            .where(Endpoint.id == off)
            .values(active=False, disabled_reason="410 Gone")
        )
    event = now_event()
    with session_scope() as session:
        store_and_match(session, [event], utcnow())
        session.merge(
            ChainCursor(chain_id=1, block_number=52, block_hash="0x" + "0" * 64, head_number=52)
        )
    delivery = add_failed_attempt(sent, 500, 12.5)
    with session_scope() as session:
        session.execute(
            update(Endpoint)
            .where(Endpoint.id == sent)
            .values(created_at=utcnow() - timedelta(days=1))
        )
    later, _ = add_endpoint(URL, contracts=[TOKEN])
    with session_scope() as session:
        session.execute(
            update(Endpoint)
            .where(Endpoint.id == later)
            .values(created_at=utcnow() + timedelta(minutes=5))
        )

    # When the operator explains the transaction
    found = explain(event.transaction_hash.upper().replace("0X", "0x"))

    # Then each endpoint has its verdict, and the matched one its delivery with its attempt
    assert found.source == "database" and found.block_number == 50
    assert found.transaction_hash == event.transaction_hash and found.chain_id == 1
    (log,) = found.logs
    assert log.stored and log.event_id == event.event_id and log.address == TOKEN
    got = verdicts(found)
    # (its first attempt failed, and it is due again: its lease ends it)
    assert got[sent] == (
        True,
        "retrying: 1 attempt failed (the last: HTTP 500); the next is due now",
    )
    assert got[waits] == (
        True,
        "confirmations: 3 more blocks to go (the endpoint waits for 5: block 55; "
        "the chain is at block 52)",
    )
    # (a disabled endpoint keeps its backlog: the event is matched and waits for it)
    assert got[off] == (
        True,
        f"disabled: the endpoint is disabled (410 Gone); its deliveries are kept as backlog "
        f"(within retention) and sent by `ethhook endpoint enable {off}`",
    )
    assert got[later][0] is False and got[later][1].startswith(
        "created after the block: the endpoint was created at "
    )
    (shown,) = next(e for e in log.endpoints if e.endpoint_id == sent).deliveries
    assert shown.id == delivery.id and shown.status == "pending" and shown.sequence == 1
    assert shown.webhook_id.startswith("msg_") and shown.kind == "event.instant"
    (attempt,) = shown.attempts
    assert (attempt.attempt_number, attempt.status_code, attempt.error) == (1, 500, "HTTP 500")
    assert attempt.duration_ms == 12.5


def test_an_application_sees_only_its_own_endpoints():
    with session_scope() as session:
        mine = apps.create_application(session, "mine", scope=OPERATOR).application.id
        theirs = apps.create_application(session, "theirs", scope=OPERATOR).application.id
    own, _ = add_endpoint(URL, contracts=[TOKEN], application_id=mine)
    other, _ = add_endpoint(URL, contracts=[TOKEN], application_id=theirs)
    event = now_event()
    with session_scope() as session:
        store_and_match(session, [event], utcnow())
    assert set(verdicts(explain(event.transaction_hash, scope=mine))) == {own}
    assert set(verdicts(explain(event.transaction_hash, scope=theirs))) == {other}
    assert set(verdicts(explain(event.transaction_hash))) == {own, other}


@pytest.mark.parametrize(
    ("chain", "tx", "error", "words"),
    [
        ("nochain", "0x" + "ab" * 32, NotFoundError, "unknown chain 'nochain'"),
        ("424242", "0x" + "ab" * 32, NotFoundError, "unknown chain 424242"),
        ("ethereum", "0x1234", InputError, "invalid transaction hash '0x1234'"),
        (
            "ethereum",
            "0x" + "ab" * 32,
            NotFoundError,
            "EthHook stored none of its logs, and no node URL is set to ask "
            "(ETHEREUM_HTTP or ETHEREUM_WS)",
        ),
    ],
)
def test_an_unknown_chain_or_transaction_is_one_line(chain, tx, error, words):
    with pytest.raises(error) as raised:
        explain(tx, chain=chain)
    assert words in str(raised.value) and "\n" not in str(raised.value)


def test_one_endpoint_alone_and_an_answer_too_large_is_refused_before_it_is_built(monkeypatch):
    first, _ = add_endpoint(URL, contracts=[TOKEN])
    second, _ = add_endpoint(URL, contracts=[address(701)])
    event = now_event()
    with session_scope() as session:
        store_and_match(session, [event], utcnow())

    def answer(endpoint_id: int | None, scope: Scope = OPERATOR) -> Explanation:
        with session_scope() as session:
            return explain_transaction(
                session,
                get_settings(),
                "1",
                event.transaction_hash,
                scope=scope,
                endpoint_id=endpoint_id,
            )

    assert set(verdicts(answer(second))) == {second}
    assert verdicts(answer(first)) == {first: (True, None)}
    with session_scope() as session:
        other = apps.create_application(session, "other", scope=OPERATOR).application.id
    with pytest.raises(NotFoundError, match=f"no endpoint with id {first} "):
        answer(first, scope=other)  # another application's endpoint is missing, not forbidden

    monkeypatch.setattr("ethhook.service.explain.MAX_ANSWERS", 1)
    with pytest.raises(InputError) as refused:
        answer(None)
    assert str(refused.value) == (
        "the transaction has 1 logs and there are 2 endpoints: 2 answers, at most 1; "
        "explain it for one endpoint (--endpoint ID, endpoint_id=ID)"
    )
    assert set(verdicts(answer(second))) == {second}


def test_a_delivery_held_by_an_ordered_endpoints_head_names_the_head(receiver: Receiver):
    # Given an ordered endpoint whose receiver fails its first webhook (the next try an hour
    # later), and two events matched for it in one batch
    receiver.responders["/ledger"] = lambda i: (500, {}, b"down") if i == 0 else (200, {}, b"ok")
    endpoint_id, _ = add_endpoint(
        receiver.url("/ledger"), contracts=[TOKEN], ordered="pause", retry_schedule="0,3600"
    )
    first, second = (replace(now_event(value=v), log_index=v) for v in (1, 2))
    second = replace(second, transaction_hash="0x" + "5e" * 32)
    with session_scope() as session:
        (group,) = store_and_match(session, [first, second], utcnow())
    # When its task sends the head, which fails, and stops there
    report = deliver(session_scope, get_settings(), endpoint_id, group.delivery_ids, group.token)
    assert (report.sent, report.failed_attempts) == (1, 1)
    with session_scope() as session:
        head = session.scalars(
            select(Delivery).where(Delivery.endpoint_id == endpoint_id, Delivery.sequence == 1)
        ).one()
        head_id, next_try = head.id, head.next_attempt_at

    # Then the held delivery's transaction names the head it waits for, and the head's own
    # says when it is tried again
    assert verdicts(explain(second.transaction_hash))[endpoint_id] == (
        True,
        f"ordered: waits for delivery {head_id} (sequence 1), sent first: the endpoint's "
        f"webhooks go one at a time; it failed 1 attempt, next at {next_try:%Y-%m-%dT%H:%M:%SZ}",
    )
    assert verdicts(explain(first.transaction_hash))[endpoint_id] == (
        True,
        f"retrying: 1 attempt failed (the last: HTTP 500); the next at "
        f"{next_try:%Y-%m-%dT%H:%M:%SZ}",
    )

    # And once the head's next try is due (beat's scan has not sent it yet), that it is due
    with session_scope() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == head_id, Delivery.event_at == head.event_at)
            .values(next_attempt_at=utcnow() - timedelta(minutes=1))
        )
    assert verdicts(explain(second.transaction_hash))[endpoint_id] == (
        True,
        f"ordered: waits for delivery {head_id} (sequence 1), sent first: the endpoint's "
        "webhooks go one at a time; it failed 1 attempt, the next is due now",
    )

    # And once the head is dead-lettered, that it holds the endpoint, and how to go on
    with session_scope() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == head_id, Delivery.event_at == head.event_at)
            .values(status=DeliveryStatus.FAILED, next_attempt_at=None)
        )
    assert verdicts(explain(second.transaction_hash))[endpoint_id] == (
        True,
        f"ordered: delivery {head_id} (sequence 1) is dead-lettered and the deliveries after "
        f"it wait: retry it (`ethhook delivery retry {head_id}`) or skip past it (`ethhook "
        f"endpoint update {endpoint_id} --ordered=skip-dead`)",
    )

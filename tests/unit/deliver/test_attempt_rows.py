"""One attempt's rows, whatever its answer: nothing a receiver sends stops its flush's recording."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ethhook.db.models import DeliveryStatus
from ethhook.deliver.http import STORED_BODY_BYTES, HttpOutcome
from ethhook.deliver.store import EndpointView, Result, Work
from ethhook.deliver.store.attempts import _rows_total

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
ENDPOINT = EndpointView(
    id=7,
    url="https://hooks.example/w?key=secret",
    secrets=("whsec_x",),
    signatures=(),
    confirmations=0,
    retry_schedule_s=(0, 60, 60),
    rate_limit_per_s=None,
    active=True,
)


def rows_of(outcome: HttpOutcome, attempts: int = 0):  # noqa: ANN201
    work = Work(41, attempts, "msg_x", b"{}", 1_764_000_000, NOW)
    return _rows_total(ENDPOINT, Result(work, NOW, outcome), NOW)


def test_an_answer_its_rows_cannot_be_made_of_is_a_failed_attempt_saying_why():
    # Not a str: what no client gives today, standing for whatever the conversion cannot take.
    rows = rows_of(HttpOutcome(503, 12.5, retry_after=b"\xb2"))  # type: ignore[arg-type]
    delivery_id, number, started_at, duration_ms, status, error, body = rows.attempt
    assert (delivery_id, number, started_at, duration_ms, status, body) == (
        41,
        1,
        NOW,
        12.5,
        503,
        None,
    )
    assert error is not None and error.startswith("invalid answer: TypeError: ")
    state = rows.state
    assert (state.status, state.attempts, state.status_code) == (DeliveryStatus.PENDING, 1, 503)
    assert state.last_error == error
    assert NOW + timedelta(seconds=54) <= state.next_attempt_at <= NOW + timedelta(seconds=66)
    assert not rows.facts.dead_lettered


def test_its_last_attempt_fails_the_delivery_as_any_other():
    rows = rows_of(HttpOutcome(503, 1.0, retry_after=b"\xb2"), attempts=2)  # type: ignore[arg-type]
    assert (rows.state.status, rows.state.next_attempt_at) == (DeliveryStatus.FAILED, None)
    assert rows.facts.dead_lettered


def test_a_retry_after_that_is_not_one_is_ignored_and_the_status_kept():
    rows = rows_of(HttpOutcome(503, 1.0, body="busy", retry_after="\u00b2"))
    assert rows.attempt[4:] == (503, None, "busy")
    assert (rows.state.status, rows.state.last_error) == (DeliveryStatus.PENDING, "HTTP 503")
    assert rows.state.next_attempt_at <= NOW + timedelta(seconds=66)


def test_text_is_stored_without_nul_and_within_its_column():
    rows = rows_of(HttpOutcome(500, 1.0, error="x\x00" * 400, body="a\x00b" * 1000))
    error, body = rows.attempt[5], rows.attempt[6]
    assert error == "x\ufffd" * 250 and rows.state.last_error == error
    assert body == ("a\ufffdb" * 1000)[:STORED_BODY_BYTES]
    assert rows_of(HttpOutcome(200, 1.0, body="")).attempt[6] == ""

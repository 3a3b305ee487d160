"""The console over plain HTTP: CSRF refusals, tenant isolation, sessions and the error pages."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import (
    Delivery,
    DeliveryStatus,
    Endpoint,
    utcnow,
)
from tests.support.console import csrf_token, running_replay, signed_in_client
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer

pytestmark = pytest.mark.browser


def _active(endpoint_id: int) -> bool:
    with session_scope() as session:
        return bool(session.scalar(select(Endpoint.active).where(Endpoint.id == endpoint_id)))


def _delivery_for(endpoint_id: int, contract: str, block: int = 7) -> int:
    """One pending delivery for the endpoint, made as the matcher makes it (nothing sent)."""
    with session_scope() as session:
        groups = store_and_match(
            session, [transfer(contract=contract, block=block, log_index=0, value=1)], utcnow()
        )
    return next(i for g in groups if g.endpoint_id == endpoint_id for i in g.delivery_ids)


def test_every_page_needs_a_session(console, db):
    client = httpx.Client(base_url=console.url, follow_redirects=False)
    for path in ("/console/", "/console/endpoints", "/console/failed", "/console/deliveries/1"):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/console/sign-in"


def test_a_wrong_key_is_refused_and_sets_no_signed_in_session(console, tenant):
    client = httpx.Client(base_url=console.url, follow_redirects=False)
    token = csrf_token(client.get("/console/sign-in").text)
    answer = client.post("/console/sign-in", data={"csrf_token": token, "key": "ehk_" + "x" * 40})
    assert answer.status_code == 401
    assert "That key is not valid" in answer.text
    assert client.get("/console/endpoints").status_code == 303


def test_the_session_cookie_is_httponly_strict_and_carries_no_readable_key(console, tenant):
    client = httpx.Client(base_url=console.url, follow_redirects=False)
    token = csrf_token(client.get("/console/sign-in").text)
    answer = client.post("/console/sign-in", data={"csrf_token": token, "key": tenant.key})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/endpoints"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert tenant.key not in cookie and tenant.key[4:20] not in cookie
    assert answer.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(console, tenant):
    endpoint_id, _ = add_endpoint("http://127.0.0.1:9/hook", application_id=tenant.application_id)
    client, token = signed_in_client(console.url, tenant.key)
    path = f"/console/endpoints/{endpoint_id}/disable"

    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": token + "x"}):
        answer = client.post(path, data=data)
        assert answer.status_code == 403, data
        assert "Forbidden" in answer.text
    # A token in a JSON body (not a form) is not a form field either.
    assert client.post(path, json={"csrf_token": token}).status_code == 403
    # Another visitor's token is not this session's.
    _, other_token = signed_in_client(console.url, tenant.key)
    assert client.post(path, data={"csrf_token": other_token}).status_code == 403
    assert _active(endpoint_id)

    answer = client.post(path, data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/endpoints/{endpoint_id}"
    assert not _active(endpoint_id)


def test_signing_in_again_replaces_the_csrf_token(console, tenant):
    client = httpx.Client(base_url=console.url, follow_redirects=False)
    before = csrf_token(client.get("/console/sign-in").text)
    client.post("/console/sign-in", data={"csrf_token": before, "key": tenant.key})
    after = csrf_token(client.get("/console/endpoints").text)
    assert after != before


def test_another_applications_resources_are_404_and_untouched(console, tenant, other_tenant):
    theirs, _ = add_endpoint(
        "http://127.0.0.1:9/theirs",
        application_id=other_tenant.application_id,
        contracts=[address(31)],
    )
    delivery_id = _delivery_for(theirs, address(31))
    client, token = signed_in_client(console.url, tenant.key)

    for path in (
        f"/console/endpoints/{theirs}",
        f"/console/deliveries/{delivery_id}",
        f"/console/failed?endpoint={theirs}",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "Not found" in answer.text
    for path in ("disable", "rotate-secret", "test"):
        answer = client.post(f"/console/endpoints/{theirs}/{path}", data={"csrf_token": token})
        assert answer.status_code == 404, path
    answer = client.post(f"/console/deliveries/{delivery_id}/retry", data={"csrf_token": token})
    assert answer.status_code == 404
    assert _active(theirs)
    assert f'data-endpoint-id="{theirs}"' not in client.get("/console/endpoints").text

    # The operator sees it.
    from ethhook.db import session_scope as scope
    from ethhook.service.apps import set_operator_key

    with scope() as session:
        operator_key = set_operator_key(session)
    operator, _ = signed_in_client(console.url, operator_key)
    assert operator.get(f"/console/endpoints/{theirs}").status_code == 200
    assert operator.get(f"/console/deliveries/{delivery_id}").status_code == 200


def test_unknown_pages_and_bad_ids_are_error_pages_not_crashes(console, tenant):
    client, _ = signed_in_client(console.url, tenant.key)
    assert client.get("/console/endpoints/999999").status_code == 404
    assert client.get("/console/endpoints/99999999999999999999999").status_code == 404
    assert client.get("/console/endpoints/abc").status_code == 404
    assert client.get("/console/nowhere").status_code == 404
    assert client.get("/console/failed?endpoint=-3").status_code == 400
    assert client.get("/console/failed?cursor=bogus").status_code == 400


def test_the_replay_page_shows_a_jobs_progress(console, tenant):
    endpoint_id, _ = add_endpoint("http://127.0.0.1:9/r", application_id=tenant.application_id)
    job_id = running_replay(
        endpoint_id,
        from_block=100,
        to_block=299,
        next_block=150,
        chunk_blocks=50,
        chunks_done=1,
        blocks_done=50,
        events=12,
        deliveries=12,
    )
    client, _ = signed_in_client(console.url, tenant.key)
    page = client.get(f"/console/replays/{job_id}")
    assert page.status_code == 200
    assert 'value="50"' in page.text and 'max="200"' in page.text
    assert "50/200 blocks (25%), 12 events, 12 deliveries" in page.text
    assert f'data-poll="/console/replays/{job_id}/progress"' in page.text
    progress = client.get(f"/console/replays/{job_id}/progress")
    assert progress.headers["content-type"] == "application/json"
    assert progress.json()["line"] == "50/200 blocks (25%), 12 events, 12 deliveries"
    assert progress.json()["state"] == "running" and progress.json()["finished"] is False


def test_signing_out_ends_the_session(console, tenant):
    client, token = signed_in_client(console.url, tenant.key)
    answer = client.post("/console/sign-out", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
    assert client.get("/console/endpoints").status_code == 303


def test_a_rotated_api_key_ends_its_console_sessions(console, tenant):
    from ethhook.service.apps import rotate_api_key
    from ethhook.service.scope import OPERATOR

    client, _ = signed_in_client(console.url, tenant.key)
    with session_scope() as session:
        rotate_api_key(session, tenant.application_id, scope=OPERATOR)
    assert client.get("/console/endpoints").status_code == 303


def test_retry_from_the_failed_list_returns_to_it_and_a_refused_retry_is_a_400_page(
    console, tenant
):
    endpoint_id, _ = add_endpoint(
        "http://127.0.0.1:9/r", application_id=tenant.application_id, contracts=[address(33)]
    )
    delivery_id = _delivery_for(endpoint_id, address(33))
    cancelled_id = _delivery_for(endpoint_id, address(33), block=8)
    with session_scope() as session:
        # Reorged out before it was sent: nothing (the worker, beat) touches it again.
        session.get(Delivery, cancelled_id).status = DeliveryStatus.CANCELLED
    client, token = signed_in_client(console.url, tenant.key)
    path = f"/console/deliveries/{delivery_id}/retry"

    answer = client.post(path, data={"csrf_token": token, "back": "failed"})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/failed"
    assert "Retrying 1 delivery" in client.get("/console/failed").text
    answer = client.post(path, data={"csrf_token": token, "back": "https://evil.example/"})
    assert answer.headers["location"] == f"/console/deliveries/{delivery_id}"

    answer = client.post(f"/console/deliveries/{cancelled_id}/retry", data={"csrf_token": token})
    assert answer.status_code == 400
    assert "only pending, failed or succeeded deliveries can be retried" in answer.text

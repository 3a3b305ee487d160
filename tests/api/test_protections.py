"""What guards the API: Idempotency-Key on POST, the request body limit, the per-key rate limit
(and the API answering without Redis), and CORS only when configured."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import ApiServer, assert_problem
from tests.support.db import endpoint_count
from tests.support.receiver import Receiver
from tests.support.waiting import free_port


def new_key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


# --- Idempotency-Key ------------------------------------------------------------------------------


def test_the_same_key_and_body_replay_the_first_answer(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    header = new_key()
    body = {"url": "http://127.0.0.1:9/idem"}
    before = endpoint_count()
    first = api.call("POST", "/v1/endpoints", key, json=body, headers=header)
    again = api.call("POST", "/v1/endpoints", key, json=body, headers=header)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()  # the same id and secret: one endpoint
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == "application/json"
    assert endpoint_count() == before + 1
    # A problem answer is kept too: the same refused request gets the same refusal.
    bad = {"url": "ftp://x"}
    header = new_key()
    refused = api.call("POST", "/v1/endpoints", key, json=bad, headers=header)
    replayed = api.call("POST", "/v1/endpoints", key, json=bad, headers=header)
    assert refused.status_code == replayed.status_code == 422
    assert replayed.json() == refused.json()


def test_the_same_key_with_another_body_is_refused(api: ApiServer, tenants: dict[str, Any]) -> None:
    key = tenants["a"]["key"]
    header = new_key()
    api.call("POST", "/v1/endpoints", key, json={"url": "http://127.0.0.1:9/1"}, headers=header)
    before = endpoint_count()
    other = api.call(
        "POST", "/v1/endpoints", key, json={"url": "http://127.0.0.1:9/2"}, headers=header
    )
    assert_problem(other, 422, "idempotency-key-reused", "different request")
    elsewhere = api.call(
        "POST", f"/v1/endpoints/{tenants['a']['endpoint']}/enable", key, headers=header
    )
    assert_problem(elsewhere, 422, "idempotency-key-reused")
    assert endpoint_count() == before


def test_keys_are_per_caller_and_different_keys_do_the_work_again(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    a, b = tenants["a"], tenants["b"]
    header = new_key()
    body = {"url": "http://127.0.0.1:9/same"}
    by_a = api.call("POST", "/v1/endpoints", a["key"], json=body, headers=header)
    by_b = api.call("POST", "/v1/endpoints", b["key"], json=body, headers=header)
    assert by_a.status_code == by_b.status_code == 201
    assert by_a.json()["application_id"] == a["app"] and by_b.json()["application_id"] == b["app"]
    other = api.call("POST", "/v1/endpoints", a["key"], json=body, headers=new_key())
    assert other.status_code == 201 and other.json()["id"] != by_a.json()["id"]
    invalid = api.call(
        "POST", "/v1/endpoints", a["key"], json=body, headers={"Idempotency-Key": ""}
    )
    assert_problem(invalid, 400, "invalid-idempotency-key")


def test_a_key_still_in_flight_is_a_conflict(
    api: ApiServer, tenants: dict[str, Any], receiver: Receiver
) -> None:
    key = tenants["a"]["key"]
    created = api.call("POST", "/v1/endpoints", key, json={"url": receiver.url("/slow")}).json()
    release = threading.Event()

    def slow(_: int) -> tuple[int, dict[str, str], bytes]:
        release.wait(10)
        return 200, {}, b"ok"

    receiver.responders["/slow"] = slow
    header = new_key()
    path = f"/v1/endpoints/{created['id']}/test"
    first: list[Any] = []
    sender = threading.Thread(
        target=lambda: first.append(api.call("POST", path, key, headers=header))
    )
    sender.start()
    try:
        time.sleep(0.5)  # the first request holds the key while the receiver waits
        assert_problem(api.call("POST", path, key, headers=header), 409, "idempotency-in-flight")
    finally:
        release.set()
        sender.join(15)
    assert first[0].status_code == 200
    again = api.call("POST", path, key, headers=header)
    assert again.json() == first[0].json() and len(receiver.on("/slow")) == 1


# --- body limit -----------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_without_being_read(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    big = b'{"url": "' + b"x" * (1024 * 1024 + 1) + b'"}'
    declared = api.call(
        "POST", "/v1/endpoints", key, data=big, headers={"content-type": "application/json"}
    )
    assert_problem(declared, 413, "body-too-large", "larger than 1048576 bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
        yield b'{"url": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    chunked = api.call(
        "POST", "/v1/endpoints", key, data=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(chunked, 413, "body-too-large")
    assert api.call("GET", "/health").status_code == 200


# --- rate limit, Redis outage, CORS ---------------------------------------------------------------


@pytest.fixture()
def limited_api(database: str, redis_server: str) -> Iterator[ApiServer]:
    server = ApiServer(
        {
            "ETHHOOK_API_RATE_LIMIT": "1",
            "ETHHOOK_API_RATE_BURST": "3",
            "ETHHOOK_API_CORS_ORIGINS": "https://console.example.com",
        }
    )
    yield server
    server.stop()


def test_each_key_is_rate_limited_with_retry_after(
    limited_api: ApiServer, tenants: dict[str, Any]
) -> None:
    a, b = tenants["a"]["key"], tenants["b"]["key"]
    started = time.monotonic()
    answers = [limited_api.call("GET", "/v1/endpoints", a)]
    while answers[-1].status_code == 200 and len(answers) < 10:
        answers.append(limited_api.call("GET", "/v1/endpoints", a))
    took = time.monotonic() - started
    # A burst of 3 at once, then one a second: the first refusal follows the burst and the
    # requests that the time the calls took paid for (none when they took under a second).
    codes = [answer.status_code for answer in answers]
    assert codes[-1] == 429, codes
    assert 3 <= codes.count(200) <= 3 + int(took), (codes, took)
    limited = answers[-1]
    assert_problem(limited, 429, "rate-limited", "too many requests")
    assert 1 <= int(limited.headers["retry-after"]) <= 2
    assert limited_api.call("GET", "/v1/endpoints", b).status_code == 200  # another key
    time.sleep(float(limited.headers["retry-after"]))
    assert limited_api.call("GET", "/v1/endpoints", a).status_code == 200
    metrics = limited_api.call("GET", "/metrics").text
    assert 'api_requests_total{method="GET",route="/v1/endpoints",status="429"} 1.0' in metrics


def test_cors_answers_only_the_configured_origins(
    api: ApiServer, limited_api: ApiServer, tenants: dict[str, Any]
) -> None:
    preflight = {
        "Origin": "https://console.example.com",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = limited_api.call("OPTIONS", "/v1/endpoints", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://console.example.com"
    other = dict(preflight, Origin="https://evil.example.com")
    refused = limited_api.call("OPTIONS", "/v1/endpoints", headers=other)
    assert "access-control-allow-origin" not in refused.headers
    default = api.call(
        "GET", "/v1/endpoints", tenants["a"]["key"], headers={"Origin": preflight["Origin"]}
    )
    assert default.status_code == 200 and "access-control-allow-origin" not in default.headers


def test_without_redis_the_api_answers_and_refuses_only_idempotent_posts(
    database: str, tenants: dict[str, Any]
) -> None:
    server = ApiServer({"ETHHOOK_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        key = tenants["a"]["key"]
        assert server.call("GET", "/health").json()["redis"] == "unreachable"
        for _ in range(3):
            assert server.call("GET", "/v1/endpoints", key).status_code == 200
        body = {"url": "http://127.0.0.1:9/no-redis"}
        assert server.call("POST", "/v1/endpoints", key, json=body).status_code == 201
        refused = server.call("POST", "/v1/endpoints", key, json=body, headers=new_key())
        assert_problem(refused, 503, "idempotency-unavailable", "Redis is unreachable")
        assert refused.headers["retry-after"] == "5"
    finally:
        server.stop()
    log = server.log()
    assert log.count("api.ratelimit.unavailable") == 1  # logged, at most once a minute
    assert "api.idempotency.unavailable" in log

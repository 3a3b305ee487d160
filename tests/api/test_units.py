"""The API's pure pieces, without a server: its settings, `ethhook api`'s overrides, the Bearer
header, how exceptions become statuses, the kept idempotent answer, and route templates."""

from __future__ import annotations

import argparse

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.routing import compile_path

from ethhook.api.auth import bearer_token
from ethhook.api.idempotency import Answer, Kept, Sealing
from ethhook.api.metrics import UNMATCHED, route_template
from ethhook.api.problems import classify
from ethhook.api.sealing import answer_keys
from ethhook.cli.api import serving_settings
from ethhook.config import load_settings
from ethhook.exceptions import (
    BusyError,
    ConfigError,
    EthHookError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    TransientError,
)


def test_api_settings_default_to_loopback_and_sensible_limits() -> None:
    settings = load_settings({})
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8080)
    assert settings.api_max_body_bytes == 1024 * 1024
    assert (settings.api_rate_limit_per_s, settings.api_rate_burst) == (50.0, 100)
    assert settings.api_cors_origins == ()
    assert (settings.api_auth_failure_rate_per_s, settings.api_auth_failure_burst) == (1.0, 20)
    assert (settings.api_header_timeout_s, settings.api_body_timeout_s) == (10.0, 30.0)
    assert (settings.api_max_connections, settings.api_shutdown_grace_s) == (1000, 10.0)
    assert (settings.api_test_sends_per_key, settings.api_test_sends_total) == (2, 10)
    custom = load_settings(
        {
            "ETHHOOK_API_HOST": "0.0.0.0",
            "ETHHOOK_API_PORT": "9000",
            "ETHHOOK_API_RATE_LIMIT": "0",
            "ETHHOOK_API_CORS_ORIGINS": "https://a.example.com, http://localhost:3000/",
        }
    )
    assert (custom.api_host, custom.api_port, custom.api_rate_limit_per_s) == ("0.0.0.0", 9000, 0)
    assert custom.api_cors_origins == ("https://a.example.com", "http://localhost:3000")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ETHHOOK_API_HOST", "http://0.0.0.0"),
        ("ETHHOOK_API_HOST", " "),
        ("ETHHOOK_API_PORT", "0"),
        ("ETHHOOK_API_PORT", "65536"),
        ("ETHHOOK_API_MAX_BODY_BYTES", "10"),
        ("ETHHOOK_API_RATE_LIMIT", "-1"),
        ("ETHHOOK_API_RATE_LIMIT", "nan"),
        ("ETHHOOK_API_RATE_BURST", "0"),
        ("ETHHOOK_API_CORS_ORIGINS", "console.example.com"),
        ("ETHHOOK_API_CORS_ORIGINS", "https://a.example.com/path"),
        ("ETHHOOK_API_AUTH_FAILURE_RATE", "-1"),
        ("ETHHOOK_API_AUTH_FAILURE_BURST", "0"),
        ("ETHHOOK_API_HEADER_TIMEOUT_S", "0"),
        ("ETHHOOK_API_HEADER_TIMEOUT_S", "nan"),
        ("ETHHOOK_API_BODY_TIMEOUT_S", "3601"),
        ("ETHHOOK_API_MAX_CONNECTIONS", "0"),
        ("ETHHOOK_API_SHUTDOWN_GRACE_S", "0"),
        ("ETHHOOK_API_TEST_SENDS_PER_KEY", "0"),
        ("ETHHOOK_API_TEST_SENDS_TOTAL", "1001"),
    ],
)
def test_a_bad_api_setting_stops_the_process_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}=.* is invalid: expected"):
        load_settings({variable: value})


def test_host_and_port_options_override_the_settings() -> None:
    settings = load_settings({"ETHHOOK_API_PORT": "9000"})
    kept = serving_settings(argparse.Namespace(host=None, port=None), settings)
    assert (kept.api_host, kept.api_port) == ("127.0.0.1", 9000)
    given = serving_settings(argparse.Namespace(host="0.0.0.0", port=8081), settings)
    assert (given.api_host, given.api_port) == ("0.0.0.0", 8081)
    with pytest.raises(InputError, match="invalid --port 70000"):
        serving_settings(argparse.Namespace(host=None, port=70000), settings)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer ehk_abc", "ehk_abc"),
        ("bearer   ehk_abc  ", "ehk_abc"),
        ("Basic ehk_abc", None),
        ("Bearer", None),
        ("", None),
    ],
)
def test_the_bearer_token_is_read_from_the_authorization_header(
    header: str, token: str | None
) -> None:
    assert bearer_token({"authorization": header} if header else {}) == token


@pytest.mark.parametrize(
    ("exc", "status", "kind"),
    [
        (NotFoundError("no endpoint with id 3"), 404, "not-found"),
        (PermissionDeniedError("only the operator key may"), 403, "operator-only"),
        (InputError("invalid URL"), 422, "invalid-input"),
        (TransientError("node down"), 503, "unavailable"),
        (PoolTimeout("QueuePool limit of size 10 overflow 20 reached"), 503, "database-busy"),
        (BusyError("2 test webhooks under way", 13), 429, "too-many-in-flight"),
        (EthHookError("odd"), 500, "internal"),
        (RuntimeError("secret detail"), 500, "internal"),
    ],
)
def test_exceptions_map_to_statuses(exc: Exception, status: int, kind: str) -> None:
    got_status, got_kind, detail = classify(exc)
    assert (got_status, got_kind) == (status, kind)
    if isinstance(exc, RuntimeError):
        assert "secret detail" not in detail  # an unexpected error's text is logged, not shown


def test_a_kept_answer_survives_its_round_trip_through_redis_text_sealed() -> None:
    answer = Answer(201, (("content-type", "application/json"),), b'{"id": 1}\xff')
    sealing = Sealing(answer_keys("key-1", ("server-key",)), b"ethhook:api:idempotency:x")
    kept = Kept.loads(sealing.close("f" * 64, answer).dumps())
    assert (kept.fingerprint, kept.status) == ("f" * 64, 201) and b'"id"' not in kept.sealed
    assert sealing.open(kept.status, kept.sealed) == answer
    assert Kept.loads(Kept("a").dumps()).status is None  # still in flight
    # Another Idempotency-Key, another server key or another Redis name opens nothing.
    for other in (
        Sealing(answer_keys("key-2", ("server-key",)), sealing.bound_to),
        Sealing(answer_keys("key-1", ("other",)), sealing.bound_to),
        Sealing(sealing.keys, b"ethhook:api:idempotency:y"),
    ):
        assert other.open(201, kept.sealed) is None
    # The server's keys rotated (a new one first): answers kept under the old one still open.
    rotated = Sealing(answer_keys("key-1", ("new", "server-key")), sealing.bound_to)
    assert rotated.open(201, kept.sealed) == answer
    assert Kept.loads("not json") == Kept("", 0)


def test_metrics_label_requests_by_route_template() -> None:
    templates = [(compile_path(p)[0], p) for p in ("/v1/endpoints", "/v1/endpoints/{endpoint_id}")]
    assert route_template({"path": "/v1/endpoints/42"}, templates) == "/v1/endpoints/{endpoint_id}"
    assert route_template({"path": "/v1/endpoints"}, templates) == "/v1/endpoints"
    assert route_template({"path": "/wp-admin.php"}, templates) == UNMATCHED

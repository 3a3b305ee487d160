"""Schemathesis against the running API: generated requests, valid and invalid, with the operator
key. Passes when no answer is a 5xx, every answer conforms to the OpenAPI schema (documented
status, content type, headers and body), and the API logged no traceback meanwhile.

One test per operation, listed from the app's own schema at collection time; the schema the cases
come from is the one the running server serves. (schemathesis' `from_fixture` loader does not
run under pytest 9, hence hypothesis' `@given` over each operation's strategies here.)

Bounded for a 2-core machine: a few examples per operation and mode, no shrinking. POST
/v1/endpoints/{id}/test is left out: it sends a webhook to whatever URL an endpoint has, and
generated URLs name hosts anywhere (test_resources.py tests it against a loopback receiver).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ethhook.api.app import create_app
from ethhook.config import load_settings
from tests.support.api import ApiServer

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
LEFT_OUT = {("POST", "/v1/endpoints/{endpoint_id}/test")}

OPERATIONS = sorted(
    (method.upper(), path)
    for path, methods in create_app(load_settings({})).openapi()["paths"].items()
    for method in methods
    if (method.upper(), path) not in LEFT_OUT
)


@pytest.mark.usefixtures("tenants")
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_within_its_schema_and_never_5xx(
    api: ApiServer, operator_key: str, method: str, path: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{api.base}/openapi.json")
    operation = schema[path][method]
    auth = {"Authorization": f"Bearer {operator_key}"}
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, headers=auth),
        operation.as_strategy(GenerationMode.NEGATIVE, headers=auth),
    )

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[p for p in settings.default.phases if p.name != "shrink"],
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=api.base, headers=auth, checks=CHECKS, timeout=30)

    check()


def test_the_api_logged_no_traceback(api: ApiServer) -> None:
    """Last in this file, after every generated request: none of them made the API log a
    traceback (an unhandled exception), whatever it answered."""
    log = api.log()
    assert "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]

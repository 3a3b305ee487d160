"""The console against a real `ethhook api` process over HTTP: ids and cursors typed as text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import ApiServer
from tests.browser.conftest import signed_in_client

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def servers(database: str, redis_server: str) -> Iterator[tuple[ApiServer]]:
    a = ApiServer({"ETHHOOK_API_RATE_LIMIT": "0"})
    yield (a,)
    a.stop()


# --- ids typed as text are checked as ASCII digits (finding 3, console part) --------------------


def test_ids_and_cursors_that_are_not_ascii_digits_are_the_400_page(servers, tenant):
    a = servers[0]
    visitor, token = signed_in_client(a.base, tenant.key)
    # Superscript two, Arabic-Indic three, fullwidth three: str.isdigit() says yes to all three.
    for value in ("²", "٣", "３", "1 ", "+1", "0x1", "1e3", "99999999999999999999"):
        answer = visitor.get("/console/failed", params={"endpoint": value})
        assert answer.status_code == 400, value
        assert "expected a positive integer id" in answer.text
        answer = visitor.post(
            "/console/failed/retry", data={"csrf_token": token, "endpoint_id": value}
        )
        assert answer.status_code == 400, value
        assert "expected a positive integer id" in answer.text
    for path in ("/console/failed", "/console/endpoints"):
        for cursor in ("²", "٣", "djE6²"):
            answer = visitor.get(path, params={"cursor": cursor})
            assert answer.status_code == 400, (path, cursor)
            assert "invalid cursor" in answer.text

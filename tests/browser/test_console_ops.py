"""The console's application page: the application's ops endpoint and the operational webhooks
sent to it (the same rows `ethhook app ops-endpoint` and /v1/ops-endpoint/messages show); another
application's page is 404."""

from __future__ import annotations

import pytest

from ethhook.db import session_scope
from ethhook.service.endpoints import set_active
from ethhook.service.ops import set_ops_endpoint
from tests.support.console import signed_in_client
from tests.support.endpoints import add_endpoint
from tests.support.factories import address

pytestmark = pytest.mark.browser


def test_the_application_page_lists_its_operational_webhooks(console, tenant, other_tenant):
    app_id = tenant.application_id
    client, _ = signed_in_client(console.url, tenant.key)
    empty = client.get("/console/application")
    assert empty.status_code == 200
    assert "No operational webhooks yet." in empty.text and "ops-endpoint" in empty.text

    endpoint_id, _ = add_endpoint(
        "http://127.0.0.1:9/hook", application_id=app_id, contracts=[address(61)]
    )
    with session_scope() as session:
        set_ops_endpoint(session, None, "https://ops.example.com/hooks", scope=app_id)
    with session_scope() as session:
        set_active(session, endpoint_id, False, "going away", scope=app_id)

    page = client.get("/console/application").text
    assert "https://ops.example.com/hooks" in page
    assert 'data-type="endpoint.disabled"' in page
    assert f"endpoint {endpoint_id}" in page and "going away" in page

    # Another application's page is missing, not forbidden; theirs shows none of this
    assert client.get(f"/console/application?id={other_tenant.application_id}").status_code == 404
    theirs, _ = signed_in_client(console.url, other_tenant.key)
    assert 'data-type="endpoint.disabled"' not in theirs.get("/console/application").text

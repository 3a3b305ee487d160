"""An endpoint's finality on its console page (plain HTTP), beside its confirmations."""

from __future__ import annotations

from tests.support.console import signed_in_client
from tests.support.endpoints import add_endpoint


def test_the_endpoint_page_shows_finality_and_lifecycle(console, tenant):
    final_id, _ = add_endpoint(
        "https://hooks.example.com/f",
        finality="finalized",
        lifecycle=True,
        application_id=tenant.application_id,
    )
    plain_id, _ = add_endpoint("https://hooks.example.com/p", application_id=tenant.application_id)
    client, _ = signed_in_client(console.url, tenant.key)
    page = client.get(f"/console/endpoints/{final_id}").text
    assert '<dd id="finality">finalized <span class="hint">(lifecycle: ' in page
    plain = client.get(f"/console/endpoints/{plain_id}").text
    assert '<dd id="finality">latest</dd>' in plain

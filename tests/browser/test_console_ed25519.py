"""An Ed25519 endpoint in the console (plain HTTP): its page names the scheme and shows the public
key; rotating shows the new public key and never a private key."""

from __future__ import annotations

from tests.support.console import signed_in_client
from tests.support.endpoints import add_endpoint


def test_the_endpoint_page_and_a_rotation_show_the_public_key(console, tenant):
    endpoint_id, public_key = add_endpoint(
        "https://hooks.example.com/ed", signing="ed25519", application_id=tenant.application_id
    )
    hmac_id, _ = add_endpoint("https://hooks.example.com/h", application_id=tenant.application_id)
    client, token = signed_in_client(console.url, tenant.key)

    page = client.get(f"/console/endpoints/{endpoint_id}").text
    assert '<dd id="signing">Ed25519 (v1a)</dd>' in page
    assert f'<dd class="mono" id="public-key">{public_key}</dd>' in page
    hmac_page = client.get(f"/console/endpoints/{hmac_id}").text
    assert '<dd id="signing">HMAC-SHA256 (v1)</dd>' in hmac_page and "public-key" not in hmac_page

    rotated = client.post(
        f"/console/endpoints/{endpoint_id}/rotate-secret", data={"csrf_token": token}
    )
    assert rotated.status_code == 200, rotated.text
    assert "New signing key pair" in rotated.text and 'id="new-secret"' not in rotated.text
    new_key = rotated.text.split('<code id="new-public-key">')[1].split("</code>")[0]
    assert new_key.startswith("whpk_") and new_key != public_key
    assert "whsk_" not in page + rotated.text

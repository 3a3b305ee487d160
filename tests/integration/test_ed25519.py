"""Ed25519 endpoints (`--signing ed25519`, Standard Webhooks `v1a`): webhooks sent by a real deliver
worker to the real receiver verify with the endpoint's `whpk_` public key by `cryptography` alone
(tests/support/receiver.verify_v1a, not EthHook's code); a rotation signs with both key pairs for
its grace period; the private key is never shown and is encrypted at rest."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from ethhook.config import get_settings
from ethhook.db import get_engine, session_scope
from ethhook.db.models import utcnow
from ethhook.deliver.store import load_endpoint
from ethhook.service.scope import OPERATOR
from ethhook.service.testsend import send_test_webhook
from tests.support.cli import assert_refused, ethhook
from tests.support.db import publish_events
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer
from tests.support.receiver import Received, Receiver, verify_v1a
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("db")


def cli_json(*args: str) -> dict:
    result = ethhook(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def stored(endpoint_id: int) -> tuple[str, str | None, str, str | None]:
    """secret, previous_secret, signing, public_key as they are in the table (plain SQL)."""
    with get_engine().connect() as conn:
        row = conn.execute(
            text(
                "SELECT secret, previous_secret, signing, public_key FROM endpoints WHERE id = :id"
            ),
            {"id": endpoint_id},
        ).one()
    return row[0], row[1], row[2], row[3]


def requests_to(receiver: Receiver, path: str, n: int) -> list[Received]:
    wait_until(
        lambda: len([r for r in receiver.requests if r.path == path]) >= n,
        60,
        0.1,
        f"{n} on {path}",
    )
    return [r for r in receiver.requests if r.path == path]


@pytest.mark.usefixtures("worker")
def test_webhooks_verify_with_the_public_key_and_a_tampered_body_does_not(receiver):
    # Given: an ed25519 endpoint registered with the real CLI.
    created = cli_json("endpoint", "add", "--url", receiver.url("/ed"), "--signing", "ed25519")
    public_key = created["public_key"]
    assert created["signing"] == "ed25519" and created["secret"] is None
    assert public_key.startswith("whpk_") and len(public_key) == 5 + 44
    receiver.public_keys["/ed"] = public_key

    # When: three events go through the matcher and a real deliver worker.
    publish_events(
        [transfer(contract=address(80), block=1, log_index=i, value=i) for i in range(3)]
    )
    got = requests_to(receiver, "/ed", 3)

    # Then: each carries exactly one v1a signature that the public key verifies.
    assert [r.verified for r in got] == [True, True, True]
    for request in got:
        assert request.headers["webhook-signature"].startswith("v1a,")
        assert verify_v1a(public_key, request.headers, request.body) == [True]
        # A changed body, id or timestamp fails.
        assert verify_v1a(public_key, request.headers, request.body + b" ") == [False]
        other_id = {**request.headers, "webhook-id": request.headers["webhook-id"] + "x"}
        assert verify_v1a(public_key, other_id, request.body) == [False]
        ts = int(request.headers["webhook-timestamp"])
        later = {**request.headers, "webhook-timestamp": str(ts + 1)}
        assert verify_v1a(public_key, later, request.body) == [False]
    # And: another endpoint's public key does not verify them.
    _, other_key = add_endpoint(receiver.url("/other"), signing="ed25519")
    assert verify_v1a(other_key, got[0].headers, got[0].body) == [False]


@pytest.mark.usefixtures("worker")
def test_after_a_rotation_both_key_pairs_sign_until_the_grace_period_ends(receiver):
    created = cli_json("endpoint", "add", "--url", receiver.url("/rot"), "--signing", "ed25519")
    endpoint_id, old_key = created["id"], created["public_key"]

    # When: the key pair is rotated with an hour's grace.
    rotated = cli_json("endpoint", "rotate-secret", str(endpoint_id), "--grace-s", "3600")
    new_key = rotated["public_key"]
    assert new_key.startswith("whpk_") and new_key != old_key and rotated["secret"] is None
    shown = cli_json("endpoint", "secret", str(endpoint_id))
    assert (shown["public_key"], shown["previous_public_key"]) == (new_key, old_key)
    assert shown["secret"] is None and shown["previous_secret"] is None
    words = ethhook("endpoint", "secret", str(endpoint_id))
    assert words.stdout.splitlines()[0] == f"public key: {new_key}"
    assert words.stdout.splitlines()[1].startswith(f"previous public key: {old_key} (")

    # Then: a webhook carries two v1a signatures, the new key's first; each key verifies one.
    publish_events([transfer(contract=address(81), block=2, log_index=0, value=1)])
    (request,) = requests_to(receiver, "/rot", 1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify_v1a(new_key, request.headers, request.body) == [True, False]
    assert verify_v1a(old_key, request.headers, request.body) == [False, True]

    # When: rotated again with no grace, only the newest key pair signs.
    newest = cli_json("endpoint", "rotate-secret", str(endpoint_id), "--grace-s", "0")
    newest_key = newest["public_key"]
    publish_events([transfer(contract=address(81), block=3, log_index=0, value=2)])
    second = requests_to(receiver, "/rot", 2)[1]
    assert verify_v1a(newest_key, second.headers, second.body) == [True]
    assert verify_v1a(new_key, second.headers, second.body) == [False]
    assert cli_json("endpoint", "secret", str(endpoint_id))["previous_public_key"] is None


@pytest.mark.usefixtures("redis_server")
def test_the_test_webhook_is_signed_the_same_way(receiver):
    endpoint_id, public_key = add_endpoint(receiver.url("/t"), signing="ed25519")
    with session_scope() as session:
        result = send_test_webhook(session, endpoint_id, scope=OPERATOR, settings=get_settings())
    assert result.status_code == 200
    (request,) = requests_to(receiver, "/t", 1)
    assert json.loads(request.body)["type"] == "endpoint.test"
    assert verify_v1a(public_key, request.headers, request.body) == [True]


def test_the_private_key_is_never_shown_and_list_and_show_give_the_public_key():
    created = cli_json(
        "endpoint", "add", "--url", "https://hooks.example.com/a", "--signing", "ed25519"
    )
    endpoint_id = created["id"]
    private, _, signing, public_key = stored(endpoint_id)
    assert private.startswith("whsk_") and signing == "ed25519"
    assert public_key == created["public_key"]
    hmac = cli_json("endpoint", "add", "--url", "https://hooks.example.com/b")
    assert hmac["signing"] == "hmac" and hmac["public_key"] is None
    assert hmac["secret"].startswith("whsec_")

    outputs = [
        ethhook("endpoint", "add", "--url", "https://hooks.example.com/c", "--signing", "ed25519"),
        ethhook("endpoint", "show", str(endpoint_id)),
        ethhook("endpoint", "show", str(endpoint_id), "--json"),
        ethhook("endpoint", "list"),
        ethhook("endpoint", "list", "--json"),
        ethhook("endpoint", "secret", str(endpoint_id)),
        ethhook("endpoint", "secret", str(endpoint_id), "--json"),
        ethhook("endpoint", "rotate-secret", str(endpoint_id)),
    ]
    assert all(o.returncode == 0 for o in outputs), [o.stderr for o in outputs]
    printed = "".join(o.stdout + o.stderr for o in outputs)
    assert "whsk_" not in printed and private[5:] not in printed
    assert "public_key:                  whpk_" in outputs[0].stdout
    assert f"public_key:                  {public_key}" in outputs[1].stdout
    assert "signing:                     ed25519" in outputs[1].stdout
    assert json.loads(outputs[4].stdout)[0]["public_key"] == public_key


def test_an_unknown_signing_scheme_is_refused_with_one_line_and_nothing_is_made():
    line = assert_refused(
        ethhook("endpoint", "add", "--url", "https://hooks.example.com/r", "--signing", "rsa")
    )
    assert "invalid --signing 'rsa': use one of hmac, ed25519" in line
    assert json.loads(ethhook("endpoint", "list", "--json").stdout) == []


@pytest.fixture()
def secret_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """ETHHOOK_SECRET_KEYS set for this process and the `ethhook` commands it runs."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("ETHHOOK_SECRET_KEYS", key)
    get_settings.cache_clear()
    yield key
    monkeypatch.delenv("ETHHOOK_SECRET_KEYS")
    get_settings.cache_clear()


@pytest.mark.usefixtures("secret_keys")
def test_with_keys_both_private_keys_are_encrypted_at_rest_and_the_worker_reads_them():
    created = cli_json(
        "endpoint", "add", "--url", "https://hooks.example.com/e", "--signing", "ed25519"
    )
    endpoint_id = created["id"]
    cli_json("endpoint", "rotate-secret", str(endpoint_id))
    secret, previous, _, public_key = stored(endpoint_id)
    assert secret.startswith("enc:") and previous is not None and previous.startswith("enc:")
    assert "whsk_" not in secret + previous and public_key is not None
    with session_scope() as session:
        view = load_endpoint(session, endpoint_id, get_settings(), utcnow())
    assert view is not None and [s[:5] for s in view.secrets] == ["whsk_", "whsk_"]
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000"}
    signature = view.keys.signature("msg_1", 1700000000, b"{}")
    assert verify_v1a(public_key, {**headers, "webhook-signature": signature}, b"{}") == [
        True,
        False,
    ]

"""Endpoint secrets encrypted at rest (ETHHOOK_SECRET_KEYS): unreadable in the table, plaintext to
every reader, re-encrypted under a new key by `ethhook db reencrypt`, one-line errors otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text
from standardwebhooks import Webhook

from ethhook.config import get_settings
from ethhook.db import get_engine, session_scope
from ethhook.db.models import OpsEndpoint, utcnow
from ethhook.deliver.service import deliver
from ethhook.deliver.store import load_endpoint
from ethhook.service.endpoints import rotate_secret
from ethhook.service.ops import set_ops_endpoint
from tests.support.cli import ethhook
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer

pytestmark = pytest.mark.usefixtures("db")

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
OTHER_KEY = Fernet.generate_key().decode()

UseKeys = Callable[..., None]


@pytest.fixture()
def use_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[UseKeys]:
    """Set ETHHOOK_SECRET_KEYS (newest first; none = unset) for this process, whose settings are
    read again, and for the `ethhook` commands it runs."""

    def use(*keys: str) -> None:
        if keys:
            monkeypatch.setenv("ETHHOOK_SECRET_KEYS", ",".join(keys))
        else:
            monkeypatch.delenv("ETHHOOK_SECRET_KEYS", raising=False)
        get_settings.cache_clear()

    yield use
    monkeypatch.delenv("ETHHOOK_SECRET_KEYS", raising=False)
    get_settings.cache_clear()


def stored(endpoint_id: int) -> tuple[str, str | None]:
    """The columns as they are in the table, read with plain SQL."""
    with get_engine().connect() as conn:
        row = conn.execute(
            text("SELECT secret, previous_secret FROM endpoints WHERE id = :id"),
            {"id": endpoint_id},
        ).one()
    return row[0], row[1]


def stored_ops_secret() -> str:
    """The default application's ops endpoint secret as the table holds it."""
    with get_engine().connect() as conn:
        return str(conn.execute(text("SELECT secret FROM ops_endpoints")).scalar_one())


def get_ops_secret(session) -> str:  # noqa: ANN001
    return str(session.scalars(select(OpsEndpoint.secret)).one())


def shown_secret(endpoint_id: int) -> dict[str, object]:
    result = ethhook("endpoint", "secret", str(endpoint_id), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def reencrypt(*args: str) -> dict[str, object]:
    result = ethhook("db", "reencrypt", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(result, *words: str) -> None:  # noqa: ANN001
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ethhook: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for word in words:
        assert word in lines[0]


@pytest.mark.usefixtures("redis_server")
def test_with_keys_the_table_holds_no_secret_and_webhooks_still_verify(use_keys, receiver):
    use_keys(NEW_KEY)
    add = ethhook("endpoint", "add", "--url", receiver.url("/enc"), "--json")
    assert add.returncode == 0, add.stderr
    created = json.loads(add.stdout)
    endpoint_id, secret = created["id"], created["secret"]
    assert secret.startswith("whsec_")

    raw, raw_previous = stored(endpoint_id)
    assert raw != secret and "whsec_" not in raw and raw.startswith("enc:")
    assert raw_previous is None
    with session_scope() as session:
        view = load_endpoint(session, endpoint_id, get_settings(), utcnow())
    assert view is not None and view.secrets == (secret,)
    assert shown_secret(endpoint_id)["secret"] == secret

    # The deliver worker's own code signs with what it read: the receiver verifies with the
    # secret `endpoint add` printed.
    receiver.secrets["/enc"] = secret
    with session_scope() as session:
        groups = store_and_match(
            session, [transfer(contract=address(70), block=1, log_index=0, value=1)], utcnow()
        )
    (group,) = [g for g in groups if g.endpoint_id == endpoint_id]
    deliver(session_scope, get_settings(), endpoint_id, group.delivery_ids, group.token)
    (request,) = receiver.on("/enc")
    assert request.verified is True
    Webhook(secret).verify(request.body, request.headers)


def test_a_rotation_under_keys_encrypts_both_secrets_and_shows_both(use_keys):
    use_keys(NEW_KEY)
    endpoint_id, old = add_endpoint("https://hooks.example.com/rot")
    with session_scope() as session:
        new = rotate_secret(session, endpoint_id, grace_s=3600, scope=None).secret
    raw, raw_previous = stored(endpoint_id)
    assert raw_previous is not None
    assert "whsec_" not in raw + raw_previous
    assert raw.startswith("enc:") and raw_previous.startswith("enc:")
    shown = shown_secret(endpoint_id)
    assert (shown["secret"], shown["previous_secret"]) == (new, old)
    assert shown["previous_secret_expires_at"]
    human = ethhook("endpoint", "secret", str(endpoint_id))
    assert human.stdout.splitlines()[0] == f"secret: {new}"
    assert human.stdout.splitlines()[1].startswith(f"previous secret: {old} (keeps signing until")


def test_reencrypt_moves_every_secret_to_the_newest_key_and_is_idempotent(use_keys):
    # Given: one endpoint from before encryption, one written under the old key, rotated.
    use_keys()
    plain_id, plain = add_endpoint("https://hooks.example.com/plain")
    assert stored(plain_id)[0] == plain
    use_keys(OLD_KEY)
    old_id, first = add_endpoint("https://hooks.example.com/old")
    with session_scope() as session:
        second = rotate_secret(session, old_id, grace_s=3600, scope=None).secret
        ops_secret = set_ops_endpoint(session, None, "https://ops.example.com/", scope=None).secret
    before = stored(old_id)
    ops_before = stored_ops_secret()
    assert ops_before.startswith("enc:")

    # When: the new key is put first, the secrets are rewritten under it.
    use_keys(NEW_KEY, OLD_KEY)
    assert reencrypt() == {
        "endpoints": 2,
        "rewritten": 2,
        "ops_endpoints": 1,
        "ops_rewritten": 1,
        "encrypted": True,
    }
    after = stored(old_id)
    assert after[0] != before[0] and after[1] != before[1]
    assert reencrypt() == {
        "endpoints": 2,
        "rewritten": 0,
        "ops_endpoints": 1,
        "ops_rewritten": 0,
        "encrypted": True,
    }
    assert stored(old_id) == after
    human = ethhook("db", "reencrypt")
    assert human.stdout.strip() == (
        "rewrote the secrets of 0 of 2 endpoints under the newest key (2 already were); "
        "0 of 1 ops endpoints"
    )

    # Then: the new key alone reads everything, and nothing in the table is a secret.
    use_keys(NEW_KEY)
    assert shown_secret(plain_id)["secret"] == plain
    assert (shown_secret(old_id)["secret"], shown_secret(old_id)["previous_secret"]) == (
        second,
        first,
    )
    with session_scope() as session:
        view = load_endpoint(session, old_id, get_settings(), utcnow())
    assert view is not None and view.secrets == (second, first)
    assert stored_ops_secret() != ops_before and stored_ops_secret().startswith("enc:")
    with session_scope() as session:
        assert get_ops_secret(session) == ops_secret
    values = [*stored(plain_id), *stored(old_id)]
    assert values[1] is None  # the endpoint that was never rotated has no previous secret
    for value in (values[0], *values[2:]):
        assert value is not None and value.startswith("enc:") and "whsec_" not in value
    # …and the old key alone no longer does.
    assert_one_line_error(
        ethhook("endpoint", "secret", str(old_id), env={"ETHHOOK_SECRET_KEYS": OLD_KEY}),
        "ETHHOOK_SECRET_KEYS",
    )


def test_reencrypt_decrypt_stores_plaintext_again(use_keys):
    use_keys(NEW_KEY)
    endpoint_id, secret = add_endpoint("https://hooks.example.com/back")
    assert stored(endpoint_id)[0] != secret
    assert reencrypt("--decrypt") == {
        "endpoints": 1,
        "rewritten": 1,
        "ops_endpoints": 0,
        "ops_rewritten": 0,
        "encrypted": False,
    }
    assert stored(endpoint_id) == (secret, None)
    use_keys()
    assert shown_secret(endpoint_id)["secret"] == secret


def test_a_wrong_or_missing_key_is_one_line_exit_2_and_changes_nothing(use_keys):
    use_keys(NEW_KEY)
    endpoint_id, _ = add_endpoint("https://hooks.example.com/wrong")
    before = stored(endpoint_id)
    for env, words in (
        ({"ETHHOOK_SECRET_KEYS": OTHER_KEY}, ("ETHHOOK_SECRET_KEYS", "no key")),
        ({"ETHHOOK_SECRET_KEYS": ""}, ("set ETHHOOK_SECRET_KEYS",)),
    ):
        for args in (("endpoint", "secret", str(endpoint_id)), ("db", "reencrypt")):
            assert_one_line_error(ethhook(*args, env=env), *words)
    assert stored(endpoint_id) == before


@pytest.mark.parametrize(
    "value",
    ["not-a-key", NEW_KEY[:-4], f"{NEW_KEY},{OTHER_KEY[:20]}", " , ", "é" * 44],
    ids=["not-a-key", "cut-short", "second-cut-short", "empty-entries", "not-ascii"],
)
def test_a_malformed_key_names_the_variable_and_never_echoes_the_value(value):
    result = ethhook("endpoint", "list", env={"ETHHOOK_SECRET_KEYS": value})
    assert_one_line_error(result, "ETHHOOK_SECRET_KEYS")
    for key in filter(None, (k.strip() for k in value.split(","))):
        assert key not in result.stderr

"""Signing is a pure function: our signatures verify with standardwebhooks and svix."""

import base64
import time

import pytest
from standardwebhooks import Webhook
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError as SvixError

from ethhook.deliver.signing import (
    generate_secret,
    secret_key,
    sign,
    signature_header,
    verify,
    webhook_headers,
)

KNOWN_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KNOWN_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
KNOWN_TS = 1614265330
KNOWN_BODY = b'{"test": 2432232314}'
# The example from the Standard Webhooks specification.
KNOWN_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_matches_the_specification_example():
    assert sign(KNOWN_SECRET, KNOWN_ID, KNOWN_TS, KNOWN_BODY) == KNOWN_SIGNATURE


def test_generated_secrets_are_32_random_bytes():
    a, b = generate_secret(), generate_secret()
    assert a != b and a.startswith("whsec_")
    assert len(secret_key(a)) == 32


@pytest.mark.parametrize(
    ("body", "msg_id"),
    [
        (b"{}", "msg_1"),
        (b'{"type":"event.confirmed","data":{"value":"1000"}}', "msg_abc"),
        ('{"name":"été ✓"}'.encode(), "msg_unicode"),
        (b'{"pad":"' + b"x" * 100_000 + b'"}', "msg_big"),
    ],
)
@pytest.mark.parametrize("verifier", ["standardwebhooks", "svix"])
def test_signatures_verify_with_reference_libraries(body, msg_id, verifier):
    secret = generate_secret()
    headers = webhook_headers([secret], msg_id, int(time.time()), body, "EthHook/test")
    if verifier == "standardwebhooks":
        Webhook(secret).verify(body, headers)
    else:
        svix_headers = {k.replace("webhook-", "svix-"): v for k, v in headers.items()}
        SvixWebhook(secret).verify(body, svix_headers)


def test_rotation_signs_with_both_secrets_and_either_verifies():
    old, new = generate_secret(), generate_secret()
    now = int(time.time())
    headers = webhook_headers([new, old], "msg_rot", now, b"{}", "EthHook/test")
    assert len(headers["webhook-signature"].split()) == 2
    Webhook(new).verify(b"{}", headers)
    Webhook(old).verify(b"{}", headers)
    with pytest.raises(SvixError):
        SvixWebhook(generate_secret()).verify(
            b"{}", {k.replace("webhook-", "svix-"): v for k, v in headers.items()}
        )


@pytest.mark.parametrize(
    ("tamper", "ok"),
    [
        (lambda h, b: (h, b), True),
        (lambda h, b: (h, b + b" "), False),
        (lambda h, b: ("v1," + base64.b64encode(b"0" * 32).decode(), b), False),
        (lambda h, b: ("v2," + h[3:], b), False),
        (lambda h, b: ("", b), False),
    ],
)
def test_verify_rejects_tampering(tamper, ok):
    secret = generate_secret()
    header = signature_header([secret], "msg_x", 1700000000, b"{}")
    header, body = tamper(header, b"{}")
    assert verify(secret, "msg_x", 1700000000, body, header) is ok


def test_headers_carry_everything_standard_webhooks_needs():
    headers = webhook_headers([generate_secret()], "msg_h", 1700000000, b"{}", "EthHook/1.0")
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "EthHook/1.0"
    assert headers["webhook-id"] == "msg_h"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"].startswith("v1,")


def test_secret_must_have_prefix():
    with pytest.raises(ValueError):
        secret_key("nope")

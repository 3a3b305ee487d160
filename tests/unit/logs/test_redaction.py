"""The scrubber every log line goes through: URLs as scheme://host:port, secrets of known shapes
with their prefix only, and the settings' own secrets wherever they appear."""

from __future__ import annotations

import pytest

from ethhook.config import load_settings
from ethhook.logs.redaction import Scrubber, secrets_of

scrub = Scrubber()


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        ("Connected to redis://:**@127.0.0.1:6379/0", "Connected to redis://127.0.0.1:6379"),
        ("url=https://node.example.com/v3/KEY?x=1 failed", "url=https://node.example.com failed"),
        (
            "Uvicorn running on http://127.0.0.1:8080 (Press",
            "Uvicorn running on http://127.0.0.1:8080 (Press",
        ),
        ("secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", "secret: whsec_…"),
        ("key ehk_" + "x" * 43 + " refused", "key ehk_… refused"),
        (
            "webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
            "webhook-signature: v1,…",
        ),
        ("authorization: bearer ehk_abcdefghijkl", "authorization: bearer …"),
        (
            "deliver.attempt.failed endpoint=3 status=500",
            "deliver.attempt.failed endpoint=3 status=500",
        ),
        ("", ""),
    ],
)
def test_urls_and_secrets_of_known_shapes(text: str, logged: str) -> None:
    assert scrub(text) == logged


def test_the_settings_secrets_are_hidden_wherever_they_appear():
    settings = load_settings(
        {
            "ETHEREUM_HTTP": "https://NODEUSER:NODEPASS@node.example.com/v2/NODEPATHKEY?apikey=NODEQUERY",
            "ETHHOOK_DATABASE_URL": "postgresql+psycopg2://ethhook:DBPASSWORD@db:5432/ethhook",
            "ETHHOOK_BROKER_URL": "amqp://guest:BROKERPASS@rabbit:5672//",
            "ETHHOOK_SECRET_KEYS": "x7EcLOtQ6ny5QBX9oBSvWsvVw1cMsK6Wnw1tObnVaKI=",
        }
    )
    secret_scrub = Scrubber(secrets_of(settings))
    text = (
        "NODEUSER NODEPASS /v2/NODEPATHKEY NODEQUERY apikey=NODEQUERY DBPASSWORD BROKERPASS "
        "x7EcLOtQ6ny5QBX9oBSvWsvVw1cMsK6Wnw1tObnVaKI= postgresql ethhook guest"
    )
    assert secret_scrub(text) == "… … … … … … … … postgresql ethhook guest"


def test_a_short_secret_is_not_looked_for():
    settings = load_settings({"ETHEREUM_HTTP": "https://ab:cd@node.example.com/"})
    assert Scrubber(secrets_of(settings))("about cd player") == "about cd player"

"""API keys: their format, their entropy, and the hash that is all the database keeps."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ethhook.service.keys import PREFIX, generate_key, hash_key, looks_like_key


def test_a_key_is_the_prefix_and_32_random_bytes():
    key = generate_key()
    assert key.startswith(PREFIX) and PREFIX == "ehk_"
    raw = base64.urlsafe_b64decode(key[len(PREFIX) :] + "=")
    assert len(raw) == 32 and looks_like_key(key)


def test_keys_do_not_repeat():
    assert len({generate_key() for _ in range(1000)}) == 1000


def test_the_stored_hash_is_the_sha256_of_the_key_and_not_the_key():
    key = generate_key()
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert len(hash_key(key)) == 64 and key[len(PREFIX) :] not in hash_key(key)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ehk_",
        "ehk_" + "a" * 42,
        "ehk_" + "a" * 44,
        "EHK_" + "a" * 43,
        "ehk_" + "+" * 43,
        "whsec_" + "a" * 43,
        " ehk_" + "a" * 43,
    ],
)
def test_text_that_is_not_a_key_is_recognised_without_a_query(text):
    assert not looks_like_key(text)

"""Endpoint secrets encrypted at rest unless told otherwise: `ethhook db new-key` makes a key, the
demo encrypts with one of its own, and a process started without ETHHOOK_SECRET_KEYS says so once
(`ethhook up` once for every process it starts)."""

from __future__ import annotations

import json

from ethhook.config import parse_secret_keys
from tests.integration.helpers import ethhook


def test_db_new_key_prints_a_fresh_fernet_key() -> None:
    text = ethhook("db", "new-key")
    as_json = ethhook("db", "new-key", "--json")
    assert text.returncode == 0 and as_json.returncode == 0, (text.stderr, as_json.stderr)
    key = text.stdout.strip()
    other = json.loads(as_json.stdout)["key"]
    assert parse_secret_keys(key) == (key,) and parse_secret_keys(other) == (other,)
    assert key != other
    assert text.stderr == ""
    helped = ethhook("db", "new-key", "--help")
    assert helped.returncode == 0 and "ETHHOOK_SECRET_KEYS" in helped.stdout

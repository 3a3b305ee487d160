"""The start-up warning about endpoint secrets stored as plaintext: when it is logged, and its
setting."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet

from ethhook.config import load_settings
from ethhook.db.secrets import PLAINTEXT_WARNING, warn_if_plaintext
from ethhook.exceptions import ConfigError

KEY = Fernet.generate_key().decode()


@pytest.mark.parametrize(
    ("env", "warned"),
    [
        ({}, True),
        ({"ETHHOOK_SECRET_KEYS": KEY}, False),
        ({"ETHHOOK_WARN_PLAINTEXT_SECRETS": "false"}, False),
        ({"ETHHOOK_WARN_PLAINTEXT_SECRETS": "true"}, True),
        ({"ETHHOOK_SECRET_KEYS": KEY, "ETHHOOK_WARN_PLAINTEXT_SECRETS": "true"}, False),
    ],
)
def test_warned_only_without_keys_unless_silenced(
    env: dict[str, str], warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ethhook.db.secrets"):
        assert warn_if_plaintext(load_settings(env)) is warned
    assert [r.getMessage() for r in caplog.records] == ([PLAINTEXT_WARNING] if warned else [])


def test_the_warning_is_one_line_saying_how_to_fix_it() -> None:
    assert "\n" not in PLAINTEXT_WARNING
    assert "`ethhook db new-key`" in PLAINTEXT_WARNING
    assert "`ethhook db reencrypt`" in PLAINTEXT_WARNING


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ETHHOOK_WARN_PLAINTEXT_SECRETS"):
        load_settings({"ETHHOOK_WARN_PLAINTEXT_SECRETS": "sometimes"})

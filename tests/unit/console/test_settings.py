"""The console's settings: a value that cannot be used stops the process, naming the variable."""

from __future__ import annotations

import pytest

from ethhook.config import Settings, load_settings
from ethhook.exceptions import ConfigError


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as exc:
        load_settings(env)
    return str(exc.value)


def test_the_defaults():
    settings = Settings()
    assert settings.console_session_lifetime_s == 12 * 3600
    assert settings.console_idle_timeout_s == 1800


def test_values_in_range_are_read():
    settings = load_settings(
        {
            "ETHHOOK_CONSOLE_SESSION_LIFETIME_S": "3600",
            "ETHHOOK_CONSOLE_IDLE_TIMEOUT_S": "600",
        }
    )
    assert settings.console_session_lifetime_s == 3600
    assert settings.console_idle_timeout_s == 600


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ETHHOOK_CONSOLE_SESSION_LIFETIME_S", "0", "expected seconds greater than 0"),
        ("ETHHOOK_CONSOLE_IDLE_TIMEOUT_S", "nan", "expected seconds greater than 0"),
    ],
)
def test_a_bad_value_names_its_variable(variable, value, expected):
    message = refusal({variable: value})
    assert message.startswith(f"{variable}=") and expected in message

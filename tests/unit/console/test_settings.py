"""The console's settings: a value that cannot be used stops the process, naming the variable."""

from __future__ import annotations

import ipaddress

import pytest

from ethhook.config import Settings, load_settings
from ethhook.exceptions import ConfigError


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as exc:
        load_settings(env)
    return str(exc.value)


def test_the_defaults():
    settings = Settings()
    assert settings.trusted_proxies == ()
    assert settings.console_session_lifetime_s == 12 * 3600
    assert settings.console_idle_timeout_s == 1800
    assert settings.console_sign_in_failures_per_min == 10
    assert settings.console_sign_in_failures_global_per_min == 0
    assert settings.console_secure_cookie == "auto"


def test_values_in_range_are_read():
    settings = load_settings(
        {
            "ETHHOOK_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1,fd00::/8",
            "ETHHOOK_CONSOLE_SESSION_LIFETIME_S": "3600",
            "ETHHOOK_CONSOLE_IDLE_TIMEOUT_S": "600",
            "ETHHOOK_CONSOLE_SIGN_IN_FAILURES_PER_MIN": "0",
            "ETHHOOK_CONSOLE_SIGN_IN_FAILURES_GLOBAL_PER_MIN": "500",
            "ETHHOOK_CONSOLE_SECURE_COOKIE": "TRUE",
        }
    )
    assert settings.trusted_proxies == tuple(
        map(ipaddress.ip_network, ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8"])
    )
    assert settings.console_session_lifetime_s == 3600
    assert settings.console_idle_timeout_s == 600
    assert settings.console_sign_in_failures_per_min == 0
    assert settings.console_sign_in_failures_global_per_min == 500
    assert settings.console_secure_cookie == "true"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ETHHOOK_TRUSTED_PROXIES", "10.0.0.0/33", "expected IP addresses or networks"),
        ("ETHHOOK_TRUSTED_PROXIES", "proxy.local", "expected IP addresses or networks"),
        ("ETHHOOK_TRUSTED_PROXIES", ",".join(["10.0.0.1"] * 101), "at most 100"),
        ("ETHHOOK_CONSOLE_SESSION_LIFETIME_S", "0", "expected seconds greater than 0"),
        ("ETHHOOK_CONSOLE_IDLE_TIMEOUT_S", "nan", "expected seconds greater than 0"),
        ("ETHHOOK_CONSOLE_SIGN_IN_FAILURES_PER_MIN", "-1", "expected an integer from 0"),
        ("ETHHOOK_CONSOLE_SIGN_IN_FAILURES_GLOBAL_PER_MIN", "2.5", "expected an integer from 0"),
        ("ETHHOOK_CONSOLE_SECURE_COOKIE", "yes", "expected one of auto, true, false"),
    ],
)
def test_a_bad_value_names_its_variable(variable, value, expected):
    message = refusal({variable: value})
    assert message.startswith(f"{variable}=") and expected in message

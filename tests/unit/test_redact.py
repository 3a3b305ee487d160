"""redact_url: only scheme, host and port of a URL reach the logs."""

import pytest

from ethhook.redact import UNPARSEABLE, redact_url


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("wss://eth-mainnet.example.com/v2/KEY", "wss://eth-mainnet.example.com"),
        ("https://mainnet.infura.io/v3/0123456789abcdef", "https://mainnet.infura.io"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("ws://127.0.0.1:8545/", "ws://127.0.0.1:8545"),
        ("https://user:pass@node.example.com:8443/rpc", "https://node.example.com:8443"),
        ("https://KEY@node.example.com", "https://node.example.com"),
        ("https://us@r:p@ss@node.example.com/x", "https://node.example.com"),
        ("https://node.example.com/?apikey=KEY&x=1", "https://node.example.com"),
        ("https://node.example.com?apikey=KEY", "https://node.example.com"),
        ("https://node.example.com#KEY", "https://node.example.com"),
        ("http://[::1]:8545/KEY", "http://[::1]:8545"),
        ("http://user:pw@[2001:db8::1]/KEY", "http://[2001:db8::1]"),
        ("HTTPS://Node.Example.com/KEY", "https://Node.Example.com"),
        ("  wss://node.example.com/KEY  ", "wss://node.example.com"),
        ("postgresql+psycopg2://ethhook:pw@db:5432/ethhook", "postgresql+psycopg2://db:5432"),
        ("redis://:pw@redis:6379/0", "redis://redis:6379"),
        ("amqp://guest:guest@rabbit:5672//", "amqp://rabbit:5672"),
        ("sqlite:////var/lib/ethhook/ethhook.db", "sqlite://"),
        ("redis+socket:///tmp/redis.sock", "redis+socket://"),
    ],
)
def test_only_scheme_host_and_port_remain(url: str, logged: str) -> None:
    assert redact_url(url) == logged


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a url",
        "eth-mainnet.example.com/v2/KEY",
        "localhost:8545/KEY",
        "http://[::1/KEY",
        "://node.example.com/KEY",
        "ht tp://node.example.com/KEY",
        "http://node example.com/KEY",
        "http://node.example.com\x1b[31m/KEY",
        None,
        b"https://node.example.com/KEY",
        12,
    ],
)
def test_what_cannot_be_taken_apart_is_not_echoed(garbage: object) -> None:
    assert redact_url(garbage) == UNPARSEABLE


def test_a_key_anywhere_but_the_host_never_survives() -> None:
    key = "s3cr3tK3y"
    for url in (
        f"wss://{key}:x@a.example.com/{key}?k={key}#{key}",
        f"https://a.example.com:443/v2/{key}",
        f"https://{key}@a.example.com",
    ):
        assert key not in redact_url(url)

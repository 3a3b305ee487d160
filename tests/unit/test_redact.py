"""redact_url and redact_in: only scheme, host and port of a URL reach the logs."""

import pytest

from ethhook.redact import UNPARSEABLE, redact_in, redact_url


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


@pytest.mark.parametrize(
    ("url", "message", "logged"),
    [
        (
            "wss://eth.example.com/v2/KEY123?apikey=Q456",
            "Could not connect to: wss://eth.example.com/v2/KEY123?apikey=Q456. Retries exceeded.",
            "Could not connect to: wss://eth.example.com. Retries exceeded.",
        ),
        (
            "https://user:PW789@node.example.com:8443/rpc/KEY123",
            "400, message='Bad Request', url='https://user:PW789@node.example.com:8443/rpc/KEY123'",
            "400, message='Bad Request', url='https://node.example.com:8443'",
        ),
        # Only parts of it quoted, or percent-decoded: the parts go, whatever surrounds them
        (
            "https://node.example.com/v3/KEY%2F123?k=Q%20456",
            "GET /v3/KEY/123 refused; query k=Q 456",
            "GET … refused; query …",
        ),
        (
            "https://user:PW789@node.example.com",
            "auth failed for user with PW789",
            "auth failed for … with …",
        ),
        # Nothing to hide: the message is left alone ("/" alone hides no key)
        (
            "http://127.0.0.1:8545/",
            "Cannot connect to host 127.0.0.1:8545 / ssl:default",
            "Cannot connect to host 127.0.0.1:8545 / ssl:default",
        ),
        (None, "no URL: wss://x.example.com/KEY stays", "no URL: wss://x.example.com/KEY stays"),
    ],
)
def test_redact_in_replaces_the_url_and_its_secret_parts_in_a_message(
    url: str | None, message: str, logged: str
) -> None:
    assert redact_in(message, url) == logged


def test_redact_in_an_unparseable_url_leaves_none_of_it() -> None:
    url = "http://[::1/KEY123"
    assert redact_in(f"bad URL {url}!", url) == f"bad URL {UNPARSEABLE}!"

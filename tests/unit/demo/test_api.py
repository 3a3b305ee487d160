"""The demo's API port: ETHHOOK_API_PORT when it is free, any free loopback port when it is not."""

from __future__ import annotations

import socket

from ethhook.demo.api import DemoApi, api_port
from ethhook.demo.devchain import free_port


def test_the_preferred_port_is_used_when_it_is_free() -> None:
    port = free_port()
    assert api_port(port) == port


def test_another_free_port_is_used_when_the_preferred_one_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        chosen = api_port(busy)
        assert chosen != busy
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", chosen))  # free indeed


def test_the_hints_name_the_console_and_a_curl_with_the_key() -> None:
    api = DemoApi(8123, "ehk_abc")
    assert api.hints().splitlines() == [
        "  console http://127.0.0.1:8123/console/  key ehk_abc",
        "  curl -H \"Authorization: Bearer ehk_abc\" 'http://127.0.0.1:8123/v1/deliveries?limit=5'",
    ]

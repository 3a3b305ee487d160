"""Node URLs reach the listener's log as scheme://host:port only: providers put API keys in the
user info, the path and the query, and the log is read by more people than the configuration."""

from __future__ import annotations

import pytest

from tests.support.waiting import free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "redis_server")]

SECRETS = (
    "SECRETUSER",
    "SECRETPASSWORD",
    "SECRETQUERY",
    "SECRETPATHKEY",
    "SECRETQUERY2",
    "SECRETPATH2",
    "SECRETQ2",
)


def test_node_urls_in_the_listeners_log_show_scheme_host_and_port_only(start_anvil, start_listener):
    # Given a node (anvil answers on "/" whatever the query, and refuses any other path with 404)
    node = start_anvil(chain_id=1)
    closed_port = free_port()
    # ... a chain followed through URLs with keys in the user info and the query, and a chain
    # whose WebSocket URL has a key in its path (refused) and whose HTTP URL is a closed port
    listener = start_listener(
        {
            "ETHEREUM_WS": f"ws://SECRETUSER:SECRETPASSWORD@127.0.0.1:{node.port}/?apikey=SECRETQUERY",
            "ETHEREUM_HTTP": f"http://127.0.0.1:{node.port}/?apikey=SECRETQUERY",
            "OPTIMISM_WS": f"ws://127.0.0.1:{node.port}/v2/SECRETPATHKEY?apikey=SECRETQUERY2",
            "OPTIMISM_HTTP": f"http://127.0.0.1:{closed_port}/v3/SECRETPATH2?key=SECRETQ2",
        }
    )

    # When it follows the first chain and keeps failing to reach the second
    listener.wait_started(1)
    wanted = (
        "listen.started",
        "listen.ws.subscribed chain=ethereum",
        "listen.ws.connect_failed chain=optimism",
        "listen.rpc.error chain=optimism",
    )
    wait_until(
        lambda: all(line in listener.log() for line in wanted), 30, 0.2, "both chains' lines"
    )

    # Then every line names the nodes by scheme://host:port, and no secret appears anywhere
    log = listener.log()
    assert f"listen.ws.subscribed chain=ethereum url=ws://127.0.0.1:{node.port}\n" in log
    assert f"listen.ws.connect_failed chain=optimism url=ws://127.0.0.1:{node.port} " in log
    assert [secret for secret in SECRETS if secret in log] == []
    assert listener.terminate() == 0

"""Acceptance 6 and 8: four chains in one listener, isolated from each other; an endpoint added
while the listener runs gets events within seconds."""

from __future__ import annotations

import time

import pytest

from tests.support.chain import Token
from tests.support.endpoints import add_endpoint
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]

CHAINS = {1: ("ETHEREUM", "ethereum"), 42161: ("ARBITRUM", "arbitrum"),
          10: ("OPTIMISM", "optimism"), 8453: ("BASE", "base")}


def latency_of_one_event(token, receiver, chain_id: int, value: int) -> float:
    """Seconds from sending a one-Transfer transaction to its webhook at /all."""
    started = time.monotonic()
    token.emit_transfers(1, value)

    def arrived() -> bool:
        return any(r.json["data"]["chain_id"] == chain_id
                   and r.json["data"]["decoded"]["args"]["value"] == str(value)
                   for r in receiver.on("/all"))

    wait_until(arrived, 20, 0.02, f"value {value} on chain {chain_id}")
    return time.monotonic() - started


def test_four_chains_are_named_right_and_one_stopped_node_does_not_delay_the_others(
    start_anvil, start_listener, receiver
):
    # Given four nodes with chain ids 1, 42161, 10 and 8453, a token at the same address on each,
    # and one endpoint watching that address on every chain
    nodes = {cid: start_anvil(chain_id=cid, name=f"chain{cid}") for cid in CHAINS}
    tokens = {cid: Token(node) for cid, node in nodes.items()}
    assert len({t.address for t in tokens.values()}) == 1
    add_endpoint(receiver.url("/all"), contracts=[tokens[1].address],
                 events=["Transfer(address indexed from, address indexed to, uint256 value)"])
    env = {}
    for cid, (prefix, _) in CHAINS.items():
        env[f"{prefix}_WS"] = nodes[cid].ws_url
        env[f"{prefix}_HTTP"] = nodes[cid].http_url
    listener = start_listener(env)
    listener.wait_started(*CHAINS)

    # When each chain emits 3 transactions of 10 Transfers, valued chain_id * 1000 + i
    for cid, token in tokens.items():
        for k in range(3):
            token.emit_transfers(10, cid * 1000 + 10 * k, wait=False)
    for node in nodes.values():
        node.confirm_sent()

    # Then every webhook names the chain its event came from
    wait_until(lambda: len(receiver.on("/all")) >= 120, 60, 0.1, "120 webhooks")
    time.sleep(1)
    got = [r.json["data"] for r in receiver.on("/all")]
    assert len(got) == 120
    for data in got:
        value = int(data["decoded"]["args"]["value"])
        assert data["chain_id"] * 1000 <= value < data["chain_id"] * 1000 + 30
        assert data["chain"] == CHAINS[data["chain_id"]][1]
    assert {d["chain_id"] for d in got} == set(CHAINS)

    # When the Optimism node stops, the other three keep delivering as fast as before
    baseline = max(latency_of_one_event(tokens[cid], receiver, cid, cid * 1000 + 100)
                   for cid in (1, 42161, 8453))
    nodes[10].stop()
    time.sleep(1.5)  # the listener is now failing and backing off on chain 10
    latencies = [latency_of_one_event(tokens[cid], receiver, cid, cid * 1000 + 200 + i)
                 for i in range(3) for cid in (1, 42161, 8453)]
    print(f"one-event latency: baseline {baseline:.2f}s, with a node down max {max(latencies):.2f}s")
    assert max(latencies) < max(2.0, 3 * baseline)
    log = listener.log()
    assert "chain=optimism" in log and "listen.ws.disconnected chain=optimism" in log
    assert "listen.ws.disconnected chain=ethereum" not in log
    assert listener.terminate() == 0


def test_endpoint_added_while_listening_gets_events_mined_5_seconds_later(
    start_anvil, start_listener, receiver
):
    # Given a listener running while no endpoint exists, and a Transfer nobody asked for
    node = start_anvil(chain_id=1)
    token = Token(node)
    listener = start_listener({"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url})
    listener.wait_started(1)
    token.emit_transfers(3, 100)
    time.sleep(1)

    # When an endpoint for the token is added, and 5 seconds later 4 Transfers are mined
    add_endpoint(receiver.url("/late"), contracts=[token.address])
    time.sleep(5)
    token.emit_transfers(4, 200)

    # Then the endpoint receives those 4 (and not the earlier 3) within seconds
    wait_until(lambda: len(receiver.on("/late")) >= 4, 10, 0.05, "4 webhooks at /late")
    time.sleep(1)
    values = sorted(int(r.json["data"]["data"], 16) for r in receiver.on("/late"))
    assert values == [200, 201, 202, 203]
    assert listener.terminate() == 0


def test_metrics_and_health_report_each_chain(start_anvil, start_listener, receiver):
    # Given a listener with its HTTP endpoint on, following one node, and a watched token
    import requests

    from tests.support.waiting import free_port

    node = start_anvil(chain_id=1)
    token = Token(node)
    add_endpoint(receiver.url("/m"), contracts=[token.address])
    port = free_port()
    listener = start_listener({"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url},
                              extra_env={"ETHHOOK_METRICS_PORT": str(port)})
    listener.wait_started(1)

    # When 2 transactions of 5 Transfers are mined and delivered
    token.emit_transfers(5, 1)
    token.emit_transfers(5, 100)
    wait_until(lambda: len(receiver.on("/m")) >= 10, 20, 0.1, "10 webhooks")
    head = node.block_number()

    # Then /health reports the chain connected with no lag, and /metrics counts its events
    def healthy():
        answer = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
        chain = answer.json()["chains"]["ethereum"]
        return answer.status_code == 200 and chain["cursor"] == head and chain

    chain = wait_until(healthy, 10, 0.2, "/health at the head")
    assert chain == {"chain_id": 1, "transport": "websocket", "head": head, "cursor": head,
                     "lag_blocks": 0, "ok": True, "last_error": None}
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'events_received_total{chain="ethereum"} 10.0' in text
    assert f'chain_head_block{{chain="ethereum"}} {float(head)}' in text
    assert 'listener_lag_blocks{chain="ethereum"} 0.0' in text

    # When the node goes away, /health turns 503 and names the problem
    node.stop()
    def unhealthy():
        answer = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
        return answer.status_code == 503 and answer.json()
    report = wait_until(unhealthy, 15, 0.2, "/health to report the node down")
    assert report["chains"]["ethereum"]["ok"] is False
    assert "listen.rpc.error" in report["chains"]["ethereum"]["last_error"]
    assert listener.terminate() == 0

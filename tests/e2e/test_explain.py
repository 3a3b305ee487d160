"""Acceptance (issue 23, item 1): on anvil, four endpoints of one application (one matching, one
on another contract, one whose --where fails, one disabled) and one of another application;
`ethhook explain` and GET /v1/explain give each the right `matched` and a reason naming the
check; each application's key sees only its own endpoints; a transaction EthHook did not store
is read from the node and said so."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ethhook.abi import checksum
from tests.support.api import ApiServer, assert_problem
from tests.support.chain import Token
from tests.support.cli import assert_refused, ethhook
from tests.support.factories import TRANSFER
from tests.support.listener import wait_for_cursor
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.usefixtures("db", "worker")]


def add(api: ApiServer, key: str, url: str, contract: str, **more: Any) -> int:
    body = {"url": url, "chains": [1], "contracts": [contract], "events": [TRANSFER], **more}
    created = api.call("POST", "/v1/endpoints", key, json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def verdicts(found: dict[str, Any]) -> dict[int, tuple[bool, str | None]]:
    (log,) = found["logs"]
    return {e["endpoint_id"]: (e["matched"], e["reason"]) for e in log["endpoints"]}


def test_explain_tells_each_endpoint_why_through_the_cli_and_the_api(
    api: ApiServer, operator_key: str, receiver: Receiver, start_anvil: Any, start_listener: Any
) -> None:
    # Given a token, another contract and one nobody watches, on anvil
    node = start_anvil(chain_id=1)
    token, other, unwatched = Token(node), Token(node), Token(node)
    keys = {}
    for name in ("shop", "rival"):
        app = api.call("POST", "/v1/applications", operator_key, json={"name": name}).json()
        keys[name] = app["api_key"]
    # …four endpoints of one application and one of another
    shop = keys["shop"]
    matching = add(api, shop, receiver.url("/match"), token.address)
    elsewhere = add(api, shop, receiver.url("/other"), other.address)
    large = add(api, shop, receiver.url("/large"), token.address, where=["value >= 1000000"])
    disabled = add(api, shop, receiver.url("/off"), token.address)
    assert api.call("POST", f"/v1/endpoints/{disabled}/disable", shop).status_code == 200
    rivals = add(api, keys["rival"], receiver.url("/rival"), token.address)
    listener = start_listener({"ETHEREUM_HTTP": node.http_url})
    listener.wait_started(1)

    # When the token emits one Transfer of value 7, and the matching endpoints receive it
    tx = token.emit_transfers(1, 7)
    wait_for_cursor(1, node.block_number())
    wait_until(lambda: receiver.on("/match") and receiver.on("/rival"), 60, 0.2, "the webhooks")

    def attempts_recorded() -> dict[str, Any] | None:
        answer = api.call("GET", f"/v1/explain?chain=ethereum&tx={tx}", shop)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        (log,) = found["logs"]
        (first,) = [e for e in log["endpoints"] if e["endpoint_id"] == matching]
        done = first["deliveries"] and first["deliveries"][0]["attempts"]
        return found if done else None

    by_api = wait_until(attempts_recorded, 30, 0.3, "the attempt to be recorded")

    # Then the application's key sees its four endpoints, each with the check that decided
    assert by_api["source"] == "database" and by_api["chain_id"] == 1
    assert by_api["transaction_hash"] == tx.lower()
    assert by_api["block_number"] == int(
        node.rpc("eth_getTransactionReceipt", tx)["blockNumber"], 16
    )
    (log,) = by_api["logs"]
    assert log["stored"] is True and log["address"] == token.address and log["log_index"] == 0
    assert verdicts(by_api) == {
        matching: (True, None),
        elsewhere: (
            False,
            f"contract: the log's contract is {checksum(token.address)}; "
            f"the endpoint watches {checksum(other.address)}",
        ),
        large: (False, "where: value >= 1000000 is false (value = 7)"),
        disabled: (
            True,
            f"disabled: the endpoint is disabled (disabled through the API); its deliveries "
            f"are kept as backlog (within retention) and sent by `ethhook endpoint enable "
            f"{disabled}`",
        ),
    }
    (sent,) = next(e for e in log["endpoints"] if e["endpoint_id"] == matching)["deliveries"]
    assert sent["status"] == "succeeded" and sent["kind"] == "event.instant"
    assert sent["webhook_id"] == receiver.on("/match")[0].webhook_id
    (attempt,) = sent["attempts"]
    assert attempt["attempt_number"] == 1 and attempt["status_code"] == 200
    assert attempt["error"] is None and attempt["duration_ms"] > 0
    assert set(attempt) == {"attempt_number", "status_code", "error", "started_at", "duration_ms"}
    assert set(sent) == {"id", "webhook_id", "kind", "status", "sequence", "attempts"}

    # …the other application's key sees only its own endpoint
    rival = api.call("GET", f"/v1/explain?chain=1&tx={tx}", keys["rival"]).json()
    assert verdicts(rival) == {rivals: (True, None)}

    # …and the operator's command sees all five, the same answer as the API's for the four
    # (the API has no node URL and finds the events by their hash; the command asks the node
    # which block holds the transaction and reads that block's events)
    node_url = {"ETHEREUM_HTTP": node.http_url}
    cli = ethhook("explain", "--chain", "ethereum", "--tx", tx, "--json", env=node_url)
    assert cli.returncode == 0, cli.stderr
    by_cli = json.loads(cli.stdout)
    assert set(verdicts(by_cli)) == {matching, elsewhere, large, disabled, rivals}
    shop_only = [e for e in by_cli["logs"][0]["endpoints"] if e["endpoint_id"] != rivals]
    assert {**by_cli, "logs": [{**by_cli["logs"][0], "endpoints": shop_only}]} == by_api
    text = ethhook("explain", "--chain", "1", "--tx", tx)
    assert text.returncode == 0, text.stderr
    assert f"endpoint {large}: not matched  where: value >= 1000000 is false (value = 7)" in (
        text.stdout
    )
    assert (
        f"endpoint {matching}: matched" in text.stdout and "logs from the database" in text.stdout
    )

    # A transaction EthHook did not store is read from the node, and said so
    unseen = unwatched.emit_transfers(1, 9)
    from_node = ethhook(
        "explain",
        "--chain",
        "ethereum",
        "--tx",
        unseen,
        "--json",
        env={"ETHEREUM_HTTP": node.http_url},
    )
    assert from_node.returncode == 0, from_node.stderr
    found = json.loads(from_node.stdout)
    assert found["source"] == "node" and found["logs"][0]["stored"] is False
    assert all(
        reason.startswith(f"contract: the log's contract is {checksum(unwatched.address)}")
        for matched, reason in verdicts(found).values()
        if not matched
    )
    assert not any(matched for matched, _ in verdicts(found).values())

    # An unknown chain or transaction is one line: exit 2, or a 404 problem
    assert "unknown chain 'nowhere'" in assert_refused(
        ethhook("explain", "--chain", "nowhere", "--tx", tx)
    )
    unknown = "0x" + "ee" * 32
    assert "does not know it" in assert_refused(
        ethhook("explain", "--chain", "1", "--tx", unknown, env={"ETHEREUM_HTTP": node.http_url})
    )
    assert_problem(
        api.call("GET", f"/v1/explain?chain=1&tx={unknown}", shop), 404, "not-found", unknown
    )
    assert listener.terminate() == 0

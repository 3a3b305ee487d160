"""Issue 24 on a real chain (anvil → `ethhook listen` → Celery worker with beat → loopback
receivers): acceptance 4 (a 410 disables an endpoint, `endpoint.disabled` reaches the
application's ops endpoint signed with its secret, the events emitted meanwhile are kept and
`endpoint enable` sends every earlier and later one once), `replay.finished`, and
`chain.lagging` when the listener cannot read the chain's logs."""

from __future__ import annotations

import collections
import json

import pytest
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import Delivery, Endpoint
from tests.support.chain import Token
from tests.support.cli import ethhook
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER
from tests.support.ops import default_application_id, ops_of, set_ops_endpoint
from tests.support.rpcproxy import RefusingProxy
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]


def delivery_count(endpoint_id: int) -> int:
    with session_scope() as session:
        return len(
            session.scalars(select(Delivery.id).where(Delivery.endpoint_id == endpoint_id)).all()
        )


def is_active(endpoint_id: int) -> bool:
    with session_scope() as session:
        found = session.get(Endpoint, endpoint_id)
        assert found is not None
        return found.active


def test_acceptance_4_a_410_disables_tells_the_ops_endpoint_and_enable_sends_everything_once(
    receiver, start_anvil, start_listener
):
    node = start_anvil(chain_id=1)
    token = Token(node)
    set_ops_endpoint(receiver, default_application_id())
    answer = {"status": 410}
    receiver.responders["/gone"] = lambda n: (answer["status"], {}, b"")
    endpoint_id, secret = add_endpoint(
        receiver.url("/gone"), contracts=[token.address], events=[TRANSFER]
    )
    receiver.secrets["/gone"] = secret
    listener = start_listener({"ETHEREUM_HTTP": node.http_url, "ETHEREUM_WS": node.ws_url})
    listener.wait_started()

    # An endpoint whose receiver answers 410 is disabled…
    token.emit_transfers(3, 100)
    wait_until(lambda: not is_active(endpoint_id), 60, 0.2, "disabled by the 410")
    # …and `endpoint.disabled` goes to the application's operational endpoint, verified with the
    # ops secret (the receiver checks every request to /ops with it)
    (told,) = wait_until(
        lambda: ops_of(receiver, "endpoint.disabled", endpoint_id=endpoint_id), 30, 0.2, "ops"
    )
    assert told.verified is True
    assert told.json["data"]["trigger"] == "automatic" and told.json["data"]["backlog"] == "kept"

    # Events emitted while it is disabled are kept
    token.emit_transfers(4, 200)
    wait_until(lambda: delivery_count(endpoint_id) == 7, 60, 0.2, "7 deliveries kept")
    refused = len(receiver.on("/gone"))
    assert all(r.status == 410 for r in receiver.on("/gone"))

    # After `endpoint enable`, the earlier deliveries and those events all arrive, once each
    answer["status"] = 200
    assert ethhook("endpoint", "enable", str(endpoint_id)).returncode == 0
    wait_until(
        lambda: len([r for r in receiver.on("/gone") if r.status == 200]) >= 7, 60, 0.2, "all 7"
    )
    listener.stop()
    accepted = [r for r in receiver.on("/gone") if r.status == 200]
    values = collections.Counter(int(r.json["data"]["decoded"]["args"]["value"]) for r in accepted)
    assert values == collections.Counter([100, 101, 102, 200, 201, 202, 203])
    assert all(r.verified for r in accepted)
    assert sorted(r.json["sequence"] for r in accepted) == list(range(1, 8))
    assert len(receiver.on("/gone")) == refused + 7


def test_a_finished_replay_is_told_to_the_ops_endpoint(
    receiver, start_anvil, start_listener, start_replay_worker
):
    node = start_anvil(chain_id=1)
    token = Token(node)
    set_ops_endpoint(receiver, default_application_id())
    endpoint_id, _ = add_endpoint(receiver.url("/hook"), contracts=[token.address])
    chain = {"ETHEREUM_HTTP": node.http_url, "ETHEREUM_WS": node.ws_url}
    start_replay_worker(chain)
    listener = start_listener(chain)
    listener.wait_started()
    token.emit_transfers(2, 10)
    wait_until(lambda: len(receiver.on("/hook")) >= 2, 60, 0.2, "two webhooks")
    block = receiver.on("/hook")[0].json["data"]["block_number"]
    listener.stop()

    args = ("--chain", "1", "--from-block", str(block), "--to-block", str(block))
    result = ethhook("replay", *args, "--endpoint", str(endpoint_id), "--json", env=chain)
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)

    (finished,) = wait_until(
        lambda: ops_of(receiver, "replay.finished", replay_id=job["id"]), 30, 0.2, "finished"
    )
    assert finished.verified is True
    data = finished.json["data"]
    assert (data["state"], data["endpoint_id"], data["events"]) == ("done", endpoint_id, 2)
    assert (data["from_block"], data["to_block"], data["origin"]) == (block, block, "replay")


def test_a_listener_behind_the_head_for_too_long_is_told_as_chain_lagging(
    receiver, start_anvil, start_listener
):
    node = start_anvil(chain_id=1)
    token = Token(node)
    proxy = RefusingProxy(node.http_url)
    try:
        set_ops_endpoint(receiver, default_application_id())
        add_endpoint(receiver.url("/hook"), contracts=[token.address])
        lag = {"ETHHOOK_OPS_LAG_BLOCKS": "5", "ETHHOOK_OPS_LAG_AFTER_S": "2"}
        listener = start_listener({"ETHEREUM_HTTP": proxy.url}, extra_env=lag)
        listener.wait_started()

        # The node's head moves on while its logs cannot be read
        proxy.refuse_logs = True
        node.mine(20)
        (lagging,) = wait_until(
            lambda: ops_of(receiver, "chain.lagging", chain_id=1), 60, 0.2, "chain.lagging"
        )
        assert proxy.refused > 0 and lagging.verified is True
        data = lagging.json["data"]
        assert data["lag_blocks"] > 5 and data["lagging_for_s"] >= 2
        assert data["node_head"] - data["cursor"] == data["lag_blocks"]
        assert "listen.chain.lagging chain=ethereum" in listener.log()

        # Reading again, it catches up: no second notice for that spell
        proxy.refuse_logs = False
        wait_until(lambda: "listen.chain.lagging" in listener.log(), 5)
        token.emit_transfers(1, 5)
        wait_until(lambda: len(receiver.on("/hook")) >= 1, 60, 0.2, "caught up")
        assert len(ops_of(receiver, "chain.lagging")) == 1
    finally:
        proxy.stop()

"""One pipeline on private PostgreSQL and Redis for fault tests and the soak: an anvil chain with
the test token, a receiver, one endpoint, and the listener following the chain; with `proxied`, a
loopback proxy on each of the listener's ways to the node (WebSocket, HTTP)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ethhook.demo.devchain import anvil_binary
from tests.support.chain import Anvil, Token
from tests.support.fakes import TcpProxy
from tests.support.faults_pipeline import Pipeline, pipeline_env, register_endpoint
from tests.support.faults_services import PrivatePostgres, PrivateRedis
from tests.support.faults_stream import Stream
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until


@dataclass
class Rig:
    root: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    node: Anvil
    token: Token
    receiver: Receiver
    pipeline: Pipeline
    # With make_rig(proxied=True): the listener's ETHEREUM_WS and ETHEREUM_HTTP go through these.
    ws_proxy: TcpProxy | None = None
    http_proxy: TcpProxy | None = None

    def stream(self, tx_per_s: float = 2.0, events_per_tx: int = 10) -> Stream:
        return Stream(self.node, self.token, events_per_tx, tx_per_s).start()


def make_rig(
    broker_url: str = "", proxied: bool = False, settings: dict[str, str] | None = None
) -> Iterator[Rig]:
    """Everything started, the endpoint registered and the listener following the chain; with
    `proxied`, the listener reaches the node through one TcpProxy for its WebSocket and one for
    HTTP (the stream, the harness and the workers still talk to anvil directly). `settings`
    (ETHHOOK_* variables) apply over the fault tests' from the start, `db upgrade` included
    (the partition interval is one)."""
    root = Path(tempfile.mkdtemp(prefix="ethhook-faults-"))
    postgres = PrivatePostgres(root)
    redis = PrivateRedis(root)
    node = Anvil(anvil_binary(), chain_id=1, name="faults")
    receiver = Receiver()
    ws_proxy = TcpProxy(node.port) if proxied else None
    http_proxy = TcpProxy(node.port) if proxied else None
    env = pipeline_env(postgres.url, redis.url, node, broker_url)
    if ws_proxy is not None and http_proxy is not None:
        env.update({"ETHEREUM_WS": ws_proxy.ws_url, "ETHEREUM_HTTP": http_proxy.http_url})
    env.update(settings or {})
    pipeline = Pipeline(root, env)
    try:
        pipeline.ethhook("db", "upgrade")
        token = Token(node)
        register_endpoint(pipeline, receiver, token.address)
        pipeline.start()
        pipeline_ready(pipeline)
        yield Rig(root, postgres, redis, node, token, receiver, pipeline, ws_proxy, http_proxy)
    finally:
        pipeline.stop()
        for proxy in (ws_proxy, http_proxy):
            if proxy is not None:
                proxy.close()
        receiver.stop()
        node.stop()
        redis.close()
        postgres.close()
        print(f"fault-test logs in {root}")


def pipeline_ready(pipeline: Pipeline) -> None:
    wait_until(
        lambda: (
            "listen.chain.started" in pipeline.log("listener")
            or "listen.range.done" in pipeline.log("listener")
        ),
        60,
        0.2,
        what="the listener to follow the chain",
    )

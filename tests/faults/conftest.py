"""Fixtures for fault tests: one pipeline per module on private PostgreSQL and Redis, an anvil
chain with the test token, a receiver, one endpoint; every fault test runs against it in turn."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ethhook.demo.devchain import anvil_binary
from tests.e2e.conftest import Anvil, Token
from tests.faults.harness import (
    Pipeline,
    PrivatePostgres,
    PrivateRedis,
    Stream,
    pipeline_env,
    register_endpoint,
)
from tests.receiver import Receiver


@dataclass
class Rig:
    root: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    node: Anvil
    token: Token
    receiver: Receiver
    pipeline: Pipeline

    def stream(self, tx_per_s: float = 2.0, events_per_tx: int = 10) -> Stream:
        return Stream(self.node, self.token, events_per_tx, tx_per_s).start()


def make_rig(broker_url: str = "") -> Iterator[Rig]:
    """Everything started, the endpoint registered and the listener following the chain."""
    root = Path(tempfile.mkdtemp(prefix="ethhook-faults-"))
    postgres = PrivatePostgres(root)
    redis = PrivateRedis(root)
    node = Anvil(anvil_binary(), chain_id=1, name="faults")
    receiver = Receiver()
    pipeline = Pipeline(root, pipeline_env(postgres.url, redis.url, node, broker_url))
    try:
        pipeline.ethhook("db", "upgrade")
        token = Token(node)
        register_endpoint(pipeline, receiver, token.address)
        pipeline.start()
        pipeline_ready(pipeline)
        yield Rig(root, postgres, redis, node, token, receiver, pipeline)
    finally:
        pipeline.stop()
        receiver.stop()
        node.stop()
        redis.close()
        postgres.close()
        print(f"fault-test logs in {root}")


def pipeline_ready(pipeline: Pipeline) -> None:
    from tests.conftest import wait_until

    wait_until(
        lambda: (
            "listen.chain.started" in pipeline.log("listener")
            or "listen.range.done" in pipeline.log("listener")
        ),
        60,
        0.2,
        what="the listener to follow the chain",
    )


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    yield from make_rig()

"""HTTP API fixtures: `ethhook api` as a real uvicorn server on a free loopback port, over the
test database and Redis, and two applications (tenants) with an endpoint, a delivery and a
replay job each."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import Delivery, utcnow
from ethhook.replay import create_replay
from ethhook.service import apps
from ethhook.service.scope import OPERATOR
from tests.conftest import BIN, ROOT, TMP, free_port, stop_process, wait_until
from tests.e2e.conftest import anvil_bin, start_anvil, start_listener  # noqa: F401 (fixtures)
from tests.factories import address, transfer
from tests.integration.helpers import add_endpoint, store_and_match


class ApiServer:
    """`ethhook api --port N` as a subprocess; `call` sends a request with a key (or none)."""

    count = 0

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        ApiServer.count += 1
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = TMP / f"api-{ApiServer.count}.log"
        env = os.environ.copy()
        env.update(extra_env or {})
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(BIN / "ethhook"), "api", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.http = requests.Session()
        wait_until(self._up, 30, 0.1, what=f"the API to start (log: {self.log_path})")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"ethhook api exited: {self.log()[-3000:]}")
        try:
            return self.http.get(self.base + "/health", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def log(self) -> str:
        return self.log_path.read_text()

    def call(self, method: str, path: str, key: str | None = None, **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.http.request(method, self.base + path, headers=headers, timeout=30, **kw)

    def stop(self) -> None:
        stop_process(self.proc, 15)
        self._log.close()


@pytest.fixture(scope="session")
def api(database: str, redis_server: str) -> Iterator[ApiServer]:
    """The API with its rate limits off (other tests send many requests with one key, and
    many without a valid one)."""
    server = ApiServer({"ETHHOOK_API_RATE_LIMIT": "0", "ETHHOOK_API_AUTH_FAILURE_RATE": "0"})
    yield server
    server.stop()


@pytest.fixture()
def operator_key(db: None) -> str:
    with session_scope() as session:
        return apps.set_operator_key(session)


URL = "http://127.0.0.1:9/hooks"  # loopback: a test webhook to it is refused at once


def make_tenant(name: str, n: int) -> dict[str, Any]:
    """An application with a key, an endpoint with one delivery, and a replay job."""
    with session_scope() as session:
        created = apps.create_application(session, name, scope=OPERATOR)
    app_id = created.application.id
    endpoint_id, secret = add_endpoint(URL, contracts=[address(n)], application_id=app_id)
    event = transfer(contract=address(n), block=n, log_index=n, value=n)
    with session_scope() as session:
        store_and_match(session, [event], utcnow())
        delivery_id = session.scalar(select(Delivery.id).where(Delivery.endpoint_id == endpoint_id))
        job, _ = create_replay(
            session, get_settings(), 1, 1, 10, endpoint_id, utcnow(), scope=app_id
        )
    return {
        "app": app_id,
        "key": created.api_key,
        "endpoint": endpoint_id,
        "secret": secret,
        "delivery": delivery_id,
        "replay": job.id,
    }


@pytest.fixture()
def tenants(db: None) -> dict[str, dict[str, Any]]:
    """Applications A and B, each with an endpoint, a delivery and a replay job."""
    return {"a": make_tenant("A", 1), "b": make_tenant("B", 2)}

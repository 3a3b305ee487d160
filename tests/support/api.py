"""`ethhook api` as a real server for tests, tenants (applications with an endpoint, a delivery
and a replay job each), and what every problem+json answer must look like."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import requests
from sqlalchemy import select

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import Delivery, utcnow
from ethhook.replay.jobs import create_replay
from ethhook.service import apps
from ethhook.service.scope import OPERATOR
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.env import BIN, ROOT, TMP
from tests.support.factories import address, transfer
from tests.support.waiting import free_port, stop_process, wait_until


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
        try:
            wait_until(self._up, 90, 0.1, what=f"the API to start (log: {self.log_path})")
        except BaseException:
            self.stop()  # nobody else holds it: a failed start leaves no process behind
            raise

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"ethhook api exited: {self.log()[-3000:]}")
        try:
            return self.http.get(self.base + "/health", timeout=2).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow to answer
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


PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(answer: Any, status: int, kind: str, detail_part: str = "") -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert PROBLEM_KEYS <= set(problem) <= PROBLEM_KEYS | {"errors"}
    assert problem["type"] == f"urn:ethhook:problem:{kind}"
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert detail_part in problem["detail"]
    return problem

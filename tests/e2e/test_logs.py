"""`ethhook up`'s logs against a real chain, in both formats: at most a line or two per process in
two idle minutes, every line a JSON object when asked, a webhook followed by its id through every
line about it, the API's request id on its lines and answers, and no secret in any line."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import Delivery
from ethhook.service import apps
from ethhook.service.scope import OPERATOR
from tests.support.chain import Token
from tests.support.cli import start_up
from tests.support.endpoints import add_endpoint
from tests.support.env import TMP
from tests.support.factories import TRANSFER
from tests.support.listener import cursor_of
from tests.support.waiting import free_port, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    pytest.mark.usefixtures("db", "redis_server", "without_session_worker"),
]

IDLE_S = 120.0
MOST_IDLE_LINES = 2  # per process in IDLE_S: the bound
PROCESSES = ("up", "listener", "match", "deliver", "beat", "api")
# The node URL's credentials: anvil answers on "/" whatever the user info and the query.
URL_SECRETS = ("LOGUSER", "LOGPASSWORD", "LOGQUERYKEY")
TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?:DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) "
)
SIGN_IN_ID = "logs-sign-in.1"


@dataclass
class Run:
    """What `ethhook up` wrote, and the ids and secrets of what the test did meanwhile."""

    output: str
    idle: str  # written during the idle window, after start-up
    secrets: list[str]
    webhook_id: str
    delivery_id: int
    app_id: int
    sign_in: requests.Response  # the console's sign-in, sent with x-request-id SIGN_IN_ID
    malformed: requests.Response  # sent with an x-request-id that is not well formed


def run_up(start_anvil: Any, receiver: Any, log_format: str) -> Run:
    """`ethhook up` in `log_format` at the default levels: start-up, IDLE_S of nothing, then a
    webhook that fails once and succeeds, API calls and a console sign-in."""
    node = start_anvil(chain_id=1)
    token = Token(node)
    with session_scope() as session:
        created = apps.create_application(session, "logs", scope=OPERATOR)
    app_id, key = created.application.id, created.api_key
    endpoint_id, secret = add_endpoint(
        receiver.url("/logs"),
        contracts=[token.address],
        events=[TRANSFER],
        retry_schedule="0,1",
        application_id=app_id,
    )
    receiver.secrets["/logs"] = secret
    receiver.responders["/logs"] = lambda i: (500, {}, b"down") if i == 0 else (200, {}, b"ok")
    credentials = f"LOGUSER:LOGPASSWORD@127.0.0.1:{node.port}/?apikey=LOGQUERYKEY"
    api = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "ETHEREUM_HTTP": f"http://{credentials}",
        "ETHEREUM_WS": f"ws://{credentials}",
        "ETHHOOK_METRICS_PORT": str(free_port()),
        "ETHHOOK_WORKER_METRICS_PORT": "0",
        "ETHHOOK_API_PORT": api.rsplit(":", 1)[1],
        "ETHHOOK_LOG_FORMAT": log_format,
    }
    for default in ("ETHHOOK_LOG_LEVEL", "ETHHOOK_LOG_LEVELS"):
        env.pop(default, None)
    path = TMP / f"up-logs-{log_format}.log"
    up, log = start_up(env, f"logs-{log_format}")
    try:
        wait_started(up, path, api)
        idle_from = path.stat().st_size
        time.sleep(IDLE_S)  # the measurement itself: what an idle deployment writes
        idle = path.read_bytes()[idle_from:].decode(errors="replace")

        session = requests.Session()
        made = session.post(
            f"{api}/v1/endpoints",
            json={"url": receiver.url("/other"), "contracts": ["0x" + "11" * 20]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert made.status_code == 201, made.text
        token.emit_transfers(1, 7000)
        wait_until(lambda: [r.status for r in receiver.on("/logs")] == [500, 200], 60, 0.2, "retry")
        webhook_id = receiver.on("/logs")[0].webhook_id
        wait_until(lambda: "deliver.attempt.succeeded" in path.read_text(), 30, 0.2, "success")
        sign_in = console_sign_in(session, api, key)
        malformed = session.get(f"{api}/health", headers={"x-request-id": "bad id!"}, timeout=10)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(40)
        log.close()
    with session_scope() as db:
        delivery_id = db.scalars(
            select(Delivery.id).where(Delivery.endpoint_id == endpoint_id)
        ).one()
    secrets = [secret, made.json()["secret"], key, *URL_SECRETS]
    secrets += [s.split("_", 1)[1] for s in secrets[:3]]  # without their whsec_ and ehk_
    return Run(
        path.read_text(errors="replace"),
        idle,
        secrets,
        webhook_id,
        delivery_id,
        app_id,
        sign_in,
        malformed,
    )


def wait_started(up: Any, path: Path, api: str) -> None:
    """Until every process said it is up: the workers ready, beat started, the listener's cursor
    saved, the API answering."""

    def started() -> bool:
        assert up.poll() is None, path.read_text()[-3000:]
        text = path.read_text(errors="replace")
        ready = (
            all(f"{name}@" in text for name in ("match", "deliver")) and text.count(" ready.") >= 2
        )
        return ready and "beat: Starting..." in text and cursor_of(1) is not None and _health(api)

    wait_until(started, 90, 0.5, f"`ethhook up` to start (log: {path})")
    time.sleep(3)  # lines a process writes right after it said so are start-up lines too


def _health(api: str) -> bool:
    try:
        return requests.get(f"{api}/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def console_sign_in(session: requests.Session, api: str, key: str) -> requests.Response:
    page = session.get(f"{api}/console/sign-in", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None, page
    return session.post(
        f"{api}/console/sign-in",
        data={"csrf_token": csrf.group(1), "key": key},
        headers={"x-request-id": SIGN_IN_ID},
        allow_redirects=False,
        timeout=10,
    )


def assert_quiet(lines_by_process: Counter[str]) -> None:
    print(f"\nlines in {IDLE_S:.0f} s of idling, per process: {dict(lines_by_process)}")
    assert set(lines_by_process) <= set(PROCESSES), lines_by_process
    assert max(lines_by_process.values(), default=0) <= MOST_IDLE_LINES, lines_by_process


def assert_no_secret(run: Run) -> None:
    assert [s for s in run.secrets if s in run.output] == []


def assert_request_ids(run: Run) -> None:
    assert run.sign_in.status_code == 303, run.sign_in.text
    assert run.sign_in.headers["x-request-id"] == SIGN_IN_ID
    fresh = run.malformed.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", fresh), fresh


def test_text_logs_are_quiet_when_idle_and_name_the_webhook_and_the_request(start_anvil, receiver):
    run = run_up(start_anvil, receiver, "text")

    idle = [line for line in run.idle.splitlines() if line.strip()]
    assert_quiet(Counter(_text_process(line) for line in idle))
    about_webhook = [line for line in run.output.splitlines() if run.webhook_id in line]
    assert [line.split()[5] for line in about_webhook] == [
        "deliver.attempt.failed",
        "deliver.attempt.succeeded",
    ], about_webhook
    assert f" delivery={run.delivery_id} " in about_webhook[0]
    signed_in = [line for line in run.output.splitlines() if "console.sign_in " in line]
    assert [line.endswith(f" request_id={SIGN_IN_ID}") for line in signed_in] == [True]
    assert_request_ids(run)
    assert_no_secret(run)


def _text_process(line: str) -> str:
    match = TEXT_LINE.match(line)
    return match.group(1) if match else f"(not a log line) {line[:80]}"


def test_json_logs_are_one_object_per_line_and_follow_the_webhook_and_the_request(
    start_anvil, receiver
):
    run = run_up(start_anvil, receiver, "json")

    lines = [parse(line) for line in run.output.splitlines() if line.strip()]
    assert {p for p in (line["process"] for line in lines)} == set(PROCESSES)
    idle = [parse(line) for line in run.idle.splitlines() if line.strip()]
    assert_quiet(Counter(line["process"] for line in idle))

    about_webhook = [line for line in lines if line.get("webhook_id") == run.webhook_id]
    assert [(line["msg"].split()[0], line["level"]) for line in about_webhook] == [
        ("deliver.attempt.failed", "INFO"),
        ("deliver.attempt.succeeded", "INFO"),
    ], about_webhook
    about_delivery = [line for line in lines if line.get("delivery_id") == run.delivery_id]
    assert about_delivery == about_webhook
    assert {line["process"] for line in about_webhook} == {"deliver"}
    assert all(line["task"] == "ethhook.deliver.deliver_endpoint" for line in about_webhook)
    # Celery's own lines, with the task's id as a field
    received = [line for line in lines if line["msg"].endswith("] received")]
    assert received and all(line["task_id"] in line["msg"] for line in received)
    signed_in = [line for line in lines if line["msg"].startswith("console.sign_in ")]
    assert [(line["request_id"], line["app_id"]) for line in signed_in] == [
        (SIGN_IN_ID, run.app_id)
    ]
    assert_request_ids(run)
    assert_no_secret(run)


def parse(line: str) -> dict[str, Any]:
    parsed = json.loads(line)
    assert isinstance(parsed, dict), line
    assert {"ts", "level", "logger", "msg", "process"} <= set(parsed), line
    return parsed

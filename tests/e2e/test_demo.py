"""`ethhook demo --keep-running`: after the summary it serves the HTTP API and the console on the
demo's SQLite database and unix-socket Redis, prints their address and a key, and Ctrl-C stops
the API with everything else."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
import requests

from tests.support.env import BIN, ROOT, TMP
from tests.support.waiting import free_port, stop_process, wait_until

pytestmark = pytest.mark.slow

CONSOLE_LINE = re.compile(r"console (http://127\.0\.0\.1:(\d+))/console/  key (ehk_[\w-]+)\n")
CURL_LINE = re.compile(r'curl -H "Authorization: Bearer (ehk_[\w-]+)" \'(\S+)/v1/deliveries\?')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def api_children(pid: int) -> list[psutil.Process]:
    """The `python -m ethhook.cli api …` processes under `pid`."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            command = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if command[1:4] == ["-m", "ethhook.cli", "api"]:
            found.append(child)
    return found


def test_demo_keep_running_serves_the_api_and_console_and_stops_them_on_ctrl_c(
    tmp_path: Path,
) -> None:
    # Given `ethhook demo --events 20 --keep-running`, told a free port for the API
    port = free_port()
    log_path = TMP / "demo-keep-running.log"
    env = {**os.environ, "ETHHOOK_API_PORT": str(port)}
    with open(log_path, "wb") as log:
        demo = subprocess.Popen(
            [
                str(BIN / "ethhook"),
                "demo",
                "--events",
                "20",
                "--keep-running",
                "--workdir",
                str(tmp_path / "demo"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        # When it has delivered every webhook and says where the console is
        printed = wait_until(
            lambda: CONSOLE_LINE.search(log_path.read_text(errors="replace")),
            240,
            0.5,
            f"the console line (log: {log_path})",
        )
        output = log_path.read_text(errors="replace")
        base, key = printed.group(1), printed.group(3)
        assert printed.group(2) == str(port)
        assert "result                  OK" in output
        assert CURL_LINE.search(output).groups() == (key, base)
        auth = {"Authorization": f"Bearer {key}"}

        # Then the printed key lists the demo's 20 deliveries, all delivered to its one endpoint
        answer = requests.get(
            f"{base}/v1/deliveries", params={"limit": 50}, headers=auth, timeout=10
        )
        assert answer.status_code == 200, answer.text
        deliveries = answer.json()["data"]
        assert len(deliveries) == 20
        assert {d["status"] for d in deliveries} == {"succeeded"}
        assert len({d["endpoint_id"] for d in deliveries}) == 1
        endpoint_id = deliveries[0]["endpoint_id"]
        assert requests.get(f"{base}/v1/deliveries", timeout=10).status_code == 401

        # and the API reaches the demo's Redis over its unix socket (an Idempotency-Key is kept)
        assert requests.get(f"{base}/health", timeout=10).json() == {
            "status": "ok",
            "database": "ok",
            "redis": "ok",
        }
        test = {**auth, "Idempotency-Key": "demo-test-1"}
        first = requests.post(f"{base}/v1/endpoints/{endpoint_id}/test", headers=test, timeout=30)
        again = requests.post(f"{base}/v1/endpoints/{endpoint_id}/test", headers=test, timeout=30)
        assert first.status_code == 200 and first.json()["ok"] is True, first.text
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == first.json()

        # and the console's sign-in page opens, and the key shows the demo's endpoint there
        browser = requests.Session()
        sign_in = browser.get(f"{base}/console/", timeout=10)
        assert sign_in.status_code == 200
        assert sign_in.url == f"{base}/console/sign-in"
        token = CSRF_FIELD.search(sign_in.text).group(1)
        endpoints = browser.post(
            f"{base}/console/sign-in", data={"csrf_token": token, "key": key}, timeout=10
        )
        assert endpoints.status_code == 200
        assert endpoints.url == f"{base}/console/endpoints"
        assert "demo receiver" in endpoints.text

        # When the demo is interrupted (Ctrl-C)
        api = api_children(demo.pid)
        assert len(api) == 1
        demo.send_signal(signal.SIGINT)

        # Then it exits 0, the API process is gone and its port is closed
        assert demo.wait(60) == 0
        gone, alive = psutil.wait_procs(api, timeout=10)
        assert alive == []
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{base}/health", timeout=5)
    finally:
        stop_process(demo)

"""`configure` in a process of its own: the format, the levels per logger, and in JSON mode nothing
but JSON lines on stdout and stderr (prints, warnings, an uncaught exception included)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

from ethhook.logs.streams import JsonLines

SCRIPT = """
import logging, warnings
from ethhook.config import get_settings
from ethhook.logs import configure
configure(get_settings(), "listener")
for name in ("ethhook.listen.sync", "ethhook.deliver", "web3.providers", "celery"):
    logger = logging.getLogger(name)
    logger.debug("%s debug", name)
    logger.info("%s info", name)
    logger.warning("%s warning", name)
print("a library's print")
print()
warnings.warn("a warning")
raise RuntimeError("the end")
"""


def run(**env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    for name in ("ETHHOOK_LOG_FORMAT", "ETHHOOK_LOG_LEVEL", "ETHHOOK_LOG_LEVELS"):
        if name not in env:
            full.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=full, capture_output=True, text=True, timeout=60
    )


def test_json_mode_writes_nothing_but_json_lines_at_the_levels_asked_for():
    done = run(
        ETHHOOK_LOG_FORMAT="json",
        ETHHOOK_LOG_LEVEL="warning",
        ETHHOOK_LOG_LEVELS="ethhook.listen=DEBUG,web3=ERROR",
    )
    assert done.returncode == 1
    lines = [json.loads(line) for line in (done.stdout + done.stderr).splitlines()]
    assert all(isinstance(line, dict) and line["process"] == "listener" for line in lines)
    logged = [line["msg"] for line in lines if line["logger"] not in ("stdout", "py.warnings")]
    assert logged == [
        "ethhook.listen.sync debug",
        "ethhook.listen.sync info",
        "ethhook.listen.sync warning",
        "ethhook.deliver warning",
        "celery warning",
        "process.crashed error=RuntimeError",
    ]
    assert "RuntimeError: the end" in lines[-1]["exc"]
    assert [line["msg"] for line in lines if line["logger"] == "stdout"] == ["a library's print"]
    assert any("a warning" in line["msg"] for line in lines if line["logger"] == "py.warnings")


def test_text_mode_is_the_default_with_web3_quiet_and_info_shown():
    done = run()
    lines = done.stderr.splitlines()
    info = [line.split(" ", 2)[2] for line in lines if " INFO " in line]
    assert info == [
        "INFO listener ethhook.listen.sync ethhook.listen.sync info",
        "INFO listener ethhook.deliver ethhook.deliver info",
        "INFO listener celery celery info",
    ]
    assert not any("web3.providers info" in line for line in lines)
    assert "web3.providers warning" in done.stderr
    assert "Traceback" in done.stderr  # text mode leaves the interpreter's own report alone
    assert done.stdout == "a library's print\n\n"


def test_a_bad_level_stops_the_process_naming_the_variable():
    done = subprocess.run(
        [sys.executable, "-m", "ethhook.cli", "listen"],
        env={**os.environ, "ETHHOOK_LOG_LEVELS": "ethhook.listen=LOUD"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        "ethhook: error: ETHHOOK_LOG_LEVELS='ethhook.listen=LOUD' is invalid"
    )
    assert len(done.stderr.splitlines()) == 1


def test_json_lines_wraps_whole_lines_and_lets_json_through():
    target = io.StringIO()
    stream = JsonLines(
        target, "stdout", logging.INFO, lambda r: json.dumps({"msg": r.getMessage()})
    )
    stream.write("half a ")
    assert target.getvalue() == ""
    stream.write('line\n\n   \n{"already": "json"}\nnot {json}\n')
    assert target.getvalue().splitlines() == [
        '{"msg": "half a line"}',
        '{"already": "json"}',
        '{"msg": "not {json}"}',
    ]

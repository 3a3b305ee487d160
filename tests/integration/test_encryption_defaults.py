"""Endpoint secrets encrypted at rest unless told otherwise: `ethhook db new-key` makes a key, the
demo encrypts with one of its own, and a process started without ETHHOOK_SECRET_KEYS says so once
(`ethhook up` once for every process it starts)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from ethhook.config import parse_secret_keys
from tests.support.cli import ethhook
from tests.support.env import BIN, ROOT, TMP
from tests.support.waiting import free_port, stop_process, wait_until

# The start-up warning, as every process logs it.
WARNING = re.compile(
    r"WARNING.*ETHHOOK_SECRET_KEYS is not set: endpoint signing secrets are stored"
)


def test_db_new_key_prints_a_fresh_fernet_key() -> None:
    text = ethhook("db", "new-key")
    as_json = ethhook("db", "new-key", "--json")
    assert text.returncode == 0 and as_json.returncode == 0, (text.stderr, as_json.stderr)
    key = text.stdout.strip()
    other = json.loads(as_json.stdout)["key"]
    assert parse_secret_keys(key) == (key,) and parse_secret_keys(other) == (other,)
    assert key != other
    assert text.stderr == ""
    helped = ethhook("db", "new-key", "--help")
    assert helped.returncode == 0 and "ETHHOOK_SECRET_KEYS" in helped.stdout


def test_the_shell_recipe_of_env_example_makes_a_key() -> None:
    """.env.example's recipe for a Docker host without EthHook installed makes a valid key."""
    recipe = re.search(r"^#\s+(openssl rand .*)$", (ROOT / ".env.example").read_text(), re.M)
    assert recipe is not None, "the recipe is gone from .env.example"
    made = subprocess.run(
        ["sh", "-c", recipe.group(1)], capture_output=True, text=True, timeout=30, check=True
    )
    key = made.stdout.strip()
    assert parse_secret_keys(key) == (key,)


def _process_env(keys: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        # A chain to follow; the listener only needs to start, not to reach it.
        "ETHEREUM_HTTP": f"http://127.0.0.1:{free_port()}",
        "ETHHOOK_METRICS_PORT": str(free_port()),
        "ETHHOOK_WORKER_METRICS_PORT": "0",
        "ETHHOOK_API_PORT": str(free_port()),
    }
    env.pop("ETHHOOK_SECRET_KEYS", None)
    env.pop("ETHHOOK_WARN_PLAINTEXT_SECRETS", None)
    if keys is not None:
        env["ETHHOOK_SECRET_KEYS"] = keys
    return env


def output_once_started(args: list[str], env: dict[str, str], name: str, ready: list[str]) -> str:
    """Start a process, wait until its output matches every `ready` pattern, stop it; its output."""
    log_path = TMP / f"keys-{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def started() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited: {log_path.read_text()[-3000:]}")
            output = log_path.read_text(errors="replace")
            return all(re.search(pattern, output) for pattern in ready)

        wait_until(started, 120, 0.3, f"{name} to start (log: {log_path})")
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        stop_process(proc)
    return log_path.read_text(errors="replace")


UP_READY = ["listen.started", r"match@\S+ ready\.", r"deliver@\S+ ready\.", "api.started"]


@pytest.mark.usefixtures("db", "redis_server")
@pytest.mark.parametrize("keys", [None, "new"], ids=["no-key", "key"])
def test_up_warns_once_without_a_key_and_not_with_one(keys: str | None) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode() if keys else None
    up = [str(BIN / "ethhook"), "up", "--workdir", str(TMP / f"up-keys-{keys}")]
    up += ["--deliver-pool", "threads", "--deliver-concurrency", "2"]
    output = output_once_started(up, _process_env(key), f"up-{keys}", UP_READY)
    # Every process said it started: each is past the point where it would warn.
    warnings = [line for line in output.splitlines() if WARNING.search(line)]
    if key is None:
        assert len(warnings) == 1, output
        assert "`ethhook db new-key`" in warnings[0] and "`ethhook db reencrypt`" in warnings[0]
    else:
        assert warnings == [], output


ALONE = {
    "listen": ([str(BIN / "ethhook"), "listen"], ["listen.started"]),
    "api": ([str(BIN / "ethhook"), "api"], ["api.started"]),
    "worker": (
        [str(BIN / "ethhook-worker"), "-Q", "match", "-c", "1", "-n", "keys@%h", "-l", "INFO"],
        [r"keys@\S+ ready\."],
    ),
}


@pytest.mark.usefixtures("db", "redis_server")
@pytest.mark.parametrize("process", sorted(ALONE))
def test_a_process_started_alone_without_a_key_warns_once(process: str) -> None:
    args, ready = ALONE[process]
    output = output_once_started(args, _process_env(None), f"alone-{process}", ready)
    assert len([line for line in output.splitlines() if WARNING.search(line)]) == 1, output


def test_the_demo_stores_no_plaintext_secret(tmp_path: Path) -> None:
    # Given a short demo run, with no key in the environment
    env = {k: v for k, v in os.environ.items() if k != "ETHHOOK_SECRET_KEYS"}
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [str(BIN / "ethhook"), "demo", "--events", "5", "--workdir", str(workdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: every webhook arrived and verified" in result.stdout

    # Then the endpoint's secret is stored encrypted, under the key the demo keeps in its folder
    import sqlite3

    from ethhook.db.secrets import decrypt

    with sqlite3.connect(workdir / "ethhook.db") as db:
        stored = [row[0] for row in db.execute("SELECT secret FROM endpoints")]
    assert len(stored) == 1 and stored[0].startswith("enc:"), stored
    key = (workdir / "secret.key").read_text().strip()
    assert decrypt(stored[0], [key]).startswith("whsec_")
    assert (workdir / "secret.key").stat().st_mode & 0o077 == 0
    # and no file of the database (nor its write-ahead log) holds a plaintext secret
    for path in workdir.glob("ethhook.db*"):
        assert b"whsec_" not in path.read_bytes(), path.name

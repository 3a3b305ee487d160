"""A local anvil chain node (from the npm package, installed into a cache when missing) and the
test token deployed on it, spoken to over plain JSON-RPC; every transaction sent is confirmed."""

from __future__ import annotations

import fcntl
import glob
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from ethhook.config import get_settings
from ethhook.exceptions import EthHookError

ANVIL_VERSION = "1.7.1"
ARTIFACT = Path(__file__).resolve().parents[2] / "contracts" / "TestToken.json"
# anvil's first default account: unlocked and funded, so eth_sendTransaction needs no key.
ACCOUNT = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
CONFIRM_TIMEOUT_S = 30.0
NUDGE_AFTER_S = 1.0

logger = logging.getLogger(__name__)

Rpc = Callable[..., Any]
"""`rpc(method, *params)`: one JSON-RPC call to the node, returning its result."""


def anvil_binary() -> Path:
    """The native anvil binary of `@foundry-rs/anvil`, installed with npm into the cache if missing.

    Processes started together (a test run's, two demos) install it once: one installs under an
    exclusive lock on the cache while the others wait, and none runs a binary npm is still writing
    (which fails with "Text file busy").
    """
    cache = Path(get_settings().anvil_cache_dir)
    installed = cache / f".anvil-{ANVIL_VERSION}-installed"
    if installed.exists() and (found := _anvil_in(cache)):
        return found
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".install.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _anvil_in(cache)
        if found is None:
            _npm_install_anvil(cache)
            found = _anvil_in(cache)
        if found is None:
            raise EthHookError(f"anvil not found under {cache} after npm install")
        installed.touch()
    return found


def _anvil_in(cache: Path) -> Path | None:
    found = glob.glob(str(cache / "node_modules/@foundry-rs/anvil-*/bin/anvil"))
    return Path(found[0]) if found else None


def _npm_install_anvil(cache: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise EthHookError("the demo needs npm (Node.js) to install the anvil chain node")
    result = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(cache),
            f"@foundry-rs/anvil@{ANVIL_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise EthHookError(f"npm could not install anvil: {' '.join(tail)}")


def confirm_receipts(
    rpc: Rpc,
    tx_hashes: Sequence[str],
    timeout_s: float = CONFIRM_TIMEOUT_S,
    nudge_after_s: float = NUDGE_AFTER_S,
) -> list[dict[str, Any]]:
    """The receipt of every transaction, in order, once each is mined.

    anvil's automine can leave a sent transaction pending (foundry-rs/foundry#10122), so a wait
    alone may never end: while receipts are missing `nudge_after_s` into the wait, and again
    every `nudge_after_s`, one `evm_mine` per pending transaction mines them (one each: a
    transaction declaring a large gas limit fills a block alone). After `timeout_s` a one-line
    error names what is still missing.
    """
    receipts: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    deadline = started + timeout_s
    next_nudge = started + nudge_after_s
    nudges = 0
    while True:
        for tx_hash in tx_hashes:
            if tx_hash not in receipts:
                receipt = rpc("eth_getTransactionReceipt", tx_hash)
                if receipt:
                    receipts[tx_hash] = dict(receipt)
        pending = [tx_hash for tx_hash in dict.fromkeys(tx_hashes) if tx_hash not in receipts]
        if not pending:
            return [receipts[tx_hash] for tx_hash in tx_hashes]
        now = time.monotonic()
        if now > deadline:
            raise EthHookError(
                f"{len(pending)} of {len(tx_hashes)} transactions not mined in {timeout_s:g} s "
                f"despite {nudges} evm_mine nudges (first: {pending[0]}); is the chain node stuck?"
            )
        if now >= next_nudge:
            logger.warning(
                "devchain.nudge pending=%d first=%s waited_s=%.1f (mining them with evm_mine)",
                len(pending),
                pending[0],
                now - started,
            )
            for _ in pending:
                rpc("evm_mine")
            nudges += 1
            next_nudge = now + nudge_after_s
        time.sleep(0.02)


def events_in(receipts: Sequence[dict[str, Any]]) -> int:
    """The events these transactions emitted: the logs of their receipts (none if reverted)."""
    return sum(len(receipt["logs"]) for receipt in receipts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevChain:
    """One anvil node on a free loopback port; its output goes to a log file."""

    def __init__(self, workdir: Path, chain_id: int) -> None:
        self.chain_id = chain_id
        self.port = free_port()
        self.log_path = workdir / "anvil.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(anvil_binary()),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--chain-id",
                    str(chain_id),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.rpc("eth_chainId")
                return
            except (urllib.error.URLError, ConnectionError) as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise EthHookError(f"anvil did not start (see {self.log_path})") from exc
                time.sleep(0.05)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        request = urllib.request.Request(
            self.http_url, body.encode(), {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            answer = json.loads(response.read())
        if "error" in answer:
            raise EthHookError(f"anvil {method}: {answer['error'].get('message')}")
        return answer["result"]

    def send(self, to: str | None, data: str) -> str:
        tx: dict[str, Any] = {"from": ACCOUNT, "data": data, "gas": hex(30_000_000)}
        if to is not None:
            tx["to"] = to
        return str(self.rpc("eth_sendTransaction", tx))

    def deploy_token(self) -> str:
        """Deploy the test token; returns its address."""
        if not ARTIFACT.exists():
            raise EthHookError(
                f"the test token is missing: {ARTIFACT} (run from a source checkout)"
            )
        artifact = json.loads(ARTIFACT.read_text())
        data = artifact["bytecode"] + encode(["string", "string"], ["Demo", "DEMO"]).hex()
        receipt = self.confirm(self.send(None, data))
        if not receipt.get("contractAddress") or receipt.get("status") != "0x1":
            raise EthHookError(f"deploying the test token failed (see {self.log_path})")
        return str(receipt["contractAddress"]).lower()

    def confirm(self, tx_hash: str) -> dict[str, Any]:
        """The transaction's receipt, once it is mined (nudged with evm_mine if it stays pending)."""
        return confirm_receipts(self.rpc, [tx_hash])[0]

    def confirm_all(self, tx_hashes: Sequence[str]) -> list[dict[str, Any]]:
        """Every transaction's receipt, in order, once all are mined."""
        return confirm_receipts(self.rpc, tx_hashes)

    def emit_transfers(self, token: str, n: int, base: int) -> str:
        """Send one transaction emitting n Transfer events; returns its hash (confirm it)."""
        selector = function_signature_to_4byte_selector("emitTransfers(uint256,uint256)")
        return self.send(token, "0x" + (selector + encode(["uint256", "uint256"], [n, base])).hex())

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

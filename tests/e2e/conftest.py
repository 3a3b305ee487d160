"""End-to-end fixtures: anvil nodes (installed from npm when missing), the TestToken contract, and
`ethhook listen` as a real subprocess, on top of tests/conftest.py's database, Redis and worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from ethhook.config import BUILTIN_CHAINS
from ethhook.demo.devchain import ACCOUNT as DEPLOYER
from ethhook.demo.devchain import anvil_binary, confirm_receipts
from tests.conftest import BIN, ROOT, TMP, free_port, wait_until

ARTIFACT = json.loads((ROOT / "contracts" / "TestToken.json").read_text())


class Anvil:
    """One anvil node on a free loopback port; stdout to a file; stopped by pid."""

    def __init__(
        self, binary: Path, chain_id: int = 1, name: str = "anvil", extra: list[str] | None = None
    ) -> None:
        self.binary = binary
        self.chain_id = chain_id
        self.port = free_port()
        self.name = name
        self.extra = extra or []
        self.log_path = TMP / f"{name}-{self.port}.log"
        self.state_path = TMP / f"{name}-{self.port}.state.json"
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()
        self.unconfirmed: list[str] = []  # sent with wait=False; confirm_sent() waits for them
        self.start()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, load_state: bool = False) -> None:
        args = [
            str(self.binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--dump-state",
            str(self.state_path),
            *self.extra,
        ]
        if load_state:
            args += ["--load-state", str(self.state_path)]
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(self._up, 15, 0.05, what=f"{self.name} to start (log: {self.log_path})")

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"anvil exited: {self.log_path.read_text()[-2000:]}")
        try:
            self.rpc("eth_chainId")
            return True
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        """SIGTERM (anvil dumps its state), then SIGKILL if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def rpc(self, method: str, *params: Any) -> Any:
        answer = self.session.post(
            self.http_url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=30,
        ).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def block(self, number: int) -> dict[str, Any]:
        return self.rpc("eth_getBlockByNumber", hex(number), False)

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def send(self, to: str | None, data: str, wait: bool = True) -> str:
        """Send a transaction; with wait, confirm it (anvil can leave one pending: the demo's
        confirm_receipts nudges it with evm_mine); without, confirm_sent() does it later."""
        tx: dict[str, Any] = {"from": DEPLOYER, "data": data, "gas": hex(8_000_000)}
        if to is not None:
            tx["to"] = to
        tx_hash: str = self.rpc("eth_sendTransaction", tx)
        if wait:
            (receipt,) = confirm_receipts(self.rpc, [tx_hash])
            assert receipt["status"] == "0x1", receipt
        else:
            self.unconfirmed.append(tx_hash)
        return tx_hash

    def confirm_sent(self) -> list[dict[str, Any]]:
        """The receipts of every transaction sent with wait=False since the last call, each
        mined and successful; count events from their logs (`events_in`), not from the calls."""
        hashes, self.unconfirmed = self.unconfirmed, []
        receipts = confirm_receipts(self.rpc, hashes)
        for receipt in receipts:
            assert receipt["status"] == "0x1", receipt
        return receipts


def calldata(signature: str, types: list[str], args: list[Any]) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + encode(types, args)).hex()


class Token:
    """A deployed TestToken."""

    def __init__(self, node: Anvil) -> None:
        self.node = node
        data = ARTIFACT["bytecode"] + encode(["string", "string"], ["Test", "TST"]).hex()
        tx_hash = node.send(None, data)
        receipt = node.rpc("eth_getTransactionReceipt", tx_hash)
        self.address: str = receipt["contractAddress"].lower()

    def emit_transfers(self, n: int, base: int, wait: bool = True) -> str:
        """One transaction with n Transfer events: value base+i to address(base+i)."""
        return self.node.send(
            self.address,
            calldata("emitTransfers(uint256,uint256)", ["uint256", "uint256"], [n, base]),
            wait=wait,
        )

    def emit_tx_data(self, n: int, base: int) -> str:
        return calldata("emitTransfers(uint256,uint256)", ["uint256", "uint256"], [n, base])


def expected_transfer(base: int, i: int) -> dict[str, str]:
    """The decoded args of the i-th Transfer of `emit_transfers(n, base)`."""
    return {
        "from": "0x0000000000000000000000000000000000000000",
        "to": "0x" + f"{base + i:040x}",
        "value": str(base + i),
    }


class ListenerProcess:
    """`ethhook listen` as a subprocess with its own chain URLs; output to a log file."""

    count = 0

    def __init__(
        self,
        chains: dict[str, str],
        extra_env: dict[str, str] | None = None,
        launcher: list[str] | None = None,
    ) -> None:
        ListenerProcess.count += 1
        self.log_path = TMP / f"listener-{ListenerProcess.count}.log"
        self.env = os.environ.copy()
        self.env.update({"ETHHOOK_METRICS_PORT": "0", "PYTHONUNBUFFERED": "1"})
        self.env.update(chains)
        self.chains = dict(chains)
        self.env.update(extra_env or {})
        self.args = launcher or [str(BIN / "ethhook"), "listen"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_started(self, *chain_ids: int, timeout: float = 30) -> None:
        """Until the listener saved a cursor for every chain (it reads every block after it);
        by default the built-in chains whose URLs it was given."""
        if not chain_ids:
            chain_ids = tuple(
                sorted(
                    {
                        BUILTIN_CHAINS[var.split("_")[0].lower()]
                        for var in self.chains
                        if var.split("_")[0].lower() in BUILTIN_CHAINS
                    }
                )
            )
            assert chain_ids, "name the chain ids to wait for"
        wait_until(
            lambda: self._alive() and all(cursor_of(c) is not None for c in chain_ids),
            timeout,
            0.1,
            what=f"listener to start (log: {self.log_path})",
        )

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"listener exited {self.proc.returncode}: {self.log()[-3000:]}")
        return True

    def terminate(self, timeout: float = 10) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def anvil_bin() -> Path:
    return anvil_binary()


@pytest.fixture()
def start_anvil(anvil_bin: Path) -> Iterator[Any]:
    """Start anvil nodes: `start_anvil(chain_id=1, extra=[...])`; all stopped at teardown."""
    nodes: list[Anvil] = []

    def start(chain_id: int = 1, name: str = "anvil", extra: list[str] | None = None) -> Anvil:
        node = Anvil(anvil_bin, chain_id, name, extra)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture()
def start_listener() -> Iterator[Any]:
    """Start `ethhook listen` processes; all stopped at teardown."""
    procs: list[ListenerProcess] = []

    def start(chains: dict[str, str], **kw: Any) -> ListenerProcess:
        proc = ListenerProcess(chains, **kw)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
        # Shown by pytest only when the test failed.
        print(f"--- {proc.log_path.name} (last 60 lines) ---")
        print("\n".join(proc.log().splitlines()[-60:]))


def cursor_of(chain_id: int) -> int | None:
    from ethhook.db import session_scope
    from ethhook.db.models import ChainCursor

    with session_scope() as session:
        row = session.get(ChainCursor, chain_id)
        return None if row is None else row.block_number


def python_launcher(**constants: Any) -> list[str]:
    """Run the listener with some module constants changed (short timeouts in fault tests)."""
    lines = ["import sys", "from ethhook.cli import main"]
    for dotted, value in constants.items():
        module, name = dotted.rsplit(".", 1)
        lines.append(f"import {module}; {module}.{name} = {value!r}")
    lines.append("sys.exit(main(['listen']))")
    return [sys.executable, "-c", "; ".join(lines)]


def wait_for_cursor(chain_id: int, at_least: int, timeout: float = 60) -> None:
    wait_until(
        lambda: (cursor_of(chain_id) or -1) >= at_least,
        timeout,
        0.1,
        what=f"cursor of chain {chain_id} to reach {at_least}",
    )

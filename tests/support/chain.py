"""A local chain for tests: anvil nodes on free loopback ports, the TestToken contract deployed on
them, its calls' data, and the Transfers they emit."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import requests
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from ethhook.demo.devchain import ACCOUNT as DEPLOYER
from ethhook.demo.devchain import confirm_receipts
from tests.support.env import ROOT, TMP
from tests.support.waiting import free_port, wait_until

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


def replace_last_blocks(node: Anvil, token: Token, depth: int, txs: int, base: int) -> None:
    """anvil_reorg of `depth` blocks, the new blocks holding `txs` transactions of 3 Transfers."""
    head = node.block_number()
    nonce = int(node.rpc("eth_getTransactionCount", DEPLOYER, hex(head - depth)), 16)
    replacements = [
        [
            node.rpc(
                "eth_signTransaction",
                {
                    "from": DEPLOYER,
                    "to": token.address,
                    "data": token.emit_tx_data(3, base + 10 * j),
                    "gas": hex(1_000_000),
                    "nonce": hex(nonce + j),
                },
            ),
            j,
        ]
        for j in range(txs)
    ]
    node.rpc("anvil_reorg", depth, replacements)


def build_chain(node: Anvil, token: Token, transactions: int, per_tx: int, gap: int) -> int:
    """`transactions` transactions of `per_tx` Transfers, `gap` empty blocks after each; returns
    the number of events."""
    for k in range(transactions):
        token.emit_transfers(per_tx, 10_000 + k * per_tx)
        node.mine(gap)
    return transactions * per_tx

"""`ethhook explain`: why a transaction's logs did or did not reach each endpoint."""

from __future__ import annotations

import argparse
from typing import Any

from ethhook.cli.common import Commands, add_command, as_operator, positive_int
from ethhook.cli.output import emit, json_default
from ethhook.config import Settings
from ethhook.service.public import to_public


def register(commands: Commands) -> None:
    explain = add_command(
        commands,
        "explain",
        cmd_explain,
        "for every log of a transaction: stored or not, and for each endpoint whether it "
        "matched, the first check that failed, and its deliveries with every attempt",
    )
    explain.add_argument(
        "--chain", required=True, metavar="ID_OR_NAME", help="the chain, e.g. 1 or ethereum"
    )
    explain.add_argument("--tx", required=True, metavar="HASH", help="the transaction hash")
    explain.add_argument(
        "--endpoint", type=positive_int, default=None, metavar="ID", help="this endpoint only"
    )


def cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.service.explain import explain_transaction

    data = to_public(
        as_operator(explain_transaction, settings, args.chain, args.tx, endpoint_id=args.endpoint)
    )
    emit(args, data, lambda: describe_explanation(data, settings))
    return 0


def describe_explanation(data: dict[str, Any], settings: Settings) -> str:
    chain = f"{settings.chain_name(data['chain_id'])} ({data['chain_id']})"
    lines = [
        f"transaction {data['transaction_hash']} on {chain}",
        f"block {data['block_number']} {data['block_hash']}; logs from the {data['source']}",
    ]
    if not data["logs"]:
        lines.append("the transaction has no logs")
    for item in data["logs"]:
        stored = "stored" if item["stored"] else "not stored"
        lines += ["", f"log {item['log_index']}  {item['address']}  {item['topic0']}  {stored}"]
        if not item["endpoints"]:
            lines.append("  no endpoints")
        for endpoint in item["endpoints"]:
            verdict = "matched" if endpoint["matched"] else "not matched"
            reason = f"  {endpoint['reason']}" if endpoint["reason"] else ""
            lines.append(f"  endpoint {endpoint['endpoint_id']}: {verdict}{reason}")
            for d in endpoint["deliveries"]:
                sequence = "" if d["sequence"] is None else f"  sequence {d['sequence']}"
                lines.append(f"    delivery {d['id']}  {d['kind']}  {d['status']}{sequence}")
                for a in d["attempts"]:
                    code = a["status_code"] if a["status_code"] is not None else "-"
                    error = f"  {a['error']}" if a["error"] else ""
                    started = json_default(a["started_at"])
                    lines.append(
                        f"      #{a['attempt_number']}  {started}  {code}  "
                        f"{a['duration_ms']:.1f} ms{error}"
                    )
    return "\n".join(lines)

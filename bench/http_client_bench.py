"""CPU per POST of the deliver worker's HTTP clients, under gevent as the worker runs them.

POSTs the same signed ~900-byte JSON body N times to bench/receiver.py (aiohttp, own process,
verifying every signature) with k greenlets in flight, for each client: ethhook's urllib3 path,
ethhook's geventhttpclient path, and a bare requests.Session as the baseline. Variants alternate
within each run (their order rotates) and the report gives medians of the runs: the machine is
shared and noisy. CPU is this process's `time.process_time()`, so the receiver's work is excluded.
Usage: python -m bench.http_client_bench [--requests 5000] [--runs 3] [--inflight 1,16]
"""

from gevent import monkey

monkey.patch_all()  # first, before anything imports socket: the deliver worker runs patched

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import gevent.pool  # noqa: E402

import bench.common as c  # noqa: E402
from ethhook.deliver import http  # noqa: E402
from ethhook.deliver.signing import generate_secret, webhook_headers  # noqa: E402

PATH = "/bench/http"
Post = Callable[[str, bytes, dict[str, str]], bool]


def signed_request(secret: str) -> tuple[bytes, dict[str, str]]:
    """A webhook as the worker sends it: ~900 bytes of JSON and its Standard Webhooks headers."""
    log = {
        "address": "0x" + "ab" * 20,
        "topics": ["0x" + "cd" * 32, "0x" + "00" * 12 + "11" * 20, "0x" + "00" * 12 + "22" * 20],
        "data": "0x" + "00" * 31 + "64",
        "block_number": 21_000_000,
        "block_hash": "0x" + "ef" * 32,
        "transaction_hash": "0x" + "12" * 32,
        "log_index": 7,
    }
    log |= {"block_timestamp": 1_760_000_000, "confirmations": 12, "removed": False}
    payload = {"type": "event", "chain_id": 1, "event": "Transfer", "data": log}
    payload |= {
        "endpoint_id": 4711,
        "contract": "USDC",
        "signature": "Transfer(address,address,uint256)",
    }
    payload["args"] = {"from": "0x" + "11" * 20, "to": "0x" + "22" * 20, "value": "100"}
    body = json.dumps(payload).encode()
    headers = webhook_headers([secret], "msg_2q8Zb4Xr7c1mN0pQ", int(time.time()), body, "EthHook")
    return body, headers


def ethhook_post(fn: Callable[..., http.HttpOutcome]) -> Post:
    def post(url: str, body: bytes, headers: dict[str, str]) -> bool:
        return fn(url, body, headers, 5.0, 10.0, allow_private=True).ok

    return post


def requests_post() -> Post:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=64))

    def post(url: str, body: bytes, headers: dict[str, str]) -> bool:
        response = session.post(url, data=body, headers=headers, timeout=(5.0, 10.0))
        return response.ok

    return post


def variants() -> dict[str, Post]:
    return {
        "urllib3 (ethhook)": ethhook_post(http.post_urllib3),
        "geventhttpclient (ethhook)": ethhook_post(http.post_gevent),
        "requests.Session": requests_post(),
    }


def run_once(post: Post, url: str, request: tuple[bytes, dict[str, str]], n: int, k: int) -> dict:
    body, headers = request
    for _ in range(20):  # warm: connections open, caches filled
        post(url, body, headers)
    group = gevent.pool.Pool(k)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    oks = sum(group.imap_unordered(lambda _: post(url, body, headers), range(n)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"rps": n / wall, "cpu_ms": cpu * 1000 / n, "failed": n - oks}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--inflight", default="1,16")
    args = p.parse_args()
    inflight = [int(k) for k in args.inflight.split(",")]
    secret = generate_secret()
    request = signed_request(secret)
    c.TMP.mkdir(parents=True, exist_ok=True)
    receiver = c.ReceiverProcess()
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    try:
        receiver.configure({PATH: secret})
        url = receiver.url(PATH)
        clients = variants()
        names = list(clients)
        c.log(f"{len(request[0])}-byte body, {args.requests} POSTs per run, {args.runs} runs")
        for run in range(args.runs):
            order = names[run % len(names) :] + names[: run % len(names)]
            for k in inflight:
                for name in order:
                    figures = run_once(clients[name], url, request, args.requests, k)
                    results.setdefault((name, k), []).append(figures)
                    c.log(f"run {run + 1} k={k} {name}: {figures}")
        stats = receiver.stats()
    finally:
        receiver.stop()
        shutil.rmtree(c.TMP, ignore_errors=True)
    report(results, stats, args.runs)


def report(results: dict[tuple[str, int], list[dict[str, Any]]], stats: dict, runs: int) -> None:
    print(f"\nMachine: {c.machine()}")
    print("\n| client | in flight | requests/s | CPU ms/POST | runs (CPU ms/POST) | failed |")
    print("|---|---|---|---|---|---|")
    for (name, k), figures in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        cpu = [f["cpu_ms"] for f in figures]
        print(
            f"| {name} | {k} | {c.median([f['rps'] for f in figures]):,.0f} | "
            f"{c.median(cpu):.3f} | {', '.join(f'{x:.3f}' for x in cpu)} | "
            f"{sum(f['failed'] for f in figures)} |"
        )
    print(f"\nReceiver: {stats['count']} requests, {stats['bad_signatures']} bad signatures")
    out = {f"{name}@{k}": figures for (name, k), figures in results.items()}
    c.write_json(c.ROOT / "bench" / "out" / "http_client.json", {"runs": runs, "results": out})


if __name__ == "__main__":
    main()

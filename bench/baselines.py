"""Baselines for the end-to-end benchmark: the same signed bodies posted without EthHook."""

from __future__ import annotations

import asyncio
import time


def signed_request(secret: str) -> tuple[bytes, dict[str, str]]:
    from ethhook.deliver.signing import webhook_headers

    body = (
        b'{"type":"event.instant","timestamp":"2026-11-27T00:00:00Z","data":{"event_id":"evt_x",'
        b'"chain_id":1,"chain":"ethereum","block_number":1,"block_hash":"0x' + b"ab" * 32 + b'",'
        b'"block_timestamp":1764192822,"transaction_hash":"0x' + b"cd" * 32 + b'",'
        b'"transaction_index":0,"log_index":0,"address":"0x'
        + b"12" * 20
        + b'","topics":["0x'
        + b"ef" * 32
        + b'"],"data":"0x'
        + b"00" * 32
        + b'","confirmations":0,"removed":false,"decoded":null}}'
    )
    headers = webhook_headers((secret,), "msg_bench", int(time.time()), body, "EthHook/bench")
    headers["content-type"] = "application/json"
    return body, headers


def requests_loop(url: str, secret: str, n: int) -> float:
    """Baseline 1: one thread, one requests.Session, signing each request like a worker does."""
    return requests_loop_cpu(url, secret, n)[0]


def requests_loop_cpu(url: str, secret: str, n: int) -> tuple[float, float]:
    """Baseline 1 and its own cost: (requests/s, ms of this thread's CPU per request)."""
    import requests

    from ethhook.deliver.signing import webhook_headers

    body, _ = signed_request(secret)
    session = requests.Session()
    started, cpu_started = time.perf_counter(), time.thread_time()
    for i in range(n):
        headers = webhook_headers((secret,), f"msg_{i}", int(time.time()), body, "EthHook/bench")
        headers["content-type"] = "application/json"
        session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
    cpu_s, wall_s = time.thread_time() - cpu_started, time.perf_counter() - started
    return n / wall_s, 1000 * cpu_s / n


def aiohttp_client(url: str, secret: str, n: int, in_flight: int = 100) -> float:
    """Baseline 2: aiohttp with `in_flight` concurrent requests (the machine's ceiling)."""
    import aiohttp

    body, headers = signed_request(secret)

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:
            left = iter(range(n))

            async def worker() -> None:
                for _ in left:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        response.raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(in_flight)))
            return n / (time.perf_counter() - started)

    return asyncio.run(run())

"""Memory probe: what each long-running process imports, and what that costs in RSS.

    python -m bench.memory_probe                 # import costs per process (seconds, no services)
    python -m bench.memory_probe --packages      # + each third-party package imported alone
    python -m bench.memory_probe --breakdown     # + RSS each top-level package adds, per process
    python -m bench.memory_probe --live          # + RSS of the real processes, idle and under load

Import mode runs each process's entry imports in a fresh interpreter (as `ethhook listen` and
`ethhook-worker` (= `celery -A ethhook.celery_app worker` without other packages' subcommands) would, including what they import lazily at run time) and
prints the peak RSS after them and the top-level packages they pulled in. Live mode starts anvil,
a private PostgreSQL database and redis-server, the match worker (prefork 2), the deliver worker
(gevent, 100 greenlets) and `ethhook listen` exactly as the tests do, samples each process tree's RSS when
idle and while a few thousand events flow through, and stops everything it started (by pid).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

# Each snippet imports what the process imports, including what it imports lazily once running.
PROCESSES: dict[str, str] = {
    # `ethhook listen` with only *_HTTP URLs: the CLI (its processes' commands), the runner, the
    # task publisher.
    "listener (HTTP)": """
import ethhook.cli.processes
import ethhook.listen.runner
import ethhook.celery_app
""",
    # `ethhook listen` with *_WS URLs: + the web3 newHeads subscription.
    "listener (WS)": """
import ethhook.cli.processes
import ethhook.listen.runner
import ethhook.celery_app
import ethhook.listen.heads
""",
    # `ethhook-worker -Q match -P prefork -c 2`
    "match worker": """
from ethhook.worker_main import prepare; prepare(["-P", "prefork"])
import ethhook.celery_app as m
m.app.loader.import_default_modules()
import celery.apps.worker, celery.worker.consumer, celery.concurrency.prefork
import kombu.transport.redis
""",
    # `ethhook-worker -Q deliver -P gevent -c 100` (patched before anything, as prepare() does)
    "deliver worker": """
from ethhook.worker_main import prepare; prepare(["-P", "gevent"])
import ethhook.celery_app as m
m.app.loader.import_default_modules()
import celery.apps.worker, celery.worker.consumer, celery.concurrency.gevent
import kombu.transport.redis
import ethhook.deliver.service
""",
}

# Third-party packages measured one by one with --packages.
PACKAGES = (
    "celery", "kombu", "sqlalchemy", "sqlalchemy.orm", "psycopg2", "redis", "requests", "urllib3",
    "pybreaker", "tornado", "eth_abi", "eth_utils", "eth_hash.auto", "web3", "aiohttp",
    "websockets", "prometheus_client", "gevent",
)  # fmt: skip

_REPORT = """
import json, resource, sys
rss_now = 0
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss_now = int(line.split()[1]) / 1024
top = sorted({n.split(".")[0] for n in sys.modules} - set(sys.stdlib_module_names) - {"__main__"})
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_mb": rss_now, "modules": len(sys.modules), "packages": top}))
"""


# Attributes the RSS growth during each import to the top-level package being imported, excluding
# what its own imports of other packages added (like -X importtime, for memory).
_BREAKDOWN = """
import builtins, json, sys
def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
_costs, _stack, _orig = {}, [], builtins.__import__
def _imp(name, globals=None, locals=None, fromlist=(), level=0):
    top = name.split(".")[0] if level == 0 else None
    if top is None or top in sys.modules or top in sys.stdlib_module_names:
        return _orig(name, globals, locals, fromlist, level)
    _stack.append(0.0)
    start = _rss()
    try:
        return _orig(name, globals, locals, fromlist, level)
    finally:
        total = _rss() - start
        inner = _stack.pop()
        _costs[top] = _costs.get(top, 0.0) + total - inner
        if _stack:
            _stack[-1] += total
builtins.__import__ = _imp
"""


def breakdown(code: str) -> dict[str, float]:
    """MB of RSS each top-level third-party package added while `code` ran, largest first."""
    tail = "\nbuiltins.__import__ = _orig\nprint(json.dumps(_costs))"
    out = subprocess.run(
        [sys.executable, "-c", _BREAKDOWN + code + tail], capture_output=True, text=True, check=True
    )
    costs: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return dict(sorted(costs.items(), key=lambda kv: -kv[1]))


def probe(code: str) -> dict[str, Any]:
    """Run `code` in a fresh interpreter and report its memory and imported packages."""
    out = subprocess.run(
        [sys.executable, "-c", code + _REPORT], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "probe failed")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def import_report(with_packages: bool, with_breakdown: bool) -> dict[str, Any]:
    report: dict[str, Any] = {"bare python": probe("")}
    for name, code in PROCESSES.items():
        report[name] = probe(code)
        if with_breakdown:
            report[name]["breakdown_mb"] = breakdown(code)
    for name in ("bare python", *PROCESSES):
        r = report[name]
        print(f"{name:15s} peak {r['peak_mb']:6.1f} MB  modules {r['modules']:5d}")
        if name != "bare python":
            print(f"  {' '.join(r['packages'])}")
        if "breakdown_mb" in r:
            big = [f"{pkg} {mb:.1f}" for pkg, mb in r["breakdown_mb"].items() if mb >= 0.5]
            print(f"  MB by package: {', '.join(big)}")
    if with_packages:
        base = report["bare python"]["peak_mb"]
        print("\nimported alone (peak MB above bare python):")
        costs = {}
        for pkg in PACKAGES:
            try:
                costs[pkg] = probe(f"import {pkg}")["peak_mb"] - base
            except RuntimeError as exc:
                print(f"  {pkg}: {exc}")
                continue
            print(f"  {pkg:18s} +{costs[pkg]:5.1f}")
        report["package_costs_mb"] = costs
    return report


# --- live processes -------------------------------------------------------------------------------


class _Worker:
    """A Celery worker started as workers/README.md starts one (`ethhook-worker`), plus extra
    command-line options."""

    def __init__(self, name: str, queues: str, pool: str, concurrency: int, extra: list[str]):
        import os

        from tests.support.env import BIN, ROOT, TMP
        from tests.support.waiting import wait_until

        self.log_path = TMP / f"worker-{name}.log"
        args = [str(BIN / "ethhook-worker"), "-Q", queues]
        args += ["-P", pool, "-c", str(concurrency), "-n", f"{name}@%h", "-l", "INFO", *extra]
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=os.environ.copy(), stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_until(lambda: "ready." in self.log_path.read_text(), 60, 0.2, f"worker {name}")

    def stop(self) -> None:
        from tests.support.waiting import stop_process

        stop_process(self.proc, 20)
        self._log.close()


def live_report(events: int, deliver_args: list[str], http_only: bool) -> dict[str, Any]:
    """Idle and under-load peak RSS of the real processes (MB, main process and each child)."""
    import bench.common as c  # sets the ETHHOOK_* variables: import before ethhook's settings
    from ethhook.demo.devchain import anvil_binary
    from tests.support.chain import Anvil, Token
    from tests.support.endpoints import add_endpoint
    from tests.support.factories import TRANSFER
    from tests.support.listener import ListenerProcess

    out: dict[str, Any] = {}
    started: list[Any] = []
    rss = c.RssSampler()
    with c.services():
        try:
            receiver = c.ReceiverProcess()
            started.append(receiver)
            node = Anvil(anvil_binary(), chain_id=1, name="memprobe-anvil")
            started.append(node)
            token = Token(node)
            secrets = {}
            for i in range(4):
                path = f"/mem/e{i}"
                _, secrets[path] = add_endpoint(
                    receiver.url(path), contracts=[token.address], events=[TRANSFER]
                )
            receiver.configure(secrets)
            match = _Worker("match", "match", "prefork", 2, [])
            started.append(match)
            deliver = _Worker("deliver", "deliver", "gevent", c.DELIVER_CONCURRENCY, deliver_args)
            started.append(deliver)
            urls = {"ETHEREUM_HTTP": node.http_url}
            if not http_only:
                urls["ETHEREUM_WS"] = node.ws_url
            listener = ListenerProcess(urls)
            started.append(listener)
            listener.wait_started(1)
            assert listener.proc is not None
            for name, proc in (("listener", listener.proc), ("match worker", match.proc)):
                rss.watch(name, proc.pid)
            rss.watch("deliver worker", deliver.proc.pid)
            # A first webhook end to end: every process connected and imported what it uses.
            token.emit_transfers(1, 1)
            c.wait_until(lambda: receiver.stats()["count"] >= 4, 60, 0.1, "warm-up webhooks")
            time.sleep(3)
            rss.reset()
            for _ in range(10):
                rss.sample_once()
                time.sleep(0.3)
            out["idle_mb"] = dict(rss.peak)
            rss.reset()
            rss.start()
            per_tx = 40
            txs = max(1, events // per_tx)
            want = 4 + 4 * txs * per_tx
            t0 = time.monotonic()
            for k in range(txs):
                token.emit_transfers(per_tx, 1000 + k * per_tx, wait=False)
            node.confirm_sent()  # every one mined (anvil can leave one pending)
            c.wait_until(lambda: receiver.stats()["count"] >= want, 600, 0.2, "load webhooks")
            out["load_seconds"] = time.monotonic() - t0
            rss.stop()
            out["load_mb"] = dict(rss.peak)
            out["load_events"] = txs * per_tx
        finally:
            rss.stop()
            for thing in reversed(started):
                if hasattr(thing, "stop"):
                    thing.stop()
    for phase in ("idle_mb", "load_mb"):
        print(f"\n{phase}:")
        for name, mb in sorted(out.get(phase, {}).items()):
            print(f"  {name:28s} {mb:6.1f}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", action="store_true", help="cost of each package alone")
    parser.add_argument("--breakdown", action="store_true", help="MB by package, per process")
    parser.add_argument("--live", action="store_true", help="start the real processes too")
    parser.add_argument("--events", type=int, default=2000, help="events under load (--live)")
    parser.add_argument(
        "--deliver-args", default="", help="extra options for the deliver worker (--live)"
    )
    parser.add_argument(
        "--http-only", action="store_true", help="the listener without a WebSocket URL (--live)"
    )
    parser.add_argument("--json", metavar="FILE", help="write the numbers to FILE")
    args = parser.parse_args(argv)
    report = import_report(args.packages, args.breakdown)
    if args.live:
        report["live"] = live_report(args.events, args.deliver_args.split(), args.http_only)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()

"""Meters for long runs: CPU per process tree between ticks, latency percentiles."""

from __future__ import annotations

import time

import psutil


class CpuMeter:
    """CPU % of each process (with its children, unless told otherwise) between two ticks.

    Kept per pid: a process that started during the interval (a restarted worker, a PostgreSQL
    backend) counts from zero, one that exited counts no more."""

    def __init__(self) -> None:
        self.last: dict[str, dict[int, float]] = {}
        self.at = time.monotonic()

    @staticmethod
    def _cpu_s(pid: int, children: bool) -> dict[int, float]:
        root = psutil.Process(pid)
        seconds = {}
        for proc in [root, *(root.children(recursive=True) if children else [])]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            seconds[proc.pid] = times.user + times.system
        return seconds

    def tick(self, pids: dict[str, int], alone: tuple[str, ...] = ()) -> dict[str, float]:
        now = time.monotonic()
        elapsed, self.at = now - self.at, now
        percent = {}
        for name, pid in pids.items():
            try:
                seconds = self._cpu_s(pid, children=name not in alone)
            except psutil.NoSuchProcess:
                continue
            last = self.last.get(name)
            if last is not None and elapsed > 0:
                used = sum(s - last.get(p, 0.0) for p, s in seconds.items())
                percent[name] = round(100 * max(used, 0.0) / elapsed, 1)
            self.last[name] = seconds
        return percent


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))], 1)

    return {"p50_ms": at(50), "p95_ms": at(95), "p99_ms": at(99), "max_ms": at(100)}

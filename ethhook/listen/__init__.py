"""Chain → event batches: the listener (the only package that imports web3)."""

from __future__ import annotations

from ethhook.config import Settings


def run_listener(settings: Settings) -> int:
    """Follow every enabled chain until SIGTERM/SIGINT; returns the process exit code."""
    from ethhook.listen.runner import run_listener as run

    return run(settings)


__all__ = ["run_listener"]

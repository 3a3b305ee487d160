"""`ethhook-worker ARGS`: `celery -A ethhook.celery_app worker ARGS`, without other packages' commands.

The `celery` command imports every installed package's `celery.commands` entry point before it
reads its arguments. Flower's brings tornado and Flower itself, about 12 MB in every worker process
(bench/RESULTS.md §4), and no worker uses it. Its own `celery amqp` shell brings click-repl with
prompt_toolkit and wcwidth, ~9 MB more (§15), for a command a worker never runs. This module
imports nothing of EthHook's, so a worker loads only what `ethhook.celery_app` needs.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from importlib import metadata
from typing import Any


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    sys.exit(prepare(args)())


def prepare(args: Sequence[str]) -> Any:
    """Set up what `celery`'s own entry point does before it imports anything else (gevent's
    monkey-patching for `-P gevent`), then return celery's main, which reads `sys.argv`."""
    from celery import maybe_patch_concurrency

    sys.argv = ["celery", "-A", "ethhook.celery_app", "worker", *args]
    maybe_patch_concurrency(sys.argv)
    return _celery_main_without_command_plugins()


def _celery_main_without_command_plugins() -> Any:
    real = metadata.entry_points

    def entry_points(**params: Any) -> Any:
        if params.get("group") == "celery.commands":
            return metadata.EntryPoints(())
        return real(**params)

    metadata.entry_points = entry_points
    had_shell = "celery.bin.amqp" in sys.modules
    if not had_shell:
        sys.modules["celery.bin.amqp"] = _amqp_shell_stand_in()
    try:
        from celery.bin.celery import main as celery_main
    finally:
        metadata.entry_points = real
        if not had_shell:
            del sys.modules["celery.bin.amqp"]  # a later import gets the real module
    return celery_main


def _amqp_shell_stand_in() -> types.ModuleType:
    """`celery.bin.amqp` as `celery.bin.celery` reads it (its `amqp` command), without the shell."""
    import click

    @click.command(help="Not in ethhook-worker: run `celery -A ethhook.celery_app amqp`.")
    def amqp() -> None:
        raise click.UsageError("ethhook-worker runs workers only; use `celery amqp` for the shell")

    module = types.ModuleType("celery.bin.amqp")
    module.amqp = amqp  # type: ignore[attr-defined]
    return module


if __name__ == "__main__":
    main()

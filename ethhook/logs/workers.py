"""Logging in Celery workers and beat: our configuration for Celery's own lines too, the worker's
`-l` honoured, and the routine beat jobs' lines (sent, received, succeeded) at DEBUG, so that an
idle deployment stays quiet. The jobs say what they did themselves, with counts, when they did it."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click
from celery import Celery, current_task
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS
from celery.signals import celeryd_init, setup_logging
from click.core import ParameterSource

from ethhook.config import get_settings
from ethhook.logs import add_field_source, configure, current_process, format_line

# Beat's jobs that run every second or every few minutes whether or not there is work.
ROUTINE_TASKS = frozenset(
    {
        "ethhook.maintenance.dispatch_due",
        "ethhook.replay.dispatch_due",
        "ethhook.maintenance.cleanup",
        "ethhook.maintenance.partitions",
        "ethhook.maintenance.auto_disable",
        "ethhook.maintenance.watch_failing",
    }
)
# Where Celery logs them: beat's "Scheduler: Sending due task", the worker's "received" and
# "succeeded" (their failures and retries stay at their own levels).
ROUTINE_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
_SENDING = "Scheduler: Sending due task"


class DemoteRoutine(logging.Filter):
    """A logger filter: an INFO line about a routine task becomes a DEBUG line, shown only where
    DEBUG is (`ETHHOOK_LOG_LEVELS=celery.beat=DEBUG`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or routine_task(record) not in ROUTINE_TASKS:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def routine_task(record: logging.LogRecord) -> str | None:
    """The task name a line of beat's sends or of a worker's receipts and successes is about."""
    if isinstance(record.msg, str) and record.msg.startswith(_SENDING):
        args = record.args if isinstance(record.args, tuple) else ()
        return str(args[1]) if len(args) == 2 else None
    data = getattr(record, "data", None)
    if record.msg in (LOG_RECEIVED, LOG_SUCCESS) and isinstance(data, dict):
        return str(data.get("name"))
    return None


def task_fields(record: logging.LogRecord) -> dict[str, Any]:
    """`task` and `task_id` of Celery's own task lines, or of the task running where a line is
    logged."""
    data = getattr(record, "data", None)
    if isinstance(data, dict) and "id" in data and "name" in data:
        return {"task": data["name"], "task_id": data["id"]}
    if not current_task:  # a proxy: false outside a task
        return {}
    return {"task": current_task.name, "task_id": current_task.request.id}


def install(app: Celery) -> None:
    """Hook Celery's logging signals; in `celery worker` or `celery beat`, configure now, before
    Celery prints anything."""
    for name in ROUTINE_LOGGERS:
        logging.getLogger(name).addFilter(DemoteRoutine())
    add_field_source(task_fields)
    setup_logging.connect(_on_setup_logging, weak=False)
    celeryd_init.connect(_on_worker_init, weak=False)
    command = _celery_command()
    if command in ("worker", "beat"):
        configure(get_settings(), command)


def _celery_command() -> str | None:
    """`worker`, `beat`, … when the `celery` command (or ethhook-worker) is importing the app."""
    context = click.get_current_context(silent=True)
    if context is None:
        return None
    return context.invoked_subcommand or context.info_name


def _on_worker_init(sender: str, instance: Any, **_: Any) -> None:
    """Before the worker checks its privileges (a warning) and prints its banner."""
    configure(get_settings(), process_name(sender))
    if get_settings().log_format == "json":
        instance.quiet = True  # the banner is text; the worker's lines say what it holds
        _say_in_json()


def _on_setup_logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Celery's own setup, replaced: our format, and the `-l` level only when it was given."""
    configure(get_settings(), current_process(), loglevel if _level_given() else None)


def _level_given() -> bool:
    context = click.get_current_context(silent=True)
    if context is None:
        return False
    source = context.get_parameter_source("loglevel")
    return source is not None and source is not ParameterSource.DEFAULT


def process_name(hostname: str) -> str:
    """`deliver@%h` → deliver: the node name's first part, as `ethhook up` and workers/ name them."""
    name = str(hostname).partition("@")[0]
    return name if name and name != "celery" else "worker"


def _say_in_json() -> None:
    """Celery writes its shutdown notices to the terminal from signal handlers, as text, with
    `celery.apps.worker.safe_say`; write them as JSON lines instead (tests/unit pins the name)."""
    import celery.apps.worker as worker_app

    def say(msg: str, f: Any = sys.__stderr__) -> None:
        line = format_line("celery.apps.worker", logging.INFO, str(msg).strip()) + "\n"
        try:
            os.write(f.fileno(), line.encode())
        except (AttributeError, OSError, ValueError):
            pass  # a notice lost must not break the shutdown that printed it

    worker_app.safe_say = say

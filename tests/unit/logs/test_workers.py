"""Celery's lines: the routine beat jobs' sends, receipts and successes at DEBUG, every other task's
at INFO; the process named after the worker; what EthHook relies on in Celery, pinned."""

from __future__ import annotations

import inspect
import logging

import pytest
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

from ethhook.logs.workers import (
    ROUTINE_TASKS,
    DemoteRoutine,
    process_name,
    routine_task,
    task_fields,
)


def beat_send(entry: str, task: str) -> logging.LogRecord:
    return logging.LogRecord(
        "celery.beat",
        logging.INFO,
        "",
        0,
        "Scheduler: Sending due task %s (%s)",
        (entry, task),
        None,
    )


def worker_line(logger: str, fmt: str, task: str) -> logging.LogRecord:
    data = {"id": "abc", "name": task, "return_value": "0", "runtime": 0.01, "args": "()"}
    made = logging.LogRecord(logger, logging.INFO, "", 0, fmt, (data,), None)
    made.data = data
    return made


ROUTINE = [
    beat_send("dispatch-due", "ethhook.maintenance.dispatch_due"),
    beat_send("replay-due", "ethhook.replay.dispatch_due"),
    beat_send("cleanup", "ethhook.maintenance.cleanup"),
    worker_line("celery.worker.strategy", LOG_RECEIVED, "ethhook.maintenance.dispatch_due"),
    worker_line("celery.app.trace", LOG_SUCCESS, "ethhook.replay.dispatch_due"),
    worker_line("celery.app.trace", LOG_SUCCESS, "ethhook.maintenance.auto_disable"),
]
NOT_ROUTINE = [
    beat_send("custom", "ethhook.replay.run_chunk"),
    worker_line("celery.worker.strategy", LOG_RECEIVED, "ethhook.deliver.deliver_endpoint"),
    worker_line("celery.app.trace", LOG_SUCCESS, "ethhook.match.match_events"),
    logging.LogRecord("celery.beat", logging.INFO, "", 0, "beat: Starting...", None, None),
]


@pytest.fixture()
def celery_level():
    loggers = [logging.getLogger(name) for name in ("celery.beat", "celery.app.trace")]
    before = [logger.level for logger in loggers]
    yield lambda level: [logger.setLevel(level) for logger in loggers]
    for logger, level in zip(loggers, before, strict=True):
        logger.setLevel(level)


@pytest.mark.parametrize("line", ROUTINE, ids=lambda r: r.getMessage()[:60])
def test_routine_lines_go_below_info(line, celery_level):
    celery_level(logging.INFO)
    assert DemoteRoutine().filter(line) is False
    assert (line.levelno, line.levelname) == (logging.DEBUG, "DEBUG")


def test_routine_lines_show_where_debug_is_asked_for(celery_level):
    celery_level(logging.DEBUG)
    line = beat_send("dispatch-due", "ethhook.maintenance.dispatch_due")
    assert DemoteRoutine().filter(line) is True
    assert line.levelname == "DEBUG"


@pytest.mark.parametrize("line", NOT_ROUTINE, ids=lambda r: r.getMessage()[:60])
def test_other_lines_stay_as_they_are(line, celery_level):
    celery_level(logging.INFO)
    assert DemoteRoutine().filter(line) is True
    assert line.levelno == logging.INFO


def test_a_failure_of_a_routine_task_stays_at_its_level():
    line = worker_line("celery.app.trace", LOG_SUCCESS, "ethhook.maintenance.dispatch_due")
    line.levelno, line.levelname = logging.ERROR, "ERROR"
    assert DemoteRoutine().filter(line) is True
    assert routine_task(line) == "ethhook.maintenance.dispatch_due"


def test_celerys_task_lines_carry_the_task_and_its_id():
    line = worker_line("celery.app.trace", LOG_SUCCESS, "ethhook.match.match_events")
    assert task_fields(line) == {"task": "ethhook.match.match_events", "task_id": "abc"}
    assert task_fields(logging.LogRecord("x", logging.INFO, "", 0, "outside", None, None)) == {}


@pytest.mark.parametrize(
    ("hostname", "name"),
    [
        ("deliver@vm", "deliver"),
        ("match@host.example", "match"),
        ("celery@vm", "worker"),
        ("", "worker"),
    ],
)
def test_a_worker_is_named_after_its_node_name(hostname, name):
    assert process_name(hostname) == name


def test_what_ethhook_relies_on_in_celery_is_still_there():
    # JSON mode replaces the worker's shutdown notices (written from signal handlers, as text).
    import celery.apps.worker

    assert list(inspect.signature(celery.apps.worker.safe_say).parameters) == ["msg", "f"]
    # Celery's task lines pass their context as `data`, which the demotion and the fields read.
    assert inspect.getsource(celery.app.trace.info).count("extra={'data': context}") == 1
    assert LOG_RECEIVED.startswith("Task %(name)s[%(id)s]")


def test_every_job_beat_runs_on_a_schedule_is_routine():
    # A job added to beat's schedule and not to ROUTINE_TASKS puts three INFO lines in the logs
    # of an idle deployment each time it runs (beat's, the worker's received and succeeded).
    import celeryconfig

    scheduled = {entry["task"] for entry in celeryconfig.beat_schedule.values()}
    assert scheduled - ROUTINE_TASKS == set()

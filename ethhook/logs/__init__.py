"""Logging for every long-running process (listener, workers, beat, API, `ethhook up`), from the
settings: text or JSON lines on stderr, levels per logger, ids as fields, no secret in any line.

`configure(settings, "listener")` once at start; a line's ids go in `extra={"endpoint_id": …}`,
or `with log_fields(endpoint_id=…):` around a block of work (see `fields`).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TextIO

from ethhook.config import Settings
from ethhook.logs import streams
from ethhook.logs.fields import FIELDS, add_field_source, bind_fields, fields_of, log_fields
from ethhook.logs.formats import JsonFormatter, TextFormatter
from ethhook.logs.redaction import Scrubber, secrets_of

__all__ = [
    "FIELDS",
    "add_field_source",
    "bind_fields",
    "configure",
    "current_process",
    "fields_of",
    "format_line",
    "log_fields",
]

# Loggers that say too much at INFO for an operator; ETHHOOK_LOG_LEVELS may set them otherwise.
# web3 logs every (re)connect attempt: the listener says it once, in its own words.
QUIET_LOGGERS: tuple[tuple[str, str], ...] = (("web3", "WARNING"),)


@dataclass
class _State:
    process: str = "ethhook"
    formatter: logging.Formatter | None = None
    stdout: TextIO | None = None  # the process's own streams, before any JSON wrapping
    stderr: TextIO | None = None


_state = _State()


def configure(settings: Settings, process: str, level: int | str | None = None) -> None:
    """Send every logger's lines to stderr in ETHHOOK_LOG_FORMAT, at `level` (default
    ETHHOOK_LOG_LEVEL) with ETHHOOK_LOG_LEVELS over it. Safe to call again (Celery does)."""
    if _state.stderr is None:
        _state.stdout, _state.stderr = sys.stdout, sys.stderr
    assert _state.stdout is not None and _state.stderr is not None
    scrub = Scrubber(secrets_of(settings))
    as_json = settings.log_format == "json"
    formatter = JsonFormatter(process, scrub) if as_json else TextFormatter(process, scrub)
    _state.process, _state.formatter = process, formatter

    handler = logging.StreamHandler(_state.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level if level is None else level)
    for name, name_level in (*QUIET_LOGGERS, *settings.log_levels):
        logging.getLogger(name).setLevel(name_level)
    logging.captureWarnings(True)
    if as_json:
        streams.install(_state.stdout, _state.stderr, formatter.format)


def current_process() -> str:
    """The name lines carry as `process` (listener, match, deliver, beat, api, up, …)."""
    return _state.process


def format_line(logger: str, level: int, message: str) -> str:
    """One line as the configured format writes it, for text that does not go through logging
    (Celery's shutdown notices, written from a signal handler)."""
    record = logging.LogRecord(logger, level, "", 0, message, None, None)
    formatter = _state.formatter or logging.Formatter("%(levelname)s %(name)s %(message)s")
    return formatter.format(record)

"""In JSON mode, nothing but JSON lines: what a library prints (Celery beat's banner, a warning
before logging starts) becomes a JSON line, and an uncaught exception one line with its traceback."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

FormatRecord = Callable[[logging.LogRecord], str]


class JsonLines(io.TextIOBase):
    """A text stream over `target`: JSON object lines pass as they are; any other line that is not
    blank is written as the JSON line of a record of `logger` at `level`."""

    def __init__(self, target: TextIO, logger: str, level: int, format_record: FormatRecord):
        super().__init__()
        self.target = target
        self.format_record = format_record
        self._logger, self._level = logger, level
        self._pending = ""
        self._lock = threading.RLock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
            for line in lines:
                self._emit(line)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def _emit(self, line: str) -> None:
        line = line.rstrip("\r")
        if not line.strip():
            return
        if not _is_json_object(line):
            record = logging.LogRecord(self._logger, self._level, "", 0, line, None, None)
            line = self.format_record(record)
        self.target.write(line + "\n")
        self.target.flush()


def _is_json_object(line: str) -> bool:
    if not (line.startswith("{") and line.endswith("}")):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def install(stdout: TextIO, stderr: TextIO, format_record: FormatRecord) -> None:
    """Wrap sys.stdout and sys.stderr (their originals given) and log uncaught exceptions."""
    sys.stdout = JsonLines(stdout, "stdout", logging.INFO, format_record)
    sys.stderr = JsonLines(stderr, "stderr", logging.WARNING, format_record)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_crash


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("ethhook").critical(
        "process.crashed error=%s", kind.__name__, exc_info=(kind, exc, tb)
    )


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else None
    logging.getLogger("ethhook").error(
        "thread.crashed thread=%s error=%s",
        name,
        args.exc_type.__name__,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )

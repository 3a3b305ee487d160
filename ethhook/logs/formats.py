"""The two line formats: text (the default, for people) and one JSON object per line (for Loki, ELK,
CloudWatch); both go through the scrubber."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from ethhook.logs.fields import fields_of

Scrub = Callable[[str], str]


class TextFormatter(logging.Formatter):
    """`2026-12-08 10:00:00,123 INFO deliver ethhook.deliver.service deliver.attempt.failed …`:
    time, level, process, logger, message; an API line ends with its request_id."""

    def __init__(self, process: str, scrub: Scrub) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s " + process.replace("%", "%%") + " %(name)s %(message)s"
        )
        self.scrub = scrub

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        text = super().formatMessage(record)
        request_id = fields_of(record).get("request_id")
        if request_id is not None and "request_id=" not in record.message:
            text += f" request_id={request_id}"
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """`{"ts": "2026-12-08T10:00:00.123Z", "level": "INFO", "logger": …, "msg": …, "process": …,
    "pid": …, <fields>, "exc": <traceback>}` on one line, ASCII only."""

    def __init__(self, process: str, scrub: Scrub) -> None:
        super().__init__()
        self.process = process
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": self.scrub(record.getMessage()),
            "process": self.process,
            "pid": record.process,
        }
        for name, value in fields_of(record).items():
            line[name] = value if isinstance(value, int | float) else self.scrub(str(value))
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = self.scrub(record.exc_text)
        if record.stack_info:
            line["stack"] = self.scrub(self.formatStack(record.stack_info))
        return json.dumps(line, default=str)


def utc_time(created: float) -> str:
    """`2026-12-08T10:00:00.123Z`."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created * 1000) % 1000:03d}Z"

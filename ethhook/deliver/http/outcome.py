"""What every HTTP client takes and gives back: the request, its typed outcome, what it reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

MAX_READ_BYTES = 64 * 1024
STORED_BODY_BYTES = 1024


class Request(NamedTuple):
    """One POST, as a client sends it."""

    url: str
    body: bytes
    headers: dict[str, str]
    connect_timeout_s: float
    read_timeout_s: float
    allow_private: bool = False


@dataclass(frozen=True)
class HttpOutcome:
    """What happened to one POST; never an exception for a status code."""

    status_code: int | None
    duration_ms: float
    error: str | None = None
    body: str | None = None
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

"""The one HTTP client boundary: the hardened POST, its typed outcome, and the SSRF guard."""

from ethhook.deliver.http.client import post, post_gevent, post_urllib3
from ethhook.deliver.http.outcome import (
    MAX_READ_BYTES,
    STORED_BODY_BYTES,
    HttpOutcome,
    Request,
)

__all__ = [
    "MAX_READ_BYTES",
    "STORED_BODY_BYTES",
    "HttpOutcome",
    "Request",
    "post",
    "post_gevent",
    "post_urllib3",
]

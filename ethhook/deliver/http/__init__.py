"""The one HTTP client boundary: the hardened POST, its typed outcome, and the SSRF guard."""

from ethhook.deliver.http.client import (
    MAX_READ_BYTES,
    STORED_BODY_BYTES,
    HttpOutcome,
    post,
    post_gevent,
    post_urllib3,
)

__all__ = [
    "MAX_READ_BYTES",
    "STORED_BODY_BYTES",
    "HttpOutcome",
    "post",
    "post_gevent",
    "post_urllib3",
]

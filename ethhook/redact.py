"""URLs fit for logs: scheme, host and port only (providers put API keys in paths and queries)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# What a URL we cannot take apart is logged as: echoing it could echo a key.
UNPARSEABLE = "<unparseable URL>"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9._~%!$&'()*+,;=:\[\]-]*$")


def redact_url(url: object) -> str:
    """`wss://user:pw@eth.example.com:8546/v2/KEY?x=1` → `wss://eth.example.com:8546`.

    Credentials, path, query and fragment are dropped; a host-less URL keeps only its scheme
    (`sqlite://`), and anything that is not `scheme://…` becomes UNPARSEABLE.
    """
    if not isinstance(url, str) or "://" not in url:
        return UNPARSEABLE
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return UNPARSEABLE
    host_port = parts.netloc.rpartition("@")[2]
    if not _SCHEME.match(parts.scheme) or not _HOST_PORT.match(host_port):
        return UNPARSEABLE
    return f"{parts.scheme.lower()}://{host_port}"

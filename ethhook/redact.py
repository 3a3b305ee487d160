"""URLs fit for logs: scheme, host and port only (providers put API keys in paths and queries)."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

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


def redact_in(text: str, url: str | None) -> str:
    """`text` (an exception's message, say) with `url` in it shown as `redact_url(url)`, and any
    other trace of its secret parts (user info, path, query, fragment) replaced by `…`.

    For messages that libraries build around the URL they were given: web3's "Could not connect
    to: wss://…/v2/KEY", aiohttp's and websockets' errors quoting the request URL.
    """
    if not url:
        return text
    shown = redact_url(url)
    text = text.replace(url, shown).replace(url.strip(), shown)
    for secret in secret_parts(url):
        text = text.replace(secret, "…")
    return text


def secret_parts(url: str) -> list[str]:
    """The parts of `url` a key may hide in, longest first, as written and percent-decoded."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return []
    userinfo = parts.netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    found = set()
    for part in (userinfo, user, password, parts.path, parts.query, parts.fragment):
        for form in (part, unquote(part)):
            if len(form.strip("/")) >= 2:  # "/" alone, or one character, hides nothing
                found.add(form)
    return sorted(found, key=len, reverse=True)

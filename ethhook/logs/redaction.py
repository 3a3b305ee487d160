"""What no log line may show: node URLs' keys, passwords, endpoint secrets, API keys, signatures."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

from ethhook.config import Settings
from ethhook.redact import redact_url, secret_parts

HIDDEN = "…"
# A known secret shorter than this is not looked for in the text: it would hide common words.
MIN_SECRET_CHARS = 4

# Any URL: logged as scheme://host:port (redact_url), whatever library wrote the line.
_URL = r"(?P<url>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+)"
# Secrets with a known shape keep their prefix: whsec_… (endpoint secrets), whsk_… (signing
# keys), ehk_… (API keys), v1,… and v1a,… (signatures), Bearer … (Authorization headers).
_PREFIXED = (
    r"(?P<prefix>\b(?:whsec_|whsk_|ehk_|v1a?,)|\b(?i:bearer)\s+)(?P<secret>[A-Za-z0-9+/=_-]{8,})"
)


class Scrubber:
    """`scrubber(text)`: `text` with every URL shown as scheme://host:port, every secret of a
    known shape and every secret of the settings (`secrets_of`) replaced by …."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        exact = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        alternatives = [_URL, _PREFIXED]
        if exact:
            alternatives.append("(?P<exact>" + "|".join(re.escape(s) for s in exact) + ")")
        self._pattern = re.compile("|".join(alternatives))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(self._replace, text) if text else text

    @staticmethod
    def _replace(match: re.Match[str]) -> str:
        if match.group("url") is not None:
            return redact_url(match.group("url"))
        if match.group("prefix") is not None:
            return match.group("prefix") + HIDDEN
        return HIDDEN


def secrets_of(settings: Settings) -> set[str]:
    """The secrets a line might quote without a URL around them: the chains' node URLs' user info,
    path, query and query values, the passwords of the other URLs, the Fernet keys."""
    found = set(settings.secret_keys)
    for chain in settings.chains:
        for url in (chain.ws_url, chain.http_url):
            if url:
                found.update(secret_parts(url))
                found.update(_query_values(url))
    for url in (settings.database_url, settings.broker_url, settings.redis_url):
        password = _password(url)
        if password:
            found.update((password, unquote(password)))
    return found


def _query_values(url: str) -> set[str]:
    try:
        return {value for _, value in parse_qsl(urlsplit(url).query) if value}
    except ValueError:
        return set()


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None

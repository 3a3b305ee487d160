"""The console's session cookie: encrypted and signed (Fernet), with the per-session CSRF token.

The cookie carries the API key the visitor signed in with, so every request checks it again with
`service.apps.authenticate`: a key rotated or deleted ends its console sessions at once. Fernet
encrypts as well as signs, so the key is never readable in the cookie; the cookie is HttpOnly and
SameSite=Strict, and lives at most SESSION_LIFETIME_S.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import asdict, dataclass, replace

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ethhook.config import Settings

log = logging.getLogger(__name__)

COOKIE_NAME = "ethhook_console"
COOKIE_PATH = "/console"
SESSION_LIFETIME_S = 12 * 3600
# Cookies are capped near 4 KB by browsers; ours is far smaller, this refuses anything odd.
MAX_COOKIE_LENGTH = 4000


@dataclass(frozen=True)
class ConsoleSession:
    """What the cookie holds: the key (None before signing in), the CSRF token, when the session
    began, and a one-time message for the next page."""

    csrf: str
    issued_at: float
    key: str | None = None
    flash: str | None = None

    @classmethod
    def fresh(cls, key: str | None = None) -> ConsoleSession:
        """A new session with a new CSRF token (on a first visit, and on every sign-in/out)."""
        return cls(csrf=secrets.token_urlsafe(32), issued_at=time.time(), key=key)

    def with_flash(self, message: str | None) -> ConsoleSession:
        return replace(self, flash=message)

    def token_matches(self, submitted: str | None) -> bool:
        return submitted is not None and hmac.compare_digest(submitted.encode(), self.csrf.encode())


def cookie_cipher(settings: Settings) -> Fernet:
    """The cookie's key: derived from the newest ETHHOOK_SECRET_KEYS key, so that every API
    process shares it and sessions survive a restart; without keys, a random one per process
    (sessions then end when the process does)."""
    if settings.secret_keys:
        master = base64.urlsafe_b64decode(settings.secret_keys[0])
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"ethhook console session v1"
        ).derive(master)
        return Fernet(base64.urlsafe_b64encode(derived))
    log.info("console.sessions.ephemeral_key reason=ETHHOOK_SECRET_KEYS is not set")
    return Fernet(base64.urlsafe_b64encode(os.urandom(32)))


def dump(cipher: Fernet, session: ConsoleSession) -> str:
    return cipher.encrypt(json.dumps(asdict(session)).encode()).decode()


def load(cipher: Fernet, cookie: str | None, now: float | None = None) -> ConsoleSession | None:
    """The session in a cookie, or None when it is missing, forged, malformed or too old."""
    if not cookie or len(cookie) > MAX_COOKIE_LENGTH:
        return None
    try:
        data = json.loads(cipher.decrypt(cookie.encode()))
        session = ConsoleSession(
            csrf=str(data["csrf"]),
            issued_at=float(data["issued_at"]),
            key=None if data.get("key") is None else str(data["key"]),
            flash=None if data.get("flash") is None else str(data["flash"]),
        )
    except (InvalidToken, ValueError, TypeError, KeyError):
        return None
    age = (time.time() if now is None else now) - session.issued_at
    return session if 0 <= age <= SESSION_LIFETIME_S else None

"""The console's session cookie: encrypted and signed (Fernet), with the per-session CSRF token.

A signed-in cookie carries a random session id, never the API key: the id's row (`console.store`)
says which key signed in and whether the session still holds, so that signing out, going unused
for ETHHOOK_CONSOLE_IDLE_TIMEOUT_S, or the key being rotated or deleted ends every copy of the
cookie. The cookie is HttpOnly and SameSite=Strict, and lives at most
ETHHOOK_CONSOLE_SESSION_LIFETIME_S.
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
# Cookies are capped near 4 KB by browsers; ours is far smaller, this refuses anything odd.
MAX_COOKIE_LENGTH = 4000


@dataclass(frozen=True)
class ConsoleSession:
    """What the cookie holds: the CSRF token, when the session began, the session id (None before
    signing in), and a one-time message for the next page."""

    csrf: str
    issued_at: float
    session_id: str | None = None
    flash: str | None = None

    @classmethod
    def fresh(cls, session_id: str | None = None) -> ConsoleSession:
        """A new session with a new CSRF token (on a first visit, and on every sign-in/out)."""
        return cls(csrf=secrets.token_urlsafe(32), issued_at=time.time(), session_id=session_id)

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


def load(
    cipher: Fernet, cookie: str | None, lifetime_s: float, now: float | None = None
) -> ConsoleSession | None:
    """The session in a cookie, or None when it is missing, forged, malformed or older than
    `lifetime_s`."""
    if not cookie or len(cookie) > MAX_COOKIE_LENGTH:
        return None
    try:
        data = json.loads(cipher.decrypt(cookie.encode()))
        session = ConsoleSession(
            csrf=_text(data["csrf"]),
            issued_at=_time(data["issued_at"]),
            session_id=_optional_text(data.get("session_id")),
            flash=_optional_text(data.get("flash")),
        )
    except (InvalidToken, ValueError, TypeError, KeyError):
        return None
    age = (time.time() if now is None else now) - session.issued_at
    return session if 0 <= age <= lifetime_s else None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _time(value: object) -> float:
    # bool is an int too; NaN and infinities fail the comparison.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**40:
        raise TypeError("expected seconds since the epoch")
    return float(value)

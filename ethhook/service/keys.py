"""API keys: `ehk_` and 256 random bits, shown once, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets

PREFIX = "ehk_"
# token_urlsafe(32): 32 random bytes, 43 base64url characters.
_RANDOM_BYTES = 32
_FORMAT = re.compile(r"^ehk_[A-Za-z0-9_-]{43}$")


def generate_key() -> str:
    return PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)


def hash_key(key: str) -> str:
    """What is stored: the hex SHA-256 of the key.

    A key carries 256 random bits, so a fast hash is enough (nothing to brute-force, unlike a
    password) and it can be looked up by equality through a unique index.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(text: str) -> bool:
    """Whether `text` has the shape of a key: anything else is refused without a query."""
    return bool(_FORMAT.match(text))

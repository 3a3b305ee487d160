"""Endpoint signing secrets encrypted at rest with the ETHHOOK_SECRET_KEYS Fernet keys.

A stored value is either plaintext (written before keys were configured) or `enc:<Fernet token>`.
With keys, EncryptedSecret encrypts what it writes with the newest key and decrypts what it reads
with any of them, so every reader (the deliver worker, the CLI) sees plaintext; plaintext rows stay
readable, and `ethhook db reencrypt` rewrites them all under the newest key. Without keys, every
long-running process says once as it starts that secrets are stored as plaintext.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from ethhook.config import Settings, get_settings
from ethhook.exceptions import ConfigError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

PREFIX = "enc:"
# A Fernet token of a 50-character whsec_ secret is 164 characters; room for longer secrets.
STORED_LENGTH = 500
# SQLite does not enforce VARCHAR lengths, and changing a declared type there means rebuilding the
# table, which (foreign keys on) cascades to every filter and delivery: SQLite keeps its 100.
SQLITE_STORED_LENGTH = 100

NO_KEYS = (
    "endpoint secrets are encrypted at rest: set ETHHOOK_SECRET_KEYS to the key(s) they were "
    "encrypted with"
)
PLAINTEXT_WARNING = (
    "db.secrets.plaintext ETHHOOK_SECRET_KEYS is not set: endpoint signing secrets are stored "
    "in the database as plaintext, readable by anyone who reads it or its backups; set it to a "
    "key made with `ethhook db new-key` for every EthHook process, then run "
    "`ethhook db reencrypt` to encrypt the secrets already stored"
)
WRONG_KEYS = (
    "no key in ETHHOOK_SECRET_KEYS decrypts an endpoint secret: add the key it was encrypted with "
    "after the newest one"
)


log = logging.getLogger(__name__)


def new_key() -> str:
    """A new random Fernet key (32 bytes, url-safe base64), for ETHHOOK_SECRET_KEYS."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def warn_if_plaintext(settings: Settings) -> bool:
    """Log PLAINTEXT_WARNING once, as a process starts, when secrets are not encrypted (unless
    ETHHOOK_WARN_PLAINTEXT_SECRETS is false); whether it did."""
    if settings.secret_keys or not settings.warn_plaintext_secrets:
        return False
    log.warning(PLAINTEXT_WARNING)
    return True


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(key) for key in keys])


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def encrypt(plaintext: str, keys: Sequence[str]) -> str:
    """`enc:` and a Fernet token of `plaintext` under the newest (first) key."""
    return PREFIX + _cipher(tuple(keys)).encrypt(plaintext.encode()).decode()


def decrypt(stored: str, keys: Sequence[str]) -> str:
    """The plaintext of a stored value (plaintext itself when it was stored unencrypted)."""
    if not is_encrypted(stored):
        return stored
    if not keys:
        raise ConfigError(NO_KEYS)
    from cryptography.fernet import InvalidToken

    try:
        return _cipher(tuple(keys)).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ConfigError(WRONG_KEYS) from None


def is_current(stored: str, keys: Sequence[str], to_plaintext: bool = False) -> bool:
    """Whether `stored` is already what `ethhook db reencrypt` writes (db/reencrypt.py): a token
    under the newest key (or plaintext, `to_plaintext`)."""
    if to_plaintext:
        return not is_encrypted(stored)
    if not is_encrypted(stored):
        return False
    from cryptography.fernet import InvalidToken

    try:
        _cipher((keys[0],)).decrypt(stored[len(PREFIX) :].encode())
    except InvalidToken:
        return False
    return True


class EncryptedSecret(TypeDecorator[str]):
    """A signing secret: encrypted on write when ETHHOOK_SECRET_KEYS is set, plaintext on read.

    Not for WHERE clauses: every encryption of a value differs, so equality never matches.
    """

    impl = String(STORED_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[str]:
        length = SQLITE_STORED_LENGTH if dialect.name == "sqlite" else STORED_LENGTH
        return dialect.type_descriptor(String(length))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        keys = get_settings().secret_keys
        if value is None or not keys:
            return value
        return encrypt(value, keys)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return decrypt(value, get_settings().secret_keys)

"""Sealing the answers Idempotency-Key keeps in Redis (which may hold a new endpoint secret or API
key): AES-GCM under a key derived from the caller's Idempotency-Key value and ETHHOOK_SECRET_KEYS.

Redis holds only the SHA-256 of the Idempotency-Key, so what it holds cannot be read from Redis
alone: it takes the key the caller chose and, when ETHHOOK_SECRET_KEYS is set, the server's key.
Without ETHHOOK_SECRET_KEYS, a sealed answer is as hard to open as the caller's key is to guess
(a random UUID: 122 bits).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
TAG_BYTES = 16
_INFO = b"ethhook idempotent answer v1"


def answer_keys(idempotency_key: str, server_keys: Sequence[str]) -> list[bytes]:
    """The AES keys for answers kept under `idempotency_key`: one per server key, newest first
    (one without a server key when none is configured)."""
    return [
        HKDF(algorithm=hashes.SHA256(), length=32, salt=server_key.encode(), info=_INFO).derive(
            idempotency_key.encode()
        )
        for server_key in (server_keys or ("",))
    ]


def seal(plaintext: bytes, key: bytes, bound_to: bytes) -> bytes:
    """The nonce and ciphertext of `plaintext`, valid only under the name `bound_to`."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, bound_to)


def unseal(sealed: bytes, keys: Sequence[bytes], bound_to: bytes) -> bytes | None:
    """The plaintext, or None when no key opens it (the server's keys changed, or it was
    tampered with)."""
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        return None
    nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    for key in keys:
        try:
            return AESGCM(key).decrypt(nonce, ciphertext, bound_to)
        except InvalidTag:
            continue
    return None

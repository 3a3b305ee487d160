"""Standard Webhooks `v1a` keys: Ed25519 key pairs as `whsk_…` (private) and `whpk_…` (public)."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

PRIVATE_PREFIX = "whsk_"
PUBLIC_PREFIX = "whpk_"


def generate_key_pair() -> tuple[str, str]:
    """A new key pair: (`whsk_` and the 32-byte seed in base64, its `whpk_` public key)."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return PRIVATE_PREFIX + base64.b64encode(seed).decode(), public_key_of(key)


def load_private_key(private: str) -> Ed25519PrivateKey:
    """The key object of a `whsk_…` private key (load once, sign many times)."""
    if not private.startswith(PRIVATE_PREFIX):
        raise ValueError("an Ed25519 signing key starts with whsk_")
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(private[len(PRIVATE_PREFIX) :]))


def public_key_of(key: Ed25519PrivateKey) -> str:
    """`whpk_` and the 32 raw bytes of the public key in base64."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


def sign_v1a(key: Ed25519PrivateKey, signed: bytes) -> str:
    """`v1a,<base64 Ed25519 signature of signed>` (signed: "id.timestamp.body")."""
    return "v1a," + base64.b64encode(key.sign(signed)).decode()

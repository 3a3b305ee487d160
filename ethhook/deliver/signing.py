"""Standard Webhooks signing: secrets, signatures and headers, as pure functions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

SECRET_PREFIX = "whsec_"
# How an endpoint's webhooks are signed: `hmac` (`v1,`, a shared `whsec_` secret) or `ed25519`
# (`v1a,`, a `whsk_` private key whose `whpk_` public key receivers verify with).
SIGNING_SCHEMES = ("hmac", "ed25519")


def generate_secret() -> str:
    """A new endpoint secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :])


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per active secret, space-separated (new and old during rotation)."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets)


@dataclass(frozen=True)
class KeyRing:
    """The keys that sign an endpoint's webhooks now (new and old during rotation), loaded once:
    a deliver task makes one for its endpoint and signs every request with it."""

    signers: tuple[Callable[[bytes], str], ...]

    @classmethod
    def of(cls, scheme: str, secrets: Sequence[str]) -> KeyRing:
        """`secrets`: `whsec_…` secrets for `hmac`, `whsk_…` private keys for `ed25519`."""
        if scheme == "ed25519":
            from ethhook.deliver.ed25519 import load_private_key, sign_v1a

            return cls(tuple(partial(sign_v1a, load_private_key(s)) for s in secrets))
        return cls(tuple(partial(_hmac_v1, secret_key(s)) for s in secrets))

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The `webhook-signature` value: one signature per key of "id.timestamp.body",
        space-separated."""
        signed = f"{msg_id}.{timestamp}.".encode() + body
        return " ".join(signer(signed) for signer in self.signers)


def _hmac_v1(key: bytes, signed: bytes) -> str:
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def webhook_headers(
    keys: KeyRing | Sequence[str], msg_id: str, timestamp: int, body: bytes, user_agent: str
) -> dict[str, str]:
    """The headers of a webhook; `keys` a KeyRing, or `whsec_…` secrets (HMAC)."""
    ring = keys if isinstance(keys, KeyRing) else KeyRing.of("hmac", keys)
    return {
        "content-type": "application/json",
        "user-agent": user_agent,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": ring.signature(msg_id, timestamp, body),
    }


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """True when any `v1,` signature in the header matches (constant-time comparison)."""
    expected = sign(secret, msg_id, timestamp, body)
    return any(
        hmac.compare_digest(expected.encode(), candidate.encode())
        for candidate in header.split()
        if candidate.startswith("v1,")
    )

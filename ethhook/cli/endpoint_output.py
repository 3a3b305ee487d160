"""What `ethhook endpoint` prints in words: the secrets, and the lines after a change."""

from __future__ import annotations

from typing import Any

from ethhook.cli.output import json_default


def secret_summary(data: dict[str, Any]) -> str:
    """`secret: whsec_…` (ed25519: `public key: whpk_…`), and during a rotation the previous one
    and when it stops signing."""
    if data["signing"] == "ed25519":
        text = f"public key: {data['public_key']}"
        if data["previous_public_key"] is not None:
            expires = json_default(data["previous_secret_expires_at"])
            text += (
                f"\nprevious public key: {data['previous_public_key']} "
                f"(its private key keeps signing until {expires})"
            )
        return text
    text = f"secret: {data['secret']}"
    if data["previous_secret"] is not None:
        expires = json_default(data["previous_secret_expires_at"])
        text += f"\nprevious secret: {data['previous_secret']} (keeps signing until {expires})"
    return text


def change_summary(
    endpoint_id: int, done: str, data: dict[str, Any], *, reveal_secret: bool
) -> str:
    """The human line(s) after a change: `disabled endpoint 3`, plus the secret after a rotation."""
    text = f"{done} endpoint {endpoint_id}"
    if reveal_secret:
        expires = json_default(data["previous_secret_expires_at"])
        if data["signing"] == "ed25519":
            text += (
                f"\npublic key: {data['public_key']}\n"
                f"the previous key pair keeps signing until {expires}"
            )
        else:
            text += f"\nsecret: {data['secret']}\nthe previous secret keeps signing until {expires}"
    return text

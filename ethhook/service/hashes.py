"""Transaction hashes as users type them (explain, the deliveries search)."""

from __future__ import annotations

import re

from ethhook.exceptions import InputError

_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def parse_tx_hash(text: str) -> str:
    """`text` as a lowercase 0x-prefixed 32-byte hash; InputError otherwise."""
    value = text.strip()
    if not _TX_HASH.fullmatch(value):
        shown = value if len(value) <= 70 else value[:67] + "..."
        raise InputError(f"invalid transaction hash {shown!r}: expected 0x and 64 hex digits")
    return value.lower()

"""Failed console sign-ins, limited per client address and (optionally) for everyone together.

Only a failure counts: a visitor who signs in is never slowed down. Once an address is over its
limit, every sign-in from it is refused until it may try again, the right key too (otherwise the
answer would still tell a right key from a wrong one). IPv6 clients are counted per /64, the
block one subscriber usually holds. Shared by every API process through Redis; without Redis,
sign-ins are not limited (the keys' 256 random bits are the defence that remains).
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

import redis

from ethhook.config import Settings
from ethhook.service.gcra import Gcra

PREFIX = "ethhook:console:sign-in-failures:"
EVERYONE = "*"


class Wait(NamedTuple):
    """How long until the next sign-in may be tried, and whose failures are to blame."""

    seconds: float
    whose: str


def _limit(client: redis.Redis, per_min: int, name: str) -> Gcra:
    """`per_min` failures a minute, as many of them at once."""
    return Gcra(client, PREFIX, per_min / 60, per_min, name)


def counted_as(address: str) -> str:
    """The key an address is counted under: itself, or its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class SignInThrottle:
    """ETHHOOK_CONSOLE_SIGN_IN_FAILURES_PER_MIN per address, and
    ETHHOOK_CONSOLE_SIGN_IN_FAILURES_GLOBAL_PER_MIN for all addresses together."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._per_address = _limit(
            client, settings.console_sign_in_failures_per_min, "console.sign_in.throttle"
        )
        self._everyone = _limit(
            client, settings.console_sign_in_failures_global_per_min, "console.sign_in.throttle"
        )

    def wait(self, address: str) -> Wait:
        """How long the address must wait before it may try to sign in (0: not at all)."""
        mine = self._per_address.wait("address:" + counted_as(address))
        everyone = self._everyone.wait(EVERYONE)
        if everyone > mine:
            return Wait(everyone, "all addresses together")
        return Wait(mine, "your address")

    def failed(self, address: str) -> None:
        """Count a failed sign-in from the address."""
        self._per_address.take("address:" + counted_as(address))
        self._everyone.take(EVERYONE)

"""Endpoint registration and changes: validation of user input, filter rows, secret rotation."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from ethhook.abi import parse_event_filter, to_checksum_address
from ethhook.config import (
    BIGINT_MAX,
    BUILTIN_CHAINS,
    MAX_CONFIRMATIONS,
    Settings,
    check_seconds,
    parse_retry_schedule,
)
from ethhook.db.models import Endpoint, EndpointFilter, utcnow
from ethhook.deliver.signing import generate_secret
from ethhook.deliver.ssrf import check_url, forbidden_port
from ethhook.exceptions import InputError, NotFoundError

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _length(column: Any) -> int:
    """The size n of a String(n) column of the model."""
    return int(column.type.length)


# Read from the model: longer text is refused here, not by the database.
MAX_NAME_LENGTH = _length(Endpoint.name)
MAX_URL_LENGTH = _length(Endpoint.url)
MAX_REASON_LENGTH = _length(Endpoint.disabled_reason)
# An --event as typed; the longest real-world signatures are a few hundred characters.
MAX_EVENT_LENGTH = 1000
# The rate limiter spaces requests by 1/rate in whole microseconds, kept in Redis.
MIN_RATE_LIMIT_PER_S = 0.001
MAX_RATE_LIMIT_PER_S = 1_000_000
# NUL (PostgreSQL refuses it), other control characters (they garble terminals and logs) and
# lone surrogates (command-line bytes that are not UTF-8 arrive as those; no database takes them).
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class EndpointSpec:
    """A validated `endpoint add` request."""

    url: str
    chain_ids: tuple[int, ...]
    contracts: tuple[str, ...]
    topics: tuple[str, ...]
    signatures: tuple[str, ...]
    confirmations: int
    rate_limit_per_s: float | None
    retry_schedule_s: tuple[float, ...] | None
    name: str | None


def check_length(value: str, what: str, max_length: int) -> str:
    """`value` if it has at most `max_length` characters (a VARCHAR counts characters)."""
    if len(value) > max_length:
        raise InputError(f"invalid {what}: {len(value)} characters, at most {max_length} fit")
    return value


def check_text(value: str, what: str, max_length: int) -> str:
    """`value` if its column stores it as given: at most `max_length` characters of text."""
    if _UNSTORABLE.search(check_length(value, what, max_length)):
        raise InputError(
            f"invalid {what}: it contains control characters or bytes that are not UTF-8"
        )
    return value


def check_grace(grace_s: float) -> float:
    """How long a rotated-out secret may keep signing: 0 seconds to MAX_DURATION_S."""
    try:
        return check_seconds(grace_s, zero_ok=True)
    except ValueError as exc:
        raise InputError(f"invalid --grace-s {grace_s:g}: {exc}") from None


def parse_url(url: str) -> str:
    text = check_text(url.strip(), "URL", MAX_URL_LENGTH)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:  # a bad port, or an unclosed [IPv6 literal
        raise InputError(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InputError(f"invalid URL {url!r}: only http:// and https:// endpoints are supported")
    if not parts.hostname:
        raise InputError(f"invalid URL {url!r}: it has no host name")
    reason = forbidden_port(port)
    if reason:
        raise InputError(f"invalid URL {url!r}: {reason}; give a port from 1 to 65535")
    return text


def parse_chain(value: str, settings: Settings) -> int:
    text = value.strip().lower()
    for chain in settings.chains:
        if chain.name.lower() == text:
            return chain.chain_id
    if text in BUILTIN_CHAINS:
        return BUILTIN_CHAINS[text]
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0")  # and at most 19 of them: int() refuses 4300 and more
        if not digits or len(digits) > 19 or int(digits) > BIGINT_MAX:
            raise InputError(f"invalid chain id {value!r}: expected 1 to {BIGINT_MAX}")
        return int(digits)
    names = ", ".join(sorted({c.name for c in settings.chains} | set(BUILTIN_CHAINS)))
    raise InputError(f"unknown chain {value!r}: use a chain id (e.g. 1) or a name ({names})")


def parse_address(value: str) -> str:
    text = value.strip()
    if not _ADDRESS.match(text):
        raise InputError(f"invalid contract address {value!r}: expected 0x and 40 hex digits")
    if text != text.lower() and text[2:] != text[2:].upper() and text != to_checksum_address(text):
        raise InputError(f"invalid contract address {value!r}: its EIP-55 checksum is wrong")
    return text.lower()


def build_spec(
    *,
    url: str,
    chains: Sequence[str],
    contracts: Sequence[str],
    events: Sequence[str],
    confirmations: int,
    rate_limit_per_s: float | None,
    retry_schedule: str | None,
    name: str | None,
    settings: Settings,
) -> EndpointSpec:
    """Validate every field; raise InputError about the first bad one."""
    topics: list[str] = []
    signatures: list[str] = []
    for text in events:
        topic0, signature = parse_event_filter(check_length(text, "--event", MAX_EVENT_LENGTH))
        if topic0 not in topics:
            topics.append(topic0)
        if signature is not None and signature.text not in signatures:
            signatures.append(signature.text)
    if not 0 <= confirmations <= MAX_CONFIRMATIONS:
        raise InputError(
            f"invalid --confirmations {confirmations}: expected 0 to {MAX_CONFIRMATIONS}"
        )
    if rate_limit_per_s is not None and not (
        MIN_RATE_LIMIT_PER_S <= rate_limit_per_s <= MAX_RATE_LIMIT_PER_S
    ):
        raise InputError(
            f"invalid --rate-limit {rate_limit_per_s:g}: expected requests per second from "
            f"{MIN_RATE_LIMIT_PER_S:g} to {MAX_RATE_LIMIT_PER_S}"
        )
    schedule = None
    if retry_schedule is not None:
        try:
            schedule = parse_retry_schedule(retry_schedule)
        except ValueError as exc:
            raise InputError(f"invalid --retry-schedule {retry_schedule!r}: {exc}") from exc
    url = parse_url(url)
    if not settings.allow_private_targets:
        check_url(url)
    return EndpointSpec(
        url=url,
        chain_ids=tuple(dict.fromkeys(parse_chain(c, settings) for c in chains)),
        contracts=tuple(dict.fromkeys(parse_address(c) for c in contracts)),
        topics=tuple(topics),
        signatures=tuple(signatures),
        confirmations=confirmations,
        rate_limit_per_s=rate_limit_per_s,
        retry_schedule_s=schedule,
        name=None if name is None else check_text(name, "--name", MAX_NAME_LENGTH),
    )


def filter_rows(spec: EndpointSpec) -> list[EndpointFilter]:
    """The cross product of the chain, contract and topic lists; an empty list matches anything."""
    return [
        EndpointFilter(chain_id=chain_id, address=address, topic0=topic0)
        for chain_id, address, topic0 in itertools.product(
            spec.chain_ids or (None,), spec.contracts or (None,), spec.topics or (None,)
        )
    ]


def create_endpoint(session: Session, spec: EndpointSpec) -> Endpoint:
    endpoint = Endpoint(
        name=spec.name,
        url=spec.url,
        secret=generate_secret(),
        event_signatures=list(spec.signatures),
        confirmations=spec.confirmations,
        rate_limit_per_s=spec.rate_limit_per_s,
        retry_schedule_s=list(spec.retry_schedule_s) if spec.retry_schedule_s else None,
        active=True,
        filters=filter_rows(spec),
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def get_endpoint(session: Session, endpoint_id: int) -> Endpoint:
    endpoint = session.get(Endpoint, endpoint_id)
    if endpoint is None:
        raise NotFoundError(f"no endpoint with id {endpoint_id} (see `ethhook endpoint list`)")
    return endpoint


@dataclass(frozen=True)
class EndpointSecrets:
    """The secret that signs an endpoint's webhooks, and the previous one while it signs too."""

    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None


def endpoint_secrets(
    session: Session, endpoint_id: int, now: datetime | None = None
) -> EndpointSecrets:
    """What `ethhook endpoint secret` shows: only the secrets that sign at `now`."""
    endpoint = get_endpoint(session, endpoint_id)
    if endpoint.previous_secret_signs(now or utcnow()):
        return EndpointSecrets(
            endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at
        )
    return EndpointSecrets(endpoint.secret, None, None)


def set_active(session: Session, endpoint_id: int, active: bool, reason: str | None) -> Endpoint:
    if reason is not None:
        check_text(reason, "--reason", MAX_REASON_LENGTH)
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.active = active
    endpoint.disabled_reason = None if active else reason
    endpoint.disabled_at = None if active else utcnow()
    if active:
        endpoint.failing_since = None
    return endpoint


def rotate_secret(
    session: Session, endpoint_id: int, grace_s: float, now: datetime | None = None
) -> Endpoint:
    """A new secret; the old one keeps signing beside it for `grace_s` seconds."""
    check_grace(grace_s)
    now = now or utcnow()
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(seconds=grace_s)
    endpoint.secret = generate_secret()
    return endpoint

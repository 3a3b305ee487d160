"""Endpoint registration and changes: validation of user input, filter rows, secret rotation."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from ethhook.config import BUILTIN_CHAINS, Settings, parse_retry_schedule
from ethhook.db.models import Endpoint, EndpointFilter, utcnow
from ethhook.deliver.signing import generate_secret
from ethhook.deliver.ssrf import check_url
from ethhook.exceptions import InputError, NotFoundError
from ethhook.abi import parse_event_filter, to_checksum_address

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
MAX_CONFIRMATIONS = 10_000


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


def parse_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise InputError(f"invalid URL {url!r}: only http:// and https:// endpoints are supported")
    if not parts.hostname:
        raise InputError(f"invalid URL {url!r}: it has no host name")
    if len(url) > 2048:
        raise InputError("invalid URL: longer than 2048 characters")
    try:
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        raise InputError(f"invalid URL {url!r}: {exc}") from exc
    return url.strip()


def parse_chain(value: str, settings: Settings) -> int:
    text = value.strip().lower()
    for chain in settings.chains:
        if chain.name.lower() == text:
            return chain.chain_id
    if text in BUILTIN_CHAINS:
        return BUILTIN_CHAINS[text]
    if text.isdigit() and int(text) > 0:
        return int(text)
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
        topic0, signature = parse_event_filter(text)
        if topic0 not in topics:
            topics.append(topic0)
        if signature is not None and signature.text not in signatures:
            signatures.append(signature.text)
    if not 0 <= confirmations <= MAX_CONFIRMATIONS:
        raise InputError(
            f"invalid --confirmations {confirmations}: expected 0 to {MAX_CONFIRMATIONS}"
        )
    if rate_limit_per_s is not None and not rate_limit_per_s > 0:
        raise InputError(
            f"invalid --rate-limit {rate_limit_per_s:g}: expected requests per second > 0"
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
        name=name,
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


def set_active(session: Session, endpoint_id: int, active: bool, reason: str | None) -> Endpoint:
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
    now = now or utcnow()
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(seconds=grace_s)
    endpoint.secret = generate_secret()
    return endpoint

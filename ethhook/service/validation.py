"""Validation of endpoint input: every field checked once, for `add`, `update` and the API alike."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ethhook.abi import parse_event_filter, parse_event_signature, to_checksum_address
from ethhook.conditions import parse_condition
from ethhook.config import (
    BIGINT_MAX,
    BUILTIN_CHAINS,
    MAX_CONFIRMATIONS,
    Settings,
    check_seconds,
    longest_retry_s,
    parse_retry_schedule,
)
from ethhook.db.models import Endpoint, Finality
from ethhook.deliver.http.ssrf import check_url, forbidden_port
from ethhook.deliver.signing import SIGNING_SCHEMES
from ethhook.exceptions import InputError
from ethhook.service.finality import check_finality, check_finality_with
from ethhook.service.limits import check_count, check_filter_rows, check_lists
from ethhook.workqueue import ORDERED_MODES

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DIGITS = re.compile(r"[0-9]+")


def column_length(column: Any) -> int:
    """The size n of a String(n) column of the model."""
    return int(column.type.length)


# Read from the model: longer text is refused here, not by the database.
MAX_NAME_LENGTH = column_length(Endpoint.name)
MAX_URL_LENGTH = column_length(Endpoint.url)
MAX_REASON_LENGTH = column_length(Endpoint.disabled_reason)
# An --event as typed; the longest real-world signatures are a few hundred characters.
MAX_EVENT_LENGTH = 1000
# A --where condition as typed (an `in` list of 200 addresses is ~8,600 characters); how many
# an endpoint may have is a setting (ETHHOOK_ENDPOINT_MAX_CONDITIONS).
MAX_CONDITION_LENGTH = 20_000
# How much of a refused value a message quotes: an error is one line, whatever was sent.
QUOTED_CHARACTERS = 60
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
    where: tuple[str, ...] = ()
    signing: str = "hmac"
    # `latest` (its confirmations apply), `safe` or `finalized` (the chain's tag); `lifecycle`:
    # instant, then confirmed or removed, for one event.
    finality: str = Finality.LATEST
    lifecycle: bool = False
    ordered: str | None = None
    # How many endpoints an application's key may have (create_endpoint holds it to this).
    app_max_endpoints: int = field(kw_only=True)
    # `--from-block`: its history from this block is backfilled (replay.backfill) before it is
    # live; `--live-only`: replays and backfills send it nothing.
    from_block: int | None = field(default=None, kw_only=True)
    live_only: bool = field(default=False, kw_only=True)


@contextmanager
def about(field: str) -> Iterator[None]:
    """An InputError raised inside names `field` (the API's name) as the one that was wrong,
    unless it already names one."""
    try:
        yield
    except InputError as exc:
        if exc.field is None:
            exc.field = field
        raise


def quoted(value: str) -> str:
    """`value` as a message quotes it: its repr, cut to QUOTED_CHARACTERS."""
    if len(value) <= QUOTED_CHARACTERS:
        return repr(value)
    return repr(value[:QUOTED_CHARACTERS]) + "…"


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
    if _DIGITS.fullmatch(text):
        digits = text.lstrip("0")  # and at most 19 of them: int() refuses 4300 and more
        if not digits or len(digits) > 19 or int(digits) > BIGINT_MAX:
            raise InputError(f"invalid chain id {quoted(value)}: expected 1 to {BIGINT_MAX}")
        return int(digits)
    names = ", ".join(sorted({c.name for c in settings.chains} | set(BUILTIN_CHAINS)))
    raise InputError(f"unknown chain {quoted(value)}: use a chain id (e.g. 1) or a name ({names})")


def parse_address(value: str) -> str:
    text = value.strip()
    if not _ADDRESS.fullmatch(text):
        raise InputError(f"invalid contract address {quoted(value)}: expected 0x and 40 hex digits")
    if text != text.lower() and text[2:] != text[2:].upper() and text != to_checksum_address(text):
        raise InputError(f"invalid contract address {value!r}: its EIP-55 checksum is wrong")
    return text.lower()


def parse_events(events: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The topic0s and the Solidity signatures (normalised text) of `--event` values."""
    topics: list[str] = []
    signatures: list[str] = []
    for text in events:
        topic0, signature = parse_event_filter(check_length(text, "--event", MAX_EVENT_LENGTH))
        if topic0 not in topics:
            topics.append(topic0)
        if signature is not None and signature.text not in signatures:
            signatures.append(signature.text)
    return tuple(topics), tuple(signatures)


def check_where(
    where: Sequence[str], topics: Sequence[str], signatures: Sequence[str]
) -> tuple[str, ...]:
    """The `--where` conditions as given (stripped, without repeats), each checked against the
    endpoint's one event; InputError says which condition is wrong and where."""
    if not where:
        return ()
    if len(topics) != 1 or len(signatures) != 1:
        raise InputError(
            f"--where needs exactly one --event, given as a Solidity signature with argument "
            f"names (this endpoint has {len(topics)} event(s), {len(signatures)} signature(s))"
        )
    signature = parse_event_signature(signatures[0])
    texts: list[str] = []
    for text in where:
        check_text(text, "--where", MAX_CONDITION_LENGTH)
        condition = parse_condition(text, signature)
        if condition.text not in texts:
            texts.append(condition.text)
    return tuple(texts)


def check_confirmations(confirmations: int) -> int:
    if not 0 <= confirmations <= MAX_CONFIRMATIONS:
        raise InputError(
            f"invalid --confirmations {confirmations}: expected 0 to {MAX_CONFIRMATIONS}"
        )
    return confirmations


def check_rate_limit(rate_limit_per_s: float | None) -> float | None:
    if rate_limit_per_s is not None and not (
        MIN_RATE_LIMIT_PER_S <= rate_limit_per_s <= MAX_RATE_LIMIT_PER_S
    ):
        raise InputError(
            f"invalid --rate-limit {rate_limit_per_s:g}: expected requests per second from "
            f"{MIN_RATE_LIMIT_PER_S:g} to {MAX_RATE_LIMIT_PER_S}"
        )
    return rate_limit_per_s


def check_retry_schedule(
    retry_schedule: str | None, settings: Settings
) -> tuple[float, ...] | None:
    if retry_schedule is None:
        return None
    attempts = [part for part in retry_schedule.split(",") if part.strip()]
    check_count(attempts, "retry attempts", settings, "endpoint_max_retry_attempts")
    try:
        schedule = parse_retry_schedule(retry_schedule)
    except ValueError as exc:
        raise InputError(f"invalid --retry-schedule {quoted(retry_schedule)}: {exc}") from None
    # Retention drops history by whole partitions: a retry it promises must fall within it.
    longest_s = longest_retry_s(schedule)
    if longest_s > settings.retention_days * 86400:
        raise InputError(
            f"invalid --retry-schedule {quoted(retry_schedule)}: its delays add up to "
            f"{longest_s / 86400:.2f} days, longer than the history is kept "
            f"(ETHHOOK_RETENTION_DAYS={settings.retention_days:g})"
        )
    return schedule


def check_signing(signing: str) -> str:
    if signing not in SIGNING_SCHEMES:
        raise InputError(
            f"invalid --signing {quoted(signing)}: use one of {', '.join(SIGNING_SCHEMES)}"
        )
    return signing


def check_ordered(ordered: str | None) -> str | None:
    """None (webhooks in parallel) or one of ORDERED_MODES."""
    if ordered is not None and ordered not in ORDERED_MODES:
        modes = ", ".join(ORDERED_MODES)
        raise InputError(
            f"invalid --ordered {quoted(ordered)}: use {modes} (or off to turn it off)"
        )
    return ordered


def check_endpoint_url(url: str, settings: Settings) -> str:
    """A URL webhooks may go to: well formed, and not private unless the settings allow it."""
    url = parse_url(url)
    if not settings.allow_private_targets:
        check_url(url)
    return url


def check_name(name: str | None) -> str | None:
    return None if name is None else check_text(name, "--name", MAX_NAME_LENGTH)


def parse_chains(chains: Sequence[str], settings: Settings) -> tuple[int, ...]:
    return tuple(dict.fromkeys(parse_chain(c, settings) for c in chains))


def parse_addresses(contracts: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(parse_address(c) for c in contracts))


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
    where: Sequence[str] = (),
    signing: str = "hmac",
    from_block: int | None = None,
    live_only: bool = False,
    finality: str = Finality.LATEST,
    lifecycle: bool = False,
    ordered: str | None = None,
) -> EndpointSpec:
    """Validate every field; raise InputError about the first bad one. The lists' lengths are
    checked first, and their product before any row is made."""
    check_lists(settings, chains=chains, contracts=contracts, events=events, where=where)
    with about("events"):
        topics, signatures = parse_events(events)
    with about("where"):
        conditions = check_where(where, topics, signatures)
    with about("confirmations"):
        check_confirmations(confirmations)
    with about("finality"):
        check_finality_with(check_finality(finality), confirmations)
    with about("rate_limit"):
        check_rate_limit(rate_limit_per_s)
    with about("retry_schedule"):
        schedule = check_retry_schedule(retry_schedule, settings)
    with about("url"):
        url = check_endpoint_url(url, settings)
    with about("chains"):
        chain_ids = parse_chains(chains, settings)
    with about("contracts"):
        addresses = parse_addresses(contracts)
    check_filter_rows(chain_ids, addresses, topics, settings.endpoint_max_filter_rows)
    with about("from_block"):
        check_from_block(from_block, chain_ids, live_only)
    with about("name"):
        name = check_name(name)
    with about("signing"):
        signing = check_signing(signing)
    with about("ordered"):
        ordered = check_ordered(ordered)
    return EndpointSpec(
        url=url,
        chain_ids=chain_ids,
        contracts=addresses,
        topics=topics,
        signatures=signatures,
        confirmations=confirmations,
        rate_limit_per_s=rate_limit_per_s,
        retry_schedule_s=schedule,
        name=name,
        where=conditions,
        signing=signing,
        finality=finality,
        lifecycle=lifecycle,
        ordered=ordered,
        app_max_endpoints=settings.app_max_endpoints,
        from_block=from_block,
        live_only=live_only,
    )


def check_from_block(from_block: int | None, chain_ids: tuple[int, ...], live_only: bool) -> None:
    """A backfill reads one chain from a block number of that chain."""
    if from_block is None:
        return
    if live_only:
        raise InputError(
            "--from-block backfills history and --live-only refuses it: give one or the other"
        )
    if not 0 <= from_block <= BIGINT_MAX:
        raise InputError(f"--from-block {from_block} is not a block number (0 to {BIGINT_MAX})")
    if len(chain_ids) != 1:
        raise InputError(
            "--from-block needs exactly one --chain (block numbers are per chain), e.g. "
            "--chain ethereum --from-block 19000000"
        )

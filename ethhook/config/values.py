"""Setting values: the parsers that turn one variable's text into a checked value, and their bounds."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from ethhook.exceptions import ConfigError
from ethhook.redact import redact_url

DEFAULT_RETRY_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)

# What fits where values are used. Chain ids, block numbers and row ids are PostgreSQL BIGINTs.
BIGINT_MAX = 2**63 - 1
# The longest duration a setting or an endpoint option may name: ten years still fits every
# datetime, timedelta and socket timeout computed from it (1e300 seconds overflows them all).
MAX_DURATION_S = 10 * 365 * 86400
MAX_RETENTION_DAYS = MAX_DURATION_S // 86400
MAX_CONFIRMATIONS = 10_000
MAX_RETRY_ATTEMPTS = 50
# Batch sizes, scan limits and windows: far above any useful value, far below any overflow.
MAX_COUNT = 1_000_000
MAX_PORT = 65535
# The largest request body the API may be told to accept (ETHHOOK_API_MAX_BODY_BYTES).
MAX_BODY_BYTES = 64 * 1024 * 1024
# The longest the API may be told to wait for a client's headers or body: an hour.
MAX_API_TIMEOUT_S = 3600
# Test webhooks one API process may be told to send at once.
MAX_TEST_SENDS = 1000
# Logging: the formats, the level names, and how many loggers ETHHOOK_LOG_LEVELS may name.
LOG_FORMATS = ("text", "json")
LOG_LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_LOGGER_LEVELS = 100


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def check_seconds(value: float, *, zero_ok: bool) -> float:
    """`value` if it is a usable duration in seconds, else ValueError saying what is expected.

    Written so that NaN fails too: every comparison with NaN is false.
    """
    low_ok = value >= 0 if zero_ok else value > 0
    if not (low_ok and value <= MAX_DURATION_S):
        low = "from 0" if zero_ok else "greater than 0 and"
        raise ValueError(f"expected seconds {low} up to {MAX_DURATION_S} (10 years)")
    return value


def parse_positive_seconds(raw: str) -> float:
    return check_seconds(float(raw), zero_ok=False)


def parse_non_negative_seconds(raw: str) -> float:
    return check_seconds(float(raw), zero_ok=True)


def parse_api_timeout_s(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= MAX_API_TIMEOUT_S:  # NaN fails too
        raise ValueError(f"expected seconds greater than 0 and up to {MAX_API_TIMEOUT_S}")
    return value


def parse_retention_days(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= MAX_RETENTION_DAYS:
        raise ValueError(f"expected days greater than 0 and up to {MAX_RETENTION_DAYS}")
    return value


# The history tables' partitions: from a minute (tests) to a month.
MIN_PARTITION_INTERVAL_S = 60
MAX_PARTITION_INTERVAL_S = 31 * 86400
_INTERVAL = re.compile(r"([0-9]{1,6})([mhd])")
_INTERVAL_UNITS_S = {"m": 60, "h": 3600, "d": 86400}


def parse_partition_interval(raw: str) -> int:
    """`1d`, `6h`, `5m`: a whole number of minutes, hours or days, as seconds."""
    match = _INTERVAL.fullmatch(raw.strip())
    seconds = int(match[1]) * _INTERVAL_UNITS_S[match[2]] if match else 0
    if not MIN_PARTITION_INTERVAL_S <= seconds <= MAX_PARTITION_INTERVAL_S:
        raise ValueError(
            "expected a whole number of minutes, hours or days from 1m to 31d, e.g. 1d"
        )
    return seconds


def longest_retry_s(schedule_s: tuple[float, ...] | list[float]) -> float:
    """How long a delivery on this schedule waits for its last retry: its delays added up
    (each may come up to 10 % later, with jitter, or later for a Retry-After)."""
    return float(sum(schedule_s))


def int_parser(low: int, high: int) -> Callable[[str], int]:
    """A parser of a whole number from `low` to `high`."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:  # not digits, or more digits than Python converts
            value = None
        if value is None or not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return parse


parse_count = int_parser(1, MAX_COUNT)
parse_count_or_off = int_parser(0, MAX_COUNT)  # 0 = off
parse_port = int_parser(0, MAX_PORT)  # 0 = off


_DELAY = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_retry_schedule(raw: str) -> tuple[float, ...]:
    """Parse "0,5,300" into delays in seconds: one entry per attempt, the first usually 0."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise ValueError("expected comma-separated delays in seconds, e.g. 0,5,300")
    if len(parts) > MAX_RETRY_ATTEMPTS:
        raise ValueError(f"at most {MAX_RETRY_ATTEMPTS} attempts")
    # ASCII decimals only: float() also takes other scripts' digits, underscores, NaN and inf.
    delays = tuple(float(p) if _DELAY.fullmatch(p) else math.nan for p in parts)
    if not all(0 <= d <= MAX_DURATION_S for d in delays):  # NaN fails too
        raise ValueError(f"each delay must be from 0 to {MAX_DURATION_S} seconds (10 years)")
    return delays


def check_url_form(raw: str, example: str) -> str:
    """`raw` if it looks like a URL whose port (if any) is a real one."""
    if "://" not in raw:
        raise ValueError(f"expected a URL such as {example}")
    try:
        urlsplit(raw).port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as exc:
        raise ValueError(f"expected a URL with a port from 0 to {MAX_PORT} ({exc})") from None
    return raw


def parse_url(raw: str) -> str:
    return check_url_form(raw, "redis://127.0.0.1:6379/0")


def parse_host(raw: str) -> str:
    """A host name or address to listen on: no scheme, path, port or spaces (IPv6 as ::1)."""
    host = raw.strip()
    if not host or any(c.isspace() or c in "/@[]" for c in host):
        raise ValueError("expected a host name or an IP address, e.g. 127.0.0.1 or 0.0.0.0")
    return host


def parse_rate(raw: str) -> float:
    """Requests per second, 0 for no limit."""
    value = float(raw)
    if not 0 <= value <= MAX_COUNT:  # NaN fails too
        raise ValueError(f"expected requests per second from 0 (no limit) to {MAX_COUNT}")
    return value


def parse_origins(raw: str) -> tuple[str, ...]:
    """Comma-separated origins (scheme://host[:port], no path) that browsers may call from."""
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(
                f"expected origins such as https://console.example.com, got {origin!r}"
            )
    return origins


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Far more reverse proxies than any deployment chains; each request is checked against them all.
MAX_TRUSTED_PROXIES = 100


def parse_networks(raw: str) -> tuple[IpNetwork, ...]:
    """Comma-separated IP addresses or CIDR networks, e.g. 10.0.0.0/8,127.0.0.1,::1."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > MAX_TRUSTED_PROXIES:
        raise ValueError(f"at most {MAX_TRUSTED_PROXIES} addresses or networks")
    networks = []
    for part in parts:
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(
                f"expected IP addresses or networks such as 10.0.0.0/8 or 127.0.0.1, got {part!r}"
            ) from None
    return tuple(networks)


def choice_parser(*choices: str) -> Callable[[str], str]:
    """A parser of one of `choices` (case-insensitive)."""

    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


# The databases EthHook is tested on: dialect → the drivers that may follow a "+".
_DATABASES = {"postgresql": ("", "psycopg2"), "sqlite": ("", "pysqlite")}


def parse_database_url(raw: str) -> str:
    dialect, _, driver = raw.partition("://")[0].lower().partition("+")
    if "://" not in raw or driver not in _DATABASES.get(dialect, ()):
        raise ValueError(
            "EthHook supports PostgreSQL (postgresql+psycopg2://USER@HOST:5432/DB) "
            "or SQLite (sqlite:///PATH)"
        )
    return check_url_form(raw, "postgresql+psycopg2://USER@HOST:5432/DB")


def shown(raw: str) -> str:
    """A setting's value as an error message may quote it: a URL as scheme://host:port only
    (credentials, and the path and query where providers put API keys, become …), at most 100
    characters of anything else."""
    if "://" in raw:
        text = redact_url(raw)
        text += "…" if text != raw else ""
    else:
        text = raw
    return repr(text if len(text) <= 100 else text[:100] + "…")


def parse_secret_keys(raw: str) -> tuple[str, ...]:
    """Comma-separated Fernet keys, newest first: the newest encrypts, any of them decrypts."""
    from cryptography.fernet import Fernet  # here: only a process given keys pays for the import

    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if not keys:
        raise ConfigError("ETHHOOK_SECRET_KEYS: expected comma-separated Fernet keys, newest first")
    for i, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            # A ConfigError, not a ValueError: load_settings would quote the value, a secret.
            raise ConfigError(
                f"ETHHOOK_SECRET_KEYS: key {i} of {len(keys)} is not a Fernet key (32 url-safe "
                "base64-encoded bytes; make one with `python -c 'from cryptography.fernet import "
                "Fernet; print(Fernet.generate_key().decode())'`)"
            ) from None
    return keys


def parse_log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"expected {' or '.join(LOG_FORMATS)}")
    return value


def parse_log_level(raw: str) -> str:
    """A level name, in any case (WARN is WARNING)."""
    value = raw.strip().upper()
    value = "WARNING" if value == "WARN" else value
    if value not in LOG_LEVEL_NAMES:
        raise ValueError(f"expected a level: {', '.join(LOG_LEVEL_NAMES)}")
    return value


_LOGGER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")


def parse_log_levels(raw: str) -> tuple[tuple[str, str], ...]:
    """`ethhook.listen=DEBUG,celery=WARNING`: a level per logger (and the loggers below it)."""
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, equals, level = (text.strip() for text in item.partition("="))
        if not equals or not _LOGGER_NAME.fullmatch(name):
            raise ValueError(
                f"expected logger=LEVEL pairs separated by commas, such as "
                f"ethhook.listen=DEBUG,celery=WARNING; got {item[:60]!r}"
            )
        try:
            pairs[name] = parse_log_level(level)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    if len(pairs) > MAX_LOGGER_LEVELS:
        raise ValueError(f"at most {MAX_LOGGER_LEVELS} loggers")
    return tuple(pairs.items())

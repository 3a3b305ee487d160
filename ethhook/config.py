"""The one typed settings object: the only place that reads environment variables."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any
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


@dataclass(frozen=True)
class ChainConfig:
    """One EVM chain the listener follows."""

    name: str
    chain_id: int
    ws_url: str | None = None
    http_url: str | None = None
    default_confirmations: int = 0
    poll_interval_s: float = 1.0

    @property
    def enabled(self) -> bool:
        return bool(self.ws_url or self.http_url)


# Built-in chains; their URLs come from ETHEREUM_WS / ETHEREUM_HTTP and so on.
BUILTIN_CHAINS: dict[str, int] = {
    "ethereum": 1,
    "optimism": 10,
    "base": 8453,
    "arbitrum": 42161,
}


def _parse_bool(raw: str) -> bool:
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


def _parse_positive_seconds(raw: str) -> float:
    return check_seconds(float(raw), zero_ok=False)


def _parse_non_negative_seconds(raw: str) -> float:
    return check_seconds(float(raw), zero_ok=True)


def _parse_retention_days(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= MAX_RETENTION_DAYS:
        raise ValueError(f"expected days greater than 0 and up to {MAX_RETENTION_DAYS}")
    return value


def _int_parser(low: int, high: int) -> Callable[[str], int]:
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


_parse_count = _int_parser(1, MAX_COUNT)
_parse_port = _int_parser(0, MAX_PORT)  # 0 = off


def parse_retry_schedule(raw: str) -> tuple[float, ...]:
    """Parse "0,5,300" into delays in seconds: one entry per attempt, the first usually 0."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise ValueError("expected comma-separated delays in seconds, e.g. 0,5,300")
    if len(parts) > MAX_RETRY_ATTEMPTS:
        raise ValueError(f"at most {MAX_RETRY_ATTEMPTS} attempts")
    delays = tuple(float(p) for p in parts)
    if not all(0 <= d <= MAX_DURATION_S for d in delays):
        raise ValueError(f"each delay must be from 0 to {MAX_DURATION_S} seconds (10 years)")
    return delays


def _check_url(raw: str, example: str) -> str:
    """`raw` if it looks like a URL whose port (if any) is a real one."""
    if "://" not in raw:
        raise ValueError(f"expected a URL such as {example}")
    try:
        urlsplit(raw).port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as exc:
        raise ValueError(f"expected a URL with a port from 0 to {MAX_PORT} ({exc})") from None
    return raw


def _parse_url(raw: str) -> str:
    return _check_url(raw, "redis://127.0.0.1:6379/0")


def _parse_host(raw: str) -> str:
    """A host name or address to listen on: no scheme, path, port or spaces (IPv6 as ::1)."""
    host = raw.strip()
    if not host or any(c.isspace() or c in "/@[]" for c in host):
        raise ValueError("expected a host name or an IP address, e.g. 127.0.0.1 or 0.0.0.0")
    return host


def _parse_rate(raw: str) -> float:
    """Requests per second, 0 for no limit."""
    value = float(raw)
    if not 0 <= value <= MAX_COUNT:  # NaN fails too
        raise ValueError(f"expected requests per second from 0 (no limit) to {MAX_COUNT}")
    return value


def _parse_origins(raw: str) -> tuple[str, ...]:
    """Comma-separated origins (scheme://host[:port], no path) that browsers may call from."""
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(
                f"expected origins such as https://console.example.com, got {origin!r}"
            )
    return origins


# The databases EthHook is tested on: dialect → the drivers that may follow a "+".
_DATABASES = {"postgresql": ("", "psycopg2"), "sqlite": ("", "pysqlite")}


def _parse_database_url(raw: str) -> str:
    dialect, _, driver = raw.partition("://")[0].lower().partition("+")
    if "://" not in raw or driver not in _DATABASES.get(dialect, ()):
        raise ValueError(
            "EthHook supports PostgreSQL (postgresql+psycopg2://USER@HOST:5432/DB) "
            "or SQLite (sqlite:///PATH)"
        )
    return _check_url(raw, "postgresql+psycopg2://USER@HOST:5432/DB")


def _shown(raw: str) -> str:
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


@dataclass(frozen=True)
class Settings:
    """Every setting, with its unit in the name. Read from ETHHOOK_* variables (see README)."""

    database_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/ethhook"
    broker_url: str = "redis://127.0.0.1:6379/0"
    redis_url: str = "redis://127.0.0.1:6379/0"
    allow_private_targets: bool = False
    delivery_connect_timeout_s: float = 3.0
    delivery_read_timeout_s: float = 10.0
    retry_schedule_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S
    retention_days: float = 30.0
    cleanup_batch_size: int = 5000
    dispatch_lease_s: float = 60.0
    delivery_lease_s: float = 300.0
    due_scan_interval_s: float = 1.0
    due_scan_limit: int = 5000
    deliveries_per_task: int = 100
    delivery_window: int = 8
    endpoint_max_in_flight: int = 16
    match_batch_size: int = 100
    replay_chunk_blocks: int = 1000
    replay_lease_s: float = 120.0
    secret_rotation_grace_s: float = 86400.0
    # Fernet keys, newest first, that encrypt endpoint secrets at rest (ethhook/db/secrets.py).
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    breaker_fail_max: int = 5
    breaker_reset_timeout_s: float = 30.0
    auto_disable_after_s: float = 5 * 86400.0
    metrics_port: int = 3000
    worker_metrics_port: int = 9808
    # Loopback unless told otherwise: deployments scraped from other hosts set 0.0.0.0 themselves.
    metrics_host: str = "127.0.0.1"
    # The HTTP API (`ethhook api`): loopback unless told otherwise, like every server.
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_max_body_bytes: int = 1024 * 1024
    # Per API key, shared by every API process through Redis; 0 = no limit.
    api_rate_limit_per_s: float = 50.0
    api_rate_burst: int = 100
    # Browser origins allowed to call the API (CORS); none by default.
    api_cors_origins: tuple[str, ...] = ()
    chains_file: str | None = None
    # Where the demo and the test fixtures install the anvil chain node with npm.
    anvil_cache_dir: str = str(Path.home() / ".cache/ethhook/anvil")
    chains: tuple[ChainConfig, ...] = field(default_factory=tuple)

    def chain_by_id(self, chain_id: int) -> ChainConfig | None:
        for chain in self.chains:
            if chain.chain_id == chain_id:
                return chain
        return None

    def chain_name(self, chain_id: int) -> str:
        chain = self.chain_by_id(chain_id)
        if chain is not None:
            return chain.name
        for name, cid in BUILTIN_CHAINS.items():
            if cid == chain_id:
                return name
        return f"chain-{chain_id}"


# (env variable, parser) per field; fields not listed here are derived.
_PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "database_url": ("ETHHOOK_DATABASE_URL", _parse_database_url),
    "broker_url": ("ETHHOOK_BROKER_URL", _parse_url),
    "redis_url": ("ETHHOOK_REDIS_URL", _parse_url),
    "allow_private_targets": ("ETHHOOK_ALLOW_PRIVATE_TARGETS", _parse_bool),
    "delivery_connect_timeout_s": ("ETHHOOK_DELIVERY_CONNECT_TIMEOUT_S", _parse_positive_seconds),
    "delivery_read_timeout_s": ("ETHHOOK_DELIVERY_READ_TIMEOUT_S", _parse_positive_seconds),
    "retry_schedule_s": ("ETHHOOK_RETRY_SCHEDULE_S", parse_retry_schedule),
    "retention_days": ("ETHHOOK_RETENTION_DAYS", _parse_retention_days),
    "cleanup_batch_size": ("ETHHOOK_CLEANUP_BATCH_SIZE", _parse_count),
    "dispatch_lease_s": ("ETHHOOK_DISPATCH_LEASE_S", _parse_positive_seconds),
    "delivery_lease_s": ("ETHHOOK_DELIVERY_LEASE_S", _parse_positive_seconds),
    "due_scan_interval_s": ("ETHHOOK_DUE_SCAN_INTERVAL_S", _parse_positive_seconds),
    "due_scan_limit": ("ETHHOOK_DUE_SCAN_LIMIT", _parse_count),
    "deliveries_per_task": ("ETHHOOK_DELIVERIES_PER_TASK", _parse_count),
    "delivery_window": ("ETHHOOK_DELIVERY_WINDOW", _parse_count),
    "endpoint_max_in_flight": ("ETHHOOK_ENDPOINT_MAX_IN_FLIGHT", _parse_count),
    "match_batch_size": ("ETHHOOK_MATCH_BATCH_SIZE", _parse_count),
    "replay_chunk_blocks": ("ETHHOOK_REPLAY_CHUNK_BLOCKS", _parse_count),
    "replay_lease_s": ("ETHHOOK_REPLAY_LEASE_S", _parse_positive_seconds),
    "secret_rotation_grace_s": ("ETHHOOK_SECRET_ROTATION_GRACE_S", _parse_non_negative_seconds),
    "secret_keys": ("ETHHOOK_SECRET_KEYS", parse_secret_keys),
    "breaker_fail_max": ("ETHHOOK_BREAKER_FAIL_MAX", _parse_count),
    "breaker_reset_timeout_s": ("ETHHOOK_BREAKER_RESET_TIMEOUT_S", _parse_positive_seconds),
    "auto_disable_after_s": ("ETHHOOK_AUTO_DISABLE_AFTER_S", _parse_positive_seconds),
    "metrics_port": ("ETHHOOK_METRICS_PORT", _parse_port),
    "worker_metrics_port": ("ETHHOOK_WORKER_METRICS_PORT", _parse_port),
    "metrics_host": ("ETHHOOK_METRICS_HOST", str),
    "api_host": ("ETHHOOK_API_HOST", _parse_host),
    "api_port": ("ETHHOOK_API_PORT", _int_parser(1, MAX_PORT)),
    "api_max_body_bytes": ("ETHHOOK_API_MAX_BODY_BYTES", _int_parser(1024, MAX_BODY_BYTES)),
    "api_rate_limit_per_s": ("ETHHOOK_API_RATE_LIMIT", _parse_rate),
    "api_rate_burst": ("ETHHOOK_API_RATE_BURST", _parse_count),
    "api_cors_origins": ("ETHHOOK_API_CORS_ORIGINS", _parse_origins),
    "chains_file": ("ETHHOOK_CHAINS_FILE", str),
    "anvil_cache_dir": ("ETHHOOK_ANVIL_CACHE", str),
}

# ETHEREUM_WS, ETHEREUM_HTTP, … : the built-in chains' node URLs.
CHAIN_URL_VARIABLES: tuple[str, ...] = tuple(
    f"{name.upper()}_{kind}" for name in BUILTIN_CHAINS for kind in ("WS", "HTTP")
)


def _load_chains(env: Mapping[str, str], chains_file: str | None) -> tuple[ChainConfig, ...]:
    chains: dict[int, ChainConfig] = {}
    for name, chain_id in BUILTIN_CHAINS.items():
        ws = env.get(f"{name.upper()}_WS") or None
        http = env.get(f"{name.upper()}_HTTP") or None
        for var, url in ((f"{name.upper()}_WS", ws), (f"{name.upper()}_HTTP", http)):
            if url is not None:
                try:
                    _check_url(url, "ws://127.0.0.1:8545")
                except ValueError as exc:
                    raise ConfigError(f"{var}={_shown(url)} is invalid: {exc}") from None
        chains[chain_id] = ChainConfig(name=name, chain_id=chain_id, ws_url=ws, http_url=http)
    if chains_file:
        for chain in _read_chains_file(chains_file):
            chains[chain.chain_id] = chain
    return tuple(chains.values())


def _read_chains_file(path: str) -> list[ChainConfig]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"ETHHOOK_CHAINS_FILE: cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"ETHHOOK_CHAINS_FILE: {path} is not valid TOML: {exc}") from exc
    result = []
    for i, entry in enumerate(data.get("chains", [])):
        where = f"ETHHOOK_CHAINS_FILE: {path}: chains[{i}]"
        try:
            result.append(_chain_entry(entry))
        except KeyError as exc:
            raise ConfigError(f"{where}: missing key {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return result


def _chain_entry(entry: Mapping[str, Any]) -> ChainConfig:
    """One [[chains]] table, every value checked (TOML has inf and nan, and any type anywhere)."""

    def whole(key: str, low: int, high: int, default: int | None = None) -> int:
        value = entry[key] if default is None else entry.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{key} must be an integer from {low} to {high}")
        return value

    def url(key: str) -> str | None:
        value = entry.get(key) or None
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} must be a string")
        return None if value is None else _check_url(value, "ws://127.0.0.1:8545")

    name = entry["name"]
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    poll = entry.get("poll_interval_s", 1.0)
    if isinstance(poll, bool) or not isinstance(poll, int | float):
        raise ValueError("poll_interval_s must be a number")
    try:
        check_seconds(float(poll), zero_ok=False)
    except ValueError as exc:
        raise ValueError(f"poll_interval_s: {exc}") from None
    return ChainConfig(
        name=name,
        chain_id=whole("chain_id", 1, BIGINT_MAX),
        ws_url=url("ws_url"),
        http_url=url("http_url"),
        default_confirmations=whole("default_confirmations", 0, MAX_CONFIRMATIONS, 0),
        poll_interval_s=float(poll),
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; a bad value raises ConfigError naming the variable."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, (var, parse) in _PARSERS.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{var}={_shown(raw)} is invalid: {exc}") from None
    values["chains"] = _load_chains(env, values.get("chains_file"))
    known = {f.name for f in fields(Settings)}
    assert set(values) <= known
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()

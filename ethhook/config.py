"""The one typed settings object: the only place that reads environment variables."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from ethhook.exceptions import ConfigError

DEFAULT_RETRY_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


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


def _parse_positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("expected a number greater than 0")
    return value


def _parse_non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("expected a number of 0 or more")
    return value


def _parse_non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected an integer of 0 or more")
    return value


def _parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("expected an integer of 1 or more")
    return value


def parse_retry_schedule(raw: str) -> tuple[float, ...]:
    """Parse "0,5,300" into delays in seconds: one entry per attempt, the first usually 0."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise ValueError("expected comma-separated delays in seconds, e.g. 0,5,300")
    delays = tuple(float(p) for p in parts)
    if any(d < 0 for d in delays):
        raise ValueError("delays must be 0 or more seconds")
    if len(delays) > 50:
        raise ValueError("at most 50 attempts")
    return delays


def _parse_url(raw: str) -> str:
    if "://" not in raw:
        raise ValueError("expected a URL such as redis://127.0.0.1:6379/0")
    return raw


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
    secret_rotation_grace_s: float = 86400.0
    breaker_fail_max: int = 5
    breaker_reset_timeout_s: float = 30.0
    auto_disable_after_s: float = 5 * 86400.0
    metrics_port: int = 3000
    worker_metrics_port: int = 9808
    metrics_host: str = "0.0.0.0"  # noqa: S104 (scraped from other hosts and containers)
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
    "database_url": ("ETHHOOK_DATABASE_URL", _parse_url),
    "broker_url": ("ETHHOOK_BROKER_URL", _parse_url),
    "redis_url": ("ETHHOOK_REDIS_URL", _parse_url),
    "allow_private_targets": ("ETHHOOK_ALLOW_PRIVATE_TARGETS", _parse_bool),
    "delivery_connect_timeout_s": ("ETHHOOK_DELIVERY_CONNECT_TIMEOUT_S", _parse_positive_float),
    "delivery_read_timeout_s": ("ETHHOOK_DELIVERY_READ_TIMEOUT_S", _parse_positive_float),
    "retry_schedule_s": ("ETHHOOK_RETRY_SCHEDULE_S", parse_retry_schedule),
    "retention_days": ("ETHHOOK_RETENTION_DAYS", _parse_positive_float),
    "cleanup_batch_size": ("ETHHOOK_CLEANUP_BATCH_SIZE", _parse_positive_int),
    "dispatch_lease_s": ("ETHHOOK_DISPATCH_LEASE_S", _parse_positive_float),
    "delivery_lease_s": ("ETHHOOK_DELIVERY_LEASE_S", _parse_positive_float),
    "due_scan_interval_s": ("ETHHOOK_DUE_SCAN_INTERVAL_S", _parse_positive_float),
    "due_scan_limit": ("ETHHOOK_DUE_SCAN_LIMIT", _parse_positive_int),
    "deliveries_per_task": ("ETHHOOK_DELIVERIES_PER_TASK", _parse_positive_int),
    "delivery_window": ("ETHHOOK_DELIVERY_WINDOW", _parse_positive_int),
    "endpoint_max_in_flight": ("ETHHOOK_ENDPOINT_MAX_IN_FLIGHT", _parse_positive_int),
    "match_batch_size": ("ETHHOOK_MATCH_BATCH_SIZE", _parse_positive_int),
    "secret_rotation_grace_s": ("ETHHOOK_SECRET_ROTATION_GRACE_S", _parse_non_negative_float),
    "breaker_fail_max": ("ETHHOOK_BREAKER_FAIL_MAX", _parse_positive_int),
    "breaker_reset_timeout_s": ("ETHHOOK_BREAKER_RESET_TIMEOUT_S", _parse_positive_float),
    "auto_disable_after_s": ("ETHHOOK_AUTO_DISABLE_AFTER_S", _parse_positive_float),
    "metrics_port": ("ETHHOOK_METRICS_PORT", _parse_non_negative_int),
    "worker_metrics_port": ("ETHHOOK_WORKER_METRICS_PORT", _parse_non_negative_int),
    "metrics_host": ("ETHHOOK_METRICS_HOST", str),
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
            if url is not None and "://" not in url:
                raise ConfigError(f"{var}: expected a URL such as ws://127.0.0.1:8545, got {url!r}")
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
            chain = ChainConfig(
                name=str(entry["name"]),
                chain_id=int(entry["chain_id"]),
                ws_url=entry.get("ws_url") or None,
                http_url=entry.get("http_url") or None,
                default_confirmations=int(entry.get("default_confirmations", 0)),
                poll_interval_s=float(entry.get("poll_interval_s", 1.0)),
            )
        except KeyError as exc:
            raise ConfigError(f"{where}: missing key {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        if chain.chain_id < 1 or chain.default_confirmations < 0 or chain.poll_interval_s <= 0:
            raise ConfigError(
                f"{where}: chain_id, default_confirmations or poll_interval_s out of range"
            )
        result.append(chain)
    return result


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
            raise ConfigError(f"{var}={raw!r} is invalid: {exc}") from exc
    values["chains"] = _load_chains(env, values.get("chains_file"))
    known = {f.name for f in fields(Settings)}
    assert set(values) <= known
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()

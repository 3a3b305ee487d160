"""The one typed settings object: the only place that reads environment variables.

The value parsers and their bounds are in `values`, the chains in `chains`; both are re-exported
here, so every module imports its settings from `ethhook.config`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from ethhook.config.chains import BUILTIN_CHAINS, CHAIN_URL_VARIABLES, ChainConfig, load_chains
from ethhook.config.values import (
    BIGINT_MAX,
    DEFAULT_RETRY_SCHEDULE_S,
    MAX_BODY_BYTES,
    MAX_CONFIRMATIONS,
    MAX_COUNT,
    MAX_DURATION_S,
    MAX_PORT,
    MAX_RETENTION_DAYS,
    MAX_RETRY_ATTEMPTS,
    MAX_TEST_SENDS,
    IpNetwork,
    check_seconds,
    choice_parser,
    int_parser,
    longest_retry_s,
    parse_api_timeout_s,
    parse_bool,
    parse_count,
    parse_count_or_off,
    parse_database_url,
    parse_host,
    parse_log_format,
    parse_log_level,
    parse_log_levels,
    parse_networks,
    parse_non_negative_seconds,
    parse_origins,
    parse_partition_interval,
    parse_port,
    parse_positive_seconds,
    parse_rate,
    parse_retention_days,
    parse_retry_schedule,
    parse_secret_keys,
    parse_url,
    shown,
)
from ethhook.exceptions import ConfigError

__all__ = [
    "BIGINT_MAX",
    "BUILTIN_CHAINS",
    "CHAIN_URL_VARIABLES",
    "DEFAULT_RETRY_SCHEDULE_S",
    "MAX_BODY_BYTES",
    "MAX_CONFIRMATIONS",
    "MAX_COUNT",
    "MAX_DURATION_S",
    "MAX_PORT",
    "MAX_RETENTION_DAYS",
    "MAX_RETRY_ATTEMPTS",
    "ChainConfig",
    "IpNetwork",
    "Settings",
    "check_seconds",
    "get_settings",
    "load_settings",
    "longest_retry_s",
    "parse_retry_schedule",
    "parse_secret_keys",
    "variable",
]


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
    # The time range of one partition of events, deliveries and delivery_attempts (PostgreSQL).
    partition_interval_s: int = 86400
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
    # What an application's key may ask for; the operator's replays and endpoints are not held
    # to these. A replay's blocks, and its jobs queued or running at once:
    replay_max_blocks: int = 100_000
    replay_max_active: int = 3
    app_max_endpoints: int = 1000
    # What one endpoint may list (every caller, the CLI too): each list, and the filter rows the
    # product of chains × contracts × events makes (one row per combination).
    endpoint_max_chains: int = 16
    endpoint_max_contracts: int = 100
    endpoint_max_events: int = 50
    endpoint_max_conditions: int = 16
    endpoint_max_retry_attempts: int = 20
    endpoint_max_filter_rows: int = 1000
    secret_rotation_grace_s: float = 86400.0
    # Fernet keys, newest first, that encrypt endpoint secrets at rest (ethhook/db/secrets.py).
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    # Without secret_keys, each long-running process warns once at start that secrets are stored
    # as plaintext; false silences it (`ethhook up` warns once for every process it starts).
    warn_plaintext_secrets: bool = True
    breaker_fail_max: int = 5
    breaker_reset_timeout_s: float = 30.0
    auto_disable_after_s: float = 5 * 86400.0
    # `endpoint.failing` goes to the application's ops endpoint once an endpoint has failed every
    # attempt this long (and `endpoint.recovered` at its next success).
    ops_failing_after_s: float = 900.0
    # `chain.lagging` goes to the ops endpoints of the applications watching a chain once its
    # listener has been more than ops_lag_blocks behind the node's head for ops_lag_after_s.
    ops_lag_blocks: int = 100
    ops_lag_after_s: float = 300.0
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
    # Requests without a valid key (none, malformed, unknown), per client address; once over,
    # the address is answered 429 before any key is looked up. 0 = no limit.
    api_auth_failure_rate_per_s: float = 1.0
    api_auth_failure_burst: int = 20
    # How long a client may take to send a request's line and headers (counted from when the
    # connection opened or the previous answer ended), then its body; a slower one is cut off.
    api_header_timeout_s: float = 10.0
    api_body_timeout_s: float = 30.0
    # Open connections (or requests under way) per API process before new requests get 503.
    api_max_connections: int = 1000
    # On SIGTERM, how long requests under way may take to finish; those still running then are
    # answered 503.
    api_shutdown_grace_s: float = 10.0
    # Test webhooks (POST /v1/endpoints/{id}/test, the console's button) under way at once per
    # API process: per key, and in all.
    api_test_sends_per_key: int = 2
    api_test_sends_total: int = 10
    # Browser origins allowed to call the API (CORS); none by default.
    api_cors_origins: tuple[str, ...] = ()
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed; none by default.
    trusted_proxies: tuple[IpNetwork, ...] = ()
    # The web console: a session ends on sign-out, after this long, or after this long unused.
    console_session_lifetime_s: float = 12 * 3600.0
    console_idle_timeout_s: float = 1800.0
    # Failed sign-ins per minute from one client address (as many at once), and from all of them
    # together; 0 = no limit. Shared by every API process through Redis.
    console_sign_in_failures_per_min: int = 10
    console_sign_in_failures_global_per_min: int = 0
    # The session cookie's Secure flag: auto = when the request came over HTTPS (directly, or
    # per X-Forwarded-Proto from a trusted proxy), or always (true), or never (false).
    console_secure_cookie: str = "auto"
    # Logging (ethhook/logs): text or one JSON object per line, the level of every logger unless
    # ETHHOOK_LOG_LEVELS names a level for it or for a logger above it.
    log_format: str = "text"
    log_level: str = "INFO"
    log_levels: tuple[tuple[str, str], ...] = ()
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
    "database_url": ("ETHHOOK_DATABASE_URL", parse_database_url),
    "broker_url": ("ETHHOOK_BROKER_URL", parse_url),
    "redis_url": ("ETHHOOK_REDIS_URL", parse_url),
    "allow_private_targets": ("ETHHOOK_ALLOW_PRIVATE_TARGETS", parse_bool),
    "delivery_connect_timeout_s": ("ETHHOOK_DELIVERY_CONNECT_TIMEOUT_S", parse_positive_seconds),
    "delivery_read_timeout_s": ("ETHHOOK_DELIVERY_READ_TIMEOUT_S", parse_positive_seconds),
    "retry_schedule_s": ("ETHHOOK_RETRY_SCHEDULE_S", parse_retry_schedule),
    "retention_days": ("ETHHOOK_RETENTION_DAYS", parse_retention_days),
    "partition_interval_s": ("ETHHOOK_PARTITION_INTERVAL", parse_partition_interval),
    "cleanup_batch_size": ("ETHHOOK_CLEANUP_BATCH_SIZE", parse_count),
    "dispatch_lease_s": ("ETHHOOK_DISPATCH_LEASE_S", parse_positive_seconds),
    "delivery_lease_s": ("ETHHOOK_DELIVERY_LEASE_S", parse_positive_seconds),
    "due_scan_interval_s": ("ETHHOOK_DUE_SCAN_INTERVAL_S", parse_positive_seconds),
    "due_scan_limit": ("ETHHOOK_DUE_SCAN_LIMIT", parse_count),
    "deliveries_per_task": ("ETHHOOK_DELIVERIES_PER_TASK", parse_count),
    "delivery_window": ("ETHHOOK_DELIVERY_WINDOW", parse_count),
    "endpoint_max_in_flight": ("ETHHOOK_ENDPOINT_MAX_IN_FLIGHT", parse_count),
    "match_batch_size": ("ETHHOOK_MATCH_BATCH_SIZE", parse_count),
    "replay_chunk_blocks": ("ETHHOOK_REPLAY_CHUNK_BLOCKS", parse_count),
    "replay_lease_s": ("ETHHOOK_REPLAY_LEASE_S", parse_positive_seconds),
    "replay_max_blocks": ("ETHHOOK_REPLAY_MAX_BLOCKS", int_parser(1, BIGINT_MAX)),
    "replay_max_active": ("ETHHOOK_REPLAY_MAX_ACTIVE", parse_count),
    "app_max_endpoints": ("ETHHOOK_APP_MAX_ENDPOINTS", parse_count),
    "endpoint_max_chains": ("ETHHOOK_ENDPOINT_MAX_CHAINS", parse_count),
    "endpoint_max_contracts": ("ETHHOOK_ENDPOINT_MAX_CONTRACTS", parse_count),
    "endpoint_max_events": ("ETHHOOK_ENDPOINT_MAX_EVENTS", parse_count),
    "endpoint_max_conditions": ("ETHHOOK_ENDPOINT_MAX_CONDITIONS", parse_count),
    "endpoint_max_retry_attempts": (
        "ETHHOOK_ENDPOINT_MAX_RETRY_ATTEMPTS",
        int_parser(1, MAX_RETRY_ATTEMPTS),
    ),
    "endpoint_max_filter_rows": ("ETHHOOK_ENDPOINT_MAX_FILTER_ROWS", parse_count),
    "secret_rotation_grace_s": ("ETHHOOK_SECRET_ROTATION_GRACE_S", parse_non_negative_seconds),
    "secret_keys": ("ETHHOOK_SECRET_KEYS", parse_secret_keys),
    "warn_plaintext_secrets": ("ETHHOOK_WARN_PLAINTEXT_SECRETS", parse_bool),
    "breaker_fail_max": ("ETHHOOK_BREAKER_FAIL_MAX", parse_count),
    "breaker_reset_timeout_s": ("ETHHOOK_BREAKER_RESET_TIMEOUT_S", parse_positive_seconds),
    "auto_disable_after_s": ("ETHHOOK_AUTO_DISABLE_AFTER_S", parse_positive_seconds),
    "ops_failing_after_s": ("ETHHOOK_OPS_FAILING_AFTER_S", parse_positive_seconds),
    "ops_lag_blocks": ("ETHHOOK_OPS_LAG_BLOCKS", parse_count),
    "ops_lag_after_s": ("ETHHOOK_OPS_LAG_AFTER_S", parse_positive_seconds),
    "metrics_port": ("ETHHOOK_METRICS_PORT", parse_port),
    "worker_metrics_port": ("ETHHOOK_WORKER_METRICS_PORT", parse_port),
    "metrics_host": ("ETHHOOK_METRICS_HOST", str),
    "api_host": ("ETHHOOK_API_HOST", parse_host),
    "api_port": ("ETHHOOK_API_PORT", int_parser(1, MAX_PORT)),
    "api_max_body_bytes": ("ETHHOOK_API_MAX_BODY_BYTES", int_parser(1024, MAX_BODY_BYTES)),
    "api_rate_limit_per_s": ("ETHHOOK_API_RATE_LIMIT", parse_rate),
    "api_rate_burst": ("ETHHOOK_API_RATE_BURST", parse_count),
    "api_auth_failure_rate_per_s": ("ETHHOOK_API_AUTH_FAILURE_RATE", parse_rate),
    "api_auth_failure_burst": ("ETHHOOK_API_AUTH_FAILURE_BURST", parse_count),
    "api_header_timeout_s": ("ETHHOOK_API_HEADER_TIMEOUT_S", parse_api_timeout_s),
    "api_body_timeout_s": ("ETHHOOK_API_BODY_TIMEOUT_S", parse_api_timeout_s),
    "api_max_connections": ("ETHHOOK_API_MAX_CONNECTIONS", parse_count),
    "api_shutdown_grace_s": ("ETHHOOK_API_SHUTDOWN_GRACE_S", parse_api_timeout_s),
    "api_test_sends_per_key": ("ETHHOOK_API_TEST_SENDS_PER_KEY", int_parser(1, MAX_TEST_SENDS)),
    "api_test_sends_total": ("ETHHOOK_API_TEST_SENDS_TOTAL", int_parser(1, MAX_TEST_SENDS)),
    "api_cors_origins": ("ETHHOOK_API_CORS_ORIGINS", parse_origins),
    "trusted_proxies": ("ETHHOOK_TRUSTED_PROXIES", parse_networks),
    "console_session_lifetime_s": ("ETHHOOK_CONSOLE_SESSION_LIFETIME_S", parse_positive_seconds),
    "console_idle_timeout_s": ("ETHHOOK_CONSOLE_IDLE_TIMEOUT_S", parse_positive_seconds),
    "console_sign_in_failures_per_min": (
        "ETHHOOK_CONSOLE_SIGN_IN_FAILURES_PER_MIN",
        parse_count_or_off,
    ),
    "console_sign_in_failures_global_per_min": (
        "ETHHOOK_CONSOLE_SIGN_IN_FAILURES_GLOBAL_PER_MIN",
        parse_count_or_off,
    ),
    "console_secure_cookie": (
        "ETHHOOK_CONSOLE_SECURE_COOKIE",
        choice_parser("auto", "true", "false"),
    ),
    "log_format": ("ETHHOOK_LOG_FORMAT", parse_log_format),
    "log_level": ("ETHHOOK_LOG_LEVEL", parse_log_level),
    "log_levels": ("ETHHOOK_LOG_LEVELS", parse_log_levels),
    "chains_file": ("ETHHOOK_CHAINS_FILE", str),
    "anvil_cache_dir": ("ETHHOOK_ANVIL_CACHE", str),
}


def variable(name: str) -> str:
    """The environment variable a setting is read from (`app_max_endpoints` → ETHHOOK_…)."""
    return _PARSERS[name][0]


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
            raise ConfigError(f"{var}={shown(raw)} is invalid: {exc}") from None
    values["chains"] = load_chains(env, values.get("chains_file"))
    known = {f.name for f in fields(Settings)}
    assert set(values) <= known
    settings = Settings(**values)
    _check_retention(settings)
    return settings


def _check_retention(settings: Settings) -> None:
    """Retention drops history by whole partitions: it must outlast the retries the default
    schedule promises (a partition holding an unsent delivery is kept anyway, at a cost)."""
    longest_s = longest_retry_s(settings.retry_schedule_s)
    if settings.retention_days * 86400 < longest_s:
        raise ConfigError(
            f"ETHHOOK_RETENTION_DAYS={settings.retention_days:g} is shorter than the retries of "
            f"ETHHOOK_RETRY_SCHEDULE_S ({longest_s / 86400:.2f} days): raise the retention or "
            "shorten the schedule"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()

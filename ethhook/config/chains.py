"""The chains the listener follows: the built-in ones from *_WS / *_HTTP, more from a TOML file."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ethhook.config.values import (
    BIGINT_MAX,
    check_seconds,
    check_url_form,
    shown,
)
from ethhook.exceptions import ConfigError


@dataclass(frozen=True)
class ChainConfig:
    """One EVM chain the listener follows."""

    name: str
    chain_id: int
    ws_url: str | None = None
    http_url: str | None = None
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


# ETHEREUM_WS, ETHEREUM_HTTP, … : the built-in chains' node URLs.
CHAIN_URL_VARIABLES: tuple[str, ...] = tuple(
    f"{name.upper()}_{kind}" for name in BUILTIN_CHAINS for kind in ("WS", "HTTP")
)


def load_chains(env: Mapping[str, str], chains_file: str | None) -> tuple[ChainConfig, ...]:
    """The built-in chains with their URLs from `env`, then those of `chains_file` over them."""
    chains: dict[int, ChainConfig] = {}
    for name, chain_id in BUILTIN_CHAINS.items():
        ws = env.get(f"{name.upper()}_WS") or None
        http = env.get(f"{name.upper()}_HTTP") or None
        for var, url in ((f"{name.upper()}_WS", ws), (f"{name.upper()}_HTTP", http)):
            if url is not None:
                try:
                    check_url_form(url, "ws://127.0.0.1:8545")
                except ValueError as exc:
                    raise ConfigError(f"{var}={shown(url)} is invalid: {exc}") from None
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

    def whole(key: str, low: int, high: int) -> int:
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{key} must be an integer from {low} to {high}")
        return value

    def url(key: str) -> str | None:
        value = entry.get(key) or None
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} must be a string")
        return None if value is None else check_url_form(value, "ws://127.0.0.1:8545")

    if "default_confirmations" in entry:
        # Confirmations are an endpoint's (one number for all its chains), never a chain's.
        raise ValueError(
            "default_confirmations is not supported: give each endpoint its own "
            "(ethhook endpoint add --confirmations N, or `confirmations` in the API)"
        )
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
        poll_interval_s=float(poll),
    )

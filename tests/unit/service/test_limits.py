"""How much one endpoint may list: each list and the product of chains × contracts × events are
refused past their settings, before anything is parsed or built."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from ethhook.config import Settings, load_settings
from ethhook.exceptions import ConfigError, InputError
from ethhook.service.changes import build_changes
from ethhook.service.validation import build_spec

SETTINGS = Settings(allow_private_targets=True)
URL = "https://hooks.example.com/eth"
TRANSFER = "Transfer(address indexed from, address indexed to, uint256 value)"


def contract(i: int) -> str:
    return "0x" + f"{i:040x}"


def topic(i: int) -> str:
    return "0x" + f"{i:064x}"


def spec(settings: Settings = SETTINGS, **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "url": URL,
        "chains": [],
        "contracts": [],
        "events": [],
        "confirmations": 0,
        "rate_limit_per_s": None,
        "retry_schedule": None,
        "name": None,
        **overrides,
    }
    return build_spec(**fields, settings=settings)


def test_the_defaults():
    assert (
        SETTINGS.endpoint_max_chains,
        SETTINGS.endpoint_max_contracts,
        SETTINGS.endpoint_max_events,
        SETTINGS.endpoint_max_conditions,
        SETTINGS.endpoint_max_retry_attempts,
        SETTINGS.endpoint_max_filter_rows,
        SETTINGS.app_max_endpoints,
        SETTINGS.replay_max_blocks,
        SETTINGS.replay_max_active,
    ) == (16, 100, 50, 16, 20, 1000, 1000, 100_000, 3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"chains": [str(i) for i in range(1, 18)]},
            "too many chains: 17, at most 16 (ETHHOOK_ENDPOINT_MAX_CHAINS)",
        ),
        (
            {"contracts": [contract(i) for i in range(101)]},
            "too many contracts: 101, at most 100 (ETHHOOK_ENDPOINT_MAX_CONTRACTS)",
        ),
        (
            {"events": [topic(i) for i in range(51)]},
            "too many events: 51, at most 50 (ETHHOOK_ENDPOINT_MAX_EVENTS)",
        ),
        (
            {"events": [TRANSFER], "where": ["value > 1"] * 17},
            "too many --where conditions: 17, at most 16 (ETHHOOK_ENDPOINT_MAX_CONDITIONS)",
        ),
        (
            {"retry_schedule": ",".join(["5"] * 21)},
            "too many retry attempts: 21, at most 20 (ETHHOOK_ENDPOINT_MAX_RETRY_ATTEMPTS)",
        ),
        (
            {
                "contracts": [contract(i) for i in range(100)],
                "events": [topic(i) for i in range(11)],
            },
            "too many filter rows: every chain × 100 contracts × 11 events make 1100, at most "
            "1000 (ETHHOOK_ENDPOINT_MAX_FILTER_ROWS)",
        ),
        # Items that are not even valid are not parsed past the limit: the count comes first.
        ({"contracts": ["nope"] * 101}, "too many contracts: 101"),
    ],
)
def test_a_list_or_product_past_its_limit_is_refused(overrides, message):
    with pytest.raises(InputError, match=re.escape(message)):
        spec(**overrides)
    if "filter rows" not in message:  # an update's product counts the lists it keeps: service
        with pytest.raises(InputError, match=re.escape(message)):
            build_changes(SETTINGS, **overrides)


def test_lists_at_their_limits_are_accepted_and_repeats_do_not_count_in_the_product():
    accepted = spec(
        chains=[str(i) for i in range(1, 11)],
        contracts=[contract(i) for i in range(100)],
        retry_schedule=",".join(["5"] * 20),
    )
    assert len(accepted.chain_ids) * len(accepted.contracts) == 1000
    repeated = spec(contracts=[contract(1)] * 100, events=[topic(i) for i in range(50)])
    assert repeated.contracts == (contract(1),)


def test_the_limits_are_settings():
    settings = replace(SETTINGS, endpoint_max_chains=2, endpoint_max_filter_rows=4)
    with pytest.raises(InputError, match="too many chains: 3, at most 2"):
        spec(settings, chains=["1", "2", "3"])
    with pytest.raises(InputError, match="2 chains × 3 contracts × every event make 6, at most 4"):
        spec(settings, chains=["1", "2"], contracts=[contract(i) for i in range(3)])
    env = {"ETHHOOK_ENDPOINT_MAX_FILTER_ROWS": "50", "ETHHOOK_REPLAY_MAX_BLOCKS": str(2**63 - 1)}
    loaded = load_settings(env)
    assert (loaded.endpoint_max_filter_rows, loaded.replay_max_blocks) == (50, 2**63 - 1)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ETHHOOK_ENDPOINT_MAX_CHAINS", "0"),
        ("ETHHOOK_ENDPOINT_MAX_FILTER_ROWS", "many"),
        ("ETHHOOK_ENDPOINT_MAX_RETRY_ATTEMPTS", "51"),
        ("ETHHOOK_APP_MAX_ENDPOINTS", "-1"),
        ("ETHHOOK_REPLAY_MAX_BLOCKS", str(2**63)),
        ("ETHHOOK_REPLAY_MAX_ACTIVE", "0"),
    ],
)
def test_a_bad_limit_stops_the_start_naming_its_variable(variable, value):
    with pytest.raises(ConfigError, match=f"^{variable}="):
        load_settings({variable: value})

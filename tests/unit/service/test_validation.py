"""The endpoint service refuses what its columns cannot hold, before any database work.

These are the checks every caller gets (the CLI today, an HTTP API tomorrow); the session passed to
set_active and rotate_secret is None, so a check that came after a query would fail differently.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from ethhook.config import Settings
from ethhook.exceptions import InputError
from ethhook.service.changes import build_changes
from ethhook.service.endpoints import rotate_secret, set_active
from ethhook.service.validation import (
    MAX_EVENT_LENGTH,
    MAX_NAME_LENGTH,
    MAX_REASON_LENGTH,
    MAX_URL_LENGTH,
    build_spec,
    parse_chain,
    parse_url,
)

SETTINGS = Settings(allow_private_targets=True)
URL = "https://hooks.example.com/eth"
TRANSFER = "Transfer(address indexed from, address indexed to, uint256 value)"
NOT_FINITE = [math.nan, math.inf, -math.inf]


def spec(**overrides: Any) -> Any:
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
    return build_spec(**fields, settings=SETTINGS)


def test_the_text_limits_are_the_columns():
    assert (MAX_NAME_LENGTH, MAX_URL_LENGTH, MAX_REASON_LENGTH) == (200, 2048, 500)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        *[({"rate_limit_per_s": v}, "invalid --rate-limit") for v in NOT_FINITE],
        ({"rate_limit_per_s": 0.0}, "invalid --rate-limit"),
        ({"rate_limit_per_s": 1e-9}, "invalid --rate-limit"),
        ({"rate_limit_per_s": 1e300}, "invalid --rate-limit"),
        *[({"confirmations": v}, "invalid --confirmations") for v in (-1, 10_001, 2**70)],
        ({"confirmations": math.nan}, "invalid --confirmations"),
        *[
            ({"retry_schedule": f"0,{v}"}, "invalid --retry-schedule")
            for v in ("nan", "inf", "1e999", "1e300", "-1")
        ],
        ({"chains": ["0"]}, "invalid chain id '0'"),
        ({"chains": [str(2**63)]}, "invalid chain id"),
        ({"chains": ["9" * 5000]}, "invalid chain id"),
        ({"chains": ["²"]}, "unknown chain"),
        ({"chains": ["-5"]}, "unknown chain"),
        ({"name": "n" * (MAX_NAME_LENGTH + 1)}, "invalid --name: 201 characters, at most 200"),
        ({"name": "nul\x00"}, "invalid --name: it contains control characters"),
        ({"name": "bell\x07"}, "invalid --name: it contains control characters"),
        ({"name": "c1\x9b"}, "invalid --name: it contains control characters"),
        ({"name": "\udcff"}, "bytes that are not UTF-8"),
        ({"url": URL + "?" + "q" * (MAX_URL_LENGTH - len(URL))}, "invalid URL: 2049 characters"),
        ({"url": URL + "\x00"}, "invalid URL: it contains control characters"),
        ({"url": URL + "/\udcff"}, "bytes that are not UTF-8"),
        (
            {"events": ["T(" + "uint256 a," * 200 + ")"]},
            "invalid --event: 2003 characters, at most 1000 fit",
        ),
    ],
)
def test_build_spec_refuses_what_does_not_fit(overrides, message):
    with pytest.raises(InputError, match=re.escape(message)):
        spec(**overrides)


def test_build_spec_accepts_values_at_their_limits():
    accepted = spec(
        url=URL + "?" + "q" * (MAX_URL_LENGTH - len(URL) - 1),
        chains=[str(2**63 - 1), "0001"],
        events=[TRANSFER],
        confirmations=10_000,
        rate_limit_per_s=0.001,
        retry_schedule="0,2592000",  # as long as the history is kept (30 days)
        name="é" * MAX_NAME_LENGTH,  # characters, not bytes, as the VARCHAR counts them
    )
    assert accepted.chain_ids == (2**63 - 1, 1)
    assert len(accepted.url) == MAX_URL_LENGTH and len(accepted.name or "") == MAX_NAME_LENGTH
    assert MAX_EVENT_LENGTH >= len(TRANSFER)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://hooks.example.com:0/eth", "port 0, which no server listens on"),
        ("http://127.0.0.1:0/", "port 0"),
        ("http://hooks.example.com:65536/", "Port out of range"),
        ("http://[::1/eth", "Invalid IPv6 URL"),
        ("ftp://hooks.example.com/", "only http:// and https://"),
    ],
)
def test_parse_url_refuses_ports_and_urls_no_server_answers_on(url, message):
    with pytest.raises(InputError, match=re.escape(message)):
        parse_url(url)


def test_parse_chain_reads_ids_up_to_bigint():
    assert parse_chain(str(2**63 - 1), SETTINGS) == 2**63 - 1
    assert parse_chain(" Base ", SETTINGS) == 8453


@pytest.mark.parametrize(
    "reason", ["r" * (MAX_REASON_LENGTH + 1), "two\nlines", "\udcff", "\x1b[2J"]
)
def test_a_disable_reason_that_does_not_fit_is_refused_before_the_database(reason):
    with pytest.raises(InputError, match="invalid --reason"):
        set_active(None, 1, False, reason, scope=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("grace_s", [*NOT_FINITE, -1.0, 1e300, 315360001.0])
def test_a_grace_period_that_does_not_fit_a_datetime_is_refused_before_the_database(grace_s):
    with pytest.raises(InputError, match="invalid --grace-s"):
        rotate_secret(None, 1, grace_s, scope=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"where": ["value > 1"]}, "--where needs exactly one --event"),
        ({"events": ["0x" + "dd" * 32], "where": ["value > 1"]}, "given as a Solidity signature"),
        ({"events": [TRANSFER], "where": ["value >"]}, "invalid --where 'value >' at column 8"),
        ({"events": [TRANSFER], "where": ["value > 1\x00"]}, "control characters"),
        ({"events": [TRANSFER], "where": ["value > 1"] * 51}, "too many --where conditions: 51"),
        (
            {"events": [TRANSFER], "where": ["value in (" + "1, " * 7000 + "2)"]},
            "invalid --where: 21012 characters, at most 20000 fit",
        ),
    ],
)
def test_where_conditions_that_do_not_fit_are_refused(overrides, message):
    with pytest.raises(InputError, match=re.escape(message)):
        spec(**overrides)


def test_where_conditions_are_kept_as_given_without_repeats():
    accepted = spec(events=[TRANSFER], where=["  value > 1 ", "value > 1", "to != 0x" + "ab" * 20])

    assert accepted.where == ("value > 1", "to != 0x" + "ab" * 20)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"from_block": 5}, "--from-block needs exactly one --chain"),
        ({"from_block": 5, "chains": ["1", "10"]}, "--from-block needs exactly one --chain"),
        ({"from_block": -1, "chains": ["1"]}, "--from-block -1 is not a block number"),
        ({"from_block": 2**63, "chains": ["1"]}, "is not a block number"),
        ({"from_block": 5, "chains": ["1"], "live_only": True}, "give one or the other"),
    ],
)
def test_a_bad_from_block_is_refused_in_one_line(overrides, message):
    with pytest.raises(InputError, match=re.escape(message)):
        spec(**overrides)


def test_from_block_on_one_chain_and_live_only_are_kept():
    assert spec(from_block=0, chains=["ethereum"]).from_block == 0
    assert spec(live_only=True).live_only is True


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"url": "ftp://x"}, "url"),
        ({"chains": ["nowhere"]}, "chains"),
        ({"contracts": ["0x12"]}, "contracts"),
        ({"events": ["Transfer("]}, "events"),
        ({"events": [TRANSFER], "where": ["amount > 1"]}, "where"),
        ({"confirmations": -1}, "confirmations"),
        ({"rate_limit_per_s": 0.0}, "rate_limit"),
        ({"retry_schedule": "5,x"}, "retry_schedule"),
        ({"signing": "rsa"}, "signing"),
        ({"ordered": "sometimes"}, "ordered"),
        ({"from_block": 5}, "from_block"),
    ],
)
def test_an_error_names_the_api_field_it_is_about(overrides, field):
    with pytest.raises(InputError) as refused:
        spec(**overrides)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://x"}, "url"),
        ({"rate_limit": -1.0}, "rate_limit"),
        ({"where": ["x\x00"]}, "where"),
    ],
)
def test_a_change_error_names_the_api_field_too(fields, field):
    with pytest.raises(InputError) as refused:
        build_changes(SETTINGS, **fields)
    assert refused.value.field == field

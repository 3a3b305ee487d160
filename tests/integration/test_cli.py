"""The `ethhook` command: bad input is one line and exit 2, and writes nothing."""

from __future__ import annotations

import json

import pytest

from tests.factories import TRANSFER, address
from tests.integration.helpers import add_endpoint, ethhook, row_counts

pytestmark = pytest.mark.usefixtures("db")

GOOD_URL = "https://hooks.example.com/eth"

BAD_INPUT = [
    ("endpoint", "add", "--url", "ftp://hooks.example.com"),
    ("endpoint", "add", "--url", "not a url"),
    ("endpoint", "add", "--url", "http://"),
    ("endpoint", "add", "--url", "http://host:99999/x"),
    ("endpoint", "add", "--url", GOOD_URL, "--contract", "0x1234"),
    (
        "endpoint",
        "add",
        "--url",
        GOOD_URL,
        "--contract",
        "0x5FbDB2315678afecb367f032d93F642f64180aA3",
    ),
    ("endpoint", "add", "--url", GOOD_URL, "--contract", "0x" + "g" * 40),
    ("endpoint", "add", "--url", GOOD_URL, "--event", "Transfer(address from"),
    ("endpoint", "add", "--url", GOOD_URL, "--event", "Transfer(uint7 x)"),
    ("endpoint", "add", "--url", GOOD_URL, "--chain", "dogecoin"),
    ("endpoint", "add", "--url", GOOD_URL, "--chain", "-5"),
    ("endpoint", "add", "--url", GOOD_URL, "--confirmations", "-1"),
    ("endpoint", "add", "--url", GOOD_URL, "--confirmations", "many"),
    ("endpoint", "add", "--url", GOOD_URL, "--rate-limit", "0"),
    ("endpoint", "add", "--url", GOOD_URL, "--retry-schedule", "0,-5"),
    ("endpoint", "add", "--url", GOOD_URL, "--retry-schedule", "soon"),
    ("endpoint", "add"),
    ("endpoint", "show", "999"),
    ("endpoint", "show", "abc"),
    ("endpoint", "disable", "999"),
    ("endpoint", "enable", "999"),
    ("endpoint", "rotate-secret", "999"),
    ("endpoint", "delete", "999"),
    ("delivery", "show", "999"),
    ("delivery", "retry", "999"),
    ("delivery", "retry"),
    ("delivery", "retry", "--status", "bogus"),
    ("delivery", "list", "--since", "yesterday"),
    ("delivery", "list", "--endpoint", "0"),
    ("frobnicate",),
]


@pytest.mark.parametrize("args", BAD_INPUT, ids=lambda a: " ".join(a)[:60])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args):
    keep_id, _ = add_endpoint("https://kept.example.com/", contracts=[address(1)])
    before = row_counts()
    result = ethhook(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert row_counts() == before
    assert keep_id == 1


def test_endpoint_lifecycle_through_the_cli():
    add = ethhook(
        "endpoint",
        "add",
        "--url",
        GOOD_URL,
        "--chain",
        "base",
        "--chain",
        "1",
        "--contract",
        address(3),
        "--event",
        TRANSFER,
        "--confirmations",
        "3",
        "--rate-limit",
        "5",
        "--name",
        "payments",
        "--json",
    )
    assert add.returncode == 0, add.stderr
    created = json.loads(add.stdout)
    assert created["secret"].startswith("whsec_")
    assert created["chains"] == [1, 8453] and created["contracts"] == [address(3)]
    assert created["events"] == [TRANSFER] and created["confirmations"] == 3
    eid = str(created["id"])

    listed = json.loads(ethhook("endpoint", "list", "--json").stdout)
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]

    assert ethhook("endpoint", "disable", eid, "--reason", "maintenance").returncode == 0
    shown = json.loads(ethhook("endpoint", "show", eid, "--json").stdout)
    assert shown["active"] is False and shown["disabled_reason"] == "maintenance"
    assert ethhook("endpoint", "enable", eid).returncode == 0
    assert json.loads(ethhook("endpoint", "show", eid, "--json").stdout)["active"] is True

    rotated = json.loads(ethhook("endpoint", "rotate-secret", eid, "--json").stdout)
    assert rotated["secret"] != created["secret"] and rotated["previous_secret_expires_at"]

    human = ethhook("endpoint", "show", eid)
    assert human.returncode == 0 and "payments" in human.stdout

    assert ethhook("endpoint", "delete", eid).returncode == 0
    assert json.loads(ethhook("endpoint", "list", "--json").stdout) == []


def test_every_command_has_help():
    for args in (
        ["--help"],
        ["endpoint", "--help"],
        ["endpoint", "add", "--help"],
        ["delivery", "retry", "--help"],
        ["delivery", "list", "--help"],
        ["db", "upgrade", "--help"],
        ["listen", "--help"],
    ):
        result = ethhook(*args)
        assert result.returncode == 0 and "usage:" in result.stdout, args


def test_a_bad_setting_names_the_variable():
    result = ethhook("endpoint", "list", env={"ETHHOOK_RETRY_SCHEDULE_S": "fast"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("ethhook: error: ETHHOOK_RETRY_SCHEDULE_S=")

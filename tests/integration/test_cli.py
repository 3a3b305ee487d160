"""The `ethhook` command: bad input is one line and exit 2, and writes nothing."""

from __future__ import annotations

import json

import pytest

from ethhook.db import session_scope
from ethhook.db.models import utcnow
from tests.support.cli import assert_refused, ethhook
from tests.support.db import database_state, row_counts, store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER, address, transfer

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
    ("endpoint", "update", "999", "--name", "x"),
    ("endpoint", "update", "1"),
    ("endpoint", "update", "1", "--contract", "0x1234"),
    ("delivery", "show", "999"),
    ("delivery", "retry", "999"),
    ("delivery", "retry"),
    ("delivery", "retry", "--status", "bogus"),
    ("delivery", "list", "--since", "yesterday"),
    ("delivery", "list", "--endpoint", "0"),
    ("delivery", "list", "--until", "tomorrow"),
    ("delivery", "list", "--kind", "event"),
    ("delivery", "list", "--tx", "0x1234"),
    ("delivery", "retry", "1", "--tx", "0x" + "ab" * 32),
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


# --- hardened input: every number, id and text fits where it goes, or is refused before the
# database with one line and exit 2 --------------------------------------------------------------

BEYOND_64_BITS = "99999999999999999999999"
BIGINT_MAX = str(2**63 - 1)
BEYOND_BIGINT = str(2**63)
NOT_FINITE = ("nan", "inf", "-inf", "1e999")
ADD = ("endpoint", "add", "--url", GOOD_URL)
DEAD_DATABASE = {"ETHHOOK_DATABASE_URL": "postgresql+psycopg2://postgres@127.0.0.1:1/nothing"}


def _event_of(length: int) -> str:
    params = ", ".join(f"uint256 value{i}" for i in range(length // 15))
    return f"Transfer({params})"[:length]


BAD_NUMBERS = [
    *[(*ADD, "--rate-limit", v) for v in (*NOT_FINITE, "1e-9", "1e300")],
    *[(*ADD, "--retry-schedule", f"0,5,{v}") for v in (*NOT_FINITE, "1e300")],
    (*ADD, "--retry-schedule", ",".join(["5"] * 51)),
    *[(*ADD, "--confirmations", v) for v in ("10001", BEYOND_64_BITS, "nan")],
    *[(*ADD, "--chain", v) for v in ("0", BEYOND_BIGINT, BEYOND_64_BITS, "9" * 5000)],
    *[("endpoint", "rotate-secret", "1", "--grace-s", v) for v in (*NOT_FINITE, "1e300", "-1")],
    *[
        ("endpoint", command, BEYOND_64_BITS)
        for command in ("show", "disable", "enable", "rotate-secret", "delete")
    ],
    ("endpoint", "show", BEYOND_BIGINT),
    ("delivery", "show", BEYOND_64_BITS),
    ("delivery", "retry", "1", BEYOND_BIGINT),
    ("delivery", "retry", "--status", "failed", "--endpoint", BEYOND_64_BITS),
    ("delivery", "list", "--endpoint", BEYOND_BIGINT),
    ("delivery", "list", "--limit", BEYOND_64_BITS),
    ("delivery", "list", "--since", "9999-12-31T23:00:00-05:00"),
    ("replay", "--chain", "1", "--from-block", "0", "--to-block", BEYOND_BIGINT),
    ("replay", "--chain", "1", "--from-block", BEYOND_64_BITS, "--to-block", BEYOND_64_BITS),
    ("replay", "--chain", "1", "--from-block", "nan", "--to-block", "5"),
    ("replay", "--chain", BEYOND_BIGINT, "--from-block", "0", "--to-block", "1"),
]

BAD_TEXT = [
    (*ADD, "--name", "n" * 201),
    ("endpoint", "add", "--url", GOOD_URL + "?q=" + "x" * (2049 - len(GOOD_URL) - 3)),
    (*ADD, "--event", _event_of(1001)),
    ("endpoint", "disable", "1", "--reason", "r" * 501),
    (*ADD, "--name", "two\nlines"),
    (*ADD, "--name", "\x1b[2Jcleared"),
    (*ADD, "--name", "not utf-8: \udcff"),  # the byte 0xff, as Python hands it over
    ("endpoint", "add", "--url", GOOD_URL + "/\udcff"),
    ("endpoint", "disable", "1", "--reason", "\udcfe\udcff"),
    ("endpoint", "add", "--url", "https://hooks.example.com:0/eth"),
    ("endpoint", "add", "--url", "http://[::1/eth"),
]


def _ids(args: tuple[str, ...]) -> str:
    text = " ".join(a if len(a) < 30 else f"{a[:12]}…({len(a)})" for a in args)
    return text.encode("ascii", "backslashreplace").decode()


@pytest.mark.parametrize("args", BAD_NUMBERS + BAD_TEXT, ids=_ids)
def test_input_that_does_not_fit_is_refused_and_changes_nothing(args):
    add_endpoint("https://kept.example.com/", contracts=[address(1)], name="kept")
    before = database_state()
    assert_refused(ethhook(*args))
    assert database_state() == before


@pytest.mark.parametrize("args", BAD_NUMBERS + BAD_TEXT, ids=_ids)
def test_input_that_does_not_fit_never_reaches_the_database(args):
    line = assert_refused(ethhook(*args, env=DEAD_DATABASE))
    assert "database" not in line


def test_text_that_just_fits_is_stored_whole():
    name, reason = "n" * 200, "r" * 500
    url = GOOD_URL + "?q=" + "x" * (2048 - len(GOOD_URL) - 3)
    event = "Transfer(address indexed from, address indexed to, uint256 value)"
    add = ethhook("endpoint", "add", "--url", url, "--name", name, "--event", event, "--json")
    assert add.returncode == 0, add.stderr
    eid = str(json.loads(add.stdout)["id"])
    assert ethhook("endpoint", "disable", eid, "--reason", reason).returncode == 0
    shown = json.loads(ethhook("endpoint", "show", eid, "--json").stdout)
    assert (shown["url"], shown["name"], shown["disabled_reason"]) == (url, name, reason)


def test_numbers_at_their_limits_are_accepted():
    add = ethhook(
        *ADD,
        "--chain",
        BIGINT_MAX,
        "--confirmations",
        "10000",
        "--rate-limit",
        "0.001",
        "--retry-schedule",
        "0,315360000",
        "--json",
    )
    assert add.returncode == 0, add.stderr
    created = json.loads(add.stdout)
    assert created["chains"] == [2**63 - 1] and created["confirmations"] == 10000
    rotated = ethhook("endpoint", "rotate-secret", str(created["id"]), "--grace-s", "315360000")
    assert rotated.returncode == 0, rotated.stderr
    missing = ethhook("endpoint", "show", BIGINT_MAX)
    assert (
        assert_refused(missing)
        == f"ethhook: error: no endpoint with id {BIGINT_MAX} (see `ethhook endpoint list`)"
    )
    assert ethhook("delivery", "list", "--endpoint", BIGINT_MAX, "--limit", BIGINT_MAX).stdout == (
        "no deliveries\n"
    )


BAD_SETTINGS = [
    ("ETHHOOK_DATABASE_URL", "mysql://root:hunter2@127.0.0.1:3306/ethhook"),
    ("ETHHOOK_DATABASE_URL", "postgres://postgres@127.0.0.1/ethhook"),
    ("ETHHOOK_METRICS_PORT", "65536"),
    ("ETHHOOK_METRICS_PORT", "-1"),
    ("ETHHOOK_WORKER_METRICS_PORT", "70000"),
    ("ETHHOOK_WORKER_METRICS_PORT", BEYOND_64_BITS),
    ("ETHHOOK_RETRY_SCHEDULE_S", "nan"),
    ("ETHHOOK_RETRY_SCHEDULE_S", "0,5,1e999"),
    ("ETHHOOK_BREAKER_RESET_TIMEOUT_S", "inf"),
    ("ETHHOOK_DELIVERY_READ_TIMEOUT_S", "1e999"),
    ("ETHHOOK_DELIVERY_CONNECT_TIMEOUT_S", "nan"),
    ("ETHHOOK_SECRET_ROTATION_GRACE_S", "1e300"),
    ("ETHHOOK_AUTO_DISABLE_AFTER_S", "-inf"),
    ("ETHHOOK_RETENTION_DAYS", "nan"),
    ("ETHHOOK_DUE_SCAN_LIMIT", BEYOND_64_BITS),
    ("ETHHOOK_CLEANUP_BATCH_SIZE", "9" * 5000),
    ("ETHHOOK_BROKER_URL", "redis://127.0.0.1:99999/0"),
    ("ETHEREUM_WS", "ws://127.0.0.1:70000"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_SETTINGS, ids=lambda v: v[:30])
def test_a_setting_that_does_not_fit_is_one_line_naming_it_and_changes_nothing(variable, value):
    before = database_state()
    line = assert_refused(ethhook(*ADD, env={variable: value}))
    assert line.startswith(f"ethhook: error: {variable}=")
    assert "hunter2" not in line and len(line) < 400
    assert database_state() == before


def test_an_unsupported_database_says_which_ones_are():
    line = assert_refused(
        ethhook("endpoint", "list", env={"ETHHOOK_DATABASE_URL": "mysql://root@db/ethhook"})
    )
    assert line == (
        "ethhook: error: ETHHOOK_DATABASE_URL='mysql://db…' is invalid: EthHook "
        "supports PostgreSQL (postgresql+psycopg2://USER@HOST:5432/DB) or SQLite (sqlite:///PATH)"
    )


PRIVATE_TARGETS = [
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::]/latest/meta-data",  # 6to4 of the metadata address
    "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "http://[64:ff9b:1::808:808]/hook",  # local-use NAT64
    "http://[2001:0:7f00:1::]/hook",  # Teredo, server 127.0.0.1
    "http://[2001:0:808:808::f5ff:fffe]/hook",  # Teredo, client 10.0.0.1
    "http://[::ffff:192.168.1.1]/hook",  # IPv4-mapped
    "http://[::127.0.0.1]/hook",  # IPv4-compatible
    "https://hooks.example.com:0/eth",  # port 0
]


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
def test_a_url_leading_to_a_private_address_is_refused_at_registration(url):
    before = database_state()
    line = assert_refused(
        ethhook("endpoint", "add", "--url", url, env={"ETHHOOK_ALLOW_PRIVATE_TARGETS": "false"})
    )
    assert "refused URL" in line or "port 0" in line
    assert database_state() == before


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


def test_deliveries_are_listed_by_transaction_kind_and_time():
    # Given two events of two transactions, each matched by an endpoint
    endpoint_id, _ = add_endpoint("https://kept.example.com/", contracts=[address(3)])
    first, second = (
        transfer(contract=address(3), block=30 + i, log_index=0, value=i) for i in (0, 1)
    )
    with session_scope() as session:
        store_and_match(session, [first, second], utcnow())

    def listed(*args: str) -> list[str]:
        result = ethhook("delivery", "list", *args, "--json")
        assert result.returncode == 0, result.stderr
        return [d["event_id"] for d in json.loads(result.stdout)]

    # When they are listed by transaction (any case), kind, and time
    assert listed("--tx", second.transaction_hash.upper().replace("0X", "0x")) == [second.event_id]
    assert listed("--tx", "0x" + "00" * 32) == []
    assert listed("--kind", "event.instant", "--endpoint", str(endpoint_id)) == [
        first.event_id,
        second.event_id,
    ]
    assert listed("--kind", "event.confirmed") == []
    assert listed("--until", "2000-01-01T00:00Z") == []
    assert len(listed("--since", "2000-01-01T00:00Z", "--until", "9999-01-01T00:00Z")) == 2
    # Then a bulk retry takes the same filters: one transaction's delivery alone
    retried = ethhook(
        "delivery", "retry", "--status", "pending", "--tx", first.transaction_hash, "--json"
    )
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["count"] == 1


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


# --- secrets: shown when created or rotated and by `endpoint secret`, never by show/list ----------


def _signing_secrets(endpoint_id: int) -> tuple[str, ...]:
    """The secrets the deliver worker signs this endpoint's webhooks with, right now."""
    from ethhook.config import get_settings
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.deliver.store import load_endpoint

    with session_scope() as session:
        view = load_endpoint(session, endpoint_id, get_settings(), utcnow())
    assert view is not None
    return view.secrets


def test_show_and_list_never_print_a_secret():
    eid, _ = add_endpoint(GOOD_URL, name="quiet")
    assert ethhook("endpoint", "rotate-secret", str(eid)).returncode == 0  # a previous one too
    for args in (
        ("endpoint", "show", str(eid)),
        ("endpoint", "show", str(eid), "--json"),
        ("endpoint", "list"),
        ("endpoint", "list", "--json"),
    ):
        result = ethhook(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "quiet" in result.stdout or "hooks.example.com" in result.stdout, args
        assert "whsec_" not in result.stdout + result.stderr, args
    shown = json.loads(ethhook("endpoint", "show", str(eid), "--json").stdout)
    assert "secret" not in shown and "previous_secret" not in shown
    assert shown["previous_secret_expires_at"]  # when the old secret stops signing is no secret


def test_endpoint_secret_prints_exactly_the_secret_that_signs():
    created = json.loads(ethhook("endpoint", "add", "--url", GOOD_URL, "--json").stdout)
    eid = str(created["id"])

    shown = json.loads(ethhook("endpoint", "secret", eid, "--json").stdout)
    assert shown == {
        "id": created["id"],
        "signing": "hmac",
        "secret": created["secret"],
        "previous_secret": None,
        "public_key": None,
        "previous_public_key": None,
        "previous_secret_expires_at": None,
    }
    assert _signing_secrets(created["id"]) == (created["secret"],)
    human = ethhook("endpoint", "secret", eid)
    assert human.returncode == 0 and human.stdout == f"secret: {created['secret']}\n"

    rotated = json.loads(ethhook("endpoint", "rotate-secret", eid, "--json").stdout)
    shown = json.loads(ethhook("endpoint", "secret", eid, "--json").stdout)
    assert (shown["secret"], shown["previous_secret"]) == (rotated["secret"], created["secret"])
    assert shown["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]
    assert _signing_secrets(created["id"]) == (rotated["secret"], created["secret"])
    assert ethhook("endpoint", "secret", eid).stdout.splitlines() == [
        f"secret: {rotated['secret']}",
        f"previous secret: {created['secret']} (keeps signing until "
        f"{rotated['previous_secret_expires_at']})",
    ]

    # After the grace period the previous secret no longer signs, and is no longer shown.
    assert ethhook("endpoint", "rotate-secret", eid, "--grace-s", "0").returncode == 0
    shown = json.loads(ethhook("endpoint", "secret", eid, "--json").stdout)
    assert shown["previous_secret"] is None and shown["previous_secret_expires_at"] is None
    assert _signing_secrets(created["id"]) == (shown["secret"],)


@pytest.mark.parametrize(
    "args",
    [("endpoint", "secret", "999"), ("endpoint", "secret", "abc"), ("db", "reencrypt")],
    ids=lambda a: " ".join(a),
)
def test_bad_secret_commands_are_one_line_exit_2(args):
    add_endpoint("https://kept.example.com/")
    result = ethhook(*args, env={"ETHHOOK_SECRET_KEYS": ""})
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""

"""What one API key may ask for: filter lists and their product, endpoints per application, replay
ranges and jobs per application; times far from now; and what a tenant learns from a refusal
(never the address an internal host resolves to, never the node's address or its own words)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from sqlalchemy import func, select

from ethhook.config import ChainConfig, get_settings
from ethhook.db import session_scope
from ethhook.db.models import EndpointFilter, utcnow
from ethhook.replay.jobs import create_replay
from ethhook.replay.run import run_chunk
from ethhook.service.scope import OPERATOR
from tests.support.api import ApiServer, assert_problem
from tests.support.chain import Anvil
from tests.support.cli import ethhook
from tests.support.db import endpoint_count
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER, address
from tests.support.receiver import Receiver
from tests.support.waiting import free_port

PUBLIC = "https://93.184.216.34/hook"  # a literal public address: no DNS, never contacted


def topic(i: int) -> str:
    return "0x" + f"{i:064x}"


def filter_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(EndpointFilter)) or 0


# --- filter lists and their product ---------------------------------------------------------------


def test_a_filter_product_past_the_limit_is_refused_and_nothing_is_stored(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    before, rows = endpoint_count(), filter_count()
    body = {
        "url": PUBLIC,
        "chains": [str(i) for i in range(1, 11)],
        "contracts": [address(i) for i in range(40)],
        "events": [topic(i) for i in range(25)],
    }  # 3.7 KB asking for 10 × 40 × 25 = 10,000 filter rows
    assert_problem(
        api.call("POST", "/v1/endpoints", key, json=body),
        422,
        "invalid-input",
        "too many filter rows: 10 chains × 40 contracts × 25 events make 10000, at most 1000",
    )
    assert (endpoint_count(), filter_count()) == (before, rows)


@pytest.mark.parametrize(
    ("field", "values", "detail"),
    [
        ("chains", [str(i) for i in range(1, 18)], "too many chains: 17, at most 16"),
        ("contracts", [address(i) for i in range(101)], "too many contracts: 101, at most 100"),
        ("events", [topic(i) for i in range(51)], "too many events: 51, at most 50"),
        (
            "where",
            [f"value > {i}" for i in range(17)],
            "too many --where conditions: 17, at most 16",
        ),
        ("retry_schedule", [5] * 21, "too many retry attempts: 21, at most 20"),
    ],
)
def test_each_list_past_its_limit_is_refused_by_create_and_update(
    api: ApiServer, tenants: dict[str, Any], field: str, values: list[Any], detail: str
) -> None:
    a = tenants["a"]
    before, rows = endpoint_count(), filter_count()
    body: dict[str, Any] = {"url": PUBLIC, field: values}
    if field == "where":
        body["events"] = [TRANSFER]
    assert_problem(
        api.call("POST", "/v1/endpoints", a["key"], json=body), 422, "invalid-input", detail
    )
    patch = {k: v for k, v in body.items() if k != "url"}
    path = f"/v1/endpoints/{a['endpoint']}"
    shown = api.call("GET", path, a["key"]).json()
    assert_problem(api.call("PATCH", path, a["key"], json=patch), 422, "invalid-input", detail)
    assert api.call("GET", path, a["key"]).json() == shown
    assert (endpoint_count(), filter_count()) == (before, rows)


def test_a_patch_whose_product_with_the_kept_lists_is_too_large_changes_nothing(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    body = {
        "url": PUBLIC,
        "chains": [str(i) for i in range(1, 11)],
        "contracts": [address(i) for i in range(40)],
    }
    created = api.call("POST", "/v1/endpoints", key, json=body)
    assert created.status_code == 201, created.text
    path = f"/v1/endpoints/{created.json()['id']}"
    rows = filter_count()
    more_events = {"events": [topic(i) for i in range(25)]}
    assert_problem(
        api.call("PATCH", path, key, json=more_events),
        422,
        "invalid-input",
        "10 chains × 40 contracts × 25 events make 10000, at most 1000",
    )
    assert api.call("GET", path, key).json()["events"] == []
    assert filter_count() == rows
    # At the limit it fits: 10 × 40 × 2 = 800 rows.
    fits = api.call("PATCH", path, key, json={"events": [topic(1), topic(2)]})
    assert fits.status_code == 200, fits.text
    assert filter_count() == rows - 400 + 800


def test_a_body_asking_for_a_huge_product_is_refused_at_once_in_little_memory(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    rows = filter_count()
    huge = {
        "url": PUBLIC,
        "contracts": [address(i) for i in range(10_000)],
        "events": [topic(i) for i in range(6_000)],
    }  # ~0.9 MB, under the body limit, asking for 60,000,000 rows
    largest = {  # every list at its limit: 16 × 100 × 50 = 80,000 rows
        "url": PUBLIC,
        "chains": [str(i) for i in range(1, 17)],
        "contracts": [address(i) for i in range(100)],
        "events": [topic(i) for i in range(50)],
    }
    process = psutil.Process(api.proc.pid)
    rss = process.memory_info().rss
    started = time.monotonic()
    assert_problem(
        api.call("POST", "/v1/endpoints", key, json=huge),
        422,
        "invalid-input",
        "too many contracts: 10000, at most 100",
    )
    assert_problem(
        api.call("PATCH", f"/v1/endpoints/{tenants['a']['endpoint']}", key, json=huge),
        422,
        "invalid-input",
        "too many contracts: 10000, at most 100",
    )
    assert_problem(
        api.call("POST", "/v1/endpoints", key, json=largest),
        422,
        "invalid-input",
        "16 chains × 100 contracts × 50 events make 80000, at most 1000",
    )
    assert time.monotonic() - started < 20
    assert process.memory_info().rss - rss < 100 * 2**20
    assert filter_count() == rows


@pytest.mark.usefixtures("db")
def test_the_cli_refuses_a_list_or_product_past_its_limit_in_one_line() -> None:
    many = [arg for i in range(1, 18) for arg in ("--chain", str(i))]
    product = [
        *[arg for i in range(1, 11) for arg in ("--chain", str(i))],
        *[arg for i in range(40) for arg in ("--contract", address(i))],
        *[arg for i in range(25) for arg in ("--event", topic(i))],
    ]
    for args, detail in (
        (many, "too many chains: 17, at most 16"),
        (product, "10 chains × 40 contracts × 25 events make 10000, at most 1000"),
    ):
        refused = ethhook("endpoint", "add", "--url", PUBLIC, *args)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip().count("\n") == 0 and detail in refused.stderr
        assert refused.stdout == ""


# --- a server with small per-application limits, a chain node and an unreachable one --------


@dataclasses.dataclass
class Limited:
    api: ApiServer
    node: Anvil
    closed_port: int


@pytest.fixture(scope="module")
def limited(database: str, redis_server: str, anvil_bin: Any) -> Iterator[Limited]:
    node = Anvil(anvil_bin)
    node.mine(300)
    closed_port = free_port()  # nothing listens there
    server = ApiServer(
        {
            "ETHHOOK_API_RATE_LIMIT": "0",
            "ETHHOOK_ALLOW_PRIVATE_TARGETS": "false",
            "ETHHOOK_APP_MAX_ENDPOINTS": "3",
            "ETHHOOK_REPLAY_MAX_BLOCKS": "100",
            "ETHHOOK_REPLAY_MAX_ACTIVE": "2",
            "ETHEREUM_HTTP": node.http_url,
            "OPTIMISM_HTTP": f"http://127.0.0.1:{closed_port}/v2/SECRETKEY",
        }
    )
    yield Limited(server, node, closed_port)
    server.stop()
    node.stop()


def test_an_application_may_have_so_many_endpoints(
    limited: Limited, tenants: dict[str, Any], operator_key: str
) -> None:
    a, b = tenants["a"], tenants["b"]
    api = limited.api
    for i in range(2):  # A has one already
        created = api.call("POST", "/v1/endpoints", a["key"], json={"url": f"{PUBLIC}/{i}"})
        assert created.status_code == 201, created.text
    before = endpoint_count()
    assert_problem(
        api.call("POST", "/v1/endpoints", a["key"], json={"url": PUBLIC}),
        422,
        "invalid-input",
        f"application {a['app']} has 3 endpoints, at most 3 (ETHHOOK_APP_MAX_ENDPOINTS); delete",
    )
    assert endpoint_count() == before
    # Another application has its own quota, and the operator is not held to it.
    assert api.call("POST", "/v1/endpoints", b["key"], json={"url": PUBLIC}).status_code == 201
    by_operator = {"url": PUBLIC, "application_id": a["app"]}
    assert api.call("POST", "/v1/endpoints", operator_key, json=by_operator).status_code == 201


def test_an_application_replays_so_many_blocks_and_so_many_jobs_at_once(
    limited: Limited, tenants: dict[str, Any], operator_key: str
) -> None:
    a = tenants["a"]  # one queued job already (tenants' fixture)
    api = limited.api

    def replay(key: str, first: int, last: int) -> Any:
        body = {
            "chain": "ethereum",
            "from_block": first,
            "to_block": last,
            "endpoint_id": a["endpoint"],
        }
        return api.call("POST", "/v1/replays", key, json=body)

    assert_problem(
        replay(a["key"], 0, 100),
        422,
        "invalid-input",
        "a replay covers at most 100 blocks: from_block 0 to to_block 100 is 101",
    )
    assert_problem(
        replay(a["key"], 0, 10**9), 422, "invalid-input", "a replay covers at most 100 blocks"
    )
    first = replay(a["key"], 0, 99)
    assert first.status_code == 202, first.text
    # A worker of the session may run `first` to its end at once: one more job nobody runs keeps
    # two queued whatever it does (the operator's, on A's endpoint: it counts for A).
    with session_scope() as session:
        queued, _ = create_replay(session, get_settings(), 1, 1, 10, a["endpoint"], utcnow())
    too_many = replay(a["key"], 100, 199)
    problem = assert_problem(
        too_many, 429, "too-many-jobs", "replay jobs queued or running, at most 2"
    )
    assert problem["detail"].startswith(tuple(f"application {a['app']} has {n} " for n in (2, 3)))
    # The operator's replays are not limited, and once a job ends the application may start one.
    assert replay(operator_key, 0, 250).status_code == 202
    for job in (first.json()["id"], a["replay"], queued.id):
        api.call("POST", f"/v1/replays/{job}/cancel", a["key"])
    assert replay(a["key"], 100, 199).status_code == 202


def test_a_replay_refused_by_the_node_does_not_show_the_node_to_the_application(
    limited: Limited, tenants: dict[str, Any]
) -> None:
    a = tenants["a"]
    body = {"chain": "optimism", "from_block": 1, "to_block": 2, "endpoint_id": a["endpoint"]}
    refused = limited.api.call("POST", "/v1/replays", a["key"], json=body)
    problem = assert_problem(refused, 503, "unavailable", "the chain node could not be reached")
    for secret in (str(limited.closed_port), "127.0.0.1", "SECRETKEY", "Cannot connect"):
        assert secret not in problem["detail"]
    assert str(limited.closed_port) in limited.api.log()  # the operator's log keeps the detail
    assert "SECRETKEY" not in limited.api.log()


@pytest.mark.parametrize("node", ["closed port", "json-rpc error", "garbage"])
def test_a_failed_replay_chunk_shows_the_application_no_node_address_or_answer(
    limited: Limited, tenants: dict[str, Any], receiver: Receiver, node: str
) -> None:
    a = tenants["a"]
    answers = {
        "json-rpc error": b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,'
        b'"message":"upstream 10.9.8.7:8545 refused: key SECRETKEY over quota"}}',
        "garbage": b"<html>proxy 10.9.8.7:8545 SECRETKEY</html>",
    }
    if node == "closed port":
        url = f"http://user:pw@127.0.0.1:{limited.closed_port}/v2/SECRETKEY"
        hidden = [str(limited.closed_port), "127.0.0.1", "SECRETKEY", "pw"]
    else:
        answer = answers[node]
        receiver.responders["/v2/SECRETKEY"] = lambda n: (
            200,
            {"content-type": "application/json"},
            answer,
        )
        url = receiver.url("/v2/SECRETKEY")
        hidden = [str(receiver.port), "127.0.0.1", "SECRETKEY", "10.9.8.7", "upstream", "proxy"]
    settings = dataclasses.replace(
        get_settings(), chains=(ChainConfig("ethereum", 1, http_url=url),)
    )
    with session_scope() as session:
        job, dispatch = create_replay(
            session, settings, 1, 1, 2, a["endpoint"], utcnow(), scope=OPERATOR
        )
    run_chunk(session_scope, settings, dispatch.job_id, dispatch.token)
    shown = limited.api.call("GET", f"/v1/replays/{job.id}", a["key"]).json()
    assert shown["error"] and shown["error"].startswith("the chain node ")
    for secret in hidden:
        assert secret not in shown["error"], shown["error"]


# --- times far from now ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "since",
    [
        "9999-12-31T23:59:00Z",
        "9999-12-31T23:59:59.999999",
        "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00-14:00",
    ],
)
def test_statistics_since_any_representable_time_answer(
    api: ApiServer, tenants: dict[str, Any], since: str
) -> None:
    key = tenants["a"]["key"]
    for path in ("/v1/stats", "/v1/deliveries"):
        answer = api.call("GET", path, key, params={"since": since})
        assert answer.status_code == 200, answer.text
    cli = ethhook("stats", "--since", since, "--json")
    assert cli.returncode == 0 and cli.stderr == "", cli.stderr


@pytest.mark.parametrize(
    "since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-00:01", "+10000-01-01"]
)
def test_a_time_out_of_range_is_one_line_naming_it(
    api: ApiServer, tenants: dict[str, Any], since: str
) -> None:
    key = tenants["a"]["key"]
    for path in ("/v1/stats", "/v1/deliveries"):
        assert_problem(
            api.call("GET", path, key, params={"since": since}), 422, "invalid-input", "since"
        )
    cli = ethhook("stats", "--since", since)
    assert cli.returncode == 2 and cli.stderr.count("\n") == 1 and "--since" in cli.stderr


# --- what a refused URL tells a tenant ------------------------------------------------------------


def test_a_refused_host_name_is_not_told_the_address_it_resolves_to(
    limited: Limited, tenants: dict[str, Any]
) -> None:
    a = tenants["a"]
    port = free_port()
    for method, path in (("POST", "/v1/endpoints"), ("PATCH", f"/v1/endpoints/{a['endpoint']}")):
        problem = assert_problem(
            limited.api.call(method, path, a["key"], json={"url": f"http://localhost:{port}/x"}),
            422,
            "invalid-input",
            "localhost resolves to an address that is not allowed",
        )
        for address_text in ("127.0.0.1", "::1", "loopback"):
            assert address_text not in problem["detail"]
    # An address typed as such is named: the tenant gave it.
    assert_problem(
        limited.api.call("POST", "/v1/endpoints", a["key"], json={"url": "http://10.1.2.3/x"}),
        422,
        "invalid-input",
        "10.1.2.3 is a private address",
    )


def test_a_test_webhook_refused_at_connect_time_does_not_name_the_address(
    limited: Limited, tenants: dict[str, Any]
) -> None:
    a = tenants["a"]
    # Registered where private targets are allowed (this process); the API server refuses them.
    endpoint_id, _ = add_endpoint(f"http://localhost:{free_port()}/x", application_id=a["app"])
    answer = limited.api.call("POST", f"/v1/endpoints/{endpoint_id}/test", a["key"])
    assert answer.status_code == 200, answer.text
    error = answer.json()["error"]
    assert "refused to connect to localhost: localhost resolves to an address that is not" in error
    for address_text in ("127.0.0.1", "::1", "loopback"):
        assert address_text not in error

"""Settings from the environment: a value that cannot be used stops the process, naming the variable."""

from __future__ import annotations

import pytest

from ethhook.config import (
    BIGINT_MAX,
    MAX_DURATION_S,
    load_settings,
    parse_retry_schedule,
)
from ethhook.exceptions import ConfigError

SECONDS_VARIABLES = {
    "ETHHOOK_DELIVERY_CONNECT_TIMEOUT_S": "delivery_connect_timeout_s",
    "ETHHOOK_DELIVERY_READ_TIMEOUT_S": "delivery_read_timeout_s",
    "ETHHOOK_DISPATCH_LEASE_S": "dispatch_lease_s",
    "ETHHOOK_DELIVERY_LEASE_S": "delivery_lease_s",
    "ETHHOOK_DUE_SCAN_INTERVAL_S": "due_scan_interval_s",
    "ETHHOOK_SECRET_ROTATION_GRACE_S": "secret_rotation_grace_s",
    "ETHHOOK_BREAKER_RESET_TIMEOUT_S": "breaker_reset_timeout_s",
    "ETHHOOK_AUTO_DISABLE_AFTER_S": "auto_disable_after_s",
    "ETHHOOK_OPS_FAILING_AFTER_S": "ops_failing_after_s",
    "ETHHOOK_OPS_LAG_AFTER_S": "ops_lag_after_s",
}
COUNT_VARIABLES = [
    "ETHHOOK_CLEANUP_BATCH_SIZE",
    "ETHHOOK_OPS_LAG_BLOCKS",
    "ETHHOOK_DUE_SCAN_LIMIT",
    "ETHHOOK_DELIVERIES_PER_TASK",
    "ETHHOOK_DELIVERY_WINDOW",
    "ETHHOOK_ENDPOINT_MAX_IN_FLIGHT",
    "ETHHOOK_MATCH_BATCH_SIZE",
    "ETHHOOK_BREAKER_FAIL_MAX",
]
PORT_VARIABLES = ["ETHHOOK_METRICS_PORT", "ETHHOOK_WORKER_METRICS_PORT"]
NOT_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999"]
HUGE = "9" * 30
HUGER_THAN_PYTHON_CONVERTS = "9" * 5000


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as exc:
        load_settings(env)
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("variable", list(SECONDS_VARIABLES))
@pytest.mark.parametrize("value", [*NOT_FINITE, "1e300", str(MAX_DURATION_S + 1), "-1", "soon"])
def test_a_duration_must_be_finite_and_fit_a_datetime(variable, value):
    assert refusal({variable: value}).startswith(f"{variable}=")


@pytest.mark.parametrize(("variable", "field"), SECONDS_VARIABLES.items())
@pytest.mark.parametrize("value", ["0.25", "30", str(MAX_DURATION_S)])
def test_durations_in_range_are_read(variable, field, value):
    assert getattr(load_settings({variable: value}), field) == float(value)


def test_only_the_grace_period_may_be_zero():
    assert load_settings({"ETHHOOK_SECRET_ROTATION_GRACE_S": "0"}).secret_rotation_grace_s == 0
    assert refusal({"ETHHOOK_DELIVERY_READ_TIMEOUT_S": "0"}).startswith(
        "ETHHOOK_DELIVERY_READ_TIMEOUT_S='0' is invalid: expected seconds greater than 0"
    )


@pytest.mark.parametrize("value", [*NOT_FINITE, "0", "-1", "3651", "1e300"])
def test_retention_days_must_be_finite_and_at_most_ten_years(value):
    assert refusal({"ETHHOOK_RETENTION_DAYS": value}).startswith("ETHHOOK_RETENTION_DAYS=")


def test_retention_days_in_range_are_read():
    assert load_settings({"ETHHOOK_RETENTION_DAYS": "3650"}).retention_days == 3650
    short = {"ETHHOOK_RETENTION_DAYS": "0.5", "ETHHOOK_RETRY_SCHEDULE_S": "0,5,300"}
    assert load_settings(short).retention_days == 0.5


@pytest.mark.parametrize("variable", COUNT_VARIABLES)
@pytest.mark.parametrize("value", ["0", "-3", "1000001", HUGE, HUGER_THAN_PYTHON_CONVERTS, "1.5"])
def test_a_count_must_fit_where_it_is_used(variable, value):
    message = refusal({variable: value})
    assert message.startswith(f"{variable}=")
    assert message.endswith("expected an integer from 1 to 1000000")
    assert len(message) < 250  # a 5000-digit value is not quoted whole


@pytest.mark.parametrize("variable", PORT_VARIABLES)
@pytest.mark.parametrize("value", ["-1", "65536", "70000", HUGE, "80.0", "http"])
def test_a_port_is_0_to_65535(variable, value):
    assert refusal({variable: value}) == (
        f"{variable}={value!r} is invalid: expected an integer from 0 to 65535"
    )


@pytest.mark.parametrize("variable", PORT_VARIABLES)
@pytest.mark.parametrize("value", ["0", "1", "65535"])
def test_ports_in_range_are_read(variable, value):
    settings = load_settings({variable: value})
    assert int(value) in (settings.metrics_port, settings.worker_metrics_port)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@db/ethhook",
        "mysql+pymysql://root@db/ethhook",
        "postgres://postgres@db/ethhook",  # SQLAlchemy refuses the Heroku spelling
        "postgresql+asyncpg://postgres@db/ethhook",
        "oracle://scott@db/orcl",
        "mssql+pyodbc://sa@db/ethhook",
        "sqlite+aiosqlite:///x.db",
        "/var/lib/ethhook.db",
    ],
)
def test_a_database_other_than_postgresql_or_sqlite_is_refused(url):
    message = refusal({"ETHHOOK_DATABASE_URL": url})
    assert message.startswith("ETHHOOK_DATABASE_URL=")
    assert message.endswith(
        "EthHook supports PostgreSQL (postgresql+psycopg2://USER@HOST:5432/DB) "
        "or SQLite (sqlite:///PATH)"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://ethhook:secret@db:5432/ethhook",
        "postgresql://ethhook@db/ethhook",
        "POSTGRESQL+PSYCOPG2://ethhook@db/ethhook",
        "sqlite:///relative.db",
        "sqlite:////var/lib/ethhook.db",
        "sqlite+pysqlite:///x.db",
    ],
)
def test_postgresql_and_sqlite_urls_are_read(url):
    assert load_settings({"ETHHOOK_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("variable", "url", "shown"),
    [
        ("ETHHOOK_DATABASE_URL", "mysql://root:hunter2@db:3306/ethhook", "'mysql://db:3306…'"),
        ("ETHHOOK_BROKER_URL", "redis://:hunter2@redis:99999/0", "'redis://redis:99999…'"),
        ("ETHEREUM_WS", "wss://eth.example.com:99999/v2/hunter2", "'wss://eth.example.com:99999…'"),
        (
            "BASE_HTTP",
            "https://base.example.com:-1?apikey=hunter2",
            "'https://base.example.com:-1…'",
        ),
    ],
)
def test_a_refused_url_is_quoted_without_credentials_or_keys(variable, url, shown):
    message = refusal({variable: url})
    assert "hunter2" not in message
    assert message.startswith(f"{variable}={shown} is invalid: ")


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("ETHHOOK_DATABASE_URL", "postgresql+psycopg2://postgres@db:65536/ethhook"),
        ("ETHHOOK_BROKER_URL", "redis://127.0.0.1:99999/0"),
        ("ETHHOOK_BROKER_URL", "amqp://guest@rabbit:port//"),
        ("ETHHOOK_REDIS_URL", "redis://127.0.0.1:-1/0"),
        ("ETHEREUM_WS", "ws://127.0.0.1:70000"),
        ("BASE_HTTP", "https://node.example.com:123456/key"),
    ],
)
def test_a_url_with_a_port_out_of_range_is_refused(variable, url):
    message = refusal({variable: url})
    assert message.startswith(f"{variable}=")
    assert "expected a URL with a port from 0 to 65535" in message


def test_urls_in_range_and_without_a_port_are_read():
    settings = load_settings(
        {
            "ETHHOOK_BROKER_URL": "redis+socket:///run/redis.sock",
            "ETHHOOK_REDIS_URL": "redis://127.0.0.1:65535/1",
            "ETHEREUM_HTTP": "https://node.example.com/v2/key",
        }
    )
    assert settings.broker_url == "redis+socket:///run/redis.sock"
    assert settings.chain_by_id(1) is not None
    assert settings.chain_by_id(1).http_url == "https://node.example.com/v2/key"


@pytest.mark.parametrize(
    "value",
    [
        "0,nan",
        "0,inf",
        "0,1e999",
        "-inf",
        "0,1e300",
        f"0,{MAX_DURATION_S + 1}",
        "0,-5",
        ",".join(["1"] * 51),
        "soon",
        " , ",
        "0,\u0661\u0662",  # Arabic-Indic digits, which float() reads as 12
        "0,1_0",
        "0,+5",
    ],
)
def test_a_retry_schedule_is_finite_delays_that_fit_a_datetime(value):
    with pytest.raises(ValueError):
        parse_retry_schedule(value)
    assert refusal({"ETHHOOK_RETRY_SCHEDULE_S": value}).startswith("ETHHOOK_RETRY_SCHEDULE_S=")


def test_a_retry_schedule_in_range_is_read():
    assert parse_retry_schedule(f"0, 5,{MAX_DURATION_S}") == (0.0, 5.0, float(MAX_DURATION_S))
    assert len(parse_retry_schedule(",".join(["1"] * 50))) == 50


# --- the chains file: TOML has inf, nan and any type in any place ---------------------------------

GOOD_CHAIN = {"name": '"polygon"', "chain_id": "137", "http_url": '"https://node.example.com/"'}


def _chains_file(tmp_path, **overrides: str | None) -> dict[str, str]:
    entry = {**GOOD_CHAIN, **overrides}
    lines = [f"{key} = {value}" for key, value in entry.items() if value is not None]
    path = tmp_path / "chains.toml"
    path.write_text("[[chains]]\n" + "\n".join(lines) + "\n")
    return {"ETHHOOK_CHAINS_FILE": str(path)}


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"chain_id": "0"}, f"chain_id must be an integer from 1 to {BIGINT_MAX}"),
        ({"chain_id": str(BIGINT_MAX + 1)}, "chain_id must be an integer"),
        ({"chain_id": "inf"}, "chain_id must be an integer"),
        ({"chain_id": "nan"}, "chain_id must be an integer"),
        ({"chain_id": "137.5"}, "chain_id must be an integer"),
        ({"chain_id": "true"}, "chain_id must be an integer"),
        ({"chain_id": '"137"'}, "chain_id must be an integer"),
        ({"chain_id": None}, "missing key 'chain_id'"),
        ({"name": "5"}, "name must be a non-empty string"),
        ({"name": '""'}, "name must be a non-empty string"),
        ({"default_confirmations": "64"}, "default_confirmations is not supported: give each"),
        ({"poll_interval_s": "nan"}, "poll_interval_s: expected seconds greater than 0"),
        ({"poll_interval_s": "inf"}, "poll_interval_s: expected seconds greater than 0"),
        ({"poll_interval_s": "0"}, "poll_interval_s: expected seconds greater than 0"),
        ({"poll_interval_s": "1e300"}, "poll_interval_s: expected seconds greater than 0"),
        ({"poll_interval_s": '"2"'}, "poll_interval_s must be a number"),
        ({"ws_url": "8545"}, "ws_url must be a string"),
        ({"ws_url": '"ws://127.0.0.1:99999"'}, "expected a URL with a port from 0 to 65535"),
        ({"http_url": '"node.example.com"'}, "expected a URL such as"),
    ],
)
def test_a_chain_in_the_chains_file_must_fit(tmp_path, overrides, complaint):
    message = refusal(_chains_file(tmp_path, **overrides))
    assert message.startswith("ETHHOOK_CHAINS_FILE: ")
    assert complaint in message


def test_a_chain_in_range_is_read(tmp_path):
    env = _chains_file(
        tmp_path,
        chain_id=str(BIGINT_MAX),
        poll_interval_s="2",
    )
    chain = load_settings(env).chain_by_id(BIGINT_MAX)
    assert chain is not None
    assert (chain.name, chain.poll_interval_s) == ("polygon", 2.0)


def test_logging_settings_are_read_in_any_case():
    settings = load_settings(
        {
            "ETHHOOK_LOG_FORMAT": "JSON",
            "ETHHOOK_LOG_LEVEL": "warn",
            "ETHHOOK_LOG_LEVELS": " ethhook.listen=debug , celery.beat=DEBUG,celery=Warning ",
        }
    )
    assert (settings.log_format, settings.log_level) == ("json", "WARNING")
    assert settings.log_levels == (
        ("ethhook.listen", "DEBUG"),
        ("celery.beat", "DEBUG"),
        ("celery", "WARNING"),
    )
    defaults = load_settings({})
    assert (defaults.log_format, defaults.log_level, defaults.log_levels) == ("text", "INFO", ())


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("ETHHOOK_LOG_FORMAT", "xml", "expected text or json"),
        ("ETHHOOK_LOG_LEVEL", "LOUD", "expected a level: DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("ETHHOOK_LOG_LEVEL", "10", "expected a level"),
        ("ETHHOOK_LOG_LEVELS", "ethhook.listen", "expected logger=LEVEL pairs"),
        ("ETHHOOK_LOG_LEVELS", "ethhook.listen=LOUD", "ethhook.listen: expected a level"),
        ("ETHHOOK_LOG_LEVELS", "=DEBUG", "expected logger=LEVEL pairs"),
        ("ETHHOOK_LOG_LEVELS", "a b=DEBUG", "expected logger=LEVEL pairs"),
        ("ETHHOOK_LOG_LEVELS", ",".join(f"l{i}=INFO" for i in range(101)), "at most 100 loggers"),
    ],
)
def test_a_bad_logging_setting_names_the_variable(variable, value, complaint):
    message = refusal({variable: value})
    assert message.startswith(f"{variable}=")
    assert complaint in message

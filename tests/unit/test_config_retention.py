"""ETHHOOK_PARTITION_INTERVAL, and a retention shorter than the retry schedule, refused at start
in one line."""

from __future__ import annotations

import pytest

from ethhook.config import load_settings
from ethhook.exceptions import ConfigError

DAY = 86400


@pytest.mark.parametrize(
    ("raw", "seconds"), [("1d", DAY), ("6h", 21600), ("5m", 300), ("31d", 31 * DAY)]
)
def test_the_partition_interval_is_minutes_hours_or_days(raw, seconds):
    assert load_settings({"ETHHOOK_PARTITION_INTERVAL": raw}).partition_interval_s == seconds
    assert load_settings({}).partition_interval_s == DAY


@pytest.mark.parametrize("raw", ["0m", "32d", "1.5d", "90s", "1w", "d", "5 m", "²m", "99999999m"])
def test_an_interval_that_is_not_one_is_refused_naming_the_variable(raw):
    with pytest.raises(ConfigError) as refused:
        load_settings({"ETHHOOK_PARTITION_INTERVAL": raw})
    assert str(refused.value).startswith("ETHHOOK_PARTITION_INTERVAL=")
    assert "\n" not in str(refused.value)


def test_retention_shorter_than_the_retry_schedule_is_refused_in_one_line_naming_both():
    with pytest.raises(ConfigError) as refused:
        load_settings({"ETHHOOK_RETENTION_DAYS": "1"})  # the default schedule: 1.15 days
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("ETHHOOK_RETENTION_DAYS=1 is shorter than the retries of")
    assert "ETHHOOK_RETRY_SCHEDULE_S (1.15 days)" in message
    short = {"ETHHOOK_RETENTION_DAYS": "1", "ETHHOOK_RETRY_SCHEDULE_S": "0,60,86340"}
    assert load_settings(short).retention_days == 1


def test_an_endpoints_retry_schedule_longer_than_retention_is_refused_at_registration():
    from ethhook.exceptions import InputError
    from ethhook.service.validation import check_retry_schedule

    settings = load_settings({"ETHHOOK_RETENTION_DAYS": "2"})
    assert check_retry_schedule("0,60,86400", settings) == (0, 60, 86400)
    with pytest.raises(InputError) as refused:
        check_retry_schedule("0,86400,86400,3600", settings)
    assert str(refused.value) == (
        "invalid --retry-schedule '0,86400,86400,3600': its delays add up to 2.04 days, longer"
        " than the history is kept (ETHHOOK_RETENTION_DAYS=2)"
    )

"""The two line formats and what they carry: the ids a line is about, the process, the request id,
and never a secret (the scrubber runs over the message, every field and the traceback)."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from ethhook.config import load_settings
from ethhook.logs import bind_fields, fields_of, log_fields
from ethhook.logs.formats import JsonFormatter, TextFormatter, utc_time
from ethhook.logs.redaction import Scrubber, secrets_of

SECRET = "whsec_" + "A" * 43 + "="
NODE = "wss://NODEUSER:NODEPASS@eth.example.com/v2/NODEPATHKEY?apikey=NODEQUERYKEY"


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("ethhook.test", logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_the_ids_given_bound_and_in_order():
    formatter = JsonFormatter("deliver", Scrubber())
    line = record(
        "deliver.attempt.failed endpoint=%s delivery=%s", 7, 12, delivery_id=12, webhook_id="msg_1"
    )
    with log_fields(endpoint_id=7, request_id="r-1"):
        parsed = json.loads(formatter.format(line))
    assert list(parsed) == [
        "ts",
        "level",
        "logger",
        "msg",
        "process",
        "pid",
        "endpoint_id",
        "delivery_id",
        "webhook_id",
        "request_id",
    ]
    assert parsed["msg"] == "deliver.attempt.failed endpoint=7 delivery=12"
    assert (parsed["process"], parsed["level"], parsed["endpoint_id"]) == ("deliver", "INFO", 7)
    # outside the block the bound fields are gone
    assert "endpoint_id" not in json.loads(formatter.format(record("x")))


def test_a_field_given_with_the_line_wins_over_a_bound_one():
    with log_fields(endpoint_id=1):
        assert fields_of(record("x", endpoint_id=2)) == {"endpoint_id": 2}


def test_unknown_field_names_are_a_programming_error():
    with pytest.raises(TypeError, match="unknown log fields"), log_fields(endpoint=1):
        pass


def test_bound_fields_last_as_long_as_their_context():
    import contextvars

    def in_a_request() -> dict[str, object]:
        bind_fields(app_id=3)
        return fields_of(record("x"))

    assert contextvars.copy_context().run(in_a_request) == {"app_id": 3}
    assert fields_of(record("x")) == {}


def test_json_lines_scrub_the_message_every_field_and_the_traceback():
    settings = load_settings({"ETHEREUM_WS": NODE})
    formatter = JsonFormatter("listener", Scrubber(secrets_of(settings)))
    try:
        raise ValueError(f"could not connect to {NODE} with {SECRET}")
    except ValueError:
        line = record("listen.ws.failed url=%s", NODE, webhook_id=f"NODEPASS {SECRET}")
        line.exc_info = sys.exc_info()
    text = formatter.format(line)
    parsed = json.loads(text)
    assert parsed["msg"] == "listen.ws.failed url=wss://eth.example.com"
    assert parsed["webhook_id"] == "… whsec_…"
    assert "could not connect to wss://eth.example.com with whsec_…" in parsed["exc"]
    assert [
        s for s in ("NODEUSER", "NODEPASS", "NODEPATHKEY", "NODEQUERYKEY", "AAAA") if s in text
    ] == []


def test_a_text_line_is_todays_format_with_the_process_and_ends_with_the_request_id():
    formatter = TextFormatter("api", Scrubber())
    line = record("console.sign_in application=%s", 3)
    line.created = 0.0
    with log_fields(request_id="r-9"):
        text = formatter.format(line)
    assert text.endswith(" INFO api ethhook.test console.sign_in application=3 request_id=r-9")
    assert formatter.format(record("no request")).endswith(" ethhook.test no request")


def test_a_text_line_is_scrubbed_traceback_included():
    formatter = TextFormatter("deliver", Scrubber())
    try:
        raise RuntimeError(f"Authorization: Bearer ehk_{'b' * 43}")
    except RuntimeError:
        line = record("failed with %s", SECRET)
        line.exc_info = sys.exc_info()
    text = formatter.format(line)
    assert "failed with whsec_…" in text
    assert "Authorization: Bearer …" in text
    assert "AAAA" not in text and "bbbb" not in text


def test_times_are_utc_with_milliseconds():
    assert utc_time(1_700_000_000.5) == "2023-11-14T22:13:20.500Z"

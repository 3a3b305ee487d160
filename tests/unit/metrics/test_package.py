"""The package's surface: the names the pipeline calls, a cheap import, settings-driven defaults."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.env import ROOT


def test_pipeline_names_are_importable_from_the_package() -> None:
    from ethhook import metrics

    for name in (
        "record_events_received", "set_chain_head", "set_listener_lag", "set_chain_connected",
        "set_cursor_block", "record_rpc_error", "record_reorg", "observe_batch",
        "record_deliveries_created", "record_attempt", "record_delivered_latency", "latency_since",
        "record_deferred", "record_dead_lettered", "set_breaker_open", "exposition",
        "connect_worker_signals", "start_worker_metrics", "mark_worker_process_dead",
        "stop_worker_metrics", "build_exposition_registry", "DeliveryBacklogCollector",
        "QueueLengthCollector",
    ):  # fmt: skip
        assert callable(getattr(metrics, name)), name


def test_defer_reasons_are_the_two_the_delivery_stage_uses() -> None:
    from ethhook.metrics import DeferReason

    reasons = {k: v for k, v in vars(DeferReason).items() if not k.startswith("_")}
    assert reasons == {"RATE_LIMITED": "rate_limited", "BREAKER_OPEN": "breaker_open"}


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_package_loads_no_database_broker_or_settings_code() -> None:
    out = _run(
        "import sys, ethhook.metrics\n"
        "print(sorted(m for m in ('sqlalchemy', 'redis', 'ethhook.config', 'ethhook.db',"
        " 'celery.signals') if m in sys.modules))\n"
    )
    assert out == "[]"


def test_exposition_answers_when_it_is_the_first_metrics_call() -> None:
    # No database or broker here: the scrape-time collectors are left out.
    out = _run(
        "from ethhook.metrics import server\n"
        "server.shared_state_collectors = lambda: []\n"
        "body, content_type = server.exposition()\n"
        "print(b'webhooks_delivered_total{status=\"success\"} 0.0' in body.splitlines())\n"
    )
    assert out == "True"


def test_worker_metrics_port_comes_from_the_settings() -> None:
    from ethhook.config import get_settings
    from ethhook.metrics import start_worker_metrics

    assert get_settings().worker_metrics_port == 0  # tests/support/env.py: ETHHOOK_WORKER_METRICS_PORT
    assert start_worker_metrics() is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # never switched to multiprocess mode

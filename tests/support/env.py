"""The ETHHOOK_* environment of a test process, set on import: a database name of its own, a
private Redis port and a temporary folder.

The test process and every process it starts read the same variables: import this module (the root
conftest does) before anything imports ethhook's settings.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path

from ethhook.config import CHAIN_URL_VARIABLES
from tests.support.waiting import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent

PG_ADMIN_URL = os.environ.get("ETHHOOK_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")
TEST_DB = f"ethhook_test_{uuid.uuid4().hex[:8]}"
REDIS_PORT = free_port()
TMP = Path(tempfile.mkdtemp(prefix="ethhook-tests-"))

TEST_ENV = {
    "ETHHOOK_DATABASE_URL": f"{PG_ADMIN_URL}/{TEST_DB}",
    "ETHHOOK_BROKER_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
    "ETHHOOK_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/1",
    "ETHHOOK_ALLOW_PRIVATE_TARGETS": "true",
    # The default's every second: each beat-running worker sends its due scan, replay scan and
    # failing watch once a second (~20 ms of CPU each, with PostgreSQL's), so twice as often
    # costs the suite's idle workers a quarter more for no test's sake.
    "ETHHOOK_DUE_SCAN_INTERVAL_S": "1",
    "ETHHOOK_DISPATCH_LEASE_S": "4",
    "ETHHOOK_DELIVERY_LEASE_S": "30",
    "ETHHOOK_REPLAY_LEASE_S": "5",
    "ETHHOOK_DELIVERY_CONNECT_TIMEOUT_S": "2",
    "ETHHOOK_DELIVERY_READ_TIMEOUT_S": "3",
    "ETHHOOK_BREAKER_FAIL_MAX": "5",
    "ETHHOOK_BREAKER_RESET_TIMEOUT_S": "3",
    # `endpoint.failing` after 3 s of failures (beat looks every second) instead of 15 min.
    "ETHHOOK_OPS_FAILING_AFTER_S": "3",
    # Test events have block times of 2025 (tests/support/factories.py): retention must not drop
    # their partitions while a long session's worker runs its hourly job.
    "ETHHOOK_RETENTION_DAYS": "3650",
    "ETHHOOK_WORKER_METRICS_PORT": "0",  # many workers share this machine; a test sets its own
}
os.environ.update(TEST_ENV)
for _var in (*CHAIN_URL_VARIABLES, "ETHHOOK_CHAINS_FILE"):
    os.environ.pop(_var, None)

"""The root of the suite: the test environment (tests/support/env.py, set here before anything
imports ethhook's settings), the shared fixtures (tests/support/fixtures.py), and which tests
which tests take turns on a service of the machine.

Tests import helpers from `tests.support` only, never from a conftest or another test module.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Helpers' asserts are reported like the tests' own (what each side of a comparison held).
pytest.register_assert_rewrite("tests.support")

import tests.support.env  # noqa: E402, F401  (sets the ETHHOOK_* variables on import)

pytest_plugins = ["tests.support.fixtures"]

# Each xdist worker has its own database, redis-server and ports, and the fault tier restarts
# PostgreSQL and Redis instances of its own, so tests run side by side; these share the machine's
# RabbitMQ, which one of them restarts: they take turns, whichever process runs them (a lock on a
# file, which a concurrent run of the suite honours too).
SERIAL = ("tests/faults/test_rabbitmq.py", "tests/integration/test_rabbitmq.py")
MACHINE_LOCK = Path(tempfile.gettempdir()) / "ethhook-tests-rabbitmq.lock"


@pytest.fixture(scope="module", autouse=True)
def _machine_services_in_turn(request: pytest.FixtureRequest) -> Iterator[None]:
    """Held over a whole module of SERIAL (its own fixtures set up after it, torn down before)."""
    if not request.node.nodeid.startswith(SERIAL):
        yield
        return
    with MACHINE_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# Modules that take 40 s or more without being marked slow (measured in a full run).
LONG = (
    "tests/api/test_audit_http.py",
    "tests/api/test_schemathesis.py",
    "tests/browser/test_console_audit.py",
    "tests/integration/test_backlog.py",
    "tests/integration/test_encryption_defaults.py",
    "tests/integration/test_matching_where.py",
    "tests/integration/test_migrations.py",
    "tests/integration/test_partition_migration.py",
    "tests/integration/test_partitions.py",
    "tests/integration/test_pipeline.py",
    "tests/integration/test_retention.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Modules marked slow, and the LONG ones, first (a stable sort: each module stays whole and in
    # order): `make test` hands out whole modules in this order (xdist's loadfile), so none of
    # them starts last while the other processes have nothing left to do.
    def later(item: pytest.Item) -> bool:
        return item.get_closest_marker("slow") is None and not item.nodeid.startswith(LONG)

    items.sort(key=later)

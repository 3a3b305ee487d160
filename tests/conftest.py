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
# PostgreSQL and Redis instances of its own, so tests run side by side, but for two things of the
# machine's, which modules take turns on through locks on files (that a concurrent run of the
# suite honours too), each held over a whole module (its own fixtures set up after it):
# * the machine's RabbitMQ, which one RabbitMQ module restarts: one at a time;
# * its two cores: a module that measures rates and bounds in wall-clock time (QUIET) runs
#   beside no other QUIET module and none that loads the database with a million rows or
#   hammers the API (HEAVY); HEAVY ones may run together.
SERIAL = ("tests/faults/test_rabbitmq.py", "tests/integration/test_rabbitmq.py")
QUIET = ("tests/integration/test_protection_bounds.py", "tests/integration/test_resilience.py")
HEAVY = (
    "tests/api/test_schemathesis.py",
    "tests/integration/test_matching_where.py",
    "tests/integration/test_partition_migration.py",
    "tests/integration/test_retention.py",
)
LOCKS = Path(tempfile.gettempdir())


@pytest.fixture(scope="module", autouse=True)
def _machine_in_turn(request: pytest.FixtureRequest) -> Iterator[None]:
    nodeid = request.node.nodeid
    if nodeid.startswith(SERIAL):
        name, mode = "ethhook-tests-rabbitmq.lock", fcntl.LOCK_EX
    elif nodeid.startswith(QUIET):
        name, mode = "ethhook-tests-cpu.lock", fcntl.LOCK_EX
    elif nodeid.startswith(HEAVY):
        name, mode = "ethhook-tests-cpu.lock", fcntl.LOCK_SH
    else:
        yield
        return
    with (LOCKS / name).open("a") as lock:
        fcntl.flock(lock, mode)
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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the inner loop (make test-fast): leave out the modules marked slow and the LONG ones",
    )


def _long(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None or item.nodeid.startswith(LONG)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("fast"):
        config.hook.pytest_deselected(items=[i for i in items if _long(i)])
        items[:] = [i for i in items if not _long(i)]

    # Modules marked slow, and the LONG ones, first (a stable sort: each module stays whole and in
    # order): `make test` hands out whole modules in this order (xdist's loadfile), so none of
    # them starts last while the other processes have nothing left to do.
    # The QUIET ones before all, so that they are done before most HEAVY ones start.
    def order(item: pytest.Item) -> int:
        if item.nodeid.startswith(QUIET):
            return 0
        return 1 if _long(item) else 2

    items.sort(key=order)

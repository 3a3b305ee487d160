"""The root of the suite: the test environment (tests/support/env.py, set here before anything
imports ethhook's settings), the shared fixtures (tests/support/fixtures.py), and which tests
which tests take turns on a service of the machine.

Tests import helpers from `tests.support` only, never from a conftest or another test module.
"""

from __future__ import annotations

import fcntl
import tempfile
from pathlib import Path
from typing import IO, Any

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


def _turn_lock(module: str) -> tuple[str, int] | None:
    """The lock file and mode a module takes its turn with, if any."""
    if module.startswith(SERIAL):
        return "ethhook-tests-rabbitmq.lock", fcntl.LOCK_EX
    if module.startswith(QUIET):
        return "ethhook-tests-cpu.lock", fcntl.LOCK_EX
    if module.startswith(HEAVY):
        return "ethhook-tests-cpu.lock", fcntl.LOCK_SH
    return None


_in_turn: dict[str, IO[str]] = {}  # the module holding a turn in this process → its lock file
_TIMEOUT = pytest.StashKey[Any]()


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """Keep each test's timeout settings (pytest-timeout's own implementation sets the timer)."""
    item.stash[_TIMEOUT] = settings


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A module's first test waits for the module's turn before any fixture is set up, and the
    wait (minutes behind the QUIET modules, at times) does not count against its timeout."""
    module = item.nodeid.split("::")[0]
    turn = _turn_lock(module)
    if turn is None or module in _in_turn:
        return
    hooks = item.config.pluginmanager.hook
    hooks.pytest_timeout_cancel_timer(item=item)
    lock = (LOCKS / turn[0]).open("a")
    fcntl.flock(lock, turn[1])
    _in_turn[module] = lock
    if _TIMEOUT in item.stash:
        hooks.pytest_timeout_set_timer(item=item, settings=item.stash[_TIMEOUT])


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """The turn ends after the module's last test, its module fixtures torn down."""
    module = item.nodeid.split("::")[0]
    if module in _in_turn and (nextitem is None or not nextitem.nodeid.startswith(module + "::")):
        lock = _in_turn.pop(module)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


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

"""The root of the suite: the test environment (tests/support/env.py, set here before anything
imports ethhook's settings), the shared fixtures (tests/support/fixtures.py), and the order and
turns modules run in.

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
from tests.support.schedule import QUIET, TurnScheduling, turn_lock  # noqa: E402

pytest_plugins = ["tests.support.fixtures"]

# Each xdist worker has its own database, Redis and ports, and the fault tier restarts PostgreSQL
# and Redis instances of its own, so tests run side by side, but for the modules that take turns
# on a service of the machine's (tests/support/schedule.py): each holds a lock on a file over the
# whole module (its own fixtures set up after it).
LOCKS = Path(tempfile.gettempdir())


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
    turn = turn_lock(module)
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


# Modules that take 40 s or more (measured in a full run, 2026-12-07), whether marked slow or not:
# `make test` hands modules out in this order, after the QUIET ones, so that none of them starts
# last while the other processes have nothing left to do; `--fast` leaves them out with the other
# modules marked slow. The longest first, but for the HEAVY ones, which wait until the QUIET ones
# are done, and the log test, which idles for four minutes: beside the QUIET ones, which keep the
# HEAVY ones off the machine, the modules that keep its cores busy.
LONG = (
    "tests/faults/test_soak.py",
    "tests/faults/test_services.py",
    "tests/faults/test_workers.py",
    "tests/e2e/test_replay.py",
    "tests/e2e/test_listen_resilience.py",
    "tests/faults/test_listener.py",
    "tests/integration/test_partition_migration.py",
    "tests/integration/test_matching_where.py",
    "tests/e2e/test_logs.py",  # two idle windows of two minutes
    "tests/integration/test_deliver_bad_hosts.py",
    "tests/faults/test_rabbitmq.py",
    "tests/integration/test_encryption_defaults.py",
    "tests/e2e/test_up.py",
    "tests/api/test_audit_http.py",
    "tests/integration/test_retention.py",
    "tests/browser/test_console_forms.py",
    "tests/api/test_schemathesis.py",
    "tests/integration/test_pipeline.py",
    "tests/integration/test_migrations.py",
    "tests/browser/test_console_audit.py",
    "tests/integration/test_partitions.py",
    "tests/integration/test_backlog.py",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> TurnScheduling | None:
    """`--dist loadfile` (make test) with the turns in mind."""
    return TurnScheduling(config, log) if config.getvalue("dist") == "loadfile" else None


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

    # The QUIET ones first, so that they are done before most HEAVY ones start; then the LONG ones
    # in their order; then the others marked slow; then the rest (a stable sort: each module stays
    # whole and in order).
    def order(item: pytest.Item) -> tuple[int, int]:
        module = item.nodeid.split("::")[0]
        if module.startswith(QUIET):
            return 0, 0
        if module in LONG:
            return 1, LONG.index(module)
        return (2, 0) if _long(item) else (3, 0)

    items.sort(key=order)

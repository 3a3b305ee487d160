"""The root of the suite: the test environment (tests/support/env.py, set here before anything
imports ethhook's settings), the shared fixtures (tests/support/fixtures.py), and which tests
pytest-xdist must run one after another.

Tests import helpers from `tests.support` only, never from a conftest or another test module.
"""

from __future__ import annotations

import pytest

# Helpers' asserts are reported like the tests' own (what each side of a comparison held).
pytest.register_assert_rewrite("tests.support")

import tests.support.env  # noqa: E402, F401  (sets the ETHHOOK_* variables on import)

pytest_plugins = ["tests.support.fixtures"]

# Each xdist worker has its own database, redis-server and ports, so tests run side by side; these
# share the machine's RabbitMQ, which the fault tier restarts: one worker runs them all, in order.
SERIAL = ("tests/faults/", "tests/integration/test_rabbitmq.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.xdist_group("serial"))
    # Modules marked slow first (a stable sort: each module stays whole and in order), so that
    # under xdist none of them starts last while the other processes have nothing left to do.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

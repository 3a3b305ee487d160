"""The root of the suite: the test environment (tests/support/env.py, set here before anything
imports ethhook's settings) and the shared fixtures (tests/support/fixtures.py).

Tests import helpers from `tests.support` only, never from a conftest or another test module.
"""

from __future__ import annotations

import pytest

# Helpers' asserts are reported like the tests' own (what each side of a comparison held).
pytest.register_assert_rewrite("tests.support")

import tests.support.env  # noqa: E402, F401  (sets the ETHHOOK_* variables on import)

pytest_plugins = ["tests.support.fixtures"]

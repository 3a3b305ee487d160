"""Fault-tier fixtures: one pipeline per module on private PostgreSQL and Redis (see
tests/support/faults_rig.py); every fault test of the module runs against it in turn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.faults_rig import Rig, make_rig


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    yield from make_rig()


@pytest.fixture(scope="module")
def proxied_rig() -> Iterator[Rig]:
    yield from make_rig(proxied=True)

"""API-tier fixtures: two applications (tenants) with an endpoint, a delivery and a replay job
each; the `api` server and `operator_key` are shared (tests/support/fixtures.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import make_tenant


@pytest.fixture()
def tenants(db: None) -> dict[str, dict[str, Any]]:
    """Applications A and B, each with an endpoint, a delivery and a replay job."""
    return {"a": make_tenant("A", 1), "b": make_tenant("B", 2)}

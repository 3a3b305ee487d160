"""Delivery rows and their grouping into deliver tasks: one shape, one token per endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ethhook.config import get_settings
from ethhook.workqueue import DispatchGroup, NewLeases, chunk_groups, delivery_row

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_chunk_groups_groups_by_endpoint_sorted_and_at_most_per_task():
    pairs = [(1, 5), (2, 9), (1, 3), (1, 4), (2, 8), (1, 1)]

    assert chunk_groups(pairs, per_task=3) == [(1, [1, 3, 4]), (1, [5]), (2, [8, 9])]


def test_chunk_groups_of_nothing_is_nothing():
    assert chunk_groups([], per_task=100) == []


def test_a_new_delivery_row_has_every_column_and_no_attempt():
    row = delivery_row(7, "evt_1", "event.confirmed", "waiting", NOW, release_block=112)

    assert row == {
        "endpoint_id": 7,
        "event_id": "evt_1",
        "kind": "event.confirmed",
        "status": "waiting",
        "attempts": 0,
        "next_attempt_at": None,
        "release_block": 112,
        "release_tag": None,
        "lease_token": None,
        "lease_expires_at": None,
        "origin": "live",
        "created_at": NOW,
        "updated_at": NOW,
    }


def test_new_leases_give_one_token_per_endpoint_expiring_after_the_dispatch_lease():
    leases = NewLeases(NOW)

    first, again, other = leases.token(1), leases.token(1), leases.token(2)

    assert first == again and first != other
    assert leases.expires_at == NOW + timedelta(seconds=get_settings().dispatch_lease_s)


def test_new_leases_group_pairs_under_their_endpoints_token():
    leases = NewLeases(NOW)
    one, two = leases.token(1), leases.token(2)

    groups = leases.groups([(2, 20), (1, 11), (1, 10)])

    assert groups == [DispatchGroup(2, [20], two), DispatchGroup(1, [10, 11], one)]

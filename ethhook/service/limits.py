"""How much one endpoint, and one application, may ask for: each list of an endpoint, the filter
rows their product makes, and an application's endpoints. The limits are settings."""

from __future__ import annotations

import math
from collections.abc import Sequence, Sized

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ethhook.config import Settings, variable
from ethhook.db.models import Application, Endpoint
from ethhook.exceptions import InputError

# An endpoint's lists, by the names build_spec takes: what a message calls each, and its setting.
LISTS = {
    "chains": ("chains", "endpoint_max_chains"),
    "contracts": ("contracts", "endpoint_max_contracts"),
    "events": ("events", "endpoint_max_events"),
    "where": ("--where conditions", "endpoint_max_conditions"),
}


def check_count(values: Sized, what: str, settings: Settings, setting: str) -> None:
    """Refuse a list longer than the `setting` allows, before any of its items is parsed."""
    limit = getattr(settings, setting)
    if len(values) > limit:
        raise InputError(f"too many {what}: {len(values)}, at most {limit} ({variable(setting)})")


def check_lists(settings: Settings, **lists: Sequence[str]) -> None:
    """Refuse any of an endpoint's lists (chains, contracts, events, where) that is too long."""
    for name, values in lists.items():
        what, setting = LISTS[name]
        check_count(values, what, settings, setting)


def check_filter_rows(chain_ids: Sized, contracts: Sized, topics: Sized, limit: int) -> None:
    """Refuse lists whose product (one filter row per chain, contract and event; an empty list
    is one row that matches anything) makes more than `limit` rows: the product, not the body's
    size, is what a request costs the database and the matcher."""
    rows = math.prod(max(1, len(x)) for x in (chain_ids, contracts, topics))
    if rows <= limit:
        return
    factors = " × ".join(
        f"{len(x)} {name}s" if len(x) else f"every {name}"
        for x, name in ((chain_ids, "chain"), (contracts, "contract"), (topics, "event"))
    )
    raise InputError(
        f"too many filter rows: {factors} make {rows}, at most {limit} "
        f"({variable('endpoint_max_filter_rows')}); list fewer, or split them over several "
        "endpoints"
    )


def lock_application(session: Session, application_id: int) -> None:
    """Hold the application's row until the commit: what counts its endpoints or replay jobs
    against a limit then sees no other request take the last place at the same time."""
    session.execute(
        select(Application.id).where(Application.id == application_id).with_for_update()
    )


def check_endpoint_quota(session: Session, application_id: int, limit: int) -> None:
    """Refuse a new endpoint for an application that has `limit` already (its row stays locked
    until the commit: two requests at once cannot both take the last place)."""
    lock_application(session, application_id)
    count = session.scalar(
        select(func.count()).select_from(Endpoint).where(Endpoint.application_id == application_id)
    )
    if count is not None and count >= limit:
        raise InputError(
            f"application {application_id} has {count} endpoints, at most {limit} "
            f"({variable('app_max_endpoints')}); delete one first"
        )

"""Validation of a partial endpoint update (`endpoint update`, the API's PATCH): each given field
checked exactly as service.validation checks it for `add`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ethhook.config import Settings
from ethhook.db.models import Finality
from ethhook.exceptions import InputError
from ethhook.service.finality import check_finality
from ethhook.service.limits import LISTS, check_lists
from ethhook.service.validation import (
    MAX_CONDITION_LENGTH,
    about,
    check_confirmations,
    check_endpoint_url,
    check_name,
    check_ordered,
    check_rate_limit,
    check_retry_schedule,
    check_text,
    parse_addresses,
    parse_chains,
    parse_events,
)

# What `endpoint update` (and the API's PATCH) may change, by their names in the public model.
UPDATABLE = (
    "url",
    "chains",
    "contracts",
    "events",
    "confirmations",
    "finality",
    "lifecycle",
    "rate_limit",
    "retry_schedule",
    "name",
    "where",
    "ordered",
)


@dataclass(frozen=True)
class EndpointChanges:
    """A validated partial update: only the fields named in `given` change; for the name, the
    rate limit and the retry schedule None means none, for `ordered` unordered."""

    given: frozenset[str]
    url: str = ""
    chain_ids: tuple[int, ...] = ()
    contracts: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    signatures: tuple[str, ...] = ()
    confirmations: int = 0
    # Checked with the confirmations the endpoint keeps by update_endpoint (check_finality_with).
    finality: str = Finality.LATEST
    lifecycle: bool = False
    rate_limit_per_s: float | None = None
    retry_schedule_s: tuple[float, ...] | None = None
    name: str | None = None
    ordered: str | None = None
    # The new set of --where conditions (empty: none); checked against the endpoint's event by
    # update_endpoint, which knows it when --event is not given.
    where: tuple[str, ...] = ()
    # The filter rows the endpoint may have: update_endpoint checks them with the lists it keeps.
    max_filter_rows: int = field(kw_only=True)

    @property
    def changes_filters(self) -> bool:
        return bool(self.given & {"chains", "contracts", "events", "where"})


def build_changes(settings: Settings, **fields: Any) -> EndpointChanges:
    """Validate the given fields exactly as `build_spec` does; raise InputError about a bad one."""
    unknown = sorted(set(fields) - set(UPDATABLE))
    if unknown:
        raise InputError(f"cannot change {', '.join(unknown)}: only {', '.join(UPDATABLE)}")
    if not fields:
        raise InputError("nothing to change: give at least one field to update")
    check_lists(settings, **{k: fields[k] for k in LISTS if k in fields})
    values: dict[str, Any] = {}
    for name, check in _CHECKS.items():
        if name in fields:
            with about(name):
                values.update(check(fields[name], settings))
    return EndpointChanges(
        given=frozenset(fields), max_filter_rows=settings.endpoint_max_filter_rows, **values
    )


# build_changes: each field given, checked exactly as build_spec checks it (its values by the
# names EndpointChanges takes).
_CHECKS: dict[str, Callable[[Any, Settings], dict[str, Any]]] = {
    "events": lambda v, s: dict(zip(("topics", "signatures"), parse_events(v), strict=True)),
    "confirmations": lambda v, s: {"confirmations": check_confirmations(v)},
    "finality": lambda v, s: {"finality": check_finality(v)},
    "lifecycle": lambda v, s: {"lifecycle": bool(v)},
    "rate_limit": lambda v, s: {"rate_limit_per_s": check_rate_limit(v)},
    "retry_schedule": lambda v, s: {"retry_schedule_s": check_retry_schedule(v, s)},
    "url": lambda v, s: {"url": check_endpoint_url(v, s)},
    "chains": lambda v, s: {"chain_ids": parse_chains(v, s)},
    "contracts": lambda v, s: {"contracts": parse_addresses(v)},
    "name": lambda v, s: {"name": check_name(v)},
    "ordered": lambda v, s: {"ordered": check_ordered(v)},
    "where": lambda v, s: {
        "where": tuple(check_text(t, "--where", MAX_CONDITION_LENGTH) for t in v)
    },
}

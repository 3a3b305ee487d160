"""What a console form's text means, by the API's field names: the same keyword arguments the API
hands the service layer (`build_spec`, `build_changes`), which does every check.

Only the form's own typing is read here (one entry per line, a number in a text box, a checkbox);
a value that is not a number raises InputError naming its field, as the API's schema would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ethhook.exceptions import InputError
from ethhook.service import public

T = TypeVar("T")

LISTS = ("chains", "contracts", "events", "where")
# The fields an endpoint's edit form changes (the API's PATCH fields); the rest are set once.
EDITABLE = (
    "url",
    "name",
    *LISTS,
    "confirmations",
    "finality",
    "lifecycle",
    "rate_limit",
    "retry_schedule",
    "ordered",
)
CREATE_ONLY = ("signing", "from_block", "live_only")
FINALITIES = ("latest", "safe", "finalized")
ORDERED = ("", "pause", "skip-dead")
SIGNINGS = ("hmac", "ed25519")


def lines(text: str) -> list[str]:
    """A list field: one entry per line, blank lines left out."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def optional(text: str) -> str | None:
    return text.strip() or None


def number(text: str, field: str, kind: Callable[[str], T], what: str) -> T | None:
    """The number typed in `field` (None when blank)."""
    text = text.strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        error = InputError(f"invalid {field} {text[:40]!r}: expected {what}")
        error.field = field
        raise error from None


def typed(values: Mapping[str, str]) -> dict[str, str]:
    """What the form holds for each field, as typed (to show a failed form again)."""
    return {k: values.get(k, "") for k in (*EDITABLE, *CREATE_ONLY, "application_id")}


def _common(values: Mapping[str, str]) -> dict[str, Any]:
    return {
        "url": values.get("url", ""),
        "name": optional(values.get("name", "")),
        **{k: lines(values.get(k, "")) for k in LISTS},
        "confirmations": number(
            values.get("confirmations", ""), "confirmations", int, "a whole number"
        )
        or 0,
        "finality": values.get("finality") or "latest",
        "lifecycle": values.get("lifecycle") == "on",
        "retry_schedule": optional(values.get("retry_schedule", "")),
        "ordered": optional(values.get("ordered", "")),
    }


def spec_arguments(values: Mapping[str, str]) -> dict[str, Any]:
    """`build_spec`'s keyword arguments (but `settings`) from a create form."""
    return {
        **_common(values),
        "rate_limit_per_s": number(
            values.get("rate_limit", ""), "rate_limit", float, "requests per second"
        ),
        "signing": values.get("signing") or "hmac",
        "from_block": number(values.get("from_block", ""), "from_block", int, "a block number"),
        "live_only": values.get("live_only") == "on",
    }


def change_arguments(values: Mapping[str, str]) -> dict[str, Any]:
    """`build_changes`' keyword arguments (but `settings`) from an edit form: every field."""
    common = _common(values)
    rate = number(values.get("rate_limit", ""), "rate_limit", float, "requests per second")
    return {**common, "rate_limit": rate}


def shown(endpoint: public.Endpoint) -> dict[str, str]:
    """An endpoint's fields as its edit form first shows them."""

    def seconds(values: list[float] | None) -> str:
        return ",".join(f"{v:g}" for v in values or [])

    return {
        "url": endpoint.url,
        "name": endpoint.name or "",
        "chains": "\n".join(str(c) for c in endpoint.chains),
        "contracts": "\n".join(endpoint.contracts),
        "events": "\n".join(endpoint.events or endpoint.topics),
        "where": "\n".join(endpoint.where),
        "confirmations": str(endpoint.confirmations),
        "finality": endpoint.finality,
        "lifecycle": "on" if endpoint.lifecycle else "",
        "rate_limit": "" if endpoint.rate_limit is None else f"{endpoint.rate_limit:g}",
        "retry_schedule": seconds(endpoint.retry_schedule),
        "ordered": endpoint.ordered or "",
        "signing": endpoint.signing,
        "from_block": "" if endpoint.from_block is None else str(endpoint.from_block),
        "live_only": "on" if endpoint.live_only else "",
        "application_id": str(endpoint.application_id),
    }

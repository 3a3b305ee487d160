"""Tenant scope: whose resources a caller may see. Every service function takes one explicitly."""

from __future__ import annotations

from typing import Any, TypeAlias

from ethhook.exceptions import PermissionDeniedError

# An application's id: that application's resources only. None: the operator, who sees every one.
Scope: TypeAlias = int | None
OPERATOR: Scope = None


def scoped(query: Any, application_column: Any, scope: Scope) -> Any:
    """`query` narrowed to the scope's application (unchanged for the operator).

    Another application's row is thereby missing, not forbidden: callers report it exactly like an
    id that does not exist, so a key never learns what other applications hold.
    """
    if scope is None:
        return query
    return query.where(application_column == scope)


def require_operator(scope: Scope, action: str) -> None:
    """Refuse an action only the operator may take (creating or deleting applications)."""
    if scope is not None:
        raise PermissionDeniedError(f"only the operator key may {action}")

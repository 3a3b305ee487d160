"""What `ethhook endpoint` prints: an endpoint as JSON, and the human lines after a change."""

from __future__ import annotations

from typing import Any

from ethhook.cli.common import json_default
from ethhook.service.endpoints import EndpointWithSecret
from ethhook.service.public import Endpoint


def endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "name": endpoint.name,
        "url": endpoint.url,
        "active": endpoint.active,
        "disabled_reason": endpoint.disabled_reason,
        "chains": endpoint.chains,
        "contracts": endpoint.contracts,
        "events": endpoint.events,
        "topics": endpoint.topics,
        "where": endpoint.where,
        "confirmations": endpoint.confirmations,
        "rate_limit_per_s": endpoint.rate_limit,
        "retry_schedule_s": endpoint.retry_schedule,
        "created_at": endpoint.created_at,
        "application_id": endpoint.application_id,
    }


def with_secret(created: EndpointWithSecret) -> dict[str, Any]:
    data = endpoint_json(created.endpoint)
    data["secret"] = created.secret
    data["previous_secret_expires_at"] = created.endpoint.previous_secret_expires_at
    return data


def secret_summary(data: dict[str, Any]) -> str:
    """`secret: whsec_…`, and during a rotation the previous secret and when it stops signing."""
    text = f"secret: {data['secret']}"
    if data["previous_secret"] is not None:
        expires = json_default(data["previous_secret_expires_at"])
        text += f"\nprevious secret: {data['previous_secret']} (keeps signing until {expires})"
    return text


def change_summary(
    endpoint_id: int, done: str, data: dict[str, Any], *, reveal_secret: bool
) -> str:
    """The human line(s) after a change: `disabled endpoint 3`, plus the secret after a rotation."""
    text = f"{done} endpoint {endpoint_id}"
    if reveal_secret:
        expires = json_default(data["previous_secret_expires_at"])
        text += f"\nsecret: {data['secret']}\nthe previous secret keeps signing until {expires}"
    return text

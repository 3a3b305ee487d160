"""Operational webhooks in tests: an application's ops endpoint set through the CLI, and what
its receiver got."""

from __future__ import annotations

import json
from typing import Any

from tests.support.cli import ethhook
from tests.support.receiver import Received, Receiver


def set_ops_endpoint(receiver: Receiver, application_id: int, path: str = "/ops") -> str:
    """`ethhook app ops-endpoint APP --url …/path`; the receiver verifies `path` with its secret,
    which is returned."""
    result = ethhook(
        "app", "ops-endpoint", str(application_id), "--url", receiver.url(path), "--json"
    )
    assert result.returncode == 0, result.stderr
    secret = json.loads(result.stdout)["secret"]
    assert secret.startswith("whsec_")
    receiver.secrets[path] = secret
    return str(secret)


def ops_of(receiver: Receiver, type_: str, path: str = "/ops", **data: Any) -> list[Received]:
    """The ops webhooks of `type_` the receiver got on `path` whose data hold `data`."""
    return [
        r
        for r in receiver.on(path)
        if r.json["type"] == type_ and all(r.json["data"].get(k) == v for k, v in data.items())
    ]


def default_application_id() -> int:
    from ethhook.db import session_scope
    from ethhook.service.apps import default_application_id as default_id

    with session_scope() as session:
        return default_id(session)
